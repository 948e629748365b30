"""What `POST /v1/responses` and `POST /v1/feedback` accept, checked before anything is written.

A production app sends one object or a list. A feedback may carry its prompt
and response inline (`prompt` + `response`), so a thumbs-up is one call; ids
of inline prompts and responses derive from their content unless given, and a
client `id` on the feedback makes a retry store nothing new. Checks run in
order — body size (middleware), JSON syntax, batch size, text length, shape —
and every failure names the field (`[2].value.score`), so the whole request is
refused before `store.batch()` opens.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from heedful.errors import HeedfulError, InvalidInput
from heedful.schema import KINDS, MAX_ID_LEN, VALUE_TYPES, Feedback, Prompt, Response, Source
from heedful.store import Store
from heedful.store.batch import Written
from heedful.store.store import as_source
from heedful.store.writes import prompt_row, response_row


class TooLarge(HeedfulError):
    """A request beyond a configured limit (413)."""

    http_status = 413
    exit_code = 2

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.field = field


class InlineResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN)
    text: str
    model: str | None = None
    model_revision: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)


class ResponseIn(InlineResponse):
    """A response to store: refer to a stored prompt (`prompt_id`) or give it inline (`prompt`)."""

    prompt_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN)
    prompt: str | Prompt | None = Field(None, description="prompt text, or a prompt object")
    parent_id: str | None = Field(None, max_length=MAX_ID_LEN)

    @model_validator(mode="after")
    def _one_prompt(self) -> ResponseIn:
        if (self.prompt_id is None) == (self.prompt is None):
            raise ValueError("give exactly one of prompt_id or prompt")
        return self


class FeedbackIn(BaseModel):
    """One judgement; its targets are stored responses (`response_ids`) or given inline."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN, description="client id: retries store one row")
    kind: str = Field(description=f"one of {', '.join(KINDS)}")
    value: Any = Field(None, description="shape fixed by kind (see heedful.schema)")
    source: str | Source = Field(description='"TYPE:NAME" (e.g. "user:u123") or a source object')
    response_ids: list[str] | None = None
    prompt: str | Prompt | None = Field(None, description="inline prompt for inline responses")
    response: InlineResponse | None = Field(None, description="inline response (kinds about one response)")
    responses: list[InlineResponse] | None = Field(None, description="inline responses (preference, ranking)")
    provenance: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InvalidInput(f"request body is not UTF-8 (byte {e.start})", field="body") from None
    except json.JSONDecodeError as e:
        raise InvalidInput(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}", field="body") from None


def as_items(data: Any, max_batch: int) -> tuple[list, bool]:
    """One object or a list of objects; (items, was_list)."""
    items, was_list = (data, True) if isinstance(data, list) else ([data], False)
    if not items:
        raise InvalidInput("an empty list stores nothing; send at least one object", field="body")
    if len(items) > max_batch:
        raise TooLarge(f"batch of {len(items)} items exceeds the limit of {max_batch}", field="body")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"expected a JSON object, got {type(item).__name__}", field=_at(was_list, i))
    return items, was_list


def check_text(data: Any, max_text: int, path: str = "") -> None:
    """Every string in the request (texts, contents, meta) is at most `max_text` characters."""
    if isinstance(data, str):
        if len(data) > max_text:
            raise InvalidInput(f"text of {len(data)} characters exceeds the limit of {max_text}",
                               field=path or "body")
    elif isinstance(data, dict):
        for k, v in data.items():
            check_text(v, max_text, f"{path}.{k}" if path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            check_text(v, max_text, f"{path}[{i}]")


def _at(was_list: bool, i: int, rest: str = "") -> str:
    head = f"[{i}]" if was_list else ""
    return (f"{head}.{rest}" if head and rest else head + rest) or "body"


def _validate(model: type[BaseModel], data: Any, field: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(err["msg"].removeprefix("Value error, "),
                           field=".".join(x for x in (field, loc) if x and x != "body") or "body") from None


def _prompt(p: str | Prompt) -> Prompt:
    return Prompt(text=p) if isinstance(p, str) else p


def _check_kind(kind: str, field: str) -> None:
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidInput(f"unknown kind {kind!r}.{hint} Known: {', '.join(KINDS)}.", field=field)


def plan_feedback(item: dict, field: str) -> tuple[list[Prompt], list[Response], dict]:
    """Validate one feedback object; returns what to write (prompts, responses, feedback dict)."""
    f = _validate(FeedbackIn, item, field)
    prefix = f"{field}." if field != "body" else ""
    _check_kind(f.kind, prefix + "kind")
    if f.value is not None:
        _validate(VALUE_TYPES[f.kind], f.value, prefix + "value")
    inline = ([f.response] if f.response else []) + (f.responses or [])
    if (f.response_ids is None) == (not inline):
        raise InvalidInput("give response_ids, or the response(s) inline with their prompt", field=field)
    prompts, responses = [], []
    if inline:
        if f.prompt is None:
            raise InvalidInput("inline responses need their prompt", field=prefix + "prompt")
        p = _prompt(f.prompt)
        pid = p.id or prompt_row(p, None)["id"]
        prompts = [p]
        responses = [Response(prompt_id=pid, **r.model_dump()) for r in inline]
    fb = {"id": f.id, "kind": f.kind, "value": f.value, "response_ids": f.response_ids or [],
          "source": as_source(f.source), "provenance": f.provenance, "meta": f.meta}
    if not inline:
        _validate(Feedback, fb, field)
    return prompts, responses, fb


def plan_response(item: dict, field: str) -> tuple[list[Prompt], Response]:
    r = _validate(ResponseIn, item, field)
    prompts = []
    pid = r.prompt_id
    if r.prompt is not None:
        p = _prompt(r.prompt)
        pid = p.id or prompt_row(p, None)["id"]
        prompts = [p]
    body = r.model_dump(exclude={"prompt", "prompt_id"})
    return prompts, _validate(Response, {**body, "prompt_id": pid}, field)


def ingest_feedback(store: Store, items: list[dict], was_list: bool) -> Written:
    plans = [plan_feedback(item, _at(was_list, i)) for i, item in enumerate(items)]
    ahead = _refers_ahead([fb["response_ids"] for _, _, fb in plans], lambda i: map(_response_id, plans[i][1]))
    return _write(store, plans, was_list, _feedback_together, _feedback_one, ahead)


def ingest_responses(store: Store, items: list[dict], was_list: bool) -> Written:
    plans = [plan_response(item, _at(was_list, i)) for i, item in enumerate(items)]
    refs = [[x for x in ((None if ps else r.prompt_id), r.parent_id) if x] for ps, r in plans]
    ahead = _refers_ahead(refs, lambda i: ([plans[i][1].prompt_id] if plans[i][0] else [])
                          + [_response_id(plans[i][1])])
    return _write(store, plans, was_list, _responses_together,
                  lambda b, plan, where: b.add(prompts=plan[0], responses=[plan[1]], where=where), ahead)


def _response_id(r: Response) -> str:
    return r.id or response_row(r, None)["id"]


def _refers_ahead(refs: list[list[str]], defines) -> bool:
    """Whether item i names an id (`response_ids`, `prompt_id`, `parent_id`) that only a later
    item of the list stores. Written an item at a time such a list is refused (404), as it
    always was; written together it would go in, so it is written an item at a time. Ids of
    inline rows are derived only when some item names an id (inline-only lists name none)."""
    if not any(refs):
        return False
    first: dict[str, int] = {}
    for i in range(len(refs)):
        for x in defines(i):
            first.setdefault(x, i)
    return any(first.get(x, -1) > i for i, xs in enumerate(refs) for x in xs)


def _write(store: Store, plans: list, was_list: bool, together, one, ahead: bool) -> Written:
    """All items in three statements a table (`together`); if the store refuses the request
    (a conflict, a missing id), it is rolled back and written again an item at a time, so the
    error names the item (`[7]`). Either way one transaction: all of it or nothing. A list
    that refers ahead (`_refers_ahead`) goes an item at a time from the start."""
    if len(plans) > 1 and not ahead:
        try:
            with store.batch() as b:
                return together(b, plans)
        except HeedfulError:
            pass
    with store.batch() as b:
        out = Written()
        for i, plan in enumerate(plans):
            out.merge(one(b, plan, _at(was_list, i)))
    return out


def _feedback_one(b, plan, where: str) -> Written:
    prompts, responses, fb = plan
    out = b.add(prompts=prompts, responses=responses, where=where)
    out.merge(b.add(feedback=[{**fb, "response_ids": fb["response_ids"] or out.response_ids}], where=where))
    return out


def _feedback_together(b, plans: list) -> Written:
    out = b.add(prompts=[p for ps, _, _ in plans for p in ps], responses=[r for _, rs, _ in plans for r in rs])
    rids, fbs, i = out.response_ids, [], 0
    for _, rs, fb in plans:  # inline responses' ids, in order, go to their own feedback
        fbs.append({**fb, "response_ids": fb["response_ids"] or rids[i:i + len(rs)]})
        i += len(rs)
    out.merge(b.add(feedback=fbs))
    return out


def _responses_together(b, plans: list) -> Written:
    return b.add(prompts=[p for ps, _ in plans for p in ps], responses=[r for _, r in plans])
