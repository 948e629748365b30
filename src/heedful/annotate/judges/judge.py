"""Running a judge: tasks → prompts → one batched `generate` per chunk → parsed verdicts → rows.

Judges with `decision: logprobs` or `likelihood` score completions instead of
generating text (heedful.annotate.judges.logprob); everything else here —
tasks, swaps, consistency, rows — is shared.

Position bias is handled here once, not inside each judge's template: a pair
(a, b) is shown as (a, b) or (b, a) by a deterministic function of the seed
and what the pair shows (`shown_order` on `Item.content_key`: the prompt and the
two texts, not their ids, so the same texts get the same order in any store
and any run of a recipe), and the verdict is mapped back to the
canonical order (`to_canonical`). With `both_orders` both orders are judged
and each row records whether the two verdicts agree (`meta.consistent`).

Every item ends as a row: a model error or an unparseable output becomes a
row with value None, `provenance.missing_reason` and the raw text. A failing
batch is retried item by item, so one bad item never costs its neighbours.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from heedful.annotate.judges.config import JudgeConfig
from heedful.annotate.judges.parsers import Unparseable, get_parser
from heedful.errors import InvalidInput
from heedful.models.base import Completion, GenParams, Model, PromptLike
from heedful.schema import VALUE_TYPES, Prompt, Response, digest

AB, BA = (0, 1), (1, 0)


@dataclass(frozen=True)
class Item:
    """What one judgement is about: a prompt and one or two of its responses (canonical order)."""

    prompt: Prompt
    responses: tuple[Response, ...]

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.responses)

    @property
    def content_key(self) -> tuple[str, ...]:
        """What a judge is shown (prompt, then the texts in canonical order): ids change between stores."""
        return (self.prompt.content_hash(), *(r.text for r in self.responses))


@dataclass(frozen=True)
class Task:
    """One model call: an item shown in `order`, for one aspect or principle."""

    id: str
    item: Item
    order: tuple[int, ...]
    seed: int
    aspect: str | None = None
    principle: str | None = None

    @property
    def group(self) -> tuple:
        return (self.item.key, self.aspect, self.principle)


@dataclass
class Verdict:
    """A parsed judgement in canonical order (value None when missing, with the reason)."""

    value: dict | None
    raw: str | None
    missing_reason: str | None = None
    latency_ms: float | None = None
    tokens: dict = field(default_factory=dict)
    shown_choice: str | None = None


def shown_order(seed: int, key: Sequence[str]) -> tuple[int, int]:
    """(0, 1) or (1, 0), a deterministic coin flip on (seed, key): reproducible and unbiased."""
    h = hashlib.sha256("\x1f".join([str(seed), *key]).encode("utf-8", "surrogatepass")).digest()
    return BA if h[0] & 1 else AB


def to_canonical(choice: str, order: tuple[int, ...]) -> str:
    """Map a verdict about the shown (a, b) back to the canonical pair."""
    if choice == "tie":
        return "tie"
    return "ab"[order["ab".index(choice)]]


def clean_text(text: str | None) -> str | None:
    """Model output as storable text: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if text is None:
        return None
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def instruction_text(prompt: Prompt) -> str:
    if prompt.text is not None:
        return prompt.text
    return "\n".join(f"{m.role}: {m.content}" for m in prompt.messages)


class Judge:
    """A loaded judge config bound to a model."""

    def __init__(self, config: JudgeConfig, model: Model, *, batch_size: int = 64):
        self.config = config
        self.model = model
        self.batch_size = max(1, batch_size)
        self.kind = config.spec.kind
        self.arity = 2 if self.kind == "preference" else 1
        self.decision = config.spec.decision
        self.parse = get_parser(config.parser_name) if self.decision == "text" else None
        self.parser_options = dict(config.parser_options)
        if config.parser_name == "score_1_10" and self.kind == "rating":
            self.parser_options.setdefault("low", config.spec.scale[0])
            self.parser_options.setdefault("high", config.spec.scale[1])
        try:
            self.params = GenParams(**{**config.spec.params, "n": 1})
        except TypeError as e:
            raise InvalidInput(f"params: {e}", where=str(config.path)) from None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def source(self) -> str:
        return f"ai:{self.name}"

    # --- planning -----------------------------------------------------------------------

    def tasks(self, items: Sequence[Item], *, seed: int = 0, both_orders: bool = False) -> list[Task]:
        out = []
        for item in items:
            if len(item.responses) != self.arity:
                raise InvalidInput(f"judge {self.name!r} ({self.kind}) needs {self.arity} response(s) "
                                   f"per item, got {len(item.responses)}")
            if self.arity == 1:
                orders = [(0,)]
            else:
                first = shown_order(seed, item.content_key)
                orders = [first, first[::-1]] if both_orders else [first]
            for extra in self._variants():
                out += [self._task(item, order, seed, **extra) for order in orders]
        return out

    def _variants(self) -> list[dict]:
        spec = self.config.spec
        if spec.principles:
            return [{"principle": p, "aspect": a} for p in spec.principles for a in (spec.aspects or [None])]
        return [{"aspect": a} for a in (spec.aspects or [None])]

    def _task(self, item: Item, order, seed: int, aspect=None, principle=None) -> Task:
        spec = self.config.spec
        key = {"annotator": self.source, "version": spec.version, "model": self.model.name,
               "template": self.config.template_hash, "targets": list(item.key), "aspect": aspect,
               "principle": principle, "order": list(order),
               "seed": seed if self.params.temperature > 0 else None}
        if self.decision != "text":  # text judges keep their ids; a changed choice is a new task
            key["decision"] = {"mode": self.decision, "prefix": spec.answer_prefix, "choices": spec.choices}
        return Task(id=f"f-{digest(key)}", item=item, order=tuple(order), seed=seed,
                    aspect=aspect, principle=principle)

    def render(self, task: Task) -> PromptLike:
        shown = [task.item.responses[i] for i in task.order]
        vars_ = {"instruction": instruction_text(task.item.prompt)}
        if self.arity == 2:
            vars_ |= {"output_a": shown[0].text, "output_b": shown[1].text}
        else:
            vars_["output"] = shown[0].text
        if self.config.spec.aspects:
            vars_["aspect"] = task.aspect
        if self.config.spec.principles:
            vars_["principle"] = task.principle
        chat = [{"role": "user", "content": self.config.template.render(**vars_)}]
        system = self.config.spec.system
        return ([{"role": "system", "content": system}] if system else []) + chat

    # --- running ------------------------------------------------------------------------

    def judge(self, tasks: Sequence[Task], progress=None) -> list[Verdict]:
        """Verdicts in task order: `batch_size` prompts per `generate` (or `logprobs`) call."""
        out: list[Verdict] = []
        for i in range(0, len(tasks), self.batch_size):
            chunk = tasks[i:i + self.batch_size]
            out += self._judge_chunk(chunk)
            if progress:
                progress(len(chunk))
        return out

    def _judge_chunk(self, chunk: Sequence[Task]) -> list[Verdict]:
        if self.decision != "text":
            from heedful.annotate.judges.logprob import judge_chunk
            return judge_chunk(self, chunk)
        completions = self._generate([self.render(t) for t in chunk], chunk[0].seed)
        return [self._verdict(t, c) for t, c in zip(chunk, completions)]

    def _generate(self, prompts: list[PromptLike], seed: int) -> list[Completion | Exception]:
        params = GenParams(**{**self.params.as_dict(), "stop": tuple(self.params.stop), "seed": seed})
        t0 = time.perf_counter()
        try:
            outs = [c[0] for c in self.model.generate(prompts, params)]
            _spread_latency(outs, time.perf_counter() - t0)
            return outs
        except Exception:  # isolate the bad item: retry one by one
            pass
        single: list[Completion | Exception] = []
        for p in prompts:
            t0 = time.perf_counter()
            try:
                single.append(self.model.generate([p], params)[0][0])
                _spread_latency(single[-1:], time.perf_counter() - t0)
            except Exception as e:
                single.append(e)
        return single

    def _verdict(self, task: Task, c: Completion | Exception) -> Verdict:
        if isinstance(c, Exception):
            return Verdict(None, None, f"model error: {type(c).__name__}: {c}"[:500])
        raw = clean_text(c.text)
        info = {"latency_ms": round(c.latency_s * 1000, 3) if c.latency_s else None,
                "tokens": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens}}
        if c.error or c.finish_reason == "error":
            return Verdict(None, raw, f"model error: {c.error or 'finish_reason=error'}"[:500], **info)
        try:
            parsed = self.parse(raw, **self.parser_options)
            value, shown = self._value(parsed, task)
            value = VALUE_TYPES[self.kind].model_validate(value).model_dump(mode="json", exclude_none=True)
        except (Unparseable, ValidationError, ValueError, TypeError) as e:
            reason = f"unparseable: {e}" if isinstance(e, Unparseable) else f"invalid verdict: {e}"
            if c.finish_reason == "length":
                reason += " (output was cut at max_new_tokens)"
            return Verdict(None, raw, reason[:500], **info)
        return Verdict(value, raw, None, shown_choice=shown, **info)

    def _value(self, parsed, task: Task) -> tuple[dict, str | None]:
        if self.kind == "preference":
            shown = str(parsed).strip().lower()
            shown = {"c": "tie", "[[a]]": "a", "[[b]]": "b"}.get(shown, shown)
            if shown not in ("a", "b", "tie"):
                raise ValueError(f"preference verdict {parsed!r} is not a, b or tie")
            return {"choice": to_canonical(shown, task.order)}, shown
        if self.kind == "rating":
            if isinstance(parsed, bool) or not isinstance(parsed, (int, float, str)):
                raise ValueError(f"rating {parsed!r} is not a number")
            return {"score": float(parsed), "scale": list(self.config.spec.scale), "aspect": task.aspect}, None
        if not isinstance(parsed, str) or not parsed.strip():
            raise ValueError(f"critique {parsed!r} is not text")
        return {"text": parsed, "aspect": task.aspect}, None

    # --- rows ---------------------------------------------------------------------------

    def feedback(self, tasks: Sequence[Task], verdicts: Sequence[Verdict]) -> list[dict]:
        consistency = _consistency(tasks, verdicts)
        return [self._row(t, v, consistency.get(t.group)) for t, v in zip(tasks, verdicts)]

    def _row(self, task: Task, v: Verdict, consistent: bool | None) -> dict:
        meta = {k: val for k, val in (("aspect", task.aspect), ("principle", task.principle)) if val}
        if self.arity == 2:
            meta["shown_order"] = "ab" if task.order == AB else "ba"
            if v.shown_choice:
                meta["shown_choice"] = v.shown_choice
            if consistent is not None:
                meta["consistent"] = consistent
        spec = self.config.spec
        source = {"type": "ai", "name": self.name, "model": self.model.name, "version": spec.version,
                  "template_hash": self.config.template_hash,
                  "extra": {"parser": self.config.parser_name, "model_revision": self.model.revision}}
        prov = {"raw_output": v.raw, "seed": task.seed, "latency_ms": v.latency_ms,
                "missing_reason": v.missing_reason, "extra": v.tokens}
        return {"id": task.id, "kind": self.kind, "value": v.value, "response_ids": list(task.item.key),
                "source": source, "provenance": prov, "meta": meta}

    def run(self, tasks: Sequence[Task], progress=None) -> list[dict]:
        return self.feedback(tasks, self.judge(tasks, progress))


def _spread_latency(completions: list[Completion], seconds: float) -> None:
    """A batched call's wall time, shared among its items where the backend did not time each."""
    for c in completions:
        if not c.latency_s:
            c.latency_s = seconds / max(1, len(completions))


def _consistency(tasks: Sequence[Task], verdicts: Sequence[Verdict]) -> dict[tuple, bool]:
    """For groups judged in both orders: do the two canonical verdicts agree?"""
    groups: dict[tuple, list] = {}
    for t, v in zip(tasks, verdicts):
        groups.setdefault(t.group, []).append(v)
    return {g: vs[0].value["choice"] == vs[1].value["choice"] for g, vs in groups.items()
            if len(vs) == 2 and all(v.value for v in vs)}
