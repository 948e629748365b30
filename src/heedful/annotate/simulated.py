"""Simulated annotator pools (AlpacaFarm-style): personas with seeded noise over any judge.

AlpacaFarm (Dubois et al., 2023) simulates human pairwise feedback with a
pool of LLM annotators and random label flips, so that methods which learn
from feedback can be developed without paying crowdworkers — and so that the
noise and disagreement of real annotators is part of the simulation. A pool
here is data (YAML): members, each a persona over a base annotator with

- `flip_rate`: probability of flipping the verdict (preference a<->b, a rating
  reflected across the scale's midpoint, an outcome/binary negated);
- `prefer_longer` (preferences): probability of choosing the longer response;
- `shift`: strict (< 0) or lenient (> 0). Ratings: points added to the score
  (clipped to the scale). Preferences: a strict member turns a win into a tie
  with probability -shift, a lenient one resolves a tie with probability shift.
  Outcomes/binary: a strict member fails a pass, a lenient one passes a fail,
  with that probability.

The base annotator runs once per item however many members share it; every
member's noise is drawn from its own seeded stream, keyed on what the member
is shown (prompt, texts in the shown order, aspect, principle) and not on
ids, so a re-run with the same seed writes identical values, in the same store
or in a new one: a recipe run twice builds the same pairs. A member shown the
same texts twice answers the same way both times. The pool reports
inter-annotator agreement (percent agreement and Fleiss' kappa).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from heedful.annotate.judges.config import read_yaml
from heedful.annotate.judges.judge import Item, Task, Verdict
from heedful.errors import InvalidInput
from heedful.schema import digest, parse


class MemberSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    persona: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    base: str = Field(min_length=1, description="a judge name")
    flip_rate: float = Field(0.0, ge=0, le=1)
    prefer_longer: float | None = Field(None, ge=0, le=1)
    shift: float = 0.0


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    members: list[MemberSpec] = Field(min_length=2)
    version: str = "1"
    description: str = ""


def load_pool_file(path: Path) -> PoolSpec:
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    spec = parse(PoolSpec, data, where=str(path))
    personas = [m.persona for m in spec.members]
    if len(set(personas)) != len(personas):
        raise InvalidInput("persona names in a pool must be distinct", where=str(path))
    return spec


@dataclass(frozen=True)
class PoolTask:
    id: str
    base_task: Task
    member: MemberSpec

    @property
    def group(self) -> tuple:
        return self.base_task.group


class Pool:
    """A pool bound to its base annotators (judges, by name); runs like any annotator."""

    def __init__(self, spec: PoolSpec, bases: Mapping[str, object], where: str = ""):
        self.spec = spec
        self.bases = dict(bases)
        kinds = {self.bases[m.base].kind for m in spec.members}
        if len(kinds) != 1:
            raise InvalidInput(f"pool members must produce one kind of feedback, got {sorted(kinds)}", where=where)
        self.kind = kinds.pop()
        if self.kind not in ("preference", "rating", "outcome", "binary"):
            raise InvalidInput(f"a pool cannot add noise to {self.kind} feedback", where=where)
        for m in spec.members:
            if m.prefer_longer and self.kind != "preference":
                raise InvalidInput(f"member {m.persona!r}: prefer_longer applies to preferences only", where=where)
            if self.kind != "rating" and not -1 <= m.shift <= 1:
                raise InvalidInput(f"member {m.persona!r}: shift is a probability in [-1, 1] for "
                                   f"{self.kind} feedback", where=where)
        self.arity = next(iter(self.bases.values())).arity

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def source(self) -> str:
        return f"sim:{self.name}"

    def tasks(self, items: Sequence[Item], *, seed: int = 0, both_orders: bool = False) -> list[PoolTask]:
        out = []
        base_tasks = {b: base.tasks(items, seed=seed, both_orders=both_orders) for b, base in self.bases.items()}
        for m in self.spec.members:
            for bt in base_tasks[m.base]:
                key = {"pool": self.name, "version": self.spec.version, "persona": m.persona,
                       "base_task": bt.id, "seed": seed}
                out.append(PoolTask(f"f-{digest(key)}", bt, m))
        return out

    def run(self, tasks: Sequence[PoolTask], progress=None) -> list[dict]:
        verdicts: dict[str, Verdict] = {}
        for b, base in self.bases.items():
            todo = list({t.base_task.id: t.base_task for t in tasks if t.member.base == b}.values())
            verdicts |= dict(zip((t.id for t in todo), base.judge(todo)))
        rows = [self._row(t, verdicts[t.base_task.id]) for t in tasks]
        if progress:
            progress(len(tasks))
        return rows

    def _row(self, task: PoolTask, base: Verdict) -> dict:
        m, bt = task.member, task.base_task
        value, applied = (None, {}) if base.value is None else noisy(self.kind, base.value, m, bt, self.name)
        judge = self.bases[m.base]
        meta = {k: v for k, v in (("aspect", bt.aspect), ("principle", bt.principle)) if v}
        if self.arity == 2:
            meta["shown_order"] = "ab" if bt.order == (0, 1) else "ba"
        return {
            "id": task.id, "kind": self.kind, "value": value, "response_ids": list(bt.item.key),
            "source": {"type": "simulated", "name": f"{self.name}/{m.persona}", "model": judge.model.name,
                       "version": self.spec.version, "extra": {"base": judge.source, "pool": self.name}},
            "provenance": {"raw_output": base.raw, "seed": bt.seed, "latency_ms": base.latency_ms,
                           "missing_reason": base.missing_reason and f"base {judge.source}: {base.missing_reason}",
                           "extra": {"base_value": base.value, **applied}},
            "meta": meta,
        }


def member_rng(pool: str, member: MemberSpec, task: Task) -> random.Random:
    item = task.item
    shown = [item.prompt.content_hash(), *(item.responses[i].text for i in task.order)]
    return random.Random(int(digest({"pool": pool, "persona": member.persona, "shown": shown, "aspect": task.aspect,
                                     "principle": task.principle, "seed": task.seed}), 16))


def noisy(kind: str, value: dict, m: MemberSpec, task: Task, pool: str) -> tuple[dict, dict]:
    """The member's version of the base verdict, and which noise was applied."""
    rng = member_rng(pool, m, task)
    u_flip, u_len, u_shift, u_coin = (rng.random() for _ in range(4))
    if kind == "preference":
        return _noisy_preference(value, m, task, (u_flip, u_len, u_shift, u_coin))
    if kind == "rating":
        lo, hi = value["scale"]
        score = min(hi, max(lo, value["score"] + m.shift))
        flip = u_flip < m.flip_rate
        score = lo + hi - score if flip else score
        return {**value, "score": score}, {"flip_applied": flip, "shift_applied": m.shift != 0}
    field = "passed" if kind == "outcome" else "label"
    ok = value.get(field)
    shifted = ok is not None and u_shift < abs(m.shift) and (ok if m.shift < 0 else not ok)
    ok = (not ok) if shifted else ok
    flip = ok is not None and u_flip < m.flip_rate
    return {**value, field: (not ok) if flip else ok}, {"flip_applied": flip, "shift_applied": shifted}


def _noisy_preference(value: dict, m: MemberSpec, task: Task, u) -> tuple[dict, dict]:
    u_flip, u_len, u_shift, u_coin = u
    choice, applied = value["choice"], {"flip_applied": False, "length_bias_applied": False,
                                        "shift_applied": False}
    la, lb = (len(r.text) for r in task.item.responses)
    if m.prefer_longer and u_len < m.prefer_longer and la != lb:
        choice, applied["length_bias_applied"] = ("a" if la > lb else "b"), True
    if m.shift < 0 and choice != "tie" and u_shift < -m.shift:
        choice, applied["shift_applied"] = "tie", True
    elif m.shift > 0 and choice == "tie" and u_shift < m.shift:
        choice, applied["shift_applied"] = ("a" if u_coin < 0.5 else "b"), True
    if choice != "tie" and u_flip < m.flip_rate:
        choice, applied["flip_applied"] = ("b" if choice == "a" else "a"), True
    out = {**value, "choice": choice}
    if out.get("prob_b") is not None:  # keep a soft label consistent with the noisy choice
        if applied["length_bias_applied"] or applied["shift_applied"]:
            out.pop("prob_b")
        elif applied["flip_applied"]:
            out["prob_b"] = 1 - out["prob_b"]
    return out, applied


# --- agreement -------------------------------------------------------------------------

def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa for N items each rated by the same number n of raters into k categories.

    `table[i][j]` is how many raters put item i in category j. Following
    Fleiss (1971), "Measuring nominal scale agreement among many raters",
    Psychological Bulletin 76(5):378-382:
        P_i  = (sum_j n_ij^2 - n) / (n (n - 1))      agreement on item i
        Pbar = mean_i P_i                             observed agreement
        p_j  = sum_i n_ij / (N n)                     share of category j
        Pe   = sum_j p_j^2                            chance agreement
        kappa = (Pbar - Pe) / (1 - Pe)
    Written by hand: it is ten lines, and the libraries that have it
    (statsmodels) would be a heavy dependency for one formula. NaN when
    undefined (fewer than 2 raters, no items, or every rating in one category).
    """
    if not table:
        return math.nan
    n = sum(table[0])
    if n < 2 or any(sum(row) != n for row in table):
        return math.nan
    big_n, k = len(table), len(table[0])
    p_bar = sum((sum(x * x for x in row) - n) / (n * (n - 1)) for row in table) / big_n
    p_e = sum((sum(row[j] for row in table) / (big_n * n)) ** 2 for j in range(k))
    return math.nan if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def agreement(labels: Mapping[object, Mapping[str, object]]) -> dict:
    """Percent agreement (mean share of agreeing rater pairs, Fleiss' Pbar) and Fleiss' kappa.

    `labels[item][rater]` is a hashable label or None (missing); only items every
    rater labelled count, since Fleiss' kappa needs the same raters per item.
    """
    raters = sorted({r for by_rater in labels.values() for r in by_rater})
    complete = [by for by in labels.values() if all(by.get(r) is not None for r in raters)]
    cats = sorted({repr(by[r]) for by in complete for r in raters})
    table = [[sum(repr(by[r]) == c for r in raters) for c in cats] for by in complete]
    n = len(raters)
    pct = (sum((sum(x * x for x in row) - n) / (n * (n - 1)) for row in table) / len(table)
           if table and n > 1 else math.nan)
    return {"raters": raters, "items": len(complete), "items_incomplete": len(labels) - len(complete),
            "percent_agreement": pct, "fleiss_kappa": fleiss_kappa(table)}


_LABEL_FIELD = {"preference": "choice", "rating": "score", "outcome": "passed", "binary": "label"}


def pool_agreement(store, pool: str, persona_filter: Callable[[str], bool] | None = None) -> dict:
    """Agreement among a pool's members over everything they wrote to the store."""
    labels: dict[tuple, dict[str, object]] = {}
    for fb in store.feedback(source_type="simulated"):
        owner, _, persona = fb.source.name.partition("/")
        if owner != pool or (persona_filter and not persona_filter(persona)):
            continue
        key = (tuple(fb.response_ids), fb.meta.get("aspect"), fb.meta.get("principle"),
               fb.meta.get("shown_order"), fb.provenance.seed)
        value = fb.value_dict()
        labels.setdefault(key, {})[persona] = None if value is None else value.get(_LABEL_FIELD.get(fb.kind, ""))
    return agreement(labels)
