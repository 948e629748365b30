"""The SQLite fast insert path must store exactly what SQLAlchemy Core would."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from heedful.schema import Feedback, Prompt, Response
from heedful.store import Store
from heedful.store import tables as t
from heedful.store.writes import _sqlite_insert, feedback_row, prompt_row, response_row


def _rows():
    now = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    p = prompt_row(Prompt(text="é \u2028 \"q\"", meta={"k": [1, 2.5, None], "d": {}}), now)
    r = response_row(Response(prompt_id=p["id"], text="a\x00b", params={"t": 0.7}), now)
    f = feedback_row(Feedback(id="f-1", kind="rating", value={"score": 4, "scale": [1, 5]}, response_ids=[r["id"]],
                              source={"type": "human", "name": "ann"}), p["id"], now)
    return {t.prompts: [p], t.responses: [r], t.feedback: [f]}


def _dump(url: str) -> dict:
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        out = {name: conn.exec_driver_sql(f"SELECT * FROM {name}").fetchall()
               for name in ("prompts", "responses", "feedback")}
    eng.dispose()
    return out


def test_fast_path_stores_the_same_bytes_as_core(tmp_path):
    urls = []
    for name, fast in (("fast", True), ("core", False)):
        url = f"sqlite:///{tmp_path / name}.db"
        store = Store(url)
        with store.batch() as b:
            for table, rows in _rows().items():
                if fast:
                    assert _sqlite_insert(b.conn, table, rows) == len(rows)
                else:
                    b.conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
        store.close()
        urls.append(url)
    fast, core = map(_dump, urls)
    assert fast == core and all(fast.values())


def test_fast_path_counts_only_rows_that_went_in(tmp_path):
    store = Store(tmp_path / "x.db")
    rows = _rows()
    with store.batch() as b:
        assert _sqlite_insert(b.conn, t.prompts, rows[t.prompts]) == 1
        assert _sqlite_insert(b.conn, t.prompts, rows[t.prompts]) == 0  # ON CONFLICT DO NOTHING
    store.close()


def test_fast_path_raises_sqlalchemy_integrity_error(tmp_path):
    store = Store(tmp_path / "x.db")
    rows = _rows()
    with store.batch() as b:
        try:
            _sqlite_insert(b.conn, t.responses, rows[t.responses])  # its prompt is not stored
        except sa.exc.IntegrityError as e:
            assert "FOREIGN KEY" in str(e.orig)
        else:
            raise AssertionError("expected an IntegrityError")
    store.close()
