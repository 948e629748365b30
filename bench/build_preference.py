"""Build speed: `heedful build preference_pairs` against reading the same rows back.

    .venv/bin/python bench/build_preference.py                 # 100k preference rows
    .venv/bin/python bench/build_preference.py --rows 1000000  # the 1M-row target (≤10 s, ≤1 GB)
    .venv/bin/python bench/build_preference.py --quick --json F # 20k rows; figures for bench/run_all.py
    .venv/bin/python bench/build_preference.py --rows 1000000 --db /tmp/1m.db  # keep the store for the next run

The store holds `rows` preference judgements: two annotators per response
pair, one pair per prompt, texts 200-800 characters. Each contender runs in a
fresh process on the same SQLite file, and its wall time and peak RSS are
measured from outside:

- build: `heedful.build.build(store, "preference_pairs", …)` with defaults
  (majority vote, length balancing on) — read, aggregate, fetch texts, write
  the TRL folder, register lineage;
- sdk-read: `sum(1 for _ in store.feedback(kind="preference"))`, the store's
  validated stream: what any consumer of the SDK pays just to see the rows;
- sql-read: one raw sqlite3 query joining feedback, targets, responses and
  prompts, fetching every text a pair needs — a floor no builder can beat.

Filling the store goes through the SDK (`store.write`) and takes far longer
than the build (about 10 minutes for 1M rows on 2 cores); `--db PATH` keeps
the filled store and reuses it when the file exists (with the row count
checked). The build registers a dataset; the script deletes it afterwards so a
reused store stays as filled.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import _runner as r  # noqa: E402

HERE = Path(__file__).resolve()
GIB = 2**30


def populate(db: Path, rows: int, seed: int = 0) -> None:
    from heedful.store import Store

    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(3000)]

    def text(tag: str) -> str:
        return tag + " " + " ".join(rng.choices(words, k=rng.randint(35, 130)))

    with Store(db) as store:
        for start in range(0, rows // 2, 5000):
            ps, rs, fs = [], [], []
            for i in range(start, min(start + 5000, rows // 2)):
                ps.append({"id": f"p{i}", "text": text(f"q{i}")})
                rs += [{"id": f"r{i}a", "prompt_id": f"p{i}", "text": text(f"a{i}")},
                       {"id": f"r{i}b", "prompt_id": f"p{i}", "text": text(f"b{i}")}]
                for k in range(2):
                    fs.append({"id": f"f{i}-{k}", "kind": "preference", "response_ids": [f"r{i}a", f"r{i}b"],
                               "value": {"choice": rng.choice("ab")}, "source": {"type": "human", "name": f"h{k}"}})
            store.write(ps, rs, fs)


def count(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM feedback WHERE kind = 'preference'").fetchone()[0]


def forget_datasets(db: Path) -> None:
    """Remove what the build registered, so a kept store stays as filled."""
    import sqlite3

    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM dataset_feedback")
        con.execute("DELETE FROM datasets")


def worker(what: str, db: str, out: str) -> None:
    import json

    from heedful.store import Store
    if what == "populate":
        return populate(Path(db), int(out))
    with Store(db) as store:
        if what == "build":
            from heedful.build import build
            res = build(store, "preference_pairs", out)
            print(json.dumps({"rows_out": res.rows_out["train"], "dropped": res.dropped}))
        elif what == "sdk-read":
            print(json.dumps({"rows": sum(1 for _ in store.feedback(kind="preference"))}))
    if what == "sql-read":
        import sqlite3
        con = sqlite3.connect(db)
        q = """SELECT f.id, f.value, r.text, p.text FROM feedback f
               JOIN feedback_targets t ON t.feedback_id = f.id
               JOIN responses r ON r.id = t.response_id JOIN prompts p ON p.id = f.prompt_id
               WHERE f.kind = 'preference'"""
        print(json.dumps({"rows": sum(1 for _ in con.execute(q))}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, help="preference rows (default 100,000; 20,000 with --quick)")
    r.add_protocol_args(ap, "20,000 rows")
    ap.add_argument("--db", type=Path, help="keep the filled store here; reused if it exists with --rows rows")
    ap.add_argument("--worker", nargs=3, metavar=("WHAT", "DB", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker)
    args.rows = args.rows or (20_000 if args.quick else 100_000)
    print(c.machine_line(c.machine()))
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if db.exists():
            if count(db) != args.rows:
                sys.exit(f"{db} holds {count(db):,} preference rows, not {args.rows:,}; pass another --db")
            print(f"reusing {db} ({args.rows:,} preference rows)")
        else:
            # in a child: a child's peak RSS counts the parent's resident size at fork
            _, secs = c.timed(lambda: c.python_child(HERE, "--worker", "populate", str(db), str(args.rows))
                              .check("populate"))
            print(f"populated {args.rows:,} preference rows in {secs:.1f} s")
        results = {}
        try:
            for what in ("build", "sdk-read", "sql-read"):
                results[what] = c.python_child(HERE, "--worker", what, str(db), str(Path(tmp) / what)).check(what)
        finally:
            forget_datasets(db)
        base = results["build"]
        # CPU seconds too: on a loaded machine wall time stretches, CPU time much less
        print(c.table(["contender", "seconds", "CPU s", "peak RSS", "build ÷ this"], [
            (w, f"{r.seconds:.2f}", f"{r.cpu_seconds:.2f}", c.fmt_bytes(r.peak_rss), f"{base.seconds / r.seconds:.2f}×")
            for w, r in results.items()]))
        print("build:", base.json())
        per_m = base.seconds * 1_000_000 / args.rows
        print(f"build scaled linearly to 1M rows: ~{per_m:.0f} s (target ≤ 10 s); "
              f"peak RSS {base.peak_rss / GIB:.2f} GiB at {args.rows:,} rows (target ≤ 1 GiB at 1M)")
        r.write_figures(args.json, figures(args.rows, results))


def figures(rows: int, results: dict) -> list[dict]:
    """Build time against both readers, and the 1M-row goals (met only when measured at ≥1M rows)."""
    b, sdk, sql = results["build"], results["sdk-read"], results["sql-read"]
    at_scale = rows >= 1_000_000
    note = f"{rows:,} rows" + ("" if at_scale else "; goal judged only at 1M rows")
    return [
        r.figure("build preference_pairs", b.seconds, "s", "SDK read of the same feedback", sdk.seconds,
                 better="lower", note=note),
        r.figure("build preference_pairs", b.seconds, "s", "raw SQL read (floor)", sql.seconds, better="lower",
                 goal="≤10 s at 1M rows", met=(b.seconds <= 10) if at_scale else None,
                 note=f"{note}; ~{b.seconds * 1e6 / rows:.0f} s at 1M by linear scaling"),
        r.figure("build peak RSS", b.peak_rss / 2**20, "MiB", "raw SQL read (floor)", sql.peak_rss / 2**20,
                 better="lower", goal="≤1 GiB at 1M rows", met=(b.peak_rss <= GIB) if at_scale else None, note=note),
    ]


if __name__ == "__main__":
    main()
