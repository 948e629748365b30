"""Helpers every bench script shares: the machine, timing, child processes, the table.

Speed claims in heedful live only in `bench/` scripts that measure a peer in
the same run and print ratios, so each script needs the same few things: a
description of the machine the figures came from, a clock, a way to run a
contender in a fresh process and read its peak memory, and one table format.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


# --- the machine -------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """CPUs this process may run on (what a benchmark can actually use)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def matmul_gflops(n: int = 1024, repeat: int = 5) -> float:
    """Best-of-`repeat` float32 n×n matmul rate in GFLOP/s (numpy's BLAS, all cores)."""
    import numpy as np
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm up the BLAS threads
    best = min(timed(lambda: a @ b)[1] for _ in range(repeat))
    return 2 * n**3 / best / 1e9


def memory_gbps(mib: int = 256, repeat: int = 5) -> float:
    """Best-of-`repeat` copy bandwidth in GB/s (bytes read + bytes written per second)."""
    import numpy as np
    src = np.ones(mib * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = min(timed(lambda: np.copyto(dst, src))[1] for _ in range(repeat))
    return 2 * src.nbytes / best / 1e9


def machine(with_rates: bool = False) -> dict:
    """Date, cores, CPU model, Python; with `with_rates` also matmul and memory rates."""
    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": cores(), "cpu": cpu_model(),
        "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}",
    }
    if with_rates:
        info["matmul_f32_gflops"] = round(matmul_gflops(), 1)
        info["memory_copy_gbps"] = round(memory_gbps(), 1)
    return info


def machine_line(info: dict) -> str:
    line = f"{info['date']} · {info['cores']} cores · {info['cpu']} · Python {info['python']}"
    if "matmul_f32_gflops" in info:
        line += f" · f32 matmul {info['matmul_f32_gflops']} GFLOP/s · copy {info['memory_copy_gbps']} GB/s"
    return line


# --- timing and child processes ------------------------------------------------------------

def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """(result, seconds) of one call, on the monotonic high-resolution clock."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@dataclass
class ChildResult:
    returncode: int
    seconds: float  # wall time, process start to exit
    peak_rss: int  # bytes: the child's own maximum resident set size
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # the child's user + system CPU time

    def check(self, what: str) -> ChildResult:
        if self.returncode != 0:
            raise SystemExit(f"{what} failed (exit {self.returncode}):\n{self.stderr[-4000:]}")
        return self

    def json(self) -> dict:
        """The last stdout line, parsed (how worker processes report back)."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_child(cmd: Sequence[str], *, env: dict | None = None, cwd: Path | None = None) -> ChildResult:
    """Run `cmd`, wait for it, and return wall time and its peak RSS.

    `os.wait4` gives the rusage of exactly this child (RUSAGE_CHILDREN would
    mix in every earlier child); Linux reports ru_maxrss in KiB.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    out, err = _drain(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes
    return ChildResult(proc.returncode, seconds, usage.ru_maxrss * scale, out, err,
                       usage.ru_utime + usage.ru_stime)


def _drain(proc: subprocess.Popen) -> tuple[str, str]:
    """Read both pipes to EOF without reaping the child (so wait4 can)."""
    import threading
    chunks: dict[str, str] = {}

    def read(name, pipe):
        chunks[name] = pipe.read()
        pipe.close()
    threads = [threading.Thread(target=read, args=(n, p)) for n, p in
               (("out", proc.stdout), ("err", proc.stderr))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return chunks["out"], chunks["err"]


def python_child(script: Path | str, *args: str, **kw) -> ChildResult:
    """Run a Python script with this interpreter (the project's venv)."""
    return run_child([PYTHON, str(script), *args], **kw)


def show_cmd(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


# --- output --------------------------------------------------------------------------------

@dataclass
class Result:
    """One measured figure, and the peer's figure for the same thing measured in the same run.

    `higher_is_better` says which way the ratio points (rates: True; seconds, bytes: False)."""

    name: str
    value: float
    unit: str
    peer: str | None = None
    peer_value: float | None = None
    higher_is_better: bool = True
    note: str = ""
    goal: str | None = None  # e.g. "≥20× feedloop"
    met: bool | None = None  # whether this run meets the goal (None: cannot tell)

    @property
    def ratio(self) -> float | None:
        """How many times better than the peer (>1 is better), or None without a peer."""
        if not self.peer_value or not self.value:
            return None
        return self.value / self.peer_value if self.higher_is_better else self.peer_value / self.value

    def row(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.1f}×"
        peer = "" if self.peer is None else f"{self.peer}: {_num(self.peer_value)}"
        goal = "" if self.goal is None else f"{self.goal}: {'met' if self.met else 'not met' if self.met is False else '?'}"
        return [self.name, _num(self.value), self.unit, peer, ratio, goal, self.note]

    def as_dict(self) -> dict:
        """The FIGURE dict of bench/_runner.py's protocol (what `--json` writes)."""
        from _runner import figure
        return figure(self.name, self.value, self.unit, self.peer, self.peer_value,
                      "higher" if self.higher_is_better else "lower", self.goal, self.met, self.note or None)


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def results_table(results: Sequence[Result]) -> str:
    return table(["what", "value", "unit", "peer (same run)", "vs peer", "goal", "note"], [r.row() for r in results])


def print_table(results: Sequence[Result], title: str | None = None) -> None:
    if title:
        print(f"\n## {title}\n")
    print(results_table(results), flush=True)


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain Markdown table (readable in a terminal, pastes into bench/README.md)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = [all(_numeric(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def line(r):
        return "| " + " | ".join(c.rjust(w) if rt else c.ljust(w) for c, w, rt in zip(r, widths, right)) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if rt else ("-" * (w + 2)) for w, rt in zip(widths, right)) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def _numeric(s: str) -> bool:
    return bool(s) and s.replace(",", "").replace(".", "").replace("×", "").replace(" MiB", "").strip().isdigit()
