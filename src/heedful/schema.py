"""The nouns of heedful — Prompt, Response, Feedback, Source — validated in one place.

Every door into the store (SDK, importers, HTTP) builds these types, so a row
the store accepts has the same shape whichever way it came in. A feedback
`kind` fixes the shape of its `value`; the table in ../shared/DESIGN.md is the
contract and `VALUE_TYPES` below is its executable form.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from heedful.errors import InvalidInput

Kind = Literal[
    "rating", "binary", "preference", "ranking", "critique",
    "correction", "span", "outcome", "implicit",
]
SourceType = Literal["human", "user", "ai", "simulated", "verifier"]
KINDS: tuple[str, ...] = get_args(Kind)
SOURCE_TYPES: tuple[str, ...] = get_args(SourceType)
MAX_ID_LEN = 200


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _finite(x: float | None, name: str) -> float | None:
    if x is not None and not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x}")
    return x


# --- feedback values, one type per kind ------------------------------------------------

class RatingValue(_Model):
    """A number on a declared scale, e.g. 4 on [1, 5], optionally for one aspect."""

    score: float
    scale: tuple[float, float] = Field(description="(min, max) of the scale, inclusive")
    aspect: str | None = None

    @model_validator(mode="after")
    def _on_scale(self) -> RatingValue:
        lo, hi = self.scale
        _finite(self.score, "score"), _finite(lo, "scale min"), _finite(hi, "scale max")
        if not lo < hi:
            raise ValueError(f"scale must be (min, max) with min < max, got {self.scale}")
        if not lo <= self.score <= hi:
            raise ValueError(f"score {self.score} is outside the scale [{lo}, {hi}]")
        return self


class BinaryValue(_Model):
    """Good (True) or bad (False): thumbs, emoji, "love"."""

    label: bool


class PreferenceValue(_Model):
    """Which of two responses (targets [a, b]) is better, or a tie."""

    choice: Literal["a", "b", "tie"]
    strength: float | None = Field(None, ge=0, description="optional margin, e.g. 1-3")
    prob_b: float | None = Field(None, ge=0, le=1, description="soft label: P(b is better), e.g. from judge log-probs")


class RankingValue(_Model):
    """Ranks parallel to the targets: 1 is best, equal ranks are ties."""

    ranks: list[int]

    @field_validator("ranks")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if len(v) < 2 or min(v) < 1:
            raise ValueError("ranks needs at least 2 entries, each >= 1")
        return v


class CritiqueValue(_Model):
    """Natural-language feedback on one response."""

    text: str = Field(min_length=1)
    aspect: str | None = None


class CorrectionValue(_Model):
    """An improved text; the store also keeps it as a response whose parent is the original."""

    text: str = Field(min_length=1)
    corrected_id: str | None = Field(None, max_length=MAX_ID_LEN)


class Span(_Model):
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str = Field(min_length=1)
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.end <= self.start:
            raise ValueError(f"span end {self.end} must be greater than start {self.start}")
        return self


class SpanValue(_Model):
    """Labelled character ranges [start, end) of the response text."""

    spans: list[Span] = Field(min_length=1)


class OutcomeValue(_Model):
    """The result of a check: pass/fail and/or a score, with details."""

    passed: bool | None = None
    score: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> OutcomeValue:
        if self.passed is None and self.score is None:
            raise ValueError("an outcome needs passed or score")
        _finite(self.score, "score")
        return self


class ImplicitValue(_Model):
    """A signal mined from behaviour (reformulation, follow-up, regenerate, copy)."""

    signal: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=1)
    polarity: Literal["positive", "negative"] | None = None
    evidence: str | None = None


VALUE_TYPES: dict[str, type[_Model]] = {
    "rating": RatingValue, "binary": BinaryValue, "preference": PreferenceValue,
    "ranking": RankingValue, "critique": CritiqueValue, "correction": CorrectionValue,
    "span": SpanValue, "outcome": OutcomeValue, "implicit": ImplicitValue,
}
# How many responses a feedback of each kind is about (None: two or more).
TARGET_COUNT: dict[str, int | None] = {k: 1 for k in KINDS} | {"preference": 2, "ranking": None}


# --- the nouns ---------------------------------------------------------------------------

class Message(_Model):
    role: str = Field(min_length=1)
    content: str


class Prompt(_Model):
    """The input x: plain text or a chat; tags name its task, split, etc."""

    id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN)
    text: str | None = None
    messages: list[Message] | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Prompt:
        if (self.text is None) == (self.messages is None):
            raise ValueError("a prompt has either text or messages, not both or neither")
        if self.messages is not None and not self.messages:
            raise ValueError("messages must not be empty")
        return self

    def content(self) -> str | list[dict]:
        return self.text if self.text is not None else [m.model_dump() for m in self.messages]

    def content_hash(self) -> str:
        return digest({"content": self.content()})


class Response(_Model):
    """An output y for a prompt, with the model (name + revision) and generation params."""

    id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN)
    prompt_id: str = Field(min_length=1, max_length=MAX_ID_LEN)
    text: str
    model: str | None = None
    model_revision: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    parent_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN)
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class Source(_Model):
    """Who or what gave a judgement, with what is needed to reproduce it.

    `name` is the annotator id (human), user id (user), judge name (ai),
    persona (simulated) or check name (verifier).
    """

    type: SourceType
    name: str = Field(min_length=1, max_length=MAX_ID_LEN)
    model: str | None = None
    version: str | None = None
    template_hash: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Provenance(_Model):
    """How a judgement was produced: raw output, seed, cost, latency, and why it is missing."""

    raw_output: str | None = None
    seed: int | None = None
    cost: float | None = None
    latency_ms: float | None = None
    missing_reason: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Feedback(_Model):
    """One judgement h(x, y) -> f about one or more responses (`response_ids`).

    `value` is None only for a judgement that was attempted and failed
    (unparseable judge output, crashed check): `provenance.missing_reason` says why.
    """

    id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN)
    kind: Kind
    value: Any = None
    response_ids: list[str] = Field(min_length=1)
    source: Source
    provenance: Provenance = Field(default_factory=Provenance)
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None

    @model_validator(mode="after")
    def _value_fits_kind(self) -> Feedback:
        want = TARGET_COUNT[self.kind]
        n = len(self.response_ids)
        if (want is not None and n != want) or (want is None and n < 2):
            raise ValueError(f"a {self.kind} is about {want or '2 or more'} response(s), got {n}")
        if len(set(self.response_ids)) != n:
            raise ValueError("response_ids must be distinct")
        if self.value is None:
            if not self.provenance.missing_reason:
                raise ValueError("value is missing: set provenance.missing_reason to say why")
            return self
        value = VALUE_TYPES[self.kind].model_validate(self.value)
        object.__setattr__(self, "value", value)
        if self.kind == "ranking" and len(value.ranks) != n:
            raise ValueError(f"ranks has {len(value.ranks)} entries for {n} responses")
        return self

    def value_dict(self) -> dict | None:
        return None if self.value is None else self.value.model_dump(exclude_none=True)


# --- helpers -----------------------------------------------------------------------------

# The canonical form is json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# default=str): ids and payload hashes are digests of it, so its bytes must never change. json.dumps
# builds a new encoder on every call, which was most of the cost of a digest (~8 per imported row);
# the C encoder it builds is reused here (same arguments, no cycle check: JSON read from a file or
# validated by pydantic has no cycles). tests/store/test_canonical_json.py holds the two equal.
_DUMPS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_FAST = _C_ENCODER and _C_ENCODER(None, str, json.encoder.encode_basestring, None, ":", ",", True, False, True)


def canonical_json(obj: Any) -> str:
    if _FAST is None:
        return _DUMPS.encode(obj)
    try:
        return "".join(_FAST(obj, 0))
    except RecursionError:  # a cycle: let json say so (ValueError), as it always did
        return _DUMPS.encode(obj)


def digest(obj: Any, n: int = 32) -> str:
    """A short stable hash of a JSON-able object (ids derived from content, payload checks)."""
    return digest_json(canonical_json(obj), n)


def digest_json(text: str, n: int = 32) -> str:
    """`digest` of the object whose canonical JSON is `text` (for callers that build it themselves)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


json_string = json.encoder.encode_basestring
"""A string as canonical JSON writes it (the C encoder above uses this same function)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse(model: type[BaseModel], data: Any, where: str | None = None):
    """Validate `data` as `model`, turning pydantic's error into one readable InvalidInput."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        msg = err["msg"].removeprefix("Value error, ")
        reason = f"{field}: {msg}" if field else msg
        if len(e.errors()) > 1:
            reason += f" (and {len(e.errors()) - 1} more problem(s))"
        raise InvalidInput(reason, where=where, field=field) from None
