"""Queries: filters over feedback, responses and prompts, streamed page by page.

Streams page on the integer `seq` (keyset paging), so a query over millions
of rows holds one page in memory and never keeps a cursor open between pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from heedful.schema import Feedback, Prompt, Response
from heedful.store import badvalues
from heedful.store import tables as t


@dataclass(frozen=True)
class Filter:
    """What to select; every field is optional and they combine with AND."""

    kind: str | None = None
    source_type: str | None = None
    source_name: str | None = None
    model: str | None = None
    tag: str | None = None
    prompt_id: str | None = None
    response_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def feedback_where(self) -> list:
        f = t.feedback
        conds = _eq(f.c.kind, self.kind) + _eq(f.c.source_type, self.source_type)
        conds += _eq(f.c.source_name, self.source_name) + _eq(f.c.prompt_id, self.prompt_id)
        conds += _time(f.c.created_at, self.since, self.until) + _tagged(f.c.prompt_id, self.tag)
        if self.model is not None or self.response_id is not None:
            ft, r = t.feedback_targets, t.responses
            sub = sa.select(1).select_from(ft.join(r, r.c.id == ft.c.response_id)).where(
                ft.c.feedback_id == f.c.id, *_eq(r.c.model, self.model), *_eq(r.c.id, self.response_id))
            conds.append(sa.exists(sub))
        return conds

    def response_where(self) -> list:
        r = t.responses
        conds = _eq(r.c.model, self.model) + _eq(r.c.prompt_id, self.prompt_id)
        return conds + _time(r.c.created_at, self.since, self.until) + _tagged(r.c.prompt_id, self.tag)

    def prompt_where(self) -> list:
        p = t.prompts
        return _time(p.c.created_at, self.since, self.until) + _tagged(p.c.id, self.tag)


    def storable(self, dialect: str) -> bool:
        """False when a filter string is one the backend can never have stored (a lone surrogate;
        a NUL on PostgreSQL), so the query matches nothing — and asking the driver would raise."""
        for value in (self.kind, self.source_type, self.source_name, self.model, self.tag,
                      self.prompt_id, self.response_id):
            if isinstance(value, str) and badvalues.problem(sa.Column("filter", sa.String()), value, dialect):
                return False
        return True


def _eq(col, value) -> list:
    return [] if value is None else [col == value]


def _time(col, since, until) -> list:
    return ([col >= since] if since else []) + ([col < until] if until else [])


def _tagged(prompt_col, tag) -> list:
    if tag is None:
        return []
    pt = t.prompt_tags
    return [sa.exists(sa.select(1).where(pt.c.prompt_id == prompt_col, pt.c.tag == tag))]


def pages(engine: Engine, table: sa.Table, where: list, page: int) -> Iterator[list]:
    """Rows of `table` matching `where`, in insertion order, `page` at a time."""
    last = 0
    while True:
        q = sa.select(table).where(table.c.seq > last, *where).order_by(table.c.seq).limit(page)
        with engine.connect() as conn:
            rows = list(conn.execute(q).mappings())
        if not rows:
            return
        yield rows
        last = rows[-1]["seq"]
        if len(rows) < page:
            return


def tags_of(engine: Engine, prompt_ids: list[str]) -> dict[str, list[str]]:
    pt = t.prompt_tags
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        q = sa.select(pt.c.prompt_id, pt.c.tag).where(pt.c.prompt_id.in_(prompt_ids)).order_by(pt.c.tag)
        for pid, tag in conn.execute(q):
            out.setdefault(pid, []).append(tag)
    return out


def targets_of(engine: Engine, feedback_ids: list[str]) -> dict[str, list[str]]:
    ft = t.feedback_targets
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        q = (sa.select(ft.c.feedback_id, ft.c.response_id).where(ft.c.feedback_id.in_(feedback_ids))
             .order_by(ft.c.feedback_id, ft.c.position))
        for fid, rid in conn.execute(q):
            out.setdefault(fid, []).append(rid)
    return out


def to_prompt(row, tags: list[str]) -> Prompt:
    return Prompt(id=row["id"], text=row["text"], messages=row["messages"], tags=tags,
                  meta=row["meta"], created_at=row["created_at"])


def to_response(row) -> Response:
    keys = ("id", "prompt_id", "text", "model", "model_revision", "params", "parent_id", "meta", "created_at")
    return Response(**{k: row[k] for k in keys})


def to_feedback(row, targets: list[str]) -> Feedback:
    return Feedback(id=row["id"], kind=row["kind"], value=row["value"], response_ids=targets,
                    source=row["source"], provenance=row["provenance"], meta=row["meta"],
                    created_at=row["created_at"])


def stream_feedback(engine: Engine, flt: Filter, page: int) -> Iterator[Feedback]:
    if not flt.storable(engine.dialect.name):
        return
    for rows in pages(engine, t.feedback, flt.feedback_where(), page):
        targets = targets_of(engine, [r["id"] for r in rows])
        yield from (to_feedback(r, targets.get(r["id"], [])) for r in rows)


def stream_responses(engine: Engine, flt: Filter, page: int) -> Iterator[Response]:
    if not flt.storable(engine.dialect.name):
        return
    for rows in pages(engine, t.responses, flt.response_where(), page):
        yield from (to_response(r) for r in rows)


def stream_prompts(engine: Engine, flt: Filter, page: int) -> Iterator[Prompt]:
    if not flt.storable(engine.dialect.name):
        return
    for rows in pages(engine, t.prompts, flt.prompt_where(), page):
        tags = tags_of(engine, [r["id"] for r in rows])
        yield from (to_prompt(r, tags.get(r["id"], [])) for r in rows)


def stats(engine: Engine) -> dict:
    """Counts of everything, by kind, by source and by model."""
    f, r, ft = t.feedback, t.responses, t.feedback_targets
    with engine.connect() as conn:
        def count(table):
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

        def grouped(*cols, table):
            q = sa.select(*cols, sa.func.count()).select_from(table).group_by(*cols).order_by(*cols)
            return conn.execute(q).all()

        by_model_fb = (sa.select(r.c.model, sa.func.count(sa.distinct(ft.c.feedback_id)))
                       .select_from(ft.join(r, r.c.id == ft.c.response_id)).group_by(r.c.model))
        return {
            "prompts": count(t.prompts), "responses": count(r), "feedback": count(f),
            "datasets": count(t.datasets), "runs": count(t.runs),
            "feedback_by_kind": {k: n for k, n in grouped(f.c.kind, table=f)},
            "feedback_by_source": {f"{a}:{b}": n for a, b, n in grouped(f.c.source_type, f.c.source_name, table=f)},
            "feedback_by_source_type": {k: n for k, n in grouped(f.c.source_type, table=f)},
            "responses_by_model": {str(k): n for k, n in grouped(r.c.model, table=r)},
            "feedback_by_model": {str(k): n for k, n in conn.execute(by_model_fb.order_by(r.c.model))},
            "missing_values": conn.execute(
                sa.select(sa.func.count()).select_from(f).where(f.c.value.is_(None))).scalar_one(),
        }
