"""Win rate of a model against a reference, from stored pairwise judgements or a judge run now.

The figures follow AlpacaEval (`alpaca_eval/metrics/helpers.py`,
`describe_head2head`), so heedful gives its leaderboard numbers from its own
annotation files:
- `win_rate`: mean over items of P(model wins) in percent. A weighted judge's
  soft label (`prob_b`) is used as it is; a hard verdict counts 1, a tie 1/2.
- `standard_error`: the SEM (ddof=1) of that per-item preference, in percent.
- `discrete_win_rate`: each verdict rounded to win/lose/tie (tie = exactly
  1/2) and ties counted as half.
- `ci_low`/`ci_high`: a seeded 95% percentile bootstrap over items.
- `length_controlled_win_rate`: AlpacaEval 2's GLM (see length_control).
An item is one prompt; several verdicts on it (both A/B orders, repeats) are
averaged first, so judging both orders does not double-count. Missing
verdicts (the judge gave none) are left out and counted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from heedful.errors import InvalidInput, NotFound
from heedful.evaluate.length_control import length_controlled
from heedful.evaluate.stats import bootstrap_mean, sem


@dataclass(frozen=True)
class Judgement:
    """One verdict on a (reference, model) pair, seen from the model's side."""

    item: str           # the prompt id
    p_model: float      # P(model's answer is better), in [0, 1]
    discrete: float     # 1 win, 0.5 tie, 0 loss
    len_model: int
    len_reference: int


@dataclass
class WinRate:
    model: str
    reference: str
    judge: str | None
    n: int
    win_rate: float
    standard_error: float
    discrete_win_rate: float
    ci_low: float
    ci_high: float
    length_controlled_win_rate: float
    n_wins: int = 0
    n_wins_base: int = 0
    n_draws: int = 0
    n_missing: int = 0
    n_judgements: int = 0
    glm: dict = field(default_factory=dict)
    judged_now: int = 0

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def from_value(value, model_is_b: bool) -> tuple[float, float]:
    """(soft, discrete) P(model wins) from a stored preference value."""
    choice, prob_b = value.choice, value.prob_b
    if prob_b is None:
        prob_b = {"a": 0.0, "b": 1.0, "tie": 0.5}[choice]
    disc_b = {"a": 0.0, "b": 1.0, "tie": 0.5}[choice]
    return (prob_b, disc_b) if model_is_b else (1 - prob_b, 1 - disc_b)


def compute(judgements: list[Judgement], *, model: str = "model", reference: str = "reference",
            judge: str | None = None, n_missing: int = 0, seed: int = 0, n_boot: int = 2000,
            difficulty: Mapping[str, float] | None = None) -> WinRate:
    """All the figures from per-verdict judgements (averaged per item first)."""
    items: dict[str, list[Judgement]] = {}
    for j in judgements:
        items.setdefault(j.item, []).append(j)
    keys = list(items)
    soft = np.array([np.mean([j.p_model for j in items[k]]) for k in keys])
    disc = np.array([np.mean([j.discrete for j in items[k]]) for k in keys])
    lm = [np.mean([j.len_model for j in items[k]]) for k in keys]
    lr = [np.mean([j.len_reference for j in items[k]]) for k in keys]
    boot = bootstrap_mean(soft, seed=seed, n_boot=n_boot).percent()
    diff = None
    if difficulty is not None:
        missing = [k for k in keys if k not in difficulty]
        if missing:
            raise InvalidInput(f"instruction difficulty is missing for {len(missing)} item(s), e.g. {missing[0]!r}")
        diff = [difficulty[k] for k in keys]
    lc = length_controlled(soft, lm, lr, diff)
    return WinRate(
        model=model, reference=reference, judge=judge, n=len(keys),
        win_rate=float(soft.mean() * 100) if len(keys) else math.nan,
        standard_error=sem(soft) * 100, discrete_win_rate=float(disc.mean() * 100) if len(keys) else math.nan,
        ci_low=boot.low, ci_high=boot.high, length_controlled_win_rate=lc.win_rate,
        n_wins=int((soft > 0.5).sum()), n_wins_base=int((soft < 0.5).sum()), n_draws=int((disc == 0.5).sum()),
        n_missing=n_missing, n_judgements=len(judgements), glm=lc.as_dict())


# --- from the store ----------------------------------------------------------------------

def _responses_by_id(store, model: str) -> dict:
    return {r.id: r for r in store.responses(model=model)}


def collect(store, model: str, reference: str,
            judge: str | None = None) -> tuple[list[Judgement], Counter, list[str]]:
    """Stored preference verdicts between `model` and `reference` answers.

    Returns (judgements, missing verdicts counted by reason, sources as "type:name").
    """
    mine, ref = _responses_by_id(store, model), _responses_by_id(store, reference)
    found, missing, sources = [], Counter(), set()
    for fb in store.feedback(kind="preference", model=model, source_name=judge):
        a, b = fb.response_ids
        if a in ref and b in mine:
            r_ref, r_mod, model_is_b = ref[a], mine[b], True
        elif a in mine and b in ref:
            r_mod, r_ref, model_is_b = mine[a], ref[b], False
        else:
            continue
        sources.add(f"{fb.source.type}:{fb.source.name}")
        if fb.value is None:
            missing[(fb.provenance.missing_reason or "unknown").split(" (")[0][:120]] += 1
            continue
        p, d = from_value(fb.value, model_is_b)
        found.append(Judgement(r_mod.prompt_id, p, d, len(r_mod.text), len(r_ref.text)))
    return found, missing, sorted(sources)


def pairs_to_judge(store, model: str, reference: str) -> list:
    """One Item (reference answer, model answer) per prompt both have answered (first answer of each)."""
    from heedful.annotate.judges.judge import Item
    mine, ref = {}, {}
    for r in store.responses(model=model):
        mine.setdefault(r.prompt_id, r)
    for r in store.responses(model=reference):
        ref.setdefault(r.prompt_id, r)
    return [Item(store.get_prompt(pid), (ref[pid], mine[pid])) for pid in mine if pid in ref]


def judge_pairs(store, model: str, reference: str, judge: str, *, seed: int = 0, both_orders: bool = False,
                resolver=None, progress: Callable[[int, int], None] | None = None) -> int:
    """Run `judge` on every (reference, model) pair not yet judged; store its verdicts. Returns rows written."""
    from heedful.annotate.registry import Resolver
    from heedful.annotate.run import chunks, existing_ids, jsonable
    resolver = resolver or Resolver()
    ann = resolver.resolve(judge)
    if getattr(ann, "kind", None) != "preference" or not hasattr(ann, "tasks"):
        raise InvalidInput(f"{judge!r} is not a pairwise (preference) judge; a win rate needs one")
    items = pairs_to_judge(store, model, reference)
    if not items:
        raise NotFound(f"no prompt has answers from both {model!r} and {reference!r} in the store")
    tasks = ann.tasks(items, seed=seed, both_orders=both_orders)
    done = existing_ids(store, [t.id for t in tasks])
    todo = [t for t in tasks if t.id not in done]
    run_id = store.start_run("annotate", name=ann.source, seed=seed, config={
        "annotator": ann.source, "purpose": "winrate", "model": model, "reference": reference,
        "both_orders": both_orders}, inputs=[("model", model), ("model", reference)])
    written = 0
    try:
        for chunk in chunks(todo, 32):
            written += store.write(feedback=ann.run(chunk)).new["feedback"]
            if progress:
                progress(written, len(todo))
    except BaseException as e:
        store.finish_run(run_id, status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                         error=repr(e)[:2000])
        raise
    store.finish_run(run_id, metrics=jsonable({"tasks": len(tasks), "written": written, "skipped": len(done)}))
    return written


def winrate(store, model: str, reference: str, *, judge: str | None = None, seed: int = 0,
            both_orders: bool = False, resolver=None, n_boot: int = 2000, record: bool = True,
            difficulty: Mapping[str, float] | str | None = "auto", progress=None) -> WinRate:
    """Win rate of `model` against `reference`: stored verdicts where there are any, else `judge` runs.

    `difficulty="auto"` estimates instruction difficulty for the LC figure from
    every model the store has verdicts for against `reference` (by the same
    judge) when there are at least two; a mapping gives the table; None leaves it out.

    With several judges' verdicts stored and no `judge` named, refuses to mix them.
    """
    found, missing, sources = collect(store, model, reference, judge)
    judged_now = 0
    if not found and not missing:
        judged_now = judge_pairs(store, model, reference, judge or "pairwise", seed=seed,
                                 both_orders=both_orders, resolver=resolver, progress=progress)
        found, missing, sources = collect(store, model, reference, judge or "pairwise")
    if len(sources) > 1:
        raise InvalidInput(f"verdicts from {len(sources)} sources ({', '.join(sources)}); name one with --judge")
    if not found:
        why = "; ".join(f"{n}x {r}" for r, n in missing.most_common(3))
        raise NotFound(f"no usable verdicts between {model!r} and {reference!r} "
                       f"({sum(missing.values())} missing{': ' + why if why else ''})")
    if difficulty == "auto":
        difficulty = auto_difficulty(store, reference, sources[0].partition(":")[2])
    res = compute(found, model=model, reference=reference, judge=sources[0] if sources else judge,
                  n_missing=sum(missing.values()), seed=seed, n_boot=n_boot, difficulty=difficulty)
    res.judged_now = judged_now
    if record:
        from heedful.annotate.run import jsonable
        rid = store.start_run("eval", name="winrate", seed=seed, config={"model": model, "reference": reference,
                              "judge": res.judge}, inputs=[("model", model), ("model", reference)])
        store.finish_run(rid, metrics=jsonable(res.as_dict()))
    return res


def auto_difficulty(store, reference: str, judge: str | None) -> dict[str, float] | None:
    """Instruction difficulty from all models judged against `reference` here (None if fewer than two)."""
    from heedful.evaluate.length_control import estimate_difficulty
    sets = []
    for other in store.stats()["responses_by_model"]:
        if other in (reference, "None"):
            continue
        found, _, sources = collect(store, other, reference, judge)
        if found and len(sources) == 1:
            sets.append(found)
    return estimate_difficulty(sets) if len(sets) >= 2 else None
