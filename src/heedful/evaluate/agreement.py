"""Agreement between any two (or more) feedback sources on the same items.

A judge is measured, not trusted: how often does it say what the humans (or
another judge, or the verifier) said on the same responses? Three figures:
percent agreement, Cohen's kappa (two sources, chance-corrected) and
Krippendorff's alpha (any number of sources, missing values allowed, nominal
or interval). Kappa and alpha are hand-written (a few lines each, textbook
formulas, checked against hand-computed values in the tests) because the
packages that have them (statsmodels, krippendorff) are not dependencies.

An item is (kind, target response ids, aspect, principle). Several verdicts
by one source on an item (both A/B orders, re-runs) are merged: preferences
by averaging P(b) then reading a/b/tie, other kinds by their most common label.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations

from heedful.errors import InvalidInput, UnknownName

LABEL_FIELD = {"preference": "choice", "rating": "score", "outcome": "passed", "binary": "label"}


def percent_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    if len(a) != len(b):
        raise InvalidInput("both label lists need one entry per item")
    return sum(x == y for x, y in zip(a, b)) / len(a) if a else math.nan


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """(p_o - p_e) / (1 - p_e), p_e from each rater's own label shares (Cohen 1960). NaN if undefined."""
    po = percent_agreement(a, b)
    if not a:
        return math.nan
    ca, cb, n = Counter(a), Counter(b), len(a)
    pe = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return math.nan if pe == 1 else (po - pe) / (1 - pe)


def krippendorff_alpha(units: Sequence[Mapping[str, object]], level: str = "nominal") -> float:
    """Krippendorff's alpha over units {source: value} (missing sources simply absent).

    Coincidence-matrix form (Krippendorff 2011, "Computing Krippendorff's
    alpha-reliability"): alpha = 1 - D_o / D_e, with
    D_o = sum_ck o_ck d(c,k) / n and D_e = sum_ck n_c n_k d(c,k) / (n (n-1)),
    d = [c != k] (nominal) or (c - k)^2 (interval). Units with fewer than two
    values do not count.
    """
    if level not in ("nominal", "interval"):
        raise InvalidInput(f"level must be nominal or interval, got {level!r}")
    delta = (lambda c, k: float(c != k)) if level == "nominal" else (lambda c, k: (float(c) - float(k)) ** 2)
    o: Counter = Counter()
    for unit in units:
        vals = [v for v in unit.values() if v is not None]
        m = len(vals)
        if m < 2:
            continue
        for i, j in ((i, j) for i in range(m) for j in range(m) if i != j):
            o[(vals[i], vals[j])] += 1 / (m - 1)
    nc: Counter = Counter()
    for (c, _), w in o.items():
        nc[c] += w
    n = sum(nc.values())
    if n <= 1:
        return math.nan
    d_o = sum(w * delta(c, k) for (c, k), w in o.items()) / n
    d_e = sum(nc[c] * nc[k] * delta(c, k) for c in nc for k in nc) / (n * (n - 1))
    return math.nan if d_e == 0 else 1 - d_o / d_e


# --- from the store ----------------------------------------------------------------------

def _merge(kind: str, values: list) -> object:
    if kind == "preference":
        p = sum(v["p_b"] for v in values) / len(values)
        return "tie" if p == 0.5 else ("b" if p > 0.5 else "a")
    return Counter(values).most_common(1)[0][0]


def labels_by_source(store, sources: Sequence[str] | None = None, kind: str = "preference",
                     model: str | None = None) -> dict[str, dict[tuple, object]]:
    """{"type:name": {item: label}} for every (or the named) source with feedback of `kind`."""
    raw: dict[str, dict[tuple, list]] = {}
    seen: set[str] = set()
    field = LABEL_FIELD.get(kind)
    if field is None:
        raise InvalidInput(f"agreement is defined for {', '.join(LABEL_FIELD)} feedback, not {kind!r}")
    for fb in store.feedback(kind=kind, model=model):
        src = f"{fb.source.type}:{fb.source.name}"
        seen.add(src)
        if fb.value is None or (sources and src not in sources):
            continue
        item = (tuple(fb.response_ids), fb.meta.get("aspect"), fb.meta.get("principle"))
        v = fb.value_dict()
        label = {"p_b": v.get("prob_b", {"a": 0.0, "b": 1.0, "tie": 0.5}[v["choice"]])} if kind == "preference" \
            else v.get(field)
        raw.setdefault(src, {}).setdefault(item, []).append(label)
    out = {s: {i: _merge(kind, vs) for i, vs in items.items()} for s, items in raw.items()}
    for s in sources or ():
        if s not in seen:
            raise UnknownName(f"source with {kind} feedback", s, seen)
        out.setdefault(s, {})
    return out


def pair_agreement(a: Mapping[tuple, object], b: Mapping[tuple, object]) -> dict:
    """The three figures for two sources over the items both labelled."""
    common = [i for i in a if i in b]
    x, y = [a[i] for i in common], [b[i] for i in common]
    return {"n": len(common), "percent_agreement": percent_agreement(x, y), "cohen_kappa": cohen_kappa(x, y),
            "krippendorff_alpha": krippendorff_alpha([{"a": a[i], "b": b[i]} for i in common])}


def agreement(store, source_a: str, source_b: str, *, kind: str = "preference", model: str | None = None) -> dict:
    labels = labels_by_source(store, [source_a, source_b], kind, model)
    return {"source_a": source_a, "source_b": source_b, "kind": kind,
            **pair_agreement(labels[source_a], labels[source_b])}


def agreement_matrix(store, sources: Sequence[str] | None = None, *, kind: str = "preference",
                     min_items: int = 1) -> dict:
    """Pairwise figures for every pair of sources with at least `min_items` items in common."""
    labels = labels_by_source(store, sources, kind)
    names = sorted(labels)
    pairs = {}
    for s, t in combinations(names, 2):
        res = pair_agreement(labels[s], labels[t])
        if res["n"] >= min_items:
            pairs[(s, t)] = res
    return {"sources": names, "pairs": pairs, "kind": kind}
