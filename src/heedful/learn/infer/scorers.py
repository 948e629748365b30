"""Scorers for best-of-n: a reward model, a judge, or verifiers, each behind `score(store, prompt, responses)`.

A scorer returns one number per response (higher is better; None where it
could not say) and the ids of the feedback rows it wrote on the way: a judge
writes its ratings or pairwise verdicts, verifiers their outcomes. A reward
model writes nothing per sample; its scores go into the ranking row that
best-of-n writes for the pick.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from heedful.errors import InvalidInput, NotFound
from heedful.schema import Prompt, Response


@dataclass
class Scored:
    scores: list[float | None]
    feedback_ids: list[str] = field(default_factory=list)


class JudgeScorer:
    """A rating judge (mean rating over its aspects, on [0, 1]) or a pairwise judge (wins over all pairs)."""

    def __init__(self, judge, *, seed: int = 0):
        if judge.kind not in ("rating", "preference"):
            raise InvalidInput(f"judge {judge.name!r} gives {judge.kind}s; best-of-n needs a rating or pairwise judge")
        self.judge, self.seed = judge, seed
        self.source_type, self.name = "ai", judge.name

    def score(self, store, prompt: Prompt, responses: list[Response]) -> Scored:
        from heedful.annotate.judges.judge import Item
        if self.judge.kind == "rating":
            items = [Item(prompt, (r,)) for r in responses]
        else:
            items = [Item(prompt, pair) for pair in itertools.combinations(responses, 2)]
        from heedful.learn.infer.common import judge_rows
        rows = judge_rows(store, self.judge, items, seed=self.seed)
        return Scored(self._scores(rows, responses), [r["id"] for r in rows])

    def _scores(self, rows: list[dict], responses: list[Response]) -> list[float | None]:
        got: dict[str, list[float]] = {r.id: [] for r in responses}
        for row in rows:
            v = row["value"]
            if v is None:
                continue
            if self.judge.kind == "rating":
                lo, hi = v["scale"]
                got[row["response_ids"][0]].append((v["score"] - lo) / (hi - lo))
            else:
                a, b = row["response_ids"]
                wins = {"a": (1.0, 0.0), "b": (0.0, 1.0), "tie": (0.5, 0.5)}[v["choice"]]
                got[a].append(wins[0])
                got[b].append(wins[1])
        return [sum(got[r.id]) / len(got[r.id]) if got[r.id] else None for r in responses]


class VerifierScorer:
    """Verifiers (heedful.annotate.verifiers): the mean outcome score of the named checks."""

    def __init__(self, checks: list[str], params: dict[str, dict] | None = None):
        from heedful.annotate.verifiers import spec
        if not checks:
            raise InvalidInput("give at least one verifier check")
        for c in checks:
            spec(c)  # unknown names fail here, with did-you-mean
        self.checks, self.params = list(checks), params or {}
        self.source_type, self.name = "verifier", ",".join(checks)

    def score(self, store, prompt: Prompt, responses: list[Response]) -> Scored:
        from heedful.annotate.verifiers import run_checks
        run_checks(store, self.checks, responses, params=self.params)
        scores, fids = [], []
        for r in responses:
            vals = []
            for fb in store.feedback(response_id=r.id, kind="outcome", source_type="verifier"):
                if fb.source.name in self.checks and fb.value is not None:
                    fids.append(fb.id)
                    v = fb.value
                    vals.append(v.score if v.score is not None else float(bool(v.passed)))
            scores.append(sum(vals) / len(vals) if vals else None)
        return Scored(scores, fids)


class RewardModelScorer:
    """A sequence-classification reward model folder (from `heedful train reward`).

    Inputs are formed as TRL's RewardTrainer formed them in training: a chat
    prompt plus the answer as an assistant turn through the chat template, a
    text prompt concatenated with the answer.
    """

    def __init__(self, path: str | os.PathLike, *, batch_size: int = 8, max_length: int = 1024):
        self.path = Path(path).expanduser()
        if not (self.path / "config.json").is_file():
            raise NotFound(f"no reward model at {self.path} (expected a folder with config.json from `heedful train reward`)")
        self.batch_size, self.max_length = batch_size, max_length
        self.source_type, self.name = "ai", f"reward-model:{self.path.name}"
        self._model = self._tok = None

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
            self._tok = AutoTokenizer.from_pretrained(str(self.path))
            if self._tok.pad_token is None:
                self._tok.pad_token = self._tok.eos_token
            self._model = AutoModelForSequenceClassification.from_pretrained(str(self.path), dtype=torch.float32).eval()
            if self._model.config.pad_token_id is None:
                self._model.config.pad_token_id = self._tok.pad_token_id
        return self._model, self._tok

    def encode(self, prompt: Prompt, text: str) -> list[int]:
        _, tok = self._load()
        if prompt.messages is not None:
            chat = [m.model_dump() for m in prompt.messages] + [{"role": "assistant", "content": text}]
            ids = tok.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]
        else:
            ids = tok(prompt.text + text)["input_ids"]
        return list(ids)[-self.max_length:]

    def rewards(self, prompt: Prompt, texts: list[str]) -> list[float]:
        import torch
        model, tok = self._load()
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                feats = [{"input_ids": self.encode(prompt, t)} for t in texts[i:i + self.batch_size]]
                batch = tok.pad(feats, return_tensors="pt", padding_side="right")
                out += model(**batch).logits[:, 0].float().tolist()
        return out

    def score(self, store, prompt: Prompt, responses: list[Response]) -> Scored:
        return Scored(self.rewards(prompt, [r.text for r in responses]))


def make_scorer(spec: str, *, judge_model: str | None = None, judges_dir=None, params: dict | None = None, seed: int = 0):
    """`judge:NAME`, `verify:CHECK[,CHECK]` or `rm:PATH` → a scorer."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise InvalidInput(f"scorer {spec!r} must look like judge:NAME, verify:CHECK[,CHECK] or rm:PATH")
    if kind == "rm":
        return RewardModelScorer(rest)
    if kind == "verify":
        return VerifierScorer([c.strip() for c in rest.split(",") if c.strip()], params)
    if kind == "judge":
        from heedful.annotate.registry import Resolver
        return JudgeScorer(Resolver(judges_dir=list(judges_dir or []), judge_model=judge_model).judge(rest), seed=seed)
    from heedful.errors import UnknownName
    raise UnknownName("scorer kind", kind, ["judge", "verify", "rm"])
