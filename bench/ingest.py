"""Ingest speed: heedful's SDK, `heedful import` and the HTTP API against feedloop's `compare()`.

    .venv/bin/python bench/ingest.py                              # 100k rows: SDK, CLI, HTTP, feedloop
    .venv/bin/python bench/ingest.py --rows 1000000 --skip-sdk    # the 1M-row import and its peak memory

Other scripts (bench/run_all.py) call `main(argv)`, which returns the figures as
`_common.Result`s after printing them.

One record is one TRL preference row (prompt, chosen, rejected): for heedful a
prompt, two responses and one `preference` feedback; for feedloop one
comparison (prompt + two outputs), the unit its API stores. Every contender
runs in a fresh process against a fresh SQLite file in a temp dir with
`synchronous=FULL` (feedloop's default in WAL mode is FULL too: checked and
printed), and after it exits a second fresh process reopens the database and
checks that every acknowledged record is there — a write counts only once it
is durable.

Why these contenders: feedloop is the closest peer on PyPI (an SDK call that
stores a preference pair in SQLite); `compare()` returns once its row is
committed, so its rate is what an app logging preferences gets. heedful's SDK
acknowledges a batch when its transaction commits, which is when the ids it
returned are durable. The SDK worker streams the file a chunk at a time and
its clock runs only inside the SDK calls; the CLI is timed from outside, as a
user waits for it. The HTTP contenders post to a real `heedful serve` process
(batches of `--per-request` records, and one record per request) and count a
record once its request has answered 200.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
from _runner import add_protocol_args, write_figures  # noqa: E402

HERE = Path(__file__).resolve()
SOURCE = {"type": "human", "name": "bench"}
IMPORT_FORMAT = "trl-preference"
GIB = 2**30


# --- data ----------------------------------------------------------------------------------

def _corpus(rng: random.Random, words: int = 400_000) -> str:
    vocab = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))))
             for _ in range(5000)]
    return " ".join(rng.choices(vocab, k=words))


def generate(path: Path, rows: int, seed: int = 0) -> dict:
    """A deterministic TRL preference JSONL: texts 200-800 chars, ~25% repeated prompts."""
    rng = random.Random(seed)
    corpus = _corpus(rng)

    def text(lo: int, hi: int, tag: str) -> str:
        n = rng.randint(lo, hi)
        off = rng.randrange(len(corpus) - n)
        return f"{tag} {corpus[off:off + n]}"  # the tag keeps every text distinct

    prompts: list[str] = []
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            if prompts and rng.random() < 0.25:
                prompt = rng.choice(prompts)
            else:
                prompt = text(200, 800, f"Q{i}:")
                prompts.append(prompt)
            row = {"prompt": prompt, "chosen": text(200, 800, f"A{i}:"), "rejected": text(200, 800, f"B{i}:")}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"rows": rows, "prompts": len(prompts), "bytes": path.stat().st_size}


def read_rows(path: Path, limit: int | None = None) -> list[dict]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(out) >= limit:
                break
            out.append(json.loads(line))
    return out


def chunks(path: Path, size: int):
    """The file's rows, `size` at a time (the SDK worker never holds the whole file)."""
    chunk: list[dict] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            chunk.append(json.loads(line))
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


# --- workers (each runs in its own process; prints one JSON line) -------------------------

def work_sdk(data: Path, db: Path, acked: Path, chunk: int) -> dict:
    """SDK batched writes: one `store.batch()` (one transaction) per chunk of rows.

    The clock runs only inside the SDK calls (reading the file is not the SDK's work)."""
    from heedful.store import Store
    store = Store(db)
    seconds, cpu, records = 0.0, 0.0, 0
    with acked.open("w") as ack:
        for rows in chunks(data, chunk):
            t0, c0 = time.perf_counter(), time.process_time()
            ids = _sdk_chunk(store, rows)  # returns after the commit: these are acknowledged
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0
            records += len(rows)
            ack.write("\n".join(ids) + "\n")
    store.close()
    return {"records": records, "seconds": seconds, "cpu": cpu}


def _sdk_chunk(store, rows: list[dict]) -> list[str]:
    with store.batch() as b:
        pids = b.add(prompts=[{"text": r["prompt"]} for r in rows]).prompt_ids
        resp = [{"prompt_id": p, "text": r[k]} for p, r in zip(pids, rows) for k in ("chosen", "rejected")]
        rids = b.add(responses=resp).response_ids
        fb = [{"kind": "preference", "value": {"choice": "a"}, "response_ids": rids[j:j + 2], "source": SOURCE}
              for j in range(0, len(rids), 2)]
        return b.add(feedback=fb).feedback_ids


def work_http(data: Path, url: str, key: str, acked: Path, per_request: int, limit: int) -> dict:
    """POST /v1/feedback to a running `heedful serve`: `per_request` records per request, each
    with its prompt and two responses inline (what an app sends). A record is acknowledged
    when its request answers 200 (the server has committed it). The clock runs only inside
    the requests; `limit` rows at most (0: the whole file)."""
    import httpx
    seconds, cpu, records = 0.0, 0.0, 0
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http, acked.open("w") as ack:
        for rows in chunks(data, per_request):
            rows = rows[:limit - records] if limit else rows
            body = [_http_record(r) for r in rows]
            t0, c0 = time.perf_counter(), time.process_time()
            resp = http.post("/v1/feedback", json=body if per_request > 1 else body[0])
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0
            if resp.status_code != 200:
                raise SystemExit(f"POST /v1/feedback answered {resp.status_code}: {resp.text[:500]}")
            records += len(rows)
            ack.write("\n".join(resp.json()["feedback_ids"]) + "\n")
            if limit and records >= limit:
                break
    return {"records": records, "seconds": seconds, "cpu": cpu}


def _http_record(r: dict) -> dict:
    return {"kind": "preference", "value": {"choice": "a"}, "source": SOURCE, "prompt": r["prompt"],
            "responses": [{"text": r["chosen"]}, {"text": r["rejected"]}]}


def work_feedloop(data: Path, dirpath: Path, acked: Path, n: int) -> dict:
    """feedloop.compare() per row; the clock stops once its DB holds all n rows."""
    import feedloop
    rows = read_rows(data, n)
    db = dirpath / "feedloop.db"
    feedloop.start(port=_free_port(), db_path=str(db), open_browser=False)
    sync = feedloop._db._conn.execute("PRAGMA synchronous").fetchone()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    ids = [feedloop.compare(r["prompt"], [r["chosen"], r["rejected"]]) for r in rows]
    _wait_rows(db, "comparisons", len(ids))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    acked.write_text("\n".join(ids) + "\n")
    feedloop.stop()
    return {"records": len(ids), "seconds": seconds, "cpu": cpu, "synchronous": sync}


def _wait_rows(db: Path, table: str, n: int, timeout: float = 300) -> None:
    """Poll a separate connection until `n` rows are committed (compare() may not block)."""
    conn = sqlite3.connect(db)
    deadline = time.monotonic() + timeout
    while conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"feedloop: fewer than {n} rows after {timeout}s")
        time.sleep(0.01)
    conn.close()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def work_count(kind: str, db: Path, acked: Path | None) -> dict:
    """A fresh process reopens the DB: row counts, and whether every acked id is there."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    if kind == "feedloop":
        counts = {"comparisons": conn.execute("SELECT count(*) FROM comparisons").fetchone()[0]}
        stored = {r[0] for r in conn.execute("SELECT id FROM comparisons")}
    else:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("prompts", "responses", "feedback", "feedback_targets")}
        stored = {r[0] for r in conn.execute("SELECT id FROM feedback")}
    missing = 0
    if acked is not None:
        missing = sum(1 for line in acked.read_text().split() if line not in stored)
    return {"counts": counts, "missing": missing}


# --- the run --------------------------------------------------------------------------------

def worker(args: argparse.Namespace) -> dict:
    p = [Path(x) for x in args.paths]
    if args.worker == "generate":
        return generate(p[0], args.rows)
    if args.worker == "sdk":
        return work_sdk(p[0], p[1], p[2], args.chunk)
    if args.worker == "feedloop":
        return work_feedloop(p[0], p[1], p[2], args.peer_rows)
    if args.worker == "http":
        return work_http(p[0], args.url, os.environ["HEEDFUL_BENCH_KEY"], p[1], args.per_request, args.limit)
    return work_count(args.worker.removeprefix("count-"), p[0], p[1] if len(p) > 1 else None)


def child(name: str, *paths: Path, args: argparse.Namespace, extra: Sequence[str] = (),
          env: dict | None = None) -> c.ChildResult:
    opts = ["--chunk", str(args.chunk), "--peer-rows", str(args.peer_rows), "--rows", str(args.rows), *extra]
    return c.python_child(HERE, "--worker", name, *opts, *map(str, paths), env=env).check(name)


def verify(kind: str, db: Path, acked: Path | None, expect: dict, args) -> dict:
    """Reopen in a fresh process; fail loudly if an acknowledged record is missing."""
    got = child(f"count-{kind}", db, *([acked] if acked else []), args=args).json()
    wrong = {k: (got["counts"].get(k), v) for k, v in expect.items() if got["counts"].get(k) != v}
    if got["missing"] or wrong:
        raise SystemExit(f"{kind}: durability check failed: {got['missing']} acknowledged ids missing, "
                         f"counts (got, want) {wrong}")
    return got["counts"]


@dataclass
class Run:
    """One contender's figures: records, wall seconds, CPU seconds, peak RSS in bytes."""

    name: str
    records: int
    seconds: float
    cpu: float
    rss: int

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.records / self.cpu if self.cpu else 0.0


def run_sdk(tmp: Path, data: Path, expect: dict, args) -> Run:
    db, acked = tmp / "sdk.db", tmp / "sdk.acked"
    res = child("sdk", data, db, acked, args=args)
    verify("heedful", db, acked, expect, args)
    r = res.json()
    return Run(f"heedful SDK batch({args.chunk:,})", r["records"], r["seconds"], r["cpu"], res.peak_rss)


def run_cli(tmp: Path, data: Path, expect: dict, args) -> Run:
    """`heedful import` as a user runs it: wall time includes interpreter start-up and parsing."""
    db = tmp / "cli.db"
    cmd = [str(Path(sys.executable).parent / "heedful"), "import", str(data),
           "--format", IMPORT_FORMAT, "--db", str(db)]
    res = c.run_child(cmd).check(c.show_cmd(cmd))
    verify("heedful", db, None, expect, args)
    return Run("heedful import (CLI)", expect["feedback"], res.seconds, res.cpu_seconds, res.peak_rss)


def run_http(tmp: Path, data: Path, expect: dict, args, per_request: int, limit: int = 0) -> Run:
    """`heedful serve` on a fresh SQLite file, fed by a client process over loopback.

    Wall time is the client's time inside its requests; CPU time is the server's (its whole
    life: start-up, requests, shutdown), which is what heedful spends; peak RSS the server's."""
    name = f"http{per_request}"
    db, acked = tmp / f"{name}.db", tmp / f"{name}.acked"
    bin_ = Path(sys.executable).parent / "heedful"
    key = subprocess.run([str(bin_), "keys", "create", "--role", "ingest", "--name", "bench", "--db", str(db)],
                         capture_output=True, text=True, check=True).stdout.strip()
    port = _free_port()
    server = subprocess.Popen([str(bin_), "serve", "--db", str(db), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url, server)
        res = child("http", data, acked, args=args, env={"HEEDFUL_BENCH_KEY": key},
                    extra=["--url", url, "--per-request", str(per_request), "--limit", str(limit)])
    finally:
        server.send_signal(signal.SIGINT)
        _, _, usage = os.wait4(server.pid, 0)
    r = res.json()
    n = r["records"]
    if limit:  # a prefix of the file: the feedback count is what can be checked
        expect = {"feedback": n, "feedback_targets": 2 * n}
    verify("heedful", db, acked, expect, args)
    label = "one record per POST" if per_request == 1 else f"{per_request} records per POST"
    return Run(f"heedful HTTP, {label}", n, r["seconds"], usage.ru_utime + usage.ru_stime,
               usage.ru_maxrss * 1024)


def _wait_http(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"heedful serve exited: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(url + "/v1/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"heedful serve did not answer within {timeout:.0f}s")


def run_feedloop(tmp: Path, data: Path, args) -> tuple[Run, int]:
    d, acked = tmp / "feedloop", tmp / "feedloop.acked"
    d.mkdir()
    res = child("feedloop", data, d, acked, args=args)
    r = res.json()
    verify("feedloop", d / "feedloop.db", acked, {"comparisons": r["records"]}, args)
    return Run("feedloop compare()", r["records"], r["seconds"], r["cpu"], res.peak_rss), r["synchronous"]


def measure(args: argparse.Namespace) -> list[c.Result]:
    """Run every contender on one generated file; print the detail table; return the results."""
    print(f"# ingest benchmark — {c.machine_line(c.machine())}", flush=True)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="heedful-bench-") as tmp:
        tmp = Path(tmp)
        data = tmp / "trl-preference.jsonl"
        # In a child: this process stays small, and a child's peak RSS as Linux reports it
        # includes the parent's resident size at fork (it would count the generator's memory).
        gen, secs = c.timed(lambda: child("generate", data, args=args).json())
        print(f"data: {gen['rows']:,} rows, {gen['prompts']:,} distinct prompts, "
              f"{gen['bytes'] / 2**20:,.0f} MiB ({secs:.1f}s to generate)", flush=True)
        expect = {"prompts": gen["prompts"], "responses": 2 * gen["rows"], "feedback": gen["rows"],
                  "feedback_targets": 2 * gen["rows"]}
        peer, sync = run_feedloop(tmp, data, args)
        print(f"feedloop: {c.fmt_rate(peer.rate)} records/s (synchronous={sync})", flush=True)
        runs.append(peer)
        contenders = ((args.skip_sdk, run_sdk), (args.skip_cli, run_cli),
                      (args.skip_http, lambda *a: run_http(*a, per_request=args.per_request)),
                      (args.skip_http, lambda *a: run_http(*a, per_request=1, limit=args.peer_rows)))
        for skip, fn in contenders:
            if not skip:
                runs.append(fn(tmp, data, expect, args))
                print(f"{runs[-1].name}: {c.fmt_rate(runs[-1].rate)} records/s", flush=True)
    print()
    print(c.table(["what", "records", "records/s", "vs feedloop", "records/CPU-s", "peak RSS"],
                  [[r.name, f"{r.records:,}", c.fmt_rate(r.rate), f"{r.rate / peer.rate:.1f}×",
                    c.fmt_rate(r.cpu_rate), c.fmt_bytes(r.rss)] for r in runs]))
    print("\nrecord = one TRL preference row; all SQLite, synchronous=FULL, every acknowledged "
          "record re-counted in a fresh process. records/s is wall time (the ratio); records/CPU-s "
          "is the contender's own CPU time, steadier on a shared machine.")
    return results(runs, peer, args)


GOAL = 20  # × feedloop, from the issue


def results(runs: list[Run], peer: Run, args) -> list[c.Result]:
    out = []
    for r in runs[1:]:
        ratio = r.rate / peer.rate
        out.append(c.Result(f"ingest: {r.name}", r.rate, "records/s", "feedloop compare()", peer.rate,
                            goal=f"≥{GOAL}× feedloop", met=ratio >= GOAL,
                            note=f"{r.records:,} records; {r.cpu_rate:,.0f} per CPU-second"))
    cli = next((r for r in runs if r.name.startswith("heedful import")), None)
    if cli is not None and args.rows >= 1_000_000:
        out.append(c.Result(f"ingest: peak RSS importing {args.rows:,} rows", cli.rss / 2**20, "MiB",
                            higher_is_better=False, goal="< 1024 MiB", met=cli.rss < GIB))
    return out


def main(argv=None) -> list[c.Result]:
    args = parse_args(argv)
    out = measure(args)
    c.print_table(out, "ingest")
    if args.json:
        write_figures(args.json, [r.as_dict() for r in out])
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000, help="rows in the JSONL for the SDK and the CLI")
    ap.add_argument("--peer-rows", type=int, default=10_000, help="rows fed to feedloop (it is slow)")
    ap.add_argument("--chunk", type=int, default=10_000, help="rows per SDK batch (one transaction each)")
    ap.add_argument("--skip-sdk", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--skip-http", action="store_true", help="skip both HTTP contenders")
    ap.add_argument("--per-request", type=int, default=250,
                    help="records per POST for the batched HTTP contender (the server takes ≤1000 and ≤1 MB)")
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    add_protocol_args(ap, "20k rows, feedloop on 2k (a few minutes)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.peer_rows = min(args.rows, 20_000), min(args.peer_rows, 2_000)
    return args


if __name__ == "__main__":
    a = parse_args()
    if a.worker:
        print(json.dumps(worker(a)))
    else:
        main()
