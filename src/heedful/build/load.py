"""Bulk reads for building: feedback as light rows, texts fetched 1,000 ids per query.

`Store.feedback()` validates every row into a pydantic `Feedback`, which is the
right door for apps but costs tens of microseconds a row; a build reads
millions of rows it only needs a few fields of. This module pages on `seq`
like `store.reads`, one query a page (feedback LEFT JOIN its targets, in
(seq, position) order — no per-row queries, no IN lists), and returns plain
tuples. Responses and prompts are then looked up in bulk for the ids that
survive aggregation only.

Speed: the columns are selected *without* SQLAlchemy's per-value result
processors (JSON is cast to text and decoded here with `json.loads`; text is
`type_coerce`d to plain strings). Those processors cost more than the query
itself at a million rows. On SQLite they are the identity beyond
`json.loads`; on PostgreSQL the store's NUL escaping is undone here with the
store's own type (`tables.Text` / `tables.Json`), so the values are exactly
what the store's types would return (a test compares them on both backends).
The id lookups run their fixed SQL on the driver (`exec_driver_sql`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import sqlalchemy as sa

from heedful.store import tables as t
from heedful.store.reads import Filter

PAGE = 50_000
IDS_PER_QUERY = 1_000


class FbRow(NamedTuple):
    """What a rule needs of one feedback row."""

    id: str
    kind: str
    value: dict | None  # read-only: rows with equal JSON may share one decoded object
    prompt_id: str
    source: str  # "type:name"
    targets: tuple[str, ...]
    seq: int


def _raw(col) -> sa.ColumnElement:
    """The column as the driver returns it, with no result processor (JSON as its text)."""
    if isinstance(col.type, t.SafeJSON):
        return sa.cast(col, sa.Text)
    return sa.type_coerce(col, sa.String)


def _decoders(dialect, then: Callable[[object], object] | None = None
              ) -> tuple[Callable[[str], str], Callable[[str | None], object]]:
    """(text, json) decoders equal to the store's own result processing on this dialect; `then`,
    if given, is applied to each decoded JSON value (once per distinct text, see `_memo_loads`)."""
    if dialect.name != "postgresql":
        text, decode = (lambda s: s), json.loads
    else:
        text_proc = t.SafeText().process_result_value
        json_proc = t.SafeJSON().process_result_value
        text, decode = (lambda s: text_proc(s, dialect)), (lambda s: json_proc(json.loads(s), dialect))
    return text, _memo_loads(decode if then is None else (lambda s: then(decode(s))))


def _memo_loads(decode: Callable[[str], object] = json.loads,
                limit: int = 100_000, short: int = 200) -> Callable[[str | None], object]:
    """`json.loads` that decodes each distinct short text once (up to `limit` texts) and returns the same
    object for repeats: a million preference rows hold a handful of distinct values, and decoding
    was the largest Python cost of the read. The values are shared, so rules must not mutate them."""
    memo: dict[str, object] = {}

    def loads(s: str | None):
        if s is None:
            return None
        v = memo.get(s)
        if v is None:
            v = decode(s)
            if len(memo) < limit and len(s) <= short:
                memo[s] = v
        return v
    return loads


def feedback_rows(store, kinds: Iterable[str], flt: Filter, page: int = PAGE) -> Iterator[FbRow]:
    """Feedback of the given kinds matching `flt`, in insertion order; rows without a value skipped."""
    f, ft = t.feedback, t.feedback_targets
    where = [f.c.kind.in_(list(kinds)), f.c.value.isnot(None), *flt.feedback_where()]
    _, loads = _decoders(store.engine.dialect)
    last = 0
    while True:
        ids = (sa.select(f.c.seq).where(f.c.seq > last, *where).order_by(f.c.seq).limit(page)
               .subquery())
        q = (sa.select(f.c.seq, _raw(f.c.id), _raw(f.c.kind), _raw(f.c.value), _raw(f.c.prompt_id),
                       _raw(f.c.source_type), _raw(f.c.source_name), _raw(ft.c.response_id))
             .select_from(f.join(ids, ids.c.seq == f.c.seq).outerjoin(ft, ft.c.feedback_id == f.c.id))
             .order_by(f.c.seq, ft.c.position))
        with store.engine.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return
        yield from _group(rows, loads)
        last = rows[-1][0]
        if len({r[0] for r in rows}) < page:
            return


def _group(rows: list, loads) -> Iterator[FbRow]:
    """Joined (feedback, target) rows → one FbRow per feedback with its targets in order."""
    n, i = len(rows), 0
    names: dict = {}  # one str per kind and per source, not one per row
    while i < n:
        seq, fid, kind, value, pid, st, sn, rid = rows[i]
        j = i + 1
        while j < n and rows[j][0] == seq:
            j += 1
        targets = (rid,) if j == i + 1 else tuple(r[7] for r in rows[i:j])
        source = names.get((st, sn)) or names.setdefault((st, sn), f"{st}:{sn}")
        kind = names.setdefault(kind, kind)
        yield FbRow(fid, kind, loads(value), pid, source, () if rid is None else targets, seq)
        i = j


def pair_pages(store, kinds: Iterable[str], flt: Filter, page: int = PAGE,
               parse: Callable[[dict], object] | None = None) -> Iterator[list[tuple[str, str, object, str, str]]]:
    """(id, prompt_id, value, first target, second target) of two-target feedback (preference) of the
    given kinds matching `flt`, in insertion order, rows without a value skipped; a list a page.

    What `feedback_rows` gives for such rows, as plain tuples and without the source: the targets
    come from two joins (position 0 and 1) instead of one joined row per target regrouped in Python,
    which was about half the read's time. Unweighted aggregation needs no source, so none is read.
    With `parse`, the value is `parse(value)`, computed once per distinct value text (shared)."""
    _, loads = _decoders(store.engine.dialect, parse)
    q = pair_query(kinds, flt, page)
    seq = 0
    while True:
        with store.engine.connect() as conn:
            rows = _tuples(conn.execute(q, {"last": seq}))
        if rows:
            seq = rows[-1][0]
            yield [(fid, pid, loads(value), a, b) for _, fid, pid, value, a, b in rows]
        if len(rows) < page:
            return


def pair_query(kinds: Iterable[str], flt: Filter, page: int) -> sa.Select:
    """`pair_pages`' query, one page after the bound `last` seq.

    `position BETWEEN n AND n`, not `= n`: with equality on the whole primary key SQLite's planner
    takes the key's index and then reads the table row for `response_id`, per target; as a range it
    picks the covering index of migration 0003 and never touches the table (~0.5 s of 1M rows).
    SQLAlchemy renders no `INDEXED BY` hint for SQLite; a test checks the plan."""
    f, ft = t.feedback, t.feedback_targets
    t0, t1 = ft.alias("t0"), ft.alias("t1")
    where = [f.c.kind.in_(list(kinds)), f.c.value.isnot(None), *flt.feedback_where()]
    return (sa.select(f.c.seq, _raw(f.c.id), _raw(f.c.prompt_id), _raw(f.c.value),
                      _raw(t0.c.response_id), _raw(t1.c.response_id))
            .select_from(f.join(t0, sa.and_(t0.c.feedback_id == f.c.id, t0.c.position.between(0, 0)))
                         .join(t1, sa.and_(t1.c.feedback_id == f.c.id, t1.c.position.between(1, 1))))
            .where(f.c.seq > sa.bindparam("last"), *where).order_by(f.c.seq).limit(page))


def _tuples(result) -> list[tuple]:
    """All rows of a result as the driver's tuples: SQLAlchemy bound the parameters, but wrapping
    a million rows in `Row` objects cost as much as the query (the columns are `_raw`, so there
    is no result processing to skip)."""
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


class Resp(NamedTuple):
    id: str
    prompt_id: str
    text: str
    parent_id: str | None
    created_seq: int


def _chunks(ids: Iterable[str], ordered: bool = True) -> Iterator[list[str]]:
    """Distinct ids, `IDS_PER_QUERY` at a time: sorted, or (`ordered=False`) in first-seen order, which
    saves the sort where only lookups by id follow (each backend sorts an IN list itself)."""
    ids = sorted(set(ids)) if ordered else list(dict.fromkeys(ids))
    for i in range(0, len(ids), IDS_PER_QUERY):
        yield ids[i:i + IDS_PER_QUERY]


_RESP = "SELECT id, prompt_id, text, parent_id, seq FROM responses WHERE {col} IN ({marks}){tail}"


def _by_ids(conn, sql: str, chunk: list[str], **fmt) -> list[tuple]:
    """Run `sql` (with `{marks}` for the ids) on the driver: at 1,000 ids a query, compiling an
    expanding IN through SQLAlchemy and wrapping its rows cost twice the query itself."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return _tuples(conn.exec_driver_sql(sql.format(marks=", ".join([mark] * len(chunk)), **fmt), tuple(chunk)))


def texts(store, ids: Iterable[str]) -> dict[str, str]:
    """Response texts by id (what `responses` gives as `.text`), without the other columns."""
    text, _ = _decoders(store.engine.dialect)
    sql = "SELECT id, text FROM responses WHERE id IN ({marks})"
    out: dict[str, str] = {}
    with store.engine.connect() as conn:
        for chunk in _chunks(ids, ordered=False):
            rows = _by_ids(conn, sql, chunk)
            out.update(rows if store.engine.dialect.name != "postgresql" else ((i, text(x)) for i, x in rows))
    return out


def responses(store, ids: Iterable[str]) -> dict[str, Resp]:
    """Responses by id, one query per 1,000 ids."""
    text, _ = _decoders(store.engine.dialect)
    out: dict[str, Resp] = {}
    with store.engine.connect() as conn:
        for chunk in _chunks(ids):
            for rid, pid, txt, parent, seq in _by_ids(conn, _RESP, chunk, col="id", tail=""):
                out[rid] = Resp(rid, pid, text(txt), parent, seq)
    return out


def children(store, parent_ids: Iterable[str]) -> dict[str, list[Resp]]:
    """Responses whose parent is one of `parent_ids` (refinements and corrections), oldest first."""
    text, _ = _decoders(store.engine.dialect)
    out: dict[str, list[Resp]] = {}
    with store.engine.connect() as conn:
        for chunk in _chunks(parent_ids):
            for rid, pid, txt, parent, seq in _by_ids(conn, _RESP, chunk, col="parent_id", tail=" ORDER BY seq"):
                out.setdefault(parent, []).append(Resp(rid, pid, text(txt), parent, seq))
    return out


def prompts(store, ids: Iterable[str]) -> dict[str, str | list[dict]]:
    """Prompt content by id: the text, or the chat as role/content dicts."""
    text, loads = _decoders(store.engine.dialect)
    out: dict[str, str | list[dict]] = {}
    sql = "SELECT id, text, CAST(messages AS TEXT) FROM prompts WHERE id IN ({marks})"
    with store.engine.connect() as conn:
        for chunk in _chunks(ids, ordered=False):
            for pid, txt, messages in _by_ids(conn, sql, chunk):
                out[pid] = text(txt) if txt is not None else [
                    {"role": m["role"], "content": m["content"]} for m in loads(messages)]
    return out
