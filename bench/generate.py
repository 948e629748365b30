"""Tokens/s of batched generation with the embedded model against one prompt at a time, in one run.

    .venv/bin/python bench/generate.py                      # 128 prompts, 64 new tokens, batch 128
    .venv/bin/python bench/generate.py --quick --json out.json   # 128 prompts, 4 one at a time, 32 new tokens
    .venv/bin/python bench/generate.py --prompts 64 --batch-size 32

Contenders, all greedy on the same model object (SmolLM2-135M, float32):

  transformers generate, 1 prompt at a time   the peer: `model.generate` per prompt
  heedful, 1 prompt at a time                 heedful's decode loop with batch 1: the peer's work, on
                                              oneDNN's products (the row's gain is the kernel's)
  transformers generate, batched              `model.generate` on left-padded batches, stock torch
  heedful, batched                            `HFModel.generate` (sorted by length, finished rows dropped;
                                              128 rows, its default: the most that pays on 2 cores)
  heedful, batched, n=4 sampled               4 samples per prompt, temperature 0.7, one prefill each

The one-at-a-time rows run on the first `--peer-prompts` prompts only (they
are slow); tokens/s is generated tokens (up to and excluding EOS) over wall
time. Greedy outputs of the batched heedful run are compared with the peer's
on those prompts and the count of identical texts is printed.

Figures (bench/_runner.py protocol): heedful batched, heedful batch 1 and
heedful n=4 sampled, each against the one-at-a-time transformers peer, and
heedful batched against transformers batched; the 200 tok/s goal is judged
on the batched figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, machine_line, table  # noqa: E402
from _runner import add_protocol_args, figure, write_figures  # noqa: E402

TOPICS = ["the sea", "autumn", "a cat", "coffee", "the moon", "trains", "bread", "rain"]
TASKS = ["Write one sentence about {}.", "Give two facts about {}.", "Describe {} to a child.",
         "Name three words related to {}.", "Write a haiku about {}.", "Why do people like {}?",
         "What colour is usually associated with {}?", "Tell a very short story about {}."]


def prompts(n: int) -> list[str]:
    out = [t.format(topic) for topic in TOPICS for t in TASKS]
    return [out[i % len(out)] + ("" if i < len(out) else f" ({i // len(out)})") for i in range(n)]


def hf_generate(m, batch: list[str], max_new: int) -> list[str]:
    """Plain transformers `generate`, left-padded, greedy; returns texts, counts tokens before EOS."""
    import torch
    tok = m.tokenizer
    ids = [m.render(p) for p in batch]
    width = max(map(len, ids))
    pad = tok.pad_token_id
    x = torch.tensor([[pad] * (width - len(i)) + i for i in ids])
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    with torch.inference_mode():
        out = m.model.generate(input_ids=x, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                               pad_token_id=pad, eos_token_id=sorted(m.eos_ids))
    texts, count = [], 0
    for row in out[:, width:].tolist():
        row = row[:next((k for k, t in enumerate(row) if t in m.eos_ids), len(row))]
        count += len(row)
        texts.append(tok.decode(row, skip_special_tokens=True))
    hf_generate.tokens = count
    return texts


def run(name, fn, results):
    t0 = time.perf_counter()
    texts, tokens = fn()
    dt = time.perf_counter() - t0
    results.append((name, tokens, dt))
    print(f"  {name}: {tokens} tokens in {dt:.1f} s = {tokens / dt:.1f} tok/s", flush=True)
    return texts


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_protocol_args(ap, "4 prompts one at a time, 32 new tokens")
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--peer-prompts", type=int, default=None, help="default 8 (quick 4)")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default 64 (quick 32)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--skip-hf-batched", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = ap.parse_args(argv)
    a.peer_prompts = a.peer_prompts or (4 if a.quick else 8)
    a.max_new_tokens = a.max_new_tokens or (32 if a.quick else 64)
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    from heedful.models import GenParams, get_model, onednn
    info = machine(with_rates=True)
    print(machine_line(info), f"· load average {os.getloadavg()[0]:.1f}",
          f"· torch threads {torch.get_num_threads()}", flush=True)
    t0 = time.perf_counter()
    m = get_model("smollm2", batch_size=a.batch_size)
    print(f"model loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    ps, few = prompts(a.prompts), prompts(a.peer_prompts)
    greedy = GenParams(max_new_tokens=a.max_new_tokens)
    res: list = []

    def ours(batch, params, bs):
        m.batch_size = bs
        out = m.generate(batch, params)
        return [c.text for cs in out for c in cs], sum(c.completion_tokens for cs in out for c in cs)

    def hf(batch, bs):
        texts, tokens = [], 0
        onednn.unroute(m.model)  # the peer as transformers runs it: torch's own linear layers
        try:
            for i in range(0, len(batch), bs):
                texts += hf_generate(m, batch[i:i + bs], a.max_new_tokens)
                tokens += hf_generate.tokens
        finally:
            onednn.route(m.model)
        return texts, tokens

    peer = run("transformers generate, 1 prompt at a time", lambda: hf(few, 1), res)
    run("heedful, 1 prompt at a time", lambda: ours(few, greedy, 1), res)
    if not a.skip_hf_batched:
        run(f"transformers generate, batch {a.batch_size}", lambda: hf(ps, a.batch_size), res)
    batched = run(f"heedful, batch {a.batch_size}", lambda: ours(ps, greedy, a.batch_size), res)
    sampled = GenParams(n=4, temperature=0.7, max_new_tokens=a.max_new_tokens, seed=0)
    run(f"heedful, batch {a.batch_size}, n=4 sampled", lambda: ours(ps[:a.prompts // 4], sampled, a.batch_size), res)
    base = res[0][1] / res[0][2]
    rows = [(name, tok, f"{dt:.1f}", f"{tok / dt:.1f}", f"{tok / dt / base:.2f}×") for name, tok, dt in res]
    print()
    print(table(["contender", "tokens", "seconds", "tok/s", "vs peer"], rows))
    same = sum(x == y for x, y in zip(peer, batched))
    print(f"\ngreedy texts identical to the peer's: {same}/{len(peer)} "
          f"(batched heedful vs one-at-a-time transformers generate)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other jobs share these cores)")
    figs = figures(res, a, same, len(peer))
    write_figures(a.json, figs, load_average=os.getloadavg()[0])
    return figs


def figures(res: list, a, same: int, checked: int) -> list[dict]:
    """The protocol's figures from the measured (name, tokens, seconds) rows."""
    rate = {name: tok / dt for name, tok, dt in res}
    peer1, ours1 = res[0][0], res[1][0]
    ours_b, ours_n = f"heedful, batch {a.batch_size}", f"heedful, batch {a.batch_size}, n=4 sampled"
    note = f"{a.prompts} prompts, {a.max_new_tokens} new tokens, greedy; peer on {a.peer_prompts} prompts"
    figs = [figure(f"generate, {ours_b}", rate[ours_b], "tok/s", peer1, rate[peer1],
                   goal="≥200 tok/s aggregate", met=rate[ours_b] >= 200,
                   note=f"{note}; greedy texts identical to the peer's {same}/{checked}"),
            figure(f"generate, {ours1}", rate[ours1], "tok/s", peer1, rate[peer1], note=note),
            figure(f"generate, {ours_n}", rate[ours_n], "tok/s", peer1, rate[peer1],
                   note=f"{a.prompts // 4} prompts × 4 samples, temperature 0.7")]
    hf_b = f"transformers generate, batch {a.batch_size}"
    if hf_b in rate:
        figs.append(figure(f"generate, {ours_b} vs batched transformers", rate[ours_b], "tok/s", hf_b, rate[hf_b],
                           note=note))
    return figs

if __name__ == "__main__":
    main()
