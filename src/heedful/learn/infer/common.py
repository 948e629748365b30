"""What the inference-time methods share: picking prompts, calling a model, storing what it said.

Every method works on a `heedful.models.Model` (local transformers, an
OpenAI-compatible endpoint, a fake), never on a torch module, so the same code
improves an API model's answers. Everything a method generates is stored as
responses of the model that produced them, with the method and its settings
in `meta`, so its effect can be evaluated and trained on later.
"""

from __future__ import annotations

from collections.abc import Sequence

from heedful.errors import InvalidInput
from heedful.models.base import Completion, GenParams, Model, PromptLike
from heedful.schema import Prompt, Response, digest


def prompt_input(prompt: Prompt) -> PromptLike:
    """What a model is given for a stored prompt: its text, or its chat messages."""
    return prompt.text if prompt.text is not None else [m.model_dump() for m in prompt.messages]


def prompt_text(prompt: Prompt) -> str:
    """One string for a prompt (embedding, judge templates): the text, or the chat's turns."""
    if prompt.text is not None:
        return prompt.text
    return "\n".join(f"{m.role}: {m.content}" for m in prompt.messages)


def with_system(prompt: PromptLike, system: str | None) -> PromptLike:
    """The prompt as a chat with `system` prepended to (or merged into) its system turn."""
    if not system:
        return prompt
    chat = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if chat and chat[0]["role"] == "system":
        chat[0]["content"] = f"{system}\n\n{chat[0]['content']}"
        return chat
    return [{"role": "system", "content": system}, *chat]


def select_prompts(store, *, tag: str | None = None, prompt_ids: Sequence[str] = (), texts: Sequence[str] = (),
                   add_tags: Sequence[str] = (), limit: int | None = None) -> list[Prompt]:
    """Stored prompts with `tag` or these ids, plus new prompts stored from `texts`."""
    out = [store.get_prompt(pid) for pid in prompt_ids]
    if tag is not None:
        out += [p for p in store.prompts(tag=tag) if p.id not in set(prompt_ids)]
    for text in texts:
        if not text.strip():
            raise InvalidInput("a prompt text is empty")
        out.append(store.get_prompt(store.add_prompt(text, tags=list(add_tags))))
    if limit is not None:
        out = out[:limit]
    if not out:
        raise InvalidInput("no prompts selected: give a tag that stored prompts carry, prompt ids, or prompt texts")
    return out


def generate(model: Model, prompts: Sequence[PromptLike], params: GenParams) -> list[list[Completion]]:
    """`model.generate` with its failures surfaced: a completion that errored is an error here."""
    outs = model.generate(list(prompts), params)
    for group in outs:
        for c in group:
            if c.error or c.finish_reason == "error":
                raise InvalidInput(f"model {model.name!r} failed to generate: {c.error or 'finish_reason=error'}")
    return outs


def store_completions(store, prompt_id: str, completions: Sequence[Completion], model: Model,
                      params: GenParams, meta: dict, parent_id: str | None = None,
                      name: str | None = None) -> list[Response]:
    """Store completions as responses of `model` (or under `name`), in one transaction, with their ids."""
    rows = [{"prompt_id": prompt_id, "text": c.text, "model": name or model.name, "model_revision": model.revision,
             "params": params.as_dict(), "parent_id": parent_id,
             "meta": {**meta, "sample": i, "finish_reason": c.finish_reason, "completion_tokens": c.completion_tokens}}
            for i, c in enumerate(completions)]
    for r in rows:  # ids from the whole row: the same sample twice (same seed) is stored once, never a conflict
        r["id"] = f"r-{digest(r, 24)}"
    ids = store.write(responses=rows).response_ids
    return [store.get_response(i) for i in ids]


def judge_rows(store, judge, items, *, seed: int = 0) -> list[dict]:
    """Run `judge` on `items` and store its rows; rows already stored (same task id) are reused, not redone."""
    from heedful.annotate.run import existing_ids
    tasks = judge.tasks(items, seed=seed)
    done = existing_ids(store, [t.id for t in tasks])
    new = judge.run([t for t in tasks if t.id not in done]) if len(done) < len(tasks) else []
    if new:
        store.write(feedback=new)
    rows = {r["id"]: r for r in new}
    for fid in done:
        fb = store.get_feedback(fid)
        rows[fid] = {"id": fid, "value": fb.value_dict(), "response_ids": fb.response_ids}
    return [rows[t.id] for t in tasks]
