"""Critique → refine: a judge critiques an answer, the model revises it, for up to k rounds.

Self-Refine / ILF-style refinement at inference time. Each round the critic
(a critique judge, by default the bundled `critique`) comments on every
unfinished draft in one batched call; the policy then rewrites all of them in
one batched call, seeing its draft as an assistant turn and the critique as
the next user turn, so chat and API models get the same conversation. A
prompt stops when the critique says it is satisfied (`satisfied_pattern`), a
rating judge scores the draft at least `stop_score`, the critic gives no
usable critique, or k rounds are done. Every draft is a stored response whose
parent is the draft it revises (`meta.revises`), every critique a stored
feedback row, so the chain can be replayed and trained on (heedful.build's
`refinement` rule reads exactly this).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from heedful.errors import InvalidInput
from heedful.learn.infer.common import generate, judge_rows, prompt_input, store_completions
from heedful.models.base import GenParams, Model
from heedful.schema import Prompt, Response

SATISFIED = re.compile(
    r"\b(?:no (?:further )?(?:issues|mistakes|errors|changes|improvements?)(?: (?:are )?(?:needed|required))?\b"
    r"|nothing to (?:improve|change|fix)|looks (?:good|great|correct)|lgtm"
    r"|(?:response|answer) is (?:already )?(?:correct|complete|perfect))", re.I)
REVISE = ("Here is feedback on your answer:\n{critique}\n\n"
          "Write an improved answer to my original request that addresses this feedback. "
          "Reply with the improved answer only.")


@dataclass
class Step:
    round: int
    response_id: str
    text: str
    critique_id: str | None = None
    critique: str | None = None
    score: float | None = None
    satisfied: bool = False


@dataclass
class Refined:
    prompt_id: str
    steps: list[Step] = field(default_factory=list)
    stopped: str = "rounds"  # satisfied | score | no critique | rounds

    @property
    def final(self) -> Step:
        return self.steps[-1]


def revision_prompt(prompt: Prompt, draft: str, critique: str, template: str = REVISE):
    """The conversation the model revises in: the request, its draft, then the critique as a user turn."""
    chat = prompt_input(prompt)
    chat = [{"role": "user", "content": chat}] if isinstance(chat, str) else list(chat)
    return [*chat, {"role": "assistant", "content": draft}, {"role": "user", "content": template.format(critique=critique)}]


def refine(store, model: Model, prompts: list[Prompt], critic, *, rounds: int = 2, params: GenParams | None = None,
           rater=None, stop_score: float | None = None, satisfied_pattern: re.Pattern | None = SATISFIED,
           drafts: dict[str, Response] | None = None, seed: int = 0) -> list[Refined]:
    """Refine each prompt's draft (generated, or given in `drafts` by prompt id) for up to `rounds` rounds."""
    if rounds < 1:
        raise InvalidInput(f"rounds must be >= 1, got {rounds}")
    if critic.kind != "critique":
        raise InvalidInput(f"judge {critic.name!r} gives {critic.kind}s; the critic must be a critique judge")
    if rater is not None and (rater.kind != "rating" or stop_score is None):
        raise InvalidInput("a stop rater must be a rating judge and needs stop_score")
    stray = set(drafts or {}) - {p.id for p in prompts}
    if stray:
        raise InvalidInput(f"drafts given for prompt(s) not being refined: {', '.join(sorted(stray))}")
    gp = params or GenParams(temperature=0.0, max_new_tokens=256, seed=seed)
    config = {"model": model.name, "critic": critic.name, "rounds": rounds, "rater": rater and rater.name,
              "stop_score": stop_score, "pattern": satisfied_pattern and satisfied_pattern.pattern, "params": gp.as_dict()}
    run_id = store.start_run("infer", name="refine", config=config, seed=seed, inputs=[("model", model.name)])
    try:
        out = _refine(store, model, prompts, critic, rounds, gp, rater, stop_score, satisfied_pattern,
                      drafts or {}, run_id)
    except BaseException as e:
        store.finish_run(run_id, status="failed", error=f"{type(e).__name__}: {e}"[:2000])
        raise
    store.finish_run(run_id, metrics=_metrics(out), outputs=[("response", r.final.response_id) for r in out])
    return out


def _refine(store, model, prompts, critic, rounds, gp, rater, stop_score, pattern, drafts, run_id) -> list[Refined]:
    by_id = {p.id: p for p in prompts}
    results = {p.id: Refined(p.id) for p in prompts}
    todo = [p for p in prompts if p.id not in drafts]
    meta = {"method": "refine", "run": run_id}
    for p, group in zip(todo, generate(model, [prompt_input(p) for p in todo], gp) if todo else []):
        r = store_completions(store, p.id, group[:1], model, gp, {**meta, "round": 0})[0]
        results[p.id].steps.append(Step(0, r.id, r.text))
    for pid, r in drafts.items():
        results[pid].steps.append(Step(0, r.id, r.text))
    active = [results[p.id] for p in prompts]
    for k in range(1, rounds + 1):
        active = _judge(store, critic, rater, stop_score, pattern, by_id, active)
        if not active:
            break
        asks = [revision_prompt(by_id[r.prompt_id], r.final.text, r.final.critique) for r in active]
        for res, group in zip(active, generate(model, asks, gp)):
            prev = res.final
            new = store_completions(store, res.prompt_id, group[:1], model, gp,
                                    {**meta, "round": k, "revises": prev.response_id, "critique": prev.critique_id},
                                    parent_id=prev.response_id)[0]
            res.steps.append(Step(k, new.id, new.text))
    _judge(store, critic, rater, stop_score, pattern, by_id, active)  # the last drafts get their verdict too
    return [results[p.id] for p in prompts]


def _judge(store, critic, rater, stop_score, pattern, prompts, active: list[Refined]) -> list[Refined]:
    """Critique (and rate) each active chain's last draft; return the chains that go on."""
    if not active:
        return []
    from heedful.annotate.judges.judge import Item
    items = [Item(prompts[r.prompt_id], (store.get_response(r.final.response_id),)) for r in active]
    rows = judge_rows(store, critic, items)
    scores = _scores(store, rater, items) if rater is not None else [None] * len(active)
    going = []
    for res, row, score in zip(active, rows, scores):
        step = res.final
        step.critique_id, step.score = row["id"], score
        step.critique = row["value"]["text"] if row["value"] else None
        step.satisfied = bool(step.critique and pattern is not None and pattern.search(step.critique))
        if step.critique is None:
            res.stopped = "no critique"
        elif step.satisfied:
            res.stopped = "satisfied"
        elif score is not None and score >= stop_score:
            res.stopped = "score"
        else:
            going.append(res)
    return going


def _scores(store, rater, items) -> list[float | None]:
    """The mean rating over the rater's aspects, on its own scale."""
    rows = judge_rows(store, rater, items)
    got: dict[str, list[float]] = {}
    for row in rows:
        if row["value"] is not None:
            got.setdefault(row["response_ids"][0], []).append(row["value"]["score"])
    return [sum(v) / len(v) if (v := got.get(it.responses[0].id)) else None for it in items]


def _metrics(out: list[Refined]) -> dict:
    from collections import Counter
    return {"prompts": len(out), "revisions": sum(len(r.steps) - 1 for r in out),
            "stopped": dict(Counter(r.stopped for r in out))}
