"""Crash safety: a writer killed with SIGKILL at random points loses no acknowledged write
and leaves no partial batch, on SQLite and PostgreSQL.

Writers are forked from one process that has already imported heedful
(writer.py --fork), so 20 kills cost seconds, not 20 interpreter start-ups;
each writer opens its own store after the fork and prints `ack i` to its own
file after each commit.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from heedful.store import Store
from heedful.store import tables as t

WRITER = Path(__file__).with_name("writer.py")
KILLS = 20


def _acks(path: Path) -> list[int]:
    text = path.read_text() if path.exists() else ""
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("ack")]


def _run_and_kill(forker: subprocess.Popen, ackfile: Path, tag: str, start: int, delay: float) -> set[int]:
    """Fork a writer, SIGKILL it after `delay` seconds of writing; return the acknowledged batches."""
    forker.stdin.write(f"{tag} {start} {ackfile}\n")
    forker.stdin.flush()
    pid = int(forker.stdout.readline().split()[1])
    deadline = time.monotonic() + 60
    while not _acks(ackfile):  # wait until it is really writing
        assert time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"), "the writer never acknowledged"
        time.sleep(0.005)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    while os.path.exists(f"/proc/{pid}"):  # dead and reaped: nothing more can be acknowledged
        time.sleep(0.002)
    return set(_acks(ackfile))


def _check_whole(store: Store, acked: set[int], tag: str) -> None:
    with store.engine.connect() as conn:
        fb = conn.execute(sa.select(t.feedback.c.id).where(t.feedback.c.id.like(f"{tag}-%"))).scalars().all()
        n_targets = conn.execute(sa.select(sa.func.count()).select_from(t.feedback_targets).where(
            t.feedback_targets.c.feedback_id.like(f"{tag}-%"))).scalar_one()
        n_resp = conn.execute(sa.select(sa.func.count()).select_from(t.responses).where(
            t.responses.c.id.like(f"{tag}-%"))).scalar_one()
    batches = {int(f.split("-")[1]) for f in fb}
    assert acked <= batches, f"acknowledged but lost: {sorted(acked - batches)[:5]}"
    # no partial batch: each stored batch has both feedback rows, all targets and both responses
    assert len(fb) == 2 * len(batches)
    assert n_targets == 3 * len(batches)
    assert n_resp == 2 * len(batches)


def test_sigkill_never_loses_an_acknowledged_write(db_url, tmp_path):
    Store(db_url).close()  # migrate once up front
    forker = subprocess.Popen([sys.executable, str(WRITER), db_url, "--fork"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert forker.stdout.readline().strip() == "ready", forker.stderr.read()
        rng = random.Random(7)
        start = 0
        for k in range(KILLS):
            tag = f"k{k}"
            acked = _run_and_kill(forker, tmp_path / f"{tag}.acks", tag, start, delay=rng.uniform(0.0, 0.25))
            with Store(db_url) as store:
                _check_whole(store, acked, tag)
            start += 1000
    finally:
        forker.stdin.close()
        forker.wait(timeout=30)
