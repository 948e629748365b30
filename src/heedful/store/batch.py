"""One write transaction that takes prompts, responses and feedback in any amount.

Every write path ends here: the SDK's single writes are batches of one, the
importers feed chunks of a file into one batch so a bad row leaves nothing
written. Foreign references are checked before inserting so an error names
the missing id instead of surfacing as a bare constraint failure; references
to rows added earlier in the same batch are known without asking the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from heedful.errors import Conflict, NotFound
from heedful.schema import Feedback, Prompt, Response, parse
from heedful.store import tables as t
from heedful.store.writes import (
    CHUNK, Clock, Prepared, TargetIndex, feedback_row, insert_idempotent, insert_links, paused_gc, prompt_row,
    refused_values, response_row, target_rows,
)


@dataclass
class Written:
    """Ids of what a batch call stored, in input order, and how many rows were new."""

    prompt_ids: list[str] = field(default_factory=list)
    response_ids: list[str] = field(default_factory=list)
    feedback_ids: list[str] = field(default_factory=list)
    new: dict[str, int] = field(default_factory=lambda: {"prompts": 0, "responses": 0, "feedback": 0})

    def merge(self, other: Written) -> None:
        self.prompt_ids += other.prompt_ids
        self.response_ids += other.response_ids
        self.feedback_ids += other.feedback_ids
        for k, v in other.new.items():
            self.new[k] += v


def _prepared(model: type, items: Iterable, where: str | None, build) -> list[Prepared]:
    """Validate (dicts, typed nouns) and build each row once; `Prepared` items pass as they are."""
    out = []
    for x in items:
        if type(x) is not Prepared:
            x = parse(model, x, where)
            x = Prepared(x, build(x))
        out.append(x)
    return out


class Batch:
    """Writes inside one open transaction; `Store.batch()` makes one."""

    def __init__(self, conn: Connection, clock: Clock):
        self.conn = conn
        self.clock = clock
        self.targets = TargetIndex(conn)
        self.known_prompts: set[str] = set()
        self.total = Written()

    def add(self, prompts: Iterable = (), responses: Iterable = (), feedback: Iterable = (),
            where: str | None = None) -> Written:
        """Validate and store; dicts are accepted and validated like the typed nouns."""
        now = self.clock()
        out = Written()
        with paused_gc():
            self._prompts(_prepared(Prompt, prompts, where, lambda p: prompt_row(p, None)), now, out)
            self._responses(_prepared(Response, responses, where, lambda r: response_row(r, None)), now, out)
            self._feedback(_prepared(Feedback, feedback, where, lambda f: None), now, out, where)
        self.total.merge(out)
        return out

    def _prompts(self, items: list[Prepared], now, out: Written) -> None:
        rows = [_stamped(x, now) for x in items]
        out.new["prompts"] += insert_idempotent(self.conn, t.prompts, rows)
        insert_links(self.conn, t.prompt_tags, [
            {"prompt_id": r["id"], "tag": tag} for r, x in zip(rows, items) for tag in dict.fromkeys(x.item.tags)])
        out.prompt_ids += [r["id"] for r in rows]
        self.known_prompts.update(out.prompt_ids)

    def _responses(self, items: list[Prepared], now, out: Written) -> None:
        rows = [_stamped(x, now) for x in items]
        self._require(t.prompts, {r["prompt_id"] for r in rows} - self.known_prompts, "prompt")
        self.known_prompts.update(r["prompt_id"] for r in rows)
        parents = {r["parent_id"] for r in rows if r["parent_id"]} - {r["id"] for r in rows}
        self._require(t.responses, parents - set(self.targets.known), "parent response")
        out.new["responses"] += insert_idempotent(self.conn, t.responses, rows)
        self.targets.remember(rows)
        out.response_ids += [r["id"] for r in rows]

    def _feedback(self, items: list[Prepared], now, out: Written, where: str | None) -> None:
        self.targets.load({rid for x in items for rid in x.item.response_ids})
        rows, links = [], []
        for x in items:
            f = x.item
            pid = self.targets.prompt_of(f, where)
            if f.kind == "correction" and f.value is not None:
                f = self._store_correction(f, pid, now, out)
                row = feedback_row(f, pid, now)
            else:
                row = x.row or feedback_row(f, pid, now)
                row["prompt_id"] = pid
                row["created_at"] = f.created_at or now
            rows.append(row)
            links += target_rows(row["id"], f.response_ids)
        out.new["feedback"] += insert_idempotent(self.conn, t.feedback, rows)
        # Targets are part of the payload hash: a feedback id that is already stored has these links.
        insert_links(self.conn, t.feedback_targets, links)
        out.feedback_ids += [r["id"] for r in rows]

    def _store_correction(self, f: Feedback, prompt_id: str, now, out: Written) -> Feedback:
        """A correction is also a response: its parent is the response it revises.

        The response holds only the text and its parent, so the same correction of the
        same response from two sources is one response (its id comes from the content).
        A `corrected_id` that is already stored (a dump brings it as a response row) is
        accepted when it holds this text as a revision of this response."""
        resp = Response(id=f.value.corrected_id, prompt_id=prompt_id, text=f.value.text,
                        parent_id=f.response_ids[0])
        row = response_row(resp, now)
        if not (resp.id and self._same_correction(resp)):
            out.new["responses"] += insert_idempotent(self.conn, t.responses, [row])
        self.targets.remember([row])
        value = f.value.model_copy(update={"corrected_id": row["id"]})
        return f.model_copy(update={"value": value})

    def _same_correction(self, resp: Response) -> bool:
        r = t.responses
        with refused_values(self.conn, r, lambda: [{"id": resp.id}]):
            got = self.conn.execute(sa.select(r.c.prompt_id, r.c.text, r.c.parent_id).where(r.c.id == resp.id)).first()
        if got is None:
            return False
        if tuple(got) != (resp.prompt_id, resp.text, resp.parent_id):
            raise Conflict(f"response {resp.id!r} already exists and is not this correction of "
                           f"{resp.parent_id!r}; leave corrected_id out to derive one from the text")
        return True

    def _require(self, table: sa.Table, ids: set[str], noun: str) -> None:
        ids = sorted(ids)
        found: set[str] = set()
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            with refused_values(self.conn, table, lambda: [{"id": x} for x in part]):
                found.update(self.conn.execute(sa.select(table.c.id).where(table.c.id.in_(part))).scalars())
        missing = [i for i in ids if i not in found]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise NotFound(f"{noun} {missing[0]!r} does not exist{more}; store it first")


def _stamped(x: Prepared, now) -> dict:
    """The prepared row with its write time (rows are rebuilt never, stamped per write)."""
    row = x.row
    row["created_at"] = x.item.created_at or now
    return row
