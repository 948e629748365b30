"""A scripted model for tests: enqueue answers, or give a function of the prompt.

    m = FakeModel(["A", "B"])          # answers in order, then repeats the last
    m = FakeModel(lambda prompt, i: "yes")
    m = FakeModel(scores=lambda prompt, completion: -len(completion))   # scripted `logprobs`
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from heedful.models.base import Completion, GenParams, PromptLike, as_chat


class FakeModel:
    """Deterministic, instant, and records every prompt it was asked."""

    def __init__(self, answers: Sequence[str] | Callable[[PromptLike, int], str] = ("ok",),
                 name: str = "fake", revision: str | None = None,
                 scores: Callable[[PromptLike, str], float] | None = None):
        self.name = name
        self.revision = revision
        self.fn = answers if callable(answers) else None
        self.queue = deque([] if callable(answers) else answers)
        self.last = None if callable(answers) else (answers[-1] if answers else "")
        self.calls: list[PromptLike] = []
        self.scores = scores
        self.scored: list[tuple[PromptLike, str]] = []
        self.logprob_batches: list[int] = []

    def enqueue(self, *answers: str) -> None:
        self.queue.extend(answers)

    def _next(self, prompt: PromptLike, i: int) -> str:
        if self.fn is not None:
            return self.fn(prompt, i)
        if self.queue:
            self.last = self.queue.popleft()
        return self.last or ""

    def generate(self, prompts: Sequence[PromptLike], params: GenParams) -> list[list[Completion]]:
        out = []
        for p in prompts:
            self.calls.append(p)
            texts = [self._next(p, i) for i in range(params.n)]
            out.append([Completion(text=t, prompt_tokens=_words(p), completion_tokens=len(t.split()))
                        for t in texts])
        return out

    def logprobs(self, prompts: Sequence[PromptLike], completions: Sequence[str]) -> list[float]:
        """`scores(prompt, completion)` when given, else a stand-in: shorter is likelier (-1 per word)."""
        self.logprob_batches.append(len(completions))
        self.scored += list(zip(prompts, completions))
        if self.scores is not None:
            return [float(self.scores(p, c)) for p, c in zip(prompts, completions)]
        return [-float(len(c.split())) for c in completions]


def _words(prompt: PromptLike) -> int:
    return sum(len(m["content"].split()) for m in as_chat(prompt))
