"""Run every benchmark in bench/ and print one table: each figure, its peer from the same run, the ratio.

    .venv/bin/python bench/run_all.py             # what `make bench` runs: every script with --quick
    .venv/bin/python bench/run_all.py --full      # every script at its default (long) size
    .venv/bin/python bench/run_all.py ingest build_preference   # only these scripts

Each `bench/*.py` (not `_*.py`, not this file) runs as its own process with
`--quick --json FILE` (the protocol in bench/_runner.py). Beside the figures
the table gives the machine's measured float32 matmul rates (torch, 4096², MKL and oneDNN) and
memory copy bandwidth, so figures from different machines can be put in
context. The table and the machine go to bench/RESULTS.md, with the date; a
script that fails or writes no figures is listed with its exit status and the
tail of its output, and makes this command exit non-zero.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import _runner as r  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


def scripts(only: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != Path(__file__).name)
    if not only:
        return found
    by_name = {p.stem: p for p in found}
    missing = [n for n in only if n.removesuffix(".py") not in by_name]
    if missing:
        raise SystemExit(f"no bench script {missing[0]!r}; there are: {', '.join(sorted(by_name))}")
    return [by_name[n.removesuffix(".py")] for n in only]


def torch_matmul_gflops(n: int = 4096, repeat: int = 3, kernel: str = "mkl") -> float | None:
    """Best-of-`repeat` float32 n×n product in GFLOP/s with torch (all its threads); None without torch.

    `kernel` "mkl" is `a @ b` (MKL's sgemm on a CPU), "onednn" the oneDNN linear
    heedful's model layers run on (models/onednn.py); None where torch has no oneDNN.
    """
    try:
        import torch
    except ImportError:
        return None
    a, b = torch.randn(n, n), torch.randn(n, n)
    fn = lambda: a @ b  # noqa: E731
    if kernel == "onednn":
        from heedful.models import onednn
        if not onednn.built_in():
            return None
        fn = lambda: onednn.linear(a, b)  # noqa: E731
    fn()
    best = min(c.timed(fn)[1] for _ in range(repeat))
    return 2 * n**3 / best / 1e9


def onednn_note(info: dict) -> str:
    rate = info.get("matmul_f32_onednn_gflops")
    return f" and {rate} GFLOP/s through oneDNN (what heedful's model layers use)" if rate else ""


def context() -> dict:
    info = c.machine()
    info["matmul_f32_gflops"] = round(torch_matmul_gflops() or c.matmul_gflops(4096, 3), 1)
    onednn = torch_matmul_gflops(kernel="onednn")
    if onednn:
        info["matmul_f32_onednn_gflops"] = round(onednn, 1)
    info["memory_copy_gbps"] = round(c.memory_gbps(512, 5), 1)
    info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return info


def run_one(script: Path, quick: bool, timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="heedful-bench-") as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [c.PYTHON, str(script), "--json", str(out), *(["--quick"] if quick else [])]
        print(f"\n$ {c.show_cmd(cmd)}", flush=True)
        t0 = time.perf_counter()
        try:
            res = c.run_child(["timeout", "--signal=KILL", str(timeout), *cmd], cwd=c.ROOT)
            code, tail = res.returncode, (res.stdout + res.stderr)[-1500:]
        except OSError as e:
            code, tail = -1, str(e)
        seconds = time.perf_counter() - t0
        figures = r.read_figures(out)
    print(tail if code else f"ok in {seconds:.0f} s, {len(figures)} figures", flush=True)
    return {"script": script.name, "code": code, "seconds": seconds, "figures": figures, "tail": tail}


def _num(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"
    return str(x)


def rows(results: list[dict]) -> list[list[str]]:
    out = []
    for res in results:
        if res["code"] != 0 or not res["figures"]:
            why = f"failed (exit {res['code']})" if res["code"] != 0 else "wrote no figures (see bench/_runner.py)"
            out.append([res["script"], why, "", "", "", "", ""])
            continue
        for f in res["figures"]:
            ratio = f"{f['ratio']:.2f}×" if isinstance(f.get("ratio"), (int, float)) else "—"
            goal = f.get("goal") or ""
            if goal and f.get("met") is not None:
                goal += " ✓" if f["met"] else " ✗"
            out.append([res["script"], f["name"], f"{_num(f['value'])} {f.get('unit', '')}".strip(),
                        f.get("peer") or "—", _num(f.get("peer_value")), ratio, goal])
    return out


def report(info: dict, results: list[dict], quick: bool) -> str:
    head = ["script", "figure", "value", "peer (same run)", "peer value", "ratio", "goal"]
    lines = [
        "# Benchmark results", "",
        f"Written by `bench/run_all.py{'' if quick else ' --full'}` on {info['date']}"
        + (" (quick sizes)." if quick else "."), "",
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB RAM, {info['os']}, "
        f"Python {info['python']}.", "",
        f"Measured here for context: float32 matmul {info['matmul_f32_gflops']} GFLOP/s (torch `a @ b`, 4096²)"
        f"{onednn_note(info)}, "
        f"memory copy {info['memory_copy_gbps']} GB/s (read + write).", "",
        "A ratio above 1 means heedful beats the peer measured in the same run (whichever direction is "
        "better for the unit). Scripts and what they time: bench/README.md.", "",
        c.table(head, rows(results)), "",
        "| script | exit | seconds |", "|---|---:|---:|",
        *(f"| {x['script']} | {x['code']} | {x['seconds']:.0f} |" for x in results), "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("only", nargs="*", help="script names (default: all)")
    ap.add_argument("--full", action="store_true", help="default sizes instead of --quick")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per script before it is killed")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the Markdown results go")
    args = ap.parse_args(argv)
    todo = scripts(args.only)
    info = context()
    print(f"# {c.machine_line(info)}", flush=True)
    results = [run_one(s, not args.full, args.timeout) for s in todo]
    text = report(info, results, not args.full)
    print("\n" + text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0 if all(x["code"] == 0 and x["figures"] for x in results) else 1


if __name__ == "__main__":
    sys.exit(main())
