"""Judged pairs/s with batched judge calls against a per-item judge loop, with identical verdicts.

    .venv/bin/python bench/judge.py                     # 32 pairs, the bundled `pairwise` judge, batch 16
    .venv/bin/python bench/judge.py --pairs 64 --batch-size 32

The peer is how AlpacaEval calls a judge: one model call per pair, each
waiting for the previous. The contender is the same `Judge` (same template,
model, parameters, position swaps) sending `--batch-size` prompts per
`generate` call to the embedded SmolLM2. Both run greedy on one loaded model;
every verdict (parsed value and raw output) must be identical, and the script
fails if one differs. A third row re-runs the batched judge through the
persistent completion cache (`CachedModel`), the cost of a repeated run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, machine_line, table  # noqa: E402

QA = [
    ("What is the capital of France?", "The capital of France is Paris.", "France is a country in Europe."),
    ("What is 7 times 8?", "7 times 8 is 56.", "7 times 8 is 54."),
    ("Name a primary colour.", "Red is a primary colour.", "Purple."),
    ("How many legs does a spider have?", "A spider has eight legs.", "Spiders have six legs."),
    ("What does a thermometer measure?", "A thermometer measures temperature.", "It measures weight."),
    ("Translate 'bonjour' into English.", "'Bonjour' means 'hello'.", "It means 'goodbye'."),
    ("What is the boiling point of water at sea level?", "100 degrees Celsius.", "About 50 degrees Celsius."),
    ("Give a synonym for 'happy'.", "Joyful.", "Sad."),
    ("Which planet is closest to the Sun?", "Mercury is closest to the Sun.", "Jupiter is the closest."),
    ("Write a greeting.", "Hello! I hope you are having a good day.", "Go away."),
    ("What is H2O?", "H2O is water: two hydrogen atoms and one oxygen atom.", "H2O is a kind of salt."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote it.", "Charles Dickens wrote it."),
    ("How many days are in a week?", "There are seven days in a week.", "There are ten days in a week."),
    ("What is the opposite of 'cold'?", "Hot.", "Freezing."),
    ("Name an animal that can fly.", "An eagle can fly.", "A dog can fly."),
    ("What is 15 minus 4?", "15 minus 4 is 11.", "15 minus 4 is 9."),
]


def items(n: int):
    from heedful.annotate.judges.judge import Item
    from heedful.schema import Prompt, Response
    out = []
    for i in range(n):
        q, good, bad = QA[i % len(QA)]
        q = q if i < len(QA) else f"{q} (question {i})"
        p = Prompt(id=f"p{i}", text=q)
        out.append(Item(p, (Response(id=f"r{i}a", prompt_id=p.id, text=good),
                            Response(id=f"r{i}b", prompt_id=p.id, text=bad))))
    return out


def timed_judge(judge, tasks):
    t0 = time.perf_counter()
    verdicts = judge.judge(tasks)
    return verdicts, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--judge", default="pairwise")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = ap.parse_args()
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    from heedful.annotate.registry import Resolver
    from heedful.models import get_model
    from heedful.models.cache import CachedModel
    print(machine_line(machine(with_rates=True)), f"· load average {os.getloadavg()[0]:.1f}",
          f"· torch threads {torch.get_num_threads()}", flush=True)
    model = get_model("smollm2", batch_size=a.batch_size)
    per_item = Resolver(models={"smollm2": model}, batch_size=1).judge(a.judge)
    batched = Resolver(models={"smollm2": model}, batch_size=a.batch_size).judge(a.judge)
    tasks = batched.tasks(items(a.pairs), seed=0)
    batched.judge(tasks[:2])  # warm-up (first-call allocations), not timed
    peer, t_peer = timed_judge(per_item, tasks)
    print(f"  per-item loop: {len(tasks)} pairs in {t_peer:.1f} s", flush=True)
    ours, t_ours = timed_judge(batched, tasks)
    print(f"  batched ({a.batch_size}): {len(tasks)} pairs in {t_ours:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as d:
        cached = Resolver(models={"smollm2": CachedModel(model, os.path.join(d, "c.db"))},
                          batch_size=a.batch_size).judge(a.judge)
        cached.judge(tasks)
        again, t_cached = timed_judge(cached, tasks)
    diff = [i for i, (x, y, z) in enumerate(zip(peer, ours, again))
            if (x.value, x.raw) != (y.value, y.raw) or (x.value, x.raw) != (z.value, z.raw)]
    rows = [("per-item judge loop (peer)", len(tasks), f"{t_peer:.1f}", f"{len(tasks) / t_peer:.2f}", "1.00×"),
            (f"batched judge, {a.batch_size} per call", len(tasks), f"{t_ours:.1f}", f"{len(tasks) / t_ours:.2f}",
             f"{t_peer / t_ours:.2f}×"),
            ("batched judge, repeated run (cache hits)", len(tasks), f"{t_cached:.2f}",
             f"{len(tasks) / t_cached:.0f}", f"{t_peer / t_cached:.0f}×")]
    print()
    print(table(["contender", "pairs", "seconds", "pairs/s", "vs peer"], rows))
    counts = {}
    for v in ours:
        key = v.value["choice"] if v.value else "missing"
        counts[key] = counts.get(key, 0) + 1
    mean_out = sum(v.tokens.get("completion_tokens", 0) for v in ours) / max(1, len(ours))
    print(f"\nmean judge output: {mean_out:.1f} tokens per verdict")
    print(f"verdicts: {counts}; identical across the three runs: {len(tasks) - len(diff)}/{len(tasks)}")
    print(f"ratio batched / per-item: {t_peer / t_ours:.2f}×")
    if diff:
        raise SystemExit(f"verdicts differ at tasks {diff[:10]}")


if __name__ == "__main__":
    main()
