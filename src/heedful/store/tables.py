"""The store's tables as SQLAlchemy Core objects, the one description queries use.

Migrations (store/migrations/versions) create these tables; they do not import
this module, so an old migration keeps meaning what it meant. A test checks
that the migrated schema and this module agree.

Every table keeps an integer `seq` (insertion order, cheap keyset paging for
streams) and a text `id` (caller-supplied or derived from content) that other
tables reference. `payload_hash` lets a repeated write under the same id be
told apart from a conflicting one without comparing whole rows.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ID = sa.String(200)

# PostgreSQL cannot store NUL in text or JSONB; untrusted text must still round-trip
# byte-exact, so on PostgreSQL NUL is written as ESC+"0" and ESC itself as ESC+ESC
# (ESC is a private-use character). SQLite stores text as given.
_ESC = "\ue000"
_UNESC = re.compile(_ESC + "(.)", re.S)


def _escape(s: str) -> str:
    return s.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0") if ("\x00" in s or _ESC in s) else s


def _unescape(s: str) -> str:
    return _UNESC.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), s) if _ESC in s else s


def _walk(obj, fn):
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {fn(k): _walk(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_walk(v, fn) for v in obj]
    return obj


class SafeText(sa.TypeDecorator):
    """Text that keeps NUL characters on PostgreSQL too."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return _escape(value) if value is not None and dialect.name == "postgresql" else value

    def process_result_value(self, value, dialect):
        return _unescape(value) if value is not None and dialect.name == "postgresql" else value


class SafeJSON(sa.TypeDecorator):
    """JSON (JSONB on PostgreSQL) whose strings keep NUL characters; None is SQL NULL."""

    impl = sa.JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        return dialect.type_descriptor(sa.JSON(none_as_null=True))

    def process_bind_param(self, value, dialect):
        return _walk(value, _escape) if value is not None and dialect.name == "postgresql" else value

    def process_result_value(self, value, dialect):
        return _walk(value, _unescape) if value is not None and dialect.name == "postgresql" else value


Json = SafeJSON()
Text = SafeText()


class UTCDateTime(sa.TypeDecorator):
    """Timestamps are stored as UTC and always come back timezone-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _seq() -> sa.Column:
    return sa.Column("seq", Seq, primary_key=True, autoincrement=True)


prompts = sa.Table(
    "prompts", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("text", Text),
    sa.Column("messages", Json),
    sa.Column("meta", Json, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

prompt_tags = sa.Table(
    "prompt_tags", metadata,
    sa.Column("prompt_id", ID, sa.ForeignKey("prompts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(200), primary_key=True, index=True),
)

responses = sa.Table(
    "responses", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("prompt_id", ID, sa.ForeignKey("prompts.id"), nullable=False, index=True),
    sa.Column("text", Text, nullable=False),
    sa.Column("model", sa.String(200), index=True),
    sa.Column("model_revision", sa.String(200)),
    sa.Column("params", Json, nullable=False),
    sa.Column("parent_id", ID, sa.ForeignKey("responses.id"), index=True),
    sa.Column("meta", Json, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
)

feedback = sa.Table(
    "feedback", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("value", Json),
    sa.Column("prompt_id", ID, sa.ForeignKey("prompts.id"), nullable=False, index=True),
    sa.Column("source_type", sa.String(32), nullable=False, index=True),
    sa.Column("source_name", sa.String(200), nullable=False, index=True),
    sa.Column("source", Json, nullable=False),
    sa.Column("provenance", Json, nullable=False),
    sa.Column("meta", Json, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
)

feedback_targets = sa.Table(
    "feedback_targets", metadata,
    sa.Column("feedback_id", ID, sa.ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("response_id", ID, sa.ForeignKey("responses.id"), nullable=False, index=True),
    # migration 0003: index-only reads of a target by (feedback_id, position); see build.load
    sa.Index("ix_feedback_targets_cover", "feedback_id", "position", "response_id"),
)

datasets = sa.Table(
    "datasets", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("config", Json, nullable=False),
    sa.Column("path", sa.Text),
    sa.Column("n_rows", sa.Integer),
    sa.Column("meta", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

dataset_feedback = sa.Table(
    "dataset_feedback", metadata,
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("feedback_id", ID, sa.ForeignKey("feedback.id"), primary_key=True, index=True),
)

runs = sa.Table(
    "runs", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200)),
    sa.Column("config", Json, nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("seed", sa.BigInteger),
    sa.Column("metrics", Json, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
)

# A run's inputs and outputs: datasets, models (by path/name), other runs.
run_links = sa.Table(
    "run_links", metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role", sa.String(16), primary_key=True),  # "input" | "output"
    sa.Column("ref_type", sa.String(32), primary_key=True),  # "dataset" | "model" | "run" | "report"
    sa.Column("ref", sa.String(1000), primary_key=True),
    sa.Index("ix_run_links_ref", "ref_type", "ref"),
)

# Deleting is explicit and logged: what was removed, why, and its last payload.
deletions = sa.Table(
    "deletions", metadata, _seq(),
    sa.Column("item_type", sa.String(32), nullable=False),
    sa.Column("item_id", ID, nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=False),
)


# --- server: API keys and annotation task queues (migration 0002) -------------------------
# Owned by heedful.server; nothing above depends on these tables.

# Keys are stored as a SHA-256 of the whole token; the token itself is shown once.
api_keys = sa.Table(
    "api_keys", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

# A queue: which kind of judgement, how it was filled, overlap k, the order seed.
annotation_queues = sa.Table(
    "annotation_queues", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("config", Json, nullable=False),
    sa.Column("overlap", sa.Integer, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# One thing to judge: one response (rate, critique, correct, label spans) or a pair.
annotation_items = sa.Table(
    "annotation_items", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("queue_id", ID, sa.ForeignKey("annotation_queues.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("prompt_id", ID, sa.ForeignKey("prompts.id"), nullable=False),
    sa.Column("response_ids", Json, nullable=False),
    sa.Column("meta", Json, nullable=False),
)

# Who judges which item; `swapped` records the A/B order shown (seeded).
annotation_assignments = sa.Table(
    "annotation_assignments", metadata, _seq(),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("queue_id", ID, sa.ForeignKey("annotation_queues.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("item_id", ID, sa.ForeignKey("annotation_items.id", ondelete="CASCADE"), nullable=False),
    sa.Column("annotator", sa.String(200), nullable=False, index=True),
    sa.Column("swapped", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | answered | skipped
    sa.Column("skip_reason", sa.Text),
    sa.Column("feedback_id", ID, sa.ForeignKey("feedback.id", ondelete="SET NULL")),
    sa.Column("answered_at", UTCDateTime),
    sa.UniqueConstraint("item_id", "annotator", name="uq_assignment_item_annotator"),
)
