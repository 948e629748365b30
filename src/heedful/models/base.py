"""One protocol for every text-generation backend: batched generation and log-probs.

Judges, simulated annotators, rerankers, the refine loop and the online
training loop all talk to a `Model`; whether it is the embedded SmolLM2, an
OpenAI-compatible endpoint or a scripted fake is a matter of the name it was
built from (see heedful.models.get_model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, Union, runtime_checkable

Chat = list[dict]  # [{"role": ..., "content": ...}, ...]
PromptLike = Union[str, Chat]


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters; `temperature == 0` means greedy."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"n": self.n, "temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "seed": self.seed, "stop": list(self.stop)}


@dataclass
class Completion:
    """One generated text with what it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    latency_s: float = 0.0
    error: str | None = None
    logprob: float | None = None  # sum of log p(token) under the model (temperature 1), where known
    meta: dict = field(default_factory=dict)


@runtime_checkable
class Model(Protocol):
    """What every backend provides."""

    name: str
    revision: str | None

    def generate(self, prompts: Sequence[PromptLike], params: GenParams) -> list[list[Completion]]:
        """`params.n` completions for each prompt, in prompt order."""
        ...

    def logprobs(self, prompts: Sequence[PromptLike], completions: Sequence[str]) -> list[float]:
        """Sum of log p(completion | prompt) for each (prompt, completion) pair."""
        ...


def as_chat(prompt: PromptLike) -> Chat:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
