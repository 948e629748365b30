"""Judged pairs/s with batched judge calls against a per-item judge loop, with identical verdicts.

    .venv/bin/python bench/judge.py                      # 32 pairs (64 for the text judge), batch 64
    .venv/bin/python bench/judge.py --quick --json out.json   # 16 pairs (32 for the text judge)
    .venv/bin/python bench/judge.py --skip-text          # only the log-probability judge

The peer is how AlpacaEval calls a judge: one model call per pair, each
waiting for the previous, each an independent request: the model runs with
`share_prefix=False`, so every sequence of the call is computed whole and
nothing is reused between or within calls. The contender is the same `Judge`
(same template, model, position swaps) sending `--batch-size` pairs per model
call to the embedded SmolLM2, whose backend computes what the call's
sequences share once (the template's prefix, each pair's prompt for all its
verdict choices: decode.score_shared). Three bundled judges are measured:

  pairwise-logprob   no text: one `logprobs` call scores the verdict choices ("a", "b")
                     of every pair in the chunk (per-item: one call with one pair's choices)
  pairwise-likelihood  cloze form: scores each response itself after the instruction, per character
  pairwise           text: one `generate` call per chunk, then the output parser

Verdicts must match between the per-item and the batched run: the same
choice for every pair (the script fails otherwise); for the logprob judge
the largest |Δ prob_b| is printed (batch padding changes float rounding).
For the two log-probability judges a stricter peer is timed too: the
per-item loop with sharing on inside each call, so a pair's prompt is
computed once for all its choices (what one API request reading the
verdict's top log-probs costs); its ratio is printed in the figure's note.
A further row re-runs the batched logprob judge through the persistent
completion cache (`CachedModel`), the cost of a repeated run. The pairs are
obvious (one correct, one wrong answer; the correct one is always the
canonical "a"), so the share of verdicts that pick it is printed as a
sanity figure, not as a measure of judge quality.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, machine_line, table  # noqa: E402
from _runner import add_protocol_args, figure, write_figures  # noqa: E402

GOAL = "≥5× the per-item loop, same verdicts"
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
    """Verdicts and wall seconds; the process CPU seconds go to `timed_judge.cpu`."""
    t0, c0 = time.perf_counter(), time.process_time()
    verdicts = judge.judge(tasks)
    timed_judge.cpu = time.process_time() - c0
    return verdicts, time.perf_counter() - t0


def summary(verdicts) -> dict:
    """Counts of canonical choices ("a" is the correct answer here) and missing verdicts."""
    counts: dict[str, int] = {}
    for v in verdicts:
        key = v.value["choice"] if v.value else "missing"
        counts[key] = counts.get(key, 0) + 1
    return counts


def compare(name: str, model, tasks, batch_size: int, rows: list, figs: list) -> float:
    """Per-item loop then batched run of judge `name`; appends table rows and one figure; returns the peer's s/pair."""
    from heedful.annotate.registry import Resolver
    per_item = Resolver(models={"smollm2": model}, batch_size=1).judge(name)
    batched = Resolver(models={"smollm2": model}, batch_size=batch_size).judge(name)
    batched.judge(tasks[:2])  # warm-up (first-call allocations), not timed
    model.share_prefix = False  # the peer: independent requests, every sequence computed whole
    try:
        peer, t_peer = timed_judge(per_item, tasks)
    finally:
        model.share_prefix = True
    cpu_peer = timed_judge.cpu
    print(f"  {name}, per-item loop: {len(tasks)} pairs in {t_peer:.1f} s ({cpu_peer:.1f} CPU-s)", flush=True)
    ours, t_ours = timed_judge(batched, tasks)
    cpu_ours = timed_judge.cpu
    print(f"  {name}, batched ({batch_size}): {len(tasks)} pairs in {t_ours:.1f} s ({cpu_ours:.1f} CPU-s)", flush=True)
    differ = [i for i, (x, y) in enumerate(zip(peer, ours)) if _choice(x) != _choice(y)]
    strict = None
    if batched.decision != "text":  # a stricter peer: one call per pair, its prompt computed once in it
        one_pass, strict = timed_judge(per_item, tasks)
        print(f"  {name}, per-item loop, prompt once per call: {len(tasks)} pairs in {strict:.1f} s", flush=True)
        differ += [i for i, (x, y) in enumerate(zip(one_pass, ours)) if _choice(x) != _choice(y)]
    if batched.decision == "text":
        differ += [i for i, (x, y) in enumerate(zip(peer, ours)) if (x.value, x.raw) != (y.value, y.raw)]
    n, ratio = len(tasks), t_peer / t_ours
    rows += [(f"{name}: per-item loop (peer)", n, f"{t_peer:.1f}", f"{n / t_peer:.2f}", "1.00×"),
             (f"{name}: batched, {batch_size} per call", n, f"{t_ours:.1f}", f"{n / t_ours:.2f}", f"{ratio:.2f}×")]
    if strict:
        rows.append((f"{name}: per-item, prompt once per call", n, f"{strict:.1f}", f"{n / strict:.2f}",
                     f"{t_peer / strict:.2f}×"))
    note = (f"{n} pairs, batch {batch_size}; CPU-s per-item {cpu_peer:.1f} vs batched {cpu_ours:.1f} "
            f"({cpu_peer / max(cpu_ours, 1e-9):.2f}×); verdicts {summary(ours)} (a = the correct answer)")
    if batched.decision != "text":
        note += f"; max |Δprob_b| vs per-item {_max_dprob(peer, ours):.1e}"
    if strict:
        note += (f"; batched vs a per-item loop that computes each pair's prompt once "
                 f"(one pass per pair): {strict / t_ours:.2f}×")
    same = not differ
    note += f"; identical choices {n - len(set(differ))}/{n}"
    figs.append(figure(f"judge {name}, batched", n / t_ours, "pairs/s", f"{name}, per-item loop (AlpacaEval way)",
                       n / t_peer, goal=GOAL, met=bool(ratio >= 5 and same), note=note))
    if differ:
        raise SystemExit(f"{name}: verdicts differ between per-item and batched at tasks {sorted(set(differ))[:10]}")
    return t_peer / n


def _choice(v):
    return v.value["choice"] if v.value else None


def _max_dprob(xs, ys) -> float:
    ds = [abs(x.value["prob_b"] - y.value["prob_b"]) for x, y in zip(xs, ys) if x.value and y.value]
    return max(ds, default=0.0)


def cached_rerun(model, tasks, batch_size: int, t_peer_per_pair: float, rows: list, figs: list) -> None:
    from heedful.annotate.registry import Resolver
    from heedful.models.cache import CachedModel
    with tempfile.TemporaryDirectory() as d:
        cm = CachedModel(model, os.path.join(d, "c.db"))
        judge = Resolver(models={"smollm2": cm}, batch_size=batch_size).judge("pairwise-logprob")
        judge.judge(tasks)
        _, t = timed_judge(judge, tasks)
        cm.close()
    n = len(tasks)
    rows.append(("pairwise-logprob: repeated run (cache hits)", n, f"{t:.2f}", f"{n / t:.0f}",
                 f"{t_peer_per_pair * n / t:.0f}×"))
    figs.append(figure("judge pairwise-logprob, repeated run (cache)", n / t, "pairs/s",
                       "pairwise-logprob, per-item loop", 1 / t_peer_per_pair, note=f"{n} pairs, all cache hits"))


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_protocol_args(ap, "16 pairs (32 for the text judge) instead of 32 (64)")
    ap.add_argument("--pairs", type=int, default=None, help="pairs for the logprob judges (default 32, quick 16)")
    ap.add_argument("--text-pairs", type=int, default=None, help="pairs for the text judge (default 64, quick 32)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--skip-text", action="store_true", help="measure only the logprob judge")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = ap.parse_args(argv)
    pairs = a.pairs or (16 if a.quick else 32)
    text_pairs = a.text_pairs or (32 if a.quick else 64)
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    from heedful.models import get_model
    print(machine_line(machine(with_rates=True)), f"· load average {os.getloadavg()[0]:.1f}",
          f"· torch threads {torch.get_num_threads()}", flush=True)
    model = get_model("smollm2", batch_size=a.batch_size * 4)  # logprobs scores batch_size/4 sequences a pass
    rows: list = []
    figs: list[dict] = []
    from heedful.annotate.registry import Resolver
    tasks = Resolver(models={"smollm2": model}).judge("pairwise-logprob").tasks(items(pairs), seed=0)
    t_peer = compare("pairwise-logprob", model, tasks, a.batch_size, rows, figs)
    cached_rerun(model, tasks, a.batch_size, t_peer, rows, figs)
    lk_tasks = Resolver(models={"smollm2": model}).judge("pairwise-likelihood").tasks(items(pairs), seed=0)
    compare("pairwise-likelihood", model, lk_tasks, a.batch_size, rows, figs)
    if not a.skip_text:
        model.batch_size = a.batch_size
        text_tasks = Resolver(models={"smollm2": model}).judge("pairwise").tasks(items(text_pairs), seed=0)
        compare("pairwise", model, text_tasks, a.batch_size, rows, figs)
    print()
    print(table(["contender", "pairs", "seconds", "pairs/s", "vs its peer"], rows))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (other jobs share these cores)")
    for f in figs:
        print(f"- {f['name']}: {f['note']}")
    write_figures(a.json, figs, load_average=os.getloadavg()[0])
    return figs


if __name__ == "__main__":
    main()
