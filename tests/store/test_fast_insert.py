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


def test_row_payloads_hash_as_the_model_dump_did():
    """prompt_row/response_row build the plain payloads without model_dump: same hashes."""
    from heedful.schema import digest
    texts = ["", "plain", "é \u2028 \"q\" \\ \ud800 \x00\x1f\n\t\x7f 🙂", '{"text":"x"}']
    prompts = [Prompt(text=x) for x in texts]
    prompts += [Prompt(messages=[{"role": "user", "content": "hi"}]), Prompt(text="x", meta={"k": (1, 2)})]
    for p in prompts:
        row = prompt_row(p, None)
        payload = p.model_dump(mode="json", exclude={"id", "created_at", "tags"})
        assert (row["content_hash"], row["payload_hash"], row["messages"]) == (
            p.content_hash(), digest(payload), payload["messages"])
    responses = [Response(prompt_id=f"p-{i}\u2028\"", text=x, model=m, model_revision=m, parent_id=m and f"r{i}\\")
                 for i, x in enumerate(texts) for m in (None, x or "m")]
    responses += [Response(prompt_id="p-1", text="t", params={"t": (0.7,)}),
                  Response(prompt_id="p-1", text="t", meta={"a": 1})]
    for r in responses:
        payload = r.model_dump(mode="json", exclude={"id", "created_at"})
        key = {k: payload[k] for k in ("prompt_id", "text", "model", "model_revision", "parent_id")}
        row = response_row(r, None)
        assert (row["payload_hash"], row["id"]) == (digest(payload), f"r-{digest(key, 24)}")


def test_column_binding_remembers_only_what_is_the_same():
    from heedful.store.writes import _bind_column, _bind_processor
    proc = _bind_processor(t.feedback.c.value.type, sqlite.dialect())
    values = [{"choice": "a"}, {"choice": "a"}, {"choice": "b"}, {1: "x"}, {True: "x"}, {"1": "x"},
              {"a": 1}, {"a": True}, {"a": 1.0}, {}, {}, None, {"a": "x", "b": "y"}, {"a": ["x"]}]
    assert _bind_column(proc, values) == [proc(v) for v in values]


def test_source_and_provenance_dumps_match_model_dump():
    from heedful.schema import Provenance, Source
    from heedful.store.writes import _dumped
    cases = [Source(type="human", name="a"), Source(type="ai", name="j", model="m"),
             Source(type="user", name="a", extra={"x": 1}), Source(type="ai", name="j", template_hash=""),
             Provenance(), Provenance(seed=0), Provenance(extra={"a": None}), Provenance(cost=0.0),
             Provenance(raw_output=""), Provenance(missing_reason="x")]
    for c in cases * 2:  # the second time from the caches
        assert _dumped(c) == c.model_dump(mode="json", exclude_defaults=True)
