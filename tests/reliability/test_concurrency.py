"""Concurrency: 50 writers at once — threads and processes, SDK and HTTP — no errors, nothing lost or doubled.

Writers come in pairs, one through the SDK and one through a live server
process, that write the same batches under the same ids; every writer also
retries each batch. So idempotency is exercised under contention and across
the two channels, not just in sequence: whichever channel commits a batch
first, the other's write and both retries must store nothing new.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from heedful.store import Store
from heedful.store import tables as t
from tests.reliability.writer import main as write_batches

WRITER = Path(__file__).with_name("writer.py")
THREADS, PROCESSES, BATCHES = 30, 20, 10  # each half SDK, half HTTP


def test_fifty_concurrent_writers(db_url, servers):
    _, base = servers.start()
    errors: list[BaseException] = []
    channels = [[db_url], [base, servers.token]]  # SDK writer args, HTTP writer args

    def thread_writer(pair: int, channel: list[str]) -> None:
        try:
            write_batches(channel[0], f"t{pair}", 0, BATCHES, True, *channel[1:])
        except BaseException as e:  # noqa: BLE001 - every failure is a test failure
            errors.append(e)

    def proc_args(i: int) -> list[str]:
        channel = channels[i % 2]
        return [sys.executable, str(WRITER), channel[0], f"p{i // 2}", "0", str(BATCHES), "--retry",
                *(["--http", channel[1]] if len(channel) > 1 else [])]

    procs = [subprocess.Popen(proc_args(i), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(PROCESSES)]
    threads = [threading.Thread(target=thread_writer, args=(i // 2, channels[i % 2])) for i in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    failures = [p.stderr.read() for p in procs if p.wait(timeout=300) != 0]
    assert not errors, errors[:3]
    assert not failures, failures[0][-2000:]

    pairs = THREADS // 2 + PROCESSES // 2
    with Store(db_url) as store, store.engine.connect() as conn:
        def count(table):
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        assert count(t.feedback) == pairs * BATCHES * 2
        assert count(t.responses) == pairs * BATCHES * 2
        assert count(t.prompts) == pairs * BATCHES
        assert count(t.feedback_targets) == pairs * BATCHES * 3
        assert count(t.prompt_tags) == pairs * BATCHES
