"""Anthropic HH-RLHF style rows: `chosen`/`rejected` as whole "\\n\\nHuman: … \\n\\nAssistant: …" transcripts.

The two transcripts share every turn but the last; that shared part becomes
the prompt (a chat of user/assistant turns) and each final assistant turn a
response. A transcript whose text would not come back byte-for-byte from that
split (odd spacing, an empty last turn) is kept verbatim in the feedback's
meta, so export still returns the file's exact text.
"""

from __future__ import annotations

import re

from heedful.capture.formats.base import Format, Records, as_text, extras, need, own_meta, register, with_context
from heedful.errors import InvalidInput
from heedful.schema import Source

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}
_NAME = {v: k for k, v in _ROLE.items()}


def parse_transcript(text: str, col: str) -> tuple[list[dict], str]:
    """The turns before the final assistant turn, and that turn's text."""
    parts = _TURN.split(text)
    if parts[0] != "" or len(parts) < 5:
        raise InvalidInput(f"column {col!r} is not a transcript of '\\n\\nHuman:' and '\\n\\nAssistant:' turns "
                           "ending with an assistant turn", field=col)
    turns = [{"role": _ROLE[r], "content": body.removeprefix(" ")} for r, body in zip(parts[1::2], parts[2::2])]
    if turns[-1]["role"] != "assistant":
        raise InvalidInput(f"column {col!r} must end with an Assistant turn", field=col)
    return turns[:-1], turns[-1]["content"]


def render(messages: list[dict], reply: str) -> str:
    return "".join(f"\n\n{_NAME[m['role']]}: {m['content']}" for m in messages) + f"\n\nAssistant: {reply}"


@register
class HHRLHF(Format):
    name = "hh-rlhf"
    help = "HH-RLHF: chosen/rejected as full Human/Assistant transcripts sharing a prefix"

    def detect(self, columns, sample):
        first = sample[0].get("chosen") if sample else None
        return {"chosen", "rejected"} <= columns and "prompt" not in columns and \
            isinstance(first, str) and first.startswith("\n\nHuman:")

    def read(self, row, ctx):
        chosen, rejected = as_text(need(row, "chosen"), "chosen"), as_text(need(row, "rejected"), "rejected")
        prompt, good = parse_transcript(chosen, "chosen")
        prompt_r, bad = parse_transcript(rejected, "rejected")
        if prompt != prompt_r:
            raise InvalidInput("chosen and rejected differ before their final Assistant turn")
        own: dict = {}
        if render(prompt, good) != chosen or render(prompt, bad) != rejected:
            own["transcripts"] = {"chosen": chosen, "rejected": rejected}
        if extra := extras(row, {"chosen", "rejected"}):
            own["extra"] = extra
        rec = Records()
        pid = rec.prompt(ctx, prompt)
        a, b = rec.response(pid, good), rec.response(pid, bad)
        if a == b:
            raise InvalidInput("chosen and rejected are the same response")
        rec.add_feedback(ctx, "preference", {"choice": "a"}, [a, b], ctx.default_source("human"),
                     meta={self.name: own} if own else {})
        return rec

    def write(self, store, flt, skipped):
        for fb, responses, prompts in with_context(store, store.feedback(kind="preference", **flt)):
            choice = None if fb.value is None else fb.value.choice
            if choice not in ("a", "b"):
                skipped["a tie or a missing preference has no chosen/rejected"] += 1
                continue
            a, b = (responses[i] for i in fb.response_ids)
            good, bad = (a, b) if choice == "a" else (b, a)
            prompt = prompts[a.prompt_id]
            msgs = prompt.content() if prompt.messages is not None else [{"role": "user", "content": prompt.text}]
            if any(m["role"] not in _NAME for m in msgs):
                skipped["a prompt with roles other than user/assistant"] += 1
                continue
            own = own_meta(fb.meta, self.name)
            row = own.get("transcripts") or {"chosen": render(msgs, good.text), "rejected": render(msgs, bad.text)}
            yield {**row, **own.get("extra", {})}
