"""float32 linear layers: oneDNN (what heedful's model layers run on, models/onednn.py) against torch's `F.linear`.

    .venv/bin/python bench/gemm.py                  # every shape of SmolLM2-135M at 1, 64 and 2048 rows
    .venv/bin/python bench/gemm.py --quick --json out.json

The peer is `torch.nn.functional.linear`, which on a CPU calls MKL's sgemm;
the contender is `torch.ops.mkldnn._linear_pointwise` on the same dense
weight (no copy). Rows are the tokens of one call: 1 (a decode step at batch
1), 64 (a decode step of 64 sequences) and 2048 (a prefill or a training
pass). Both outputs are compared with a float64 product and the largest
error of each is printed, so the speed is not bought with precision.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, machine_line, table  # noqa: E402
from _runner import add_protocol_args, figure, write_figures  # noqa: E402

# SmolLM2-135M: q and o, k and v, gate and up, down, the tied LM head (out × in)
SHAPES = {"q/o 576→576": (576, 576), "k/v 576→192": (192, 576), "gate/up 576→1536": (1536, 576),
          "down 1536→576": (576, 1536), "head 576→49152": (49152, 576)}


def best_seconds(fn, budget: float) -> float:
    """Best mean over 3 rounds, each repeating `fn` for about `budget` seconds."""
    fn()
    t0 = time.perf_counter()
    fn()
    reps = max(1, int(budget / max(time.perf_counter() - t0, 1e-6)))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def measure(rows: int, out_f: int, in_f: int, budget: float) -> dict:
    import torch
    import torch.nn.functional as F

    from heedful.models import onednn
    torch.manual_seed(0)
    x, w = torch.randn(rows, in_f), torch.randn(out_f, in_f) / in_f**0.5
    exact = x.double() @ w.double().t()
    ops = {"torch": lambda: F.linear(x, w),
           "onednn": lambda: onednn.linear(x, w)}
    flop = 2 * rows * out_f * in_f
    out = {}
    for name, fn in ops.items():
        out[name] = flop / best_seconds(fn, budget) / 1e9
        out[f"{name}_err"] = float((fn().double() - exact).abs().max())
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_protocol_args(ap, "less time per shape")
    a = ap.parse_args(argv)
    import torch

    from heedful.models import onednn
    if not onednn.built_in():
        raise SystemExit("this torch build has no oneDNN linear: nothing to compare")
    print(machine_line(machine()), f"· torch threads {torch.get_num_threads()}", flush=True)
    budget = 0.05 if a.quick else 0.3
    rows, figs = [], []
    for n in (1, 64, 2048):
        tot = {"torch": 0.0, "onednn": 0.0}
        for label, (out_f, in_f) in SHAPES.items():
            r = measure(n, out_f, in_f, budget)
            rows.append((n, label, f"{r['torch']:.0f}", f"{r['onednn']:.0f}", f"{r['onednn'] / r['torch']:.2f}×",
                         f"{r['torch_err']:.1e} / {r['onednn_err']:.1e}"))
            for k in tot:  # seconds of one layer stack: each shape as often as the model has it
                tot[k] += _per_model(label) * 2 * n * out_f * in_f / r[k] / 1e9
        figs.append(figure(f"SmolLM2's linear layers, one forward of {n} rows, oneDNN", tot["onednn"] * 1e3, "ms",
                           "torch F.linear (MKL)", tot["torch"] * 1e3, better="lower",
                           note="every linear layer once, the LM head included"))
    print(table(["rows", "layer", "torch GFLOP/s", "oneDNN GFLOP/s", "ratio", "max error vs float64"], rows))
    for f in figs:
        print(f"- {f['name']}: {f['value']:.1f} ms against {f['peer_value']:.1f} ms ({f['ratio']:.2f}×)")
    write_figures(a.json, figs)
    return figs


def _per_model(label: str) -> int:
    """How many of this shape one forward of SmolLM2-135M runs (30 layers, the head once)."""
    return 1 if label.startswith("head") else 30 * (1 if label.startswith("down") else 2)


if __name__ == "__main__":
    main()
