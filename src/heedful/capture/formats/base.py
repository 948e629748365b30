"""What a format is, the registry of formats, and helpers every converter shares.

A format maps one row of a file to heedful records and back. It knows nothing
about file types: the same converter reads JSONL, CSV, Parquet or an HF folder.
Ids are derived from content and the format's name, so importing the same file
twice stores nothing new. Values read from CSV arrive as text (`ctx.stringly`);
the coercers below turn them into the column's type and reject wrong types
everywhere else, so a number where text belongs is an error, not a guess.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from heedful.errors import InvalidInput, UnknownName
from heedful.schema import Feedback, Prompt, Provenance, Response, Source, digest, parse
from heedful.store.writes import Prepared, feedback_row, prompt_row, response_row


@dataclass
class Ctx:
    """Everything a converter needs besides the row itself."""

    format: str
    stem: str = "import"
    source: Source | None = None  # --source; None: the format's default
    tags: list[str] = field(default_factory=list)  # --tag, added to every prompt
    stringly: bool = False  # cells are text (CSV)
    columnar: bool = False  # free-form JSON columns are JSON text (CSV, Parquet, HF folders)
    _defaults: dict = field(default_factory=dict, repr=False)  # source type -> Source(type, stem)
    _last_dump: tuple | None = field(default=None, repr=False)  # (Source, its dict)

    def default_source(self, type: str) -> Source:
        """--source, else TYPE:<file stem>: one object for the whole file, so it is dumped once."""
        if self.source is not None:
            return self.source
        if type not in self._defaults:
            self._defaults[type] = Source(type=type, name=self.stem)
        return self._defaults[type]

    def source_dict(self, source: Source) -> dict:
        """`source` as the dict a feedback id is derived from (the last one is remembered)."""
        if self._last_dump is None or self._last_dump[0] is not source:
            self._last_dump = (source, source.model_dump(exclude_defaults=True))
        return self._last_dump[1]


@dataclass
class Records:
    """What one row of a file becomes: validated nouns with their rows already built.

    The rows are what the store writes (`Prepared`), so deriving an id here is the
    only time a record is validated and hashed."""

    prompts: list[Prepared | Prompt] = field(default_factory=list)
    responses: list[Prepared | Response] = field(default_factory=list)
    feedback: list[Prepared | Feedback] = field(default_factory=list)

    def prompt(self, ctx: Ctx, content: str | list, tags: list[str] = ()) -> str:
        """A prompt (text or chat) with a content-derived id; returns the id."""
        form = {"text": content} if isinstance(content, str) else {"messages": content}
        p = parse(Prompt, {**form, "tags": list(dict.fromkeys([*ctx.tags, *tags]))})
        row = prompt_row(p, None)
        self.prompts.append(Prepared(p, row))
        return row["id"]

    def response(self, prompt_id: str, text: str, **fields) -> str:
        r = parse(Response, {"prompt_id": prompt_id, "text": text, **fields})
        row = response_row(r, None)
        self.responses.append(Prepared(r, row))
        return row["id"]

    def add_feedback(self, ctx: Ctx, kind: str, value: Any, targets: list[str], source: Source,
                     provenance: dict | None = None, meta: dict | None = None) -> str:
        body = {"kind": kind, "value": value, "response_ids": targets, "source": ctx.source_dict(source),
                "provenance": provenance or {}, "meta": meta or {}}
        fid = "f-" + digest({"format": ctx.format, **body})
        # The Source object itself goes in: pydantic keeps a validated instance as it is.
        f = parse(Feedback, {**body, "id": fid, "source": source,
                             "provenance": provenance or _NO_PROVENANCE})
        self.feedback.append(Prepared(f, feedback_row(f, None, None)))
        return fid


_NO_PROVENANCE = Provenance()


class Skipped(Counter):
    """Export: rows a format cannot represent, counted by reason."""


class Format(ABC):
    """One converter: `detect` columns, `read` a row into records, `write` the store as rows."""

    name: ClassVar[str]
    help: ClassVar[str]
    json_columns: ClassVar[frozenset[str]] = frozenset()
    filters: ClassVar[tuple[str, ...]] = ("kind", "model", "tag", "source_type", "source_name")

    @abstractmethod
    def detect(self, columns: set[str], sample: list[dict]) -> bool:
        """Whether a file with these columns (and first rows) is in this format."""

    @abstractmethod
    def read(self, row: dict, ctx: Ctx) -> Records:
        """One input row as records to store."""

    @abstractmethod
    def write(self, store, flt: dict, skipped: Skipped) -> Iterator[dict]:
        """The store's matching items as rows of this format."""


FORMATS: dict[str, Format] = {}


def register(cls: type[Format]) -> type[Format]:
    FORMATS[cls.name] = cls()
    return cls


def get_format(name: str) -> Format:
    from heedful.capture import formats  # noqa: F401  (registers the built-ins)
    if name not in FORMATS:
        raise UnknownName("format", name, FORMATS)
    return FORMATS[name]


def parse_source(text: str) -> Source:
    from heedful.store.store import as_source
    return as_source(text)


# --- typed cells ---------------------------------------------------------------------------

def need(row: dict, col: str) -> Any:
    if col not in row or row[col] is None:
        raise InvalidInput(f"column {col!r} is missing", field=col)
    return row[col]


def as_json(v: Any, ctx: Ctx, col: str, text_ok: bool = False) -> Any:
    """A nested value; columnar files carry it as JSON text (heedful's writers always encode it).

    `text_ok`: the column may also hold plain text (a third-party file's raw judge output)."""
    if isinstance(v, str) and ctx.columnar:
        try:
            return json.loads(v)
        except json.JSONDecodeError as e:
            if text_ok:
                return v
            raise InvalidInput(f"column {col!r} holds malformed JSON: {e.msg}", field=col) from None
    return v


def as_text(v: Any, col: str) -> str:
    if not isinstance(v, str):
        raise InvalidInput(f"column {col!r} must be text, got {type(v).__name__}", field=col)
    return v


def as_float(v: Any, ctx: Ctx, col: str) -> float | None:
    """A number; None (or an empty CSV cell) is missing; NaN comes back as NaN."""
    if v is None or (ctx.stringly and v == ""):
        return None
    if ctx.stringly and isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise InvalidInput(f"column {col!r} must be a number, got {v!r}", field=col) from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidInput(f"column {col!r} must be a number, got {type(v).__name__}", field=col)
    return v


def as_bool(v: Any, ctx: Ctx, col: str) -> bool:
    if ctx.stringly and isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
        return v.lower() in ("true", "1")
    if not isinstance(v, bool):
        raise InvalidInput(f"column {col!r} must be true or false, got {v!r}", field=col)
    return v


def is_nan(x: float | None) -> bool:
    return isinstance(x, float) and math.isnan(x)


def text_or_chat(v: Any, ctx: Ctx, col: str) -> str | list[dict]:
    """Standard (text) or conversational (list of role/content messages) content."""
    if isinstance(v, str) and ctx.stringly and v.startswith("[{"):
        v = as_json(v, ctx, col)
    if isinstance(v, str):
        return v
    if isinstance(v, list) and v and all(isinstance(m, dict) for m in v):
        for m in v:
            if set(m) != {"role", "content"} or not isinstance(m["role"], str) or not isinstance(m["content"], str):
                raise InvalidInput(f"column {col!r}: each message needs exactly text 'role' and 'content'",
                                   field=col)
        return [{"role": m["role"], "content": m["content"]} for m in v]
    raise InvalidInput(f"column {col!r} must be text or a non-empty list of messages, got {type(v).__name__}",
                       field=col)


def one_reply(v: str | list[dict], col: str) -> str:
    """A completion: text, or exactly one assistant message."""
    if isinstance(v, str):
        return v
    if len(v) != 1 or v[0]["role"] != "assistant":
        raise InvalidInput(f"column {col!r} must be one assistant message, got {len(v)} message(s)", field=col)
    return v[0]["content"]


def extras(row: dict, known: set[str]) -> dict:
    return {k: v for k, v in row.items() if k not in known}


def own_meta(meta: dict, name: str) -> dict:
    """The part of a record's meta that this format wrote (formats keep their own key)."""
    return meta.get(name) or {}


# --- reading the store back ----------------------------------------------------------------

def with_context(store, items, page: int = 500) -> Iterator[tuple[Any, dict[str, Response], dict[str, Prompt]]]:
    """Feedback (or responses) a page at a time, with the responses and prompts they point at."""
    buf: list = []
    for item in items:
        buf.append(item)
        if len(buf) == page:
            yield from _resolved(store, buf)
            buf = []
    if buf:
        yield from _resolved(store, buf)


def _resolved(store, items: list):
    import sqlalchemy as sa

    from heedful.store import reads
    from heedful.store import tables as t
    rids = {rid for it in items for rid in getattr(it, "response_ids", [])}
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.responses).where(t.responses.c.id.in_(rids))).mappings() if rids else []
        responses = {r["id"]: reads.to_response(r) for r in rows}
        pids = {r.prompt_id for r in responses.values()} | {getattr(it, "prompt_id", None) for it in items}
        pids.discard(None)
        prows = list(conn.execute(sa.select(t.prompts).where(t.prompts.c.id.in_(pids))).mappings())
    tags = reads.tags_of(store.engine, [r["id"] for r in prows])
    prompts = {r["id"]: reads.to_prompt(r, tags.get(r["id"], [])) for r in prows}
    for it in items:
        yield it, responses, prompts
