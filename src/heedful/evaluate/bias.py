"""Judge bias diagnostics: position consistency, position preference, length preference, self-preference.

Each figure is a proportion with a Wilson interval, computed from the
pairwise verdicts a source stored (AI judges record the order they were shown
the pair in `meta.shown_order`). 50% means no preference. Where a reference
source (humans) judged the same pairs, the same figure is given for it, so a
judge's taste for long answers can be told apart from long answers being better.

- position consistency: pairs judged in both orders whose two verdicts agree;
- position preference: decisive verdicts that picked the answer shown first;
- length preference: decisive verdicts on pairs of unequal length that picked the longer;
- self-preference: pairs where exactly one answer comes from the judge's own
  model family, scored 1 if the judge picked it, 1/2 on a tie (the family is
  the leading letters of the model name: gpt-4o -> gpt, SmolLM2-135M -> smollm).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from heedful.evaluate.stats import wilson


def family(model: str | None) -> str | None:
    """gpt-4-turbo -> gpt, meta-llama/Llama-3-8B -> llama, SmolLM2-135M -> smollm."""
    if not model:
        return None
    m = re.match(r"[a-z]+", model.rsplit("/", 1)[-1].lower())
    return m.group(0) if m else None


def _verdicts(store, source: str, model: str | None = None) -> list:
    stype, _, name = source.partition(":")
    return [fb for fb in store.feedback(kind="preference", source_type=stype, source_name=name, model=model)
            if fb.value is not None]


def _shown_first(fb) -> bool | None:
    order, choice = fb.meta.get("shown_order"), fb.value.choice
    if order not in ("ab", "ba") or choice == "tie":
        return None
    return (choice == "a") == (order == "ab")


def position(verdicts: list) -> dict:
    first = [s for s in (_shown_first(fb) for fb in verdicts) if s is not None]
    groups: dict[tuple, dict[str, str]] = {}
    for fb in verdicts:
        if fb.meta.get("shown_order") in ("ab", "ba"):
            key = (tuple(fb.response_ids), fb.meta.get("aspect"), fb.meta.get("principle"))
            groups.setdefault(key, {})[fb.meta["shown_order"]] = fb.value.choice
    both = [g for g in groups.values() if len(g) == 2]
    return {"position_consistency": wilson(sum(g["ab"] == g["ba"] for g in both), len(both)).percent().as_dict(),
            "first_position_preference": wilson(sum(first), len(first)).percent().as_dict()}


def length_preference(verdicts: list, texts: dict[str, str]) -> dict:
    picks = []
    for fb in verdicts:
        a, b = (len(texts[r]) for r in fb.response_ids)
        if fb.value.choice != "tie" and a != b:
            picks.append((fb.value.choice == "b") == (b > a))
    return wilson(sum(picks), len(picks)).percent().as_dict()


def self_preference(verdicts: list, models: dict[str, str | None], judge_family: str | None,
                    fam: Callable[[str | None], str | None] = family) -> dict:
    scores = []
    for fb in verdicts:
        fa, fb_ = (fam(models[r]) for r in fb.response_ids)
        if judge_family is None or (fa == judge_family) == (fb_ == judge_family):
            continue
        own = "a" if fa == judge_family else "b"
        scores.append(0.5 if fb.value.choice == "tie" else float(fb.value.choice == own))
    return {"judge_family": judge_family, **wilson(sum(scores), len(scores)).percent().as_dict()}


def bias_report(store, judge: str, *, reference: str | None = None, model: str | None = None,
                judge_family: str | None = None, fam: Callable[[str | None], str | None] = family) -> dict:
    """All four diagnostics for `judge` ("type:name"), and for `reference` on the same pairs.

    The judge's family comes from its recorded model (`source.model`) unless
    `judge_family` names it; with neither, self-preference is left empty.
    """
    verdicts = _verdicts(store, judge, model)
    ids = {r for fb in verdicts for r in fb.response_ids}
    ref_verdicts = []
    if reference:
        ref_verdicts = [fb for fb in _verdicts(store, reference, model) if set(fb.response_ids) <= ids]
    texts, models = {}, {}
    for rid in ids:
        r = store.get_response(rid)
        texts[rid], models[rid] = r.text, r.model
    jmodel = verdicts[0].source.model if verdicts else None
    jfam = judge_family or (fam(jmodel) if jmodel else None)
    out = {"judge": judge, "n_verdicts": len(verdicts), **position(verdicts),
           "length_preference": length_preference(verdicts, texts),
           "self_preference": self_preference(verdicts, models, jfam, fam)}
    if reference:
        out["reference"] = {"source": reference, "n_verdicts": len(ref_verdicts),
                            "length_preference": length_preference(ref_verdicts, texts),
                            "self_preference": self_preference(ref_verdicts, models, jfam, fam)}
    return out
