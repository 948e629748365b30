"""Best-of-n: sample n answers, score them with a reward model, a judge or verifiers, keep the best.

The cheapest use of a reward signal without touching the weights (the
"rejection sampling" baseline of the RLHF papers). All n samples are stored
as responses; the scorer's own feedback (ratings, verdicts, outcomes) is
stored with them, and one `ranking` row per prompt records the order the
scores gave, with the scores and the pick in its meta, so the choice can be
audited, and used later as ranking data for training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heedful.errors import InvalidInput
from heedful.learn.infer.common import generate, prompt_input, store_completions
from heedful.models.base import GenParams, Model
from heedful.schema import Prompt, digest


@dataclass
class Pick:
    prompt_id: str
    best_id: str
    best_text: str
    response_ids: list[str]
    scores: list[float | None]
    feedback_ids: list[str] = field(default_factory=list)


def ranks(scores: list[float | None]) -> list[int]:
    """Competition ranks, 1 = best; equal scores share a rank; unscored responses rank last."""
    keyed = [float("-inf") if s is None else s for s in scores]
    return [1 + sum(k > mine for k in keyed) for mine in keyed]


def best_of_n(store, model: Model, prompts: list[Prompt], scorer, *, n: int = 4,
              params: GenParams | None = None, seed: int = 0) -> list[Pick]:
    """For each prompt: n samples from `model`, scored by `scorer`; the best one (first on ties) is the pick."""
    if n < 2:
        raise InvalidInput(f"best-of-n needs n >= 2, got {n}")
    base = params or GenParams(temperature=0.8, top_p=0.95, max_new_tokens=256)
    gp = GenParams(**{**base.as_dict(), "n": n, "seed": seed if base.seed is None else base.seed,
                      "stop": tuple(base.stop)})
    config = {"n": n, "scorer": f"{scorer.source_type}:{scorer.name}", "model": model.name,
              "model_revision": model.revision, "params": gp.as_dict()}
    run_id = store.start_run("infer", name="best_of_n", config=config, seed=gp.seed,
                             inputs=[("model", model.name)])
    try:
        picks = [_one(store, model, p, group, gp, scorer, run_id)
                 for p, group in zip(prompts, generate(model, [prompt_input(p) for p in prompts], gp))]
    except BaseException as e:
        store.finish_run(run_id, status="failed", error=f"{type(e).__name__}: {e}"[:2000])
        raise
    scored = [s for p in picks for s in p.scores if s is not None]
    store.finish_run(run_id, metrics={"prompts": len(picks), "samples": len(picks) * n,
                                      "mean_best": _mean([p.scores[p.response_ids.index(p.best_id)] for p in picks]),
                                      "mean_sample": _mean(scored)},
                     outputs=[("response", p.best_id) for p in picks])
    return picks


def _one(store, model, prompt: Prompt, completions, gp: GenParams, scorer, run_id: str) -> Pick:
    responses = store_completions(store, prompt.id, completions, model, gp, {"method": "best_of_n", "run": run_id})
    scored = scorer.score(store, prompt, responses)
    order = ranks(scored.scores)
    best = responses[order.index(1)]
    ids = [r.id for r in responses]
    row = {"id": f"f-bon-{digest({'scorer': scorer.name, 'targets': ids, 'run': run_id})}", "kind": "ranking",
           "value": {"ranks": order}, "response_ids": ids,
           "source": {"type": scorer.source_type, "name": f"best-of-n:{scorer.name}"},
           "provenance": {"extra": {"scores": scored.scores, "scorer_feedback": scored.feedback_ids}},
           "meta": {"picked": best.id, "run": run_id}}
    fid = store.write(feedback=[row]).feedback_ids[0]
    return Pick(prompt.id, best.id, best.text, ids, scored.scores, [*scored.feedback_ids, fid])


def _mean(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
