"""The forked conversion worker: the same rows as converting in-process, and its errors reach the caller."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from heedful.capture import importer, import_file
from heedful.errors import UnknownName
from heedful.store import Store

from .samples import DATA

TABLES = {"prompts": "id", "prompt_tags": "prompt_id, tag", "responses": "id", "feedback": "id",
          "feedback_targets": "feedback_id, position"}


def _file(path, n: int = 120):
    """Text and chat rows, repeated prompts, an extra column, a dump's corrections and spans."""
    rows = []
    for i in range(n):
        prompt = f"question {i % 40}"
        if i % 3 == 0:
            rows.append({"prompt": [{"role": "user", "content": prompt}],
                         "chosen": [{"role": "assistant", "content": f"a{i}"}],
                         "rejected": [{"role": "assistant", "content": f"b{i}"}]})
        else:
            rows.append({"prompt": prompt, "chosen": f" a{i}", "rejected": f" b{i}", "id": i})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _contents(db) -> dict:
    """Every row of the written tables, without the write time."""
    conn = sqlite3.connect(db)
    out = {}
    for table, order in TABLES.items():
        cur = conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
        cols = [d[0] for d in cur.description]
        out[table] = [{k: v for k, v in zip(cols, row) if k not in ("created_at", "seq")} for row in cur]
    conn.close()
    return out


def _import(tmp_path, name, path, worker: bool, monkeypatch, **kw):
    monkeypatch.setattr(importer, "WORKER", "always" if worker else "never")
    db = tmp_path / f"{name}.db"
    with Store(db) as s:
        report = import_file(s, path, tags=["t"], **kw)
    return db, report


def test_worker_stores_what_in_process_stores(tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    work = importer._work

    def spy(*args):  # the fork runs this: it notes which process converted
        pids.write_text(str(os.getpid()))
        work(*args)

    monkeypatch.setattr(importer, "_work", spy)
    for path in (_file(tmp_path / "prefs.jsonl"), DATA / "heedful_dump.jsonl", DATA / "ultrafeedback.jsonl"):
        a, ra = _import(tmp_path, f"{path.stem}-in", path, False, monkeypatch, chunk=7)
        assert not pids.exists()
        b, rb = _import(tmp_path, f"{path.stem}-worker", path, True, monkeypatch, chunk=7)
        assert int(pids.read_text()) != os.getpid()
        pids.unlink()
        assert (ra.rows, ra.imported, ra.new) == (rb.rows, rb.imported, rb.new)
        assert _contents(a) == _contents(b)
        assert sum(map(len, _contents(b).values())) > 0


@pytest.mark.parametrize("make", [lambda: RuntimeError("boom"), lambda: UnknownName("thing", "x", ["y"])])
def test_an_error_in_the_worker_reaches_the_caller(tmp_path, monkeypatch, make):
    """Any exception, even one whose __init__ does not take its args (UnknownName)."""
    error = make()
    path = _file(tmp_path / "prefs.jsonl")
    fmt = importer.get_format("trl-preference")
    read = type(fmt).read

    def failing(self, row, ctx):
        if row.get("id") == 100:
            raise error
        return read(self, row, ctx)

    monkeypatch.setattr(type(fmt), "read", failing)
    with pytest.raises(type(error)) as got:
        _import(tmp_path, "x", path, True, monkeypatch, chunk=7)
    assert str(got.value).endswith(str(make()))
    notes = getattr(got.value, "__notes__", [])
    assert isinstance(error, UnknownName) or any(
        "in failing" in n and "raised in the import worker" in n for n in notes)
    assert all(not rows for rows in _contents(tmp_path / "x.db").values())


def test_the_worker_is_stopped_when_the_import_fails(tmp_path, monkeypatch):
    import multiprocessing
    path = _file(tmp_path / "prefs.jsonl", 400)
    lines = path.read_text().splitlines()
    lines[3] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception, match="line 4: malformed JSON"):
        _import(tmp_path, "x", path, True, monkeypatch, chunk=7)
    assert not multiprocessing.active_children()


def test_auto_takes_the_worker_for_big_text_files_with_a_core_to_spare(tmp_path, monkeypatch):
    from heedful.capture.files import open_rows
    monkeypatch.setattr(importer, "WORKER", "auto")
    monkeypatch.setattr(importer, "WORKER_MIN_BYTES", 1000)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    big, small = _file(tmp_path / "big.jsonl", 100), _file(tmp_path / "small.jsonl", 2)
    for path, load, want in ((big, 0.9, True), (big, 1.9, False), (small, 0.0, False)):
        monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
        rows = open_rows(path)
        rows.peek()
        assert importer._use_worker(rows) is want
    monkeypatch.setattr(importer, "WORKER", "always")
    assert importer._use_worker(rows)
