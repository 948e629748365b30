"""Feedback memory: past corrections and critiques, found by similarity, given as guidance.

A model that was corrected once on a kind of request should not need the
same correction again. The memory holds every stored `correction` (what the
answer became) and `critique` (what was wrong with it), keyed by the
embedding of the prompt they were about. For a new prompt the nearest
lessons above a similarity floor go into a system message ahead of the
request; the model's answer is stored with the ids and similarities of the
lessons it was shown, so the memory's effect can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heedful.errors import InvalidInput
from heedful.learn.infer.common import generate, prompt_input, prompt_text, store_completions, with_system
from heedful.models.base import GenParams, Model
from heedful.schema import Prompt

KINDS = ("correction", "critique")
HEADER = ("Feedback that reviewers gave on earlier answers to similar requests. "
          "Learn from it when you answer the next request.")


@dataclass(frozen=True)
class Lesson:
    feedback_id: str
    prompt_id: str
    request: str
    kind: str  # correction | critique
    answer: str  # the answer the feedback was about
    feedback: str  # the corrected text, or the critique


@dataclass
class Recall:
    prompt_id: str
    response_id: str
    text: str
    lessons: list[tuple[str, float]] = field(default_factory=list)  # (feedback id, similarity)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1] + "…"


class FeedbackMemory:
    """Lessons and their prompt embeddings (rows of a unit-norm matrix)."""

    def __init__(self, lessons: list[Lesson], embedder):
        self.lessons, self.embedder = lessons, embedder
        self.vectors = embedder.encode([l.request for l in lessons]) if lessons else np.zeros((0, 1), np.float32)

    @classmethod
    def from_store(cls, store, embedder, *, kinds=KINDS, tag: str | None = None,
                   source_type: str | None = None) -> FeedbackMemory:
        """Every correction and critique in the store (optionally only on prompts with `tag`, from one source type)."""
        bad = set(kinds) - set(KINDS)
        if bad:
            raise InvalidInput(f"the memory holds {', '.join(KINDS)} feedback, not {', '.join(sorted(bad))}")
        lessons, prompts = [], {}
        for kind in kinds:
            for fb in store.feedback(kind=kind, tag=tag, source_type=source_type):
                if fb.value is None:
                    continue
                r = store.get_response(fb.response_ids[0])
                if r.prompt_id not in prompts:
                    prompts[r.prompt_id] = prompt_text(store.get_prompt(r.prompt_id))
                lessons.append(Lesson(fb.id, r.prompt_id, prompts[r.prompt_id], kind, r.text, fb.value.text))
        return cls(lessons, embedder)

    def __len__(self) -> int:
        return len(self.lessons)

    def search(self, request: str, k: int = 3, min_similarity: float = 0.5,
               exclude_prompt: str | None = None) -> list[tuple[Lesson, float]]:
        """The k most similar lessons at or above `min_similarity` (cosine), best first."""
        if not self.lessons:
            return []
        sims = self.vectors @ self.embedder.encode([request])[0]
        order = np.argsort(-sims, kind="stable")
        hits = [(self.lessons[i], float(sims[i])) for i in order
                if sims[i] >= min_similarity and self.lessons[i].prompt_id != exclude_prompt]
        return hits[:k]

    @staticmethod
    def guidance(hits: list[tuple[Lesson, float]], max_chars: int = 400) -> str | None:
        """The system message for these lessons (None when there are none)."""
        if not hits:
            return None
        lines = [HEADER]
        for i, (l, _) in enumerate(hits, 1):
            ask, ans, fb = _clip(l.request, max_chars), _clip(l.answer, max_chars), _clip(l.feedback, max_chars)
            if l.kind == "correction":
                lines.append(f'{i}. Request: "{ask}"\n   An answer "{ans}" was corrected to: "{fb}"')
            else:
                lines.append(f'{i}. Request: "{ask}"\n   An answer "{ans}" got this feedback: "{fb}"')
        return "\n".join(lines)


def answer_with_memory(store, model: Model, prompts: list[Prompt], memory: FeedbackMemory, *, k: int = 3,
                       min_similarity: float = 0.5, exclude_same_prompt: bool = False,
                       params: GenParams | None = None, seed: int = 0) -> list[Recall]:
    """Answer each prompt with the lessons most like it as a system message; store the answers."""
    gp = params or GenParams(temperature=0.0, max_new_tokens=256, seed=seed)
    hits = [memory.search(prompt_text(p), k, min_similarity, p.id if exclude_same_prompt else None) for p in prompts]
    asks = [with_system(prompt_input(p), memory.guidance(h)) for p, h in zip(prompts, hits)]
    config = {"model": model.name, "embedder": memory.embedder.name, "k": k, "min_similarity": min_similarity,
              "lessons": len(memory), "params": gp.as_dict()}
    run_id = store.start_run("infer", name="memory", config=config, seed=seed, inputs=[("model", model.name)])
    try:
        out = []
        for p, h, group in zip(prompts, hits, generate(model, asks, gp)):
            used = [(l.feedback_id, round(s, 4)) for l, s in h]
            meta = {"method": "memory", "run": run_id, "lessons": [f for f, _ in used],
                    "similarities": [s for _, s in used]}
            r = store_completions(store, p.id, group[:1], model, gp, meta)[0]
            out.append(Recall(p.id, r.id, r.text, used))
    except BaseException as e:
        store.finish_run(run_id, status="failed", error=f"{type(e).__name__}: {e}"[:2000])
        raise
    store.finish_run(run_id, metrics={"prompts": len(out), "with_lessons": sum(bool(r.lessons) for r in out)},
                     outputs=[("response", r.response_id) for r in out])
    return out
