"""TRL's standard dataset columns: preference, unpaired preference, and SFT.

The column names and the standard/conversational forms follow TRL's
"Dataset formats and types" guide exactly: `prompt/chosen/rejected` (also with
an implicit prompt, where chosen and rejected carry the whole text or
conversation), `prompt/completion/label`, and `messages` or
`prompt/completion`. Columns TRL does not define are kept in the record's meta
and written back, so a round trip returns every column.
"""

from __future__ import annotations

from collections.abc import Iterator

from heedful.capture.formats.base import (
    Ctx, Format, Records, Skipped, as_bool, extras, need, one_reply, own_meta, register, text_or_chat,
    with_context,
)
from heedful.errors import InvalidInput
from heedful.schema import Source


def _human(ctx: Ctx) -> Source:
    return ctx.default_source("human")


def _chatty(sample: list[dict], col: str) -> bool:
    v = sample[0].get(col) if sample else None
    return isinstance(v, list) or (isinstance(v, str) and v.startswith("[{"))


def _split_implicit(chosen, rejected) -> tuple:
    """TRL's implicit prompt: the shared beginning of chosen and rejected."""
    if isinstance(chosen, list) != isinstance(rejected, list):
        raise InvalidInput("chosen and rejected must both be text or both be conversations")
    if isinstance(chosen, list):
        if len(chosen) < 2 or chosen[:-1] != rejected[:-1] or len(rejected) != len(chosen):
            raise InvalidInput("chosen and rejected must be the same conversation up to one final assistant "
                               "message each")
        return chosen[:-1], chosen[-1:], rejected[-1:]
    i = 0
    while i < min(len(chosen), len(rejected)) and chosen[i] == rejected[i]:
        i += 1
    if i < min(len(chosen), len(rejected)) and i > 0 and chosen[i - 1] == " ":
        i -= 1  # the same rule as trl.extract_prompt: the space opens the completion
    return chosen[:i], chosen[i:], rejected[i:]


def _join(prompt, reply: str):
    if isinstance(prompt, str):
        return prompt + reply
    return [*prompt, {"role": "assistant", "content": reply}]


def _content(prompt, reply: str):
    return reply if prompt.text is not None else [{"role": "assistant", "content": reply}]


@register
class TrlPreference(Format):
    name = "trl-preference"
    help = "TRL preference: prompt/chosen/rejected (text or conversational; implicit prompt too)"

    def detect(self, columns, sample):
        if not {"chosen", "rejected"} <= columns or {"instruction", "output_1"} <= columns:
            return False
        first = sample[0].get("chosen") if sample else None
        return "prompt" in columns or not (isinstance(first, str) and first.startswith("\n\nHuman:"))

    def read(self, row, ctx):
        chosen = text_or_chat(need(row, "chosen"), ctx, "chosen")
        rejected = text_or_chat(need(row, "rejected"), ctx, "rejected")
        meta = {}
        if row.get("prompt") is None:
            prompt, chosen, rejected = _split_implicit(chosen, rejected)
            meta["layout"] = "implicit"
        else:
            prompt = text_or_chat(row["prompt"], ctx, "prompt")
        if isinstance(prompt, list) != isinstance(chosen, list):
            raise InvalidInput("prompt and completions must both be text or both be conversations")
        if extra := extras(row, {"prompt", "chosen", "rejected"}):
            meta["extra"] = extra
        rec = Records()
        pid = rec.prompt(ctx, prompt)
        a = rec.response(pid, one_reply(chosen, "chosen"))
        b = rec.response(pid, one_reply(rejected, "rejected"))
        if a == b:
            raise InvalidInput("chosen and rejected are the same response")
        rec.add_feedback(ctx, "preference", {"choice": "a"}, [a, b], _human(ctx),
                         meta={self.name: meta} if meta else {})
        return rec

    def write(self, store, flt, skipped: Skipped) -> Iterator[dict]:
        for fb, responses, prompts in with_context(store, store.feedback(kind="preference", **flt)):
            choice = None if fb.value is None else fb.value.choice
            if choice not in ("a", "b"):
                skipped["a tie or a missing preference has no chosen/rejected"] += 1
                continue
            a, b = (responses[i] for i in fb.response_ids)
            good, bad = (a, b) if choice == "a" else (b, a)
            prompt = prompts[a.prompt_id]
            own = own_meta(fb.meta, self.name)
            content = prompt.content()
            if own.get("layout") == "implicit":
                row = {"chosen": _join(content, good.text), "rejected": _join(content, bad.text)}
            else:
                row = {"prompt": content, "chosen": _content(prompt, good.text),
                       "rejected": _content(prompt, bad.text)}
            yield {**row, **own.get("extra", {})}


@register
class TrlUnpaired(Format):
    name = "trl-unpaired"
    help = "TRL unpaired preference: prompt/completion/label (binary feedback, as for KTO)"

    def detect(self, columns, sample):
        return {"prompt", "completion", "label"} <= columns

    def read(self, row, ctx):
        prompt = text_or_chat(need(row, "prompt"), ctx, "prompt")
        completion = text_or_chat(need(row, "completion"), ctx, "completion")
        if isinstance(prompt, list) != isinstance(completion, list):
            raise InvalidInput("prompt and completion must both be text or both be conversations")
        label = as_bool(need(row, "label"), ctx, "label")
        rec = Records()
        rid = rec.response(rec.prompt(ctx, prompt), one_reply(completion, "completion"))
        extra = extras(row, {"prompt", "completion", "label"})
        rec.add_feedback(ctx, "binary", {"label": label}, [rid], _human(ctx),
                     meta={self.name: {"extra": extra}} if extra else {})
        return rec

    def write(self, store, flt, skipped):
        for fb, responses, prompts in with_context(store, store.feedback(kind="binary", **flt)):
            if fb.value is None:
                skipped["a missing label"] += 1
                continue
            r = responses[fb.response_ids[0]]
            prompt = prompts[r.prompt_id]
            yield {"prompt": prompt.content(), "completion": _content(prompt, r.text), "label": fb.value.label,
                   **own_meta(fb.meta, self.name).get("extra", {})}


@register
class TrlSft(Format):
    name = "trl-sft"
    help = "TRL SFT: messages, or prompt/completion (prompts and responses, no feedback)"
    filters = ("model", "tag")

    def detect(self, columns, sample):
        if "messages" in columns:
            return _chatty(sample, "messages")
        return {"prompt", "completion"} <= columns and not columns & {"label", "chosen", "rejected"}

    def read(self, row, ctx):
        own: dict = {}
        if "messages" in row:
            msgs = text_or_chat(need(row, "messages"), ctx, "messages")
            if isinstance(msgs, str) or len(msgs) < 2:
                raise InvalidInput("column 'messages' must be a conversation of two or more messages",
                                   field="messages")
            prompt, reply = msgs[:-1], one_reply(msgs[-1:], "messages")
            known = {"messages"}
        else:
            prompt = text_or_chat(need(row, "prompt"), ctx, "prompt")
            completion = text_or_chat(need(row, "completion"), ctx, "completion")
            if isinstance(prompt, list) != isinstance(completion, list):
                raise InvalidInput("prompt and completion must both be text or both be conversations")
            reply = one_reply(completion, "completion")
            if isinstance(prompt, list):
                own["layout"] = "prompt-completion"
            known = {"prompt", "completion"}
        if extra := extras(row, known):
            own["extra"] = extra
        rec = Records()
        rec.response(rec.prompt(ctx, prompt), reply, meta={self.name: own} if own else {})
        return rec

    def write(self, store, flt, skipped):
        for r, _, prompts in with_context(store, store.responses(**flt)):
            prompt = prompts[r.prompt_id]
            own = own_meta(r.meta, self.name)
            if prompt.messages is not None and own.get("layout") != "prompt-completion":
                row = {"messages": _join(prompt.content(), r.text)}
            else:
                row = {"prompt": prompt.content(), "completion": _content(prompt, r.text)}
            yield {**row, **own.get("extra", {})}
