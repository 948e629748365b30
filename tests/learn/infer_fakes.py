"""Scripted judges for the inference-time tests: FakeModels that read the rendered judge prompt."""

from __future__ import annotations

import re

from heedful.annotate.judges.config import scan
from heedful.annotate.judges.judge import Judge
from heedful.models import FakeModel


def content(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)


def judged_output(prompt) -> str:
    """The single response a rating/critique template shows."""
    return content(prompt).split("Response:\n", 1)[1]


def outputs_ab(prompt) -> tuple[str, str]:
    m = re.search(r"Output \(a\):\n(.*?)\n\nOutput \(b\):\n(.*?)\n\n", content(prompt), re.S)
    return m.group(1), m.group(2)


def judge(name: str, fn) -> Judge:
    return Judge(scan().judge(name), FakeModel(lambda p, i: fn(p), name=f"fake-{name}"))


def paris_rater() -> Judge:
    return judge("rubric", lambda p: "Rating: 9" if "Paris" in judged_output(p) else "Rating: 2")


def paris_pairwise() -> Judge:
    def verdict(p):
        a, b = outputs_ab(p)
        return "[[A]]" if "Paris" in a and "Paris" not in b else "[[B]]" if "Paris" in b and "Paris" not in a else "[[C]]"
    return judge("pairwise", verdict)
