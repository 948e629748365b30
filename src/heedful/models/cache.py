"""A persistent completion cache, so repeated loops and judge runs never pay twice.

    model = CachedModel(get_model("smollm2"))      # $HEEDFUL_CACHE/completions.db

Keyed by model name + revision + sampling parameters (without n) + prompt +
sample index. Only reproducible work is cached: greedy decoding, or sampling
with a seed; unseeded sampling is passed through. Completions that failed
(finish_reason "error") are never stored. The file is plain SQLite (stdlib
sqlite3: one table, no need for the store's machinery) in WAL mode, so several
processes can share it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from heedful.models.base import Completion, GenParams, PromptLike
from heedful.models.hf import cache_root
from heedful.schema import digest

SCHEMA = "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, model TEXT, value TEXT NOT NULL)"


def default_path() -> Path:
    return cache_root() / "completions.db"


class CachedModel:
    """Wraps any Model; `hits` and `misses` count cache lookups."""

    def __init__(self, model, path: str | os.PathLike | None = None):
        self.inner = model
        self.name, self.revision = model.name, model.revision
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)
        self.hits = self.misses = 0

    def close(self) -> None:
        self.db.close()

    def __getattr__(self, name: str):
        """Everything else (tokenizer, score_ids, batch_size, ...) is the wrapped model's."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _key(self, kind: str, prompt: PromptLike, extra: dict) -> str:
        return digest({"kind": kind, "model": self.name, "revision": self.revision,
                       "prompt": prompt, **extra})

    def _get(self, keys: list[str]) -> dict[str, str]:
        out = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            q = f"SELECT key, value FROM completions WHERE key IN ({','.join('?' * len(part))})"
            out.update(self.db.execute(q, part).fetchall())
        return out

    def _put(self, items: list[tuple[str, str]]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO completions (key, model, value) VALUES (?, ?, ?)",
                                [(k, self.name, v) for k, v in items])

    def generate(self, prompts: Sequence[PromptLike], params: GenParams) -> list[list[Completion]]:
        if params.temperature > 0 and params.seed is None:
            return self.inner.generate(prompts, params)
        p = {k: v for k, v in params.as_dict().items() if k != "n"}
        keys = [[self._key("gen", pr, {"params": p, "sample": j}) for j in range(params.n)] for pr in prompts]
        found = self._get([k for ks in keys for k in ks])
        todo = [i for i, ks in enumerate(keys) if any(k not in found for k in ks)]
        self.hits += sum(k in found for ks in keys for k in ks)
        self.misses += sum(k not in found for ks in keys for k in ks)
        fresh = dict(zip(todo, self.inner.generate([prompts[i] for i in todo], params))) if todo else {}
        new = [(keys[i][j], json.dumps(asdict(c))) for i, cs in fresh.items() for j, c in enumerate(cs)
               if c.finish_reason != "error" and keys[i][j] not in found]
        self._put(new)
        return [fresh[i] if i in fresh else [_cached(found[k]) for k in ks] for i, ks in enumerate(keys)]

    def logprobs(self, prompts: Sequence[PromptLike], completions: Sequence[str]) -> list[float]:
        keys = [self._key("logprob", p, {"completion": c}) for p, c in zip(prompts, completions)]
        found = self._get(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            scores = self.inner.logprobs([prompts[i] for i in todo], [completions[i] for i in todo])
            self._put([(keys[i], json.dumps(s)) for i, s in zip(todo, scores)])
            found.update({keys[i]: json.dumps(s) for i, s in zip(todo, scores)})
        return [json.loads(found[k]) for k in keys]


def _cached(value: str) -> Completion:
    c = Completion(**json.loads(value))
    return replace(c, meta={**c.meta, "cached": True})
