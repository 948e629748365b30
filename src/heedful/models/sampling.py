"""Sampling responses into the store: `heedful generate` and its library form.

Every response gets an id derived from (prompt, model, revision, parameters
with the seed, sample index), so a run interrupted half-way and started again
with the same seed skips the samples already stored and makes only the rest;
a run without a seed gets a random one, recorded in each response's params so
any sample can be made again. Failed samples (an endpoint that timed out, say)
are counted with their reason and not stored: a re-run retries just those.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from heedful.errors import InvalidInput, NotFound
from heedful.models.base import Completion, GenParams
from heedful.schema import Prompt, digest

Progress = Callable[[int, int, int], None]  # (prompts done, prompts total, tokens so far)


@dataclass
class GenSummary:
    model: str
    prompts: int = 0
    written: int = 0
    skipped: int = 0
    failed: Counter = field(default_factory=Counter)
    tokens: int = 0
    seconds: float = 0.0
    seed: int | None = None
    run_id: str | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {"model": self.model, "prompts": self.prompts, "written": self.written, "skipped": self.skipped,
                "failed": dict(self.failed), "tokens": self.tokens, "seconds": round(self.seconds, 3),
                "tokens_per_s": round(self.tokens_per_s, 1), "seed": self.seed, "run_id": self.run_id}


def read_prompt_file(path: str | Path, tags: Sequence[str] = ()) -> list[Prompt]:
    """Prompts from JSONL (`prompt`: text or chat messages; optional `tags`, `meta`, `id`) or a text file.

    A text file holds one prompt per line (blank lines skipped). Every line is
    checked before anything is stored, and an error names the line.
    """
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"no prompt file at {p}")
    lines = p.read_text(encoding="utf-8").splitlines()
    jsonl = p.suffix in (".jsonl", ".json")
    out = []
    for no, line in enumerate(lines, 1):
        if line.strip():
            out.append(_jsonl_prompt(line, f"{p}:{no}", tags) if jsonl else Prompt(text=line, tags=list(tags)))
    if not out:
        raise InvalidInput("the file holds no prompts", where=str(p))
    return out


def _jsonl_prompt(line: str, where: str, tags: Sequence[str]) -> Prompt:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"not JSON: {e}", where=where) from None
    if not isinstance(row, dict) or "prompt" not in row:
        raise InvalidInput('each line must be an object with a "prompt" (text or chat messages)', where=where)
    value = row["prompt"]
    form = {"text": value} if isinstance(value, str) else {"messages": value}
    try:
        return Prompt(**form, id=row.get("id"), tags=[*row.get("tags", []), *tags], meta=row.get("meta", {}))
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"bad prompt: {e}", where=where) from None


def response_id(prompt_id: str, model, params: GenParams, j: int) -> str:
    p = {k: v for k, v in params.as_dict().items() if k != "n"}
    return "r-" + digest({"prompt": prompt_id, "model": model.name, "revision": model.revision,
                          "params": p, "sample": j}, 24)


def _existing(store, ids: list[str]) -> set[str]:
    from heedful.store import tables as t
    found: set[str] = set()
    with store.engine.connect() as conn:
        for i in range(0, len(ids), 500):
            q = sa.select(t.responses.c.id).where(t.responses.c.id.in_(ids[i:i + 500]))
            found.update(conn.execute(q).scalars())
    return found


def generate_into_store(store, model, prompts: Sequence[Prompt], params: GenParams, *, chunk: int = 32,
                        progress: Progress | None = None) -> GenSummary:
    """Sample `params.n` responses per prompt into `store`; resumable (see the module docstring)."""
    seed = params.seed if params.seed is not None else secrets.randbits(31)
    params = GenParams(**{**params.as_dict(), "seed": seed, "stop": tuple(params.stop)})
    written = store.write(prompts=prompts)
    pids = written.prompt_ids
    ids = {pid: [response_id(pid, model, params, j) for j in range(params.n)] for pid in pids}
    have = _existing(store, [i for v in ids.values() for i in v])
    todo = [i for i, pid in enumerate(pids) if any(r not in have for r in ids[pid])]
    s = GenSummary(model=model.name, prompts=len(pids), seed=seed, skipped=sum(len(v) for v in ids.values()))
    s.skipped -= sum(r not in have for i in todo for r in ids[pids[i]])
    config = {"model": model.name, "revision": model.revision, "params": params.as_dict(), "prompts": len(pids)}
    s.run_id = store.start_run("generate", name=model.name, config=config, seed=seed)
    t0 = time.perf_counter()
    try:
        for k in range(0, len(todo), chunk):
            part = todo[k:k + chunk]
            outs = model.generate([prompts[i].content() for i in part], params)
            _write(store, model, params, [pids[i] for i in part], outs, ids, have, s)
            s.seconds = time.perf_counter() - t0
            if progress:
                progress(min(k + chunk, len(todo)), len(todo), s.tokens)
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        store.finish_run(s.run_id, status=status, metrics=s.as_dict(), error=repr(e)[:2000])
        raise
    store.finish_run(s.run_id, metrics=s.as_dict())
    return s


def _write(store, model, params: GenParams, pids: list[str], outs: list[list[Completion]], ids: dict,
           have: set[str], s: GenSummary) -> None:
    rows = []
    for pid, cs in zip(pids, outs):
        for j, c in enumerate(cs):
            s.tokens += 0 if c.meta.get("cached") else c.completion_tokens
            if c.finish_reason == "error" or c.error:
                s.failed[(c.error or "error").split(":")[0][:80]] += 1
            elif ids[pid][j] not in have:
                rows.append(_row(ids[pid][j], pid, model, params, j, c))
    s.written += store.write(responses=rows).new["responses"]


def _row(rid: str, pid: str, model, params: GenParams, j: int, c: Completion) -> dict:
    meta = {"sample_index": j, "finish_reason": c.finish_reason, "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens}
    if c.logprob is not None:
        meta["logprob"] = round(c.logprob, 4)
    return {"id": rid, "prompt_id": pid, "text": c.text, "model": model.name, "model_revision": model.revision,
            "params": params.as_dict(), "meta": meta}
