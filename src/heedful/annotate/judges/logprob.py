"""Preference verdicts read from log-probabilities instead of generated text.

Why: a small judge model (the embedded SmolLM2-135M) asked for "[[A]]" or
"[[B]]" mostly echoes the answers, so a text judge leaves most pairs
missing. AlpacaEval's "weighted" judges avoid that by reading the
probability of each verdict token. Here the judge's chat ends where the
verdict would start (the config's `answer_prefix`, e.g. "The better output
is Output (") and the model's `logprobs` API scores each allowed choice
(`choices`, e.g. {a: "a", b: "b"}) as a completion of that prompt. A softmax
over the choices gives the verdict's distribution: the choice is its argmax
and `prob_b` (P(the canonical second response is better)) is the soft label,
with a tie's mass split evenly when a `tie` choice exists.

`decision: likelihood` is the cloze form of the same idea (how small models
are evaluated on multiple-choice sets): the prompt holds the instruction
only, and each response is scored as the completion of `answer_prefix`,
divided by its length in characters so that short answers are not favoured
by length alone; the softmax of those per-character scores is a ranking
score, not a calibrated probability. On SmolLM2-135M the verdict-token form
was near chance on obvious pairs while the likelihood form picked most
correct answers (bench/judge.py prints both).

All choices of all pairs in a chunk go to one `logprobs` call (the backend
batches them). The shown order and its mapping back to the canonical pair are
the judge's (`shown_order`/`to_canonical`); nothing here knows about swaps
beyond reading `task.order`. A backend that cannot score given completions
(an OpenAI-compatible chat endpoint) yields missing verdicts whose reason
says so; nothing is guessed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence

from heedful.annotate.judges.judge import AB, Task, Verdict, to_canonical
from heedful.schema import VALUE_TYPES


def choice_texts(judge) -> dict[str, str]:
    """Shown verdict ("a", "b", "tie") -> the completion text scored for it (decision: logprobs)."""
    spec = judge.config.spec
    return {k: spec.answer_prefix + v for k, v in spec.choices.items()}


def completions(judge, task: Task) -> dict[str, str]:
    """What is scored for each shown verdict of `task`."""
    if judge.decision == "logprobs":
        return choice_texts(judge)
    shown = [task.item.responses[i].text for i in task.order]
    return {"a": judge.config.spec.answer_prefix + shown[0], "b": judge.config.spec.answer_prefix + shown[1]}


def judge_chunk(judge, tasks: Sequence[Task]) -> list[Verdict]:
    """Verdicts for `tasks` from one batched `logprobs` call (item by item if that call fails)."""
    texts = [completions(judge, t) for t in tasks]
    prompts = [judge.render(t) for t in tasks]
    t0 = time.perf_counter()
    try:
        scores = _score(judge.model, prompts, texts)
        per_item_s = (time.perf_counter() - t0) / max(1, len(tasks))
        return [verdict(judge, t, s, per_item_s) for t, s in zip(tasks, scores)]
    except Exception:  # isolate the bad item: retry one by one
        pass
    out = []
    for task, prompt, text in zip(tasks, prompts, texts):
        t0 = time.perf_counter()
        try:
            out.append(verdict(judge, task, _score(judge.model, [prompt], [text])[0], time.perf_counter() - t0))
        except Exception as e:
            out.append(Verdict(None, None, f"logprob scoring failed: {type(e).__name__}: {e}"[:500]))
    return out


def _score(model, prompts: list, texts: list[dict[str, str]]) -> list[dict[str, float]]:
    """{choice: logprob} per prompt; every completion of every prompt in one call."""
    flat_p = [p for p, t in zip(prompts, texts) for _ in t]
    flat = model.logprobs(flat_p, [c for t in texts for c in t.values()])
    if len(flat) != len(flat_p):
        raise ValueError(f"model returned {len(flat)} log-probabilities for {len(flat_p)} completions")
    out, i = [], 0
    for t in texts:
        out.append(dict(zip(t, flat[i:i + len(t)])))
        i += len(t)
    return out


def verdict(judge, task: Task, logprobs: dict[str, float], seconds: float) -> Verdict:
    """Softmax over the shown choices, mapped to the canonical pair; non-finite scores are missing."""
    record = {"logprobs": {k: _num(v) for k, v in logprobs.items()}}
    if judge.decision == "likelihood":
        chars = {k: max(1, len(task.item.responses[i].text)) for k, i in zip("ab", task.order)}
        record["chars"] = chars
    raw = json.dumps(record, sort_keys=True)
    latency = round(seconds * 1000, 3)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in logprobs.values()):
        return Verdict(None, raw, f"invalid log-probabilities from the model: {raw}"[:500], latency_ms=latency)
    if judge.decision == "likelihood":
        logprobs = {k: v / chars[k] for k, v in logprobs.items()}
    top = max(logprobs.values())
    weights = {k: math.exp(v - top) for k, v in logprobs.items()}
    total = sum(weights.values())
    probs = {k: w / total for k, w in weights.items()}
    ranked = sorted(probs, key=probs.get, reverse=True)
    if probs[ranked[0]] == probs[ranked[1]]:
        return Verdict(None, raw, f"choices {ranked[0]} and {ranked[1]} scored exactly equal", latency_ms=latency)
    shown = ranked[0]
    canon_b = probs["b"] if task.order == AB else probs["a"]
    prob_b = canon_b + probs.get("tie", 0.0) / 2
    value = {"choice": to_canonical(shown, task.order), "prob_b": min(1.0, max(0.0, prob_b))}
    value = VALUE_TYPES["preference"].model_validate(value).model_dump(mode="json", exclude_none=True)
    return Verdict(value, raw, None, latency_ms=latency, shown_choice=shown)


def _num(v):
    return round(v, 6) if isinstance(v, float) and math.isfinite(v) else str(v)
