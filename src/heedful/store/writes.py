"""Turning validated nouns into rows, and writing them idempotently in bulk.

A write under an id that already exists is accepted when its payload hash
matches (a retry) and refused with `Conflict` when it differs (never an
overwrite). Rows go in with `INSERT … ON CONFLICT DO NOTHING` first and only
the rows that did not go in are compared with what is stored, so a batch of
new rows costs one statement per table and no lookups. The check after the
insert also catches a racing writer on PostgreSQL (its ON CONFLICT waits for
the other transaction, so the stored hash it then reads is committed).

On SQLite the INSERTs skip SQLAlchemy's per-row parameter handling and go
straight to the DBAPI cursor, binding values with the same type processors
SQLAlchemy would use, so the stored bytes are identical (profiled: that
handling was ~30% of an import). PostgreSQL stays on SQLAlchemy Core
(insertmanyvalues with RETURNING tells which rows were new).

Values a database refuses (lone surrogates, NUL or over-long text in a
PostgreSQL VARCHAR) come back as `InvalidInput` naming the row and field,
found by `badvalues.locate` only after the database said no.
"""

from __future__ import annotations

import gc
import json
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from heedful.errors import Conflict, InvalidInput, NotFound
from heedful.schema import Feedback, Prompt, Provenance, Response, Source, digest, digest_json, json_string
from heedful.store import badvalues
from heedful.store import tables as t

CHUNK = 500  # ids per IN (...) query: well under every backend's parameter limit


@dataclass(slots=True)
class Prepared:
    """A validated noun with its row already built (importers build it to derive the id).

    `Batch.add` takes these as they are: no second validation, no second hashing.
    The row's `created_at` (and a feedback row's `prompt_id`) are filled at write time."""

    item: Any
    row: dict


def prompt_row(p: Prompt, now: datetime | None) -> dict:
    if p.messages is None and not p.meta:  # the usual prompt: both JSON texts around one encoding of it
        text, messages = json_string(p.text), None
        h = digest_json(f'{{"content":{text}}}')
        payload_hash = digest_json(f'{{"messages":null,"meta":{{}},"text":{text}}}')
    else:
        payload = p.model_dump(mode="json", exclude={"id", "created_at", "tags"})
        h, payload_hash, messages = p.content_hash(), digest(payload), payload["messages"]
    return {
        "id": p.id or f"p-{h[:24]}", "content_hash": h, "text": p.text, "messages": messages, "meta": p.meta,
        "payload_hash": payload_hash, "created_at": p.created_at or now,
    }


def response_row(r: Response, now: datetime | None) -> dict:
    key_hash, payload_hash = _response_hashes(r)
    return {
        "id": r.id or f"r-{key_hash}", "prompt_id": r.prompt_id, "text": r.text,
        "model": r.model, "model_revision": r.model_revision, "params": r.params,
        "parent_id": r.parent_id, "meta": r.meta, "payload_hash": payload_hash,
        "created_at": r.created_at or now,
    }


def _response_hashes(r: Response) -> tuple[str, str]:
    """The digests of the response's identity (24 chars) and of its payload.

    Without params and meta (the usual response) both canonical JSON texts are built here
    around one encoding of the text, as `digest` would write them (keys in sorted order;
    tests/store/test_fast_insert.py holds the two equal)."""
    if r.params or r.meta:
        payload = r.model_dump(mode="json", exclude={"id", "created_at"})
        key = {k: payload[k] for k in ("prompt_id", "text", "model", "model_revision", "parent_id")}
        return digest(key, 24), digest(payload)
    head = f'"model":{_json_or_null(r.model)},"model_revision":{_json_or_null(r.model_revision)},'
    tail = (f'"parent_id":{_json_or_null(r.parent_id)},"prompt_id":{json_string(r.prompt_id)},'
            f'"text":{json_string(r.text)}}}')
    return digest_json("{" + head + tail, 24), digest_json('{"meta":{},' + head + '"params":{},' + tail)


def _json_or_null(s: str | None) -> str:
    return "null" if s is None else json_string(s)


def feedback_row(f: Feedback, prompt_id: str | None, now: datetime | None) -> dict:
    source, prov = _dumped(f.source), _dumped(f.provenance)
    value = f.value_dict()
    payload = {"kind": f.kind, "value": value, "targets": f.response_ids,
               "source": source, "provenance": prov, "meta": f.meta}
    return {
        "id": f.id or f"f-{uuid.uuid4().hex}", "kind": f.kind, "value": value,
        "prompt_id": prompt_id, "source_type": f.source.type, "source_name": f.source.name,
        "source": source, "provenance": prov, "meta": f.meta,
        "payload_hash": digest(payload), "created_at": f.created_at or now,
    }


_DUMPED: dict[int, tuple[Any, dict]] = {}
_BARE_SOURCES: dict[tuple[str, str], dict] = {}
_EMPTY_DUMP: dict = {}


def _dumped(model) -> dict:
    """A source's or provenance's stored dict; an import shares one Source object across
    rows, so its dump is remembered by identity (a few entries; the dicts are never mutated).
    The usual ones (a bare Source, an empty Provenance) are written out without model_dump."""
    hit = _DUMPED.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    t = type(model)
    if t is Source and model.model is model.version is model.template_hash is None and not model.extra:
        dump = _BARE_SOURCES.get((model.type, model.name))
        if dump is None:  # one dict per source: rows that share it are serialised once
            if len(_BARE_SOURCES) >= 256:
                _BARE_SOURCES.clear()
            dump = _BARE_SOURCES[(model.type, model.name)] = {"type": model.type, "name": model.name}
        return dump
    if t is Provenance and (model.raw_output is model.seed is model.cost is model.latency_ms
                            is model.missing_reason is None) and not model.extra:
        return _EMPTY_DUMP
    dump = model.model_dump(mode="json", exclude_defaults=True)
    if len(_DUMPED) >= 8:
        _DUMPED.clear()
    _DUMPED[id(model)] = (model, dump)
    return dump


@contextmanager
def paused_gc():
    """No cyclic garbage collection while a bulk write runs (re-entrant, thread-safe).

    Rows are acyclic, so reference counting frees them; the collector only re-scans
    the objects of the chunk in flight (measured: ~18% of an import's CPU)."""
    global _PAUSES, _WAS_ENABLED
    with _GC_LOCK:
        if _PAUSES == 0:
            _WAS_ENABLED = gc.isenabled()
            gc.disable()
        _PAUSES += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _PAUSES -= 1
            if _PAUSES == 0 and _WAS_ENABLED:
                gc.enable()


_GC_LOCK = threading.Lock()
_PAUSES = 0
_WAS_ENABLED = True


def _conflict(table: sa.Table, row_id: str) -> Conflict:
    noun = table.name.rstrip("s") if table.name != "feedback" else "feedback"
    return Conflict(f"{noun} {row_id!r} already exists with a different payload; "
                    "a write under an existing id must repeat it exactly (use a new id for new data)")


def _unique(table: sa.Table, rows: list[dict]) -> list[dict]:
    """One row per id (a file may repeat a prompt); two payloads under one id are a Conflict."""
    by_id: dict[str, dict] = {}
    for r in rows:
        seen = by_id.setdefault(r["id"], r)
        if seen is not r and seen["payload_hash"] != r["payload_hash"]:
            raise _conflict(table, r["id"])
    return list(by_id.values()) if len(by_id) < len(rows) else rows


def insert_idempotent(conn: Connection, table: sa.Table, rows: list[dict]) -> int:
    """Insert rows whose id is new; skip exact repeats; raise Conflict on a changed payload.

    Returns how many rows were new."""
    if not rows:
        return 0
    rows = _unique(table, rows)
    with refused_values(conn, table, lambda: rows):
        if conn.dialect.name == "sqlite":
            n = _sqlite_insert(conn, table, rows)
            rest = [] if n == len(rows) else rows
        else:
            new = set(conn.execute(_pg_insert(table).returning(table.c.id), rows).scalars())
            n, rest = len(new), [r for r in rows if r["id"] not in new]
        if rest:
            stored = hashes(conn, table, [r["id"] for r in rest])
            for r in rest:
                if stored.get(r["id"]) != r["payload_hash"]:
                    raise _conflict(table, r["id"])
    return n


def insert_links(conn: Connection, table: sa.Table, rows: list[dict]) -> None:
    """Rows of a pure link table (tags, targets, lineage): duplicates are no-ops."""
    if not rows:
        return
    with refused_values(conn, table, lambda: rows):
        if conn.dialect.name == "sqlite":
            _sqlite_insert(conn, table, rows)
        else:
            conn.execute(_pg_insert(table), rows)


@contextmanager
def refused_values(conn: Connection, table: sa.Table, rows: Callable[[], Sequence[dict]]):
    """Turn the database refusing a value into InvalidInput naming the row and the field."""
    try:
        yield
    except (UnicodeEncodeError, sa.exc.DataError, sa.exc.StatementError) as e:
        orig = getattr(e, "orig", e)
        if isinstance(e, sa.exc.StatementError) and not isinstance(e, sa.exc.DataError) \
                and not isinstance(orig, UnicodeEncodeError):
            raise
        raise badvalues.locate(table, rows(), conn.dialect.name, orig) from None


def _pg_insert(table: sa.Table):
    return postgresql.insert(table).on_conflict_do_nothing()


def _sqlite_insert(conn: Connection, table: sa.Table, rows: list[dict]) -> int:
    """executemany on the DBAPI cursor; returns how many rows went in."""
    sql, keys, procs = _sqlite_plan(conn.dialect, table, tuple(rows[0]))
    columns = [[r[k] for r in rows] for k in keys]
    for i, proc in procs:
        columns[i] = _bind_column(proc, columns[i])
    return _raw(conn, sql, list(zip(*columns)), many=True)[1]


_EMPTY = object()


def _bind_column(proc: Callable, values: list) -> list:
    """Convert one column; rows of a call share `now`, empty dicts, often one source dict and
    few distinct small values ({"choice": "a"}), so each of those is converted once."""
    memo: dict = {}
    out = []
    for v in values:
        t = type(v)
        if t is dict or t is datetime:
            key = v if t is datetime else (id(v) if v else _EMPTY)  # `values` keeps every v alive
            if t is dict and len(v) == 1:
                (k, x), = v.items()
                if type(k) is str and type(x) is str:  # a str equals only a str: the key names the dict
                    key = (k, x)
            if key not in memo:
                memo[key] = proc(v)
            out.append(memo[key])
        else:
            out.append(proc(v))
    return out


@lru_cache(maxsize=64)
def _sqlite_plan(dialect, table: sa.Table, keys: tuple[str, ...]):
    """The INSERT SQLAlchemy would emit for these columns, and each column's bind processor."""
    compiled = sqlite.insert(table).on_conflict_do_nothing().compile(dialect=dialect, column_keys=list(keys))
    order = tuple(compiled.positiontup)
    procs = [(i, _bind_processor(table.c[k].type, dialect)) for i, k in enumerate(order)]
    return str(compiled), order, [(i, p) for i, p in procs if p is not None]


def _bind_processor(type_: sa.types.TypeEngine, dialect):
    """The column's bind processor; SafeText and SafeJSON change nothing on SQLite, so their
    wrapper (a Python call per value) is skipped and the wrapped type's processor used."""
    if dialect.name == "sqlite" and isinstance(type_, (t.SafeText, t.SafeJSON)):
        return type_.load_dialect_impl(dialect).bind_processor(dialect)
    return type_.dialect_impl(dialect).bind_processor(dialect)


def hashes(conn: Connection, table: sa.Table, ids: Sequence[str]) -> dict[str, str]:
    """id -> payload_hash of the rows that exist."""
    if conn.dialect.name == "sqlite":  # one statement for any number of ids: a JSON array
        sql = f'SELECT id, payload_hash FROM "{table.name}" WHERE id IN (SELECT value FROM json_each(?))'
        return dict(_raw(conn, sql, (json.dumps(list(ids)),))[0])
    out: dict[str, str] = {}
    for i in range(0, len(ids), CHUNK):
        q = sa.select(table.c.id, table.c.payload_hash).where(table.c.id.in_(ids[i:i + CHUNK]))
        out.update(conn.execute(q).all())
    return out


def _raw(conn: Connection, sql: str, params, many: bool = False) -> tuple[list, int]:
    """Run on the DBAPI cursor of this connection's open transaction: (rows, rowcount).

    Database errors come out as SQLAlchemy's, like everywhere else."""
    dbapi = conn.connection.dbapi_connection
    cur = dbapi.cursor()
    try:
        (cur.executemany if many else cur.execute)(sql, params)
        return cur.fetchall(), cur.rowcount
    except conn.dialect.loaded_dbapi.Error as e:
        raise sa.exc.DBAPIError.instance(sql, None, e, conn.dialect.loaded_dbapi.Error,
                                         dialect=conn.dialect) from e
    finally:
        cur.close()


class TargetIndex:
    """What feedback validation needs to know about the responses it points at.

    Text lengths are counted in Python from the text itself (SQL `length()`
    counts the escaped form PostgreSQL stores NUL in), and only for spans."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.known: dict[str, str] = {}  # response id -> prompt id
        self.lengths: dict[str, int] = {}  # response id -> characters, where known

    def remember(self, rows: list[dict]) -> None:
        for r in rows:
            self.known[r["id"]] = r["prompt_id"]
            self.lengths[r["id"]] = len(r["text"])

    def load(self, ids: set[str]) -> None:
        missing = [i for i in ids if i not in self.known]
        r = t.responses
        for i in range(0, len(missing), CHUNK):
            part = missing[i:i + CHUNK]
            with refused_values(self.conn, r, lambda: [{"id": x} for x in part]):
                self.known.update(self.conn.execute(sa.select(r.c.id, r.c.prompt_id).where(r.c.id.in_(part))).all())

    def length(self, response_id: str) -> int:
        if response_id not in self.lengths:
            text = self.conn.execute(sa.select(t.responses.c.text).where(t.responses.c.id == response_id)).scalar_one()
            self.lengths[response_id] = len(text)
        return self.lengths[response_id]

    def prompt_of(self, f: Feedback, where: str | None = None) -> str:
        pids = set()
        for rid in f.response_ids:
            if rid not in self.known:
                raise NotFound(f"{where + ': ' if where else ''}response {rid!r} does not exist; "
                               "log the response before feedback on it")
            pids.add(self.known[rid])
        if len(pids) > 1:
            raise InvalidInput("the responses of one feedback must answer the same prompt", where=where)
        if f.kind == "span" and f.value is not None:
            n = self.length(f.response_ids[0])
            for s in f.value.spans:
                if s.end > n:
                    raise InvalidInput(f"span [{s.start}, {s.end}) lies outside the response "
                                       f"({n} characters)", where=where, field="value.spans")
        return pids.pop()


def target_rows(feedback_id: str, response_ids: list[str]) -> list[dict]:
    return [{"feedback_id": feedback_id, "position": i, "response_id": rid}
            for i, rid in enumerate(response_ids)]


Clock = Callable[[], datetime]
