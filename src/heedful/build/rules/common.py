"""Votes out of feedback rows, shared by the rules: pairs, ratings, labels.

Pair items are `(prompt_id, a, b)` with `a < b` so that two annotators who saw
the same two responses in opposite orders vote on the same item; their labels
("a" = first of the sorted pair better, "b", "tie") are turned around to match.
"""

from __future__ import annotations

from collections import defaultdict

from heedful.build.aggregate import Decision, Vote, majority_flat
from heedful.build.core import Context, Example
from heedful.errors import InvalidInput

_FLIP = {"a": "b", "b": "a", "tie": "tie"}
_PROB = {"a": 0.0, "b": 1.0, "tie": 0.5}


def pair_vote(pid: str, x: str, y: str, label: str, fid: str, source: str,
              prob_y: float | None = None, strength: float | None = None) -> Vote:
    """A vote that `label` ("a" = x better, "b" = y better, "tie") holds for the pair (x, y)."""
    value = _PROB[label] if prob_y is None else prob_y
    if x > y:
        x, y, label, value = y, x, _FLIP[label], 1.0 - value
    return Vote((pid, x, y), source, label, value, fid, strength)


def decide_pair(v: float):
    return "b" if v > 0.5 else "a" if v < 0.5 else None


def preference_votes(ctx: Context) -> list[Vote]:
    votes = []
    for row in ctx.feedback("preference"):
        v = row.value
        a, b = row.targets
        votes.append(pair_vote(row.prompt_id, a, b, v["choice"], row.id, row.source,
                               v.get("prob_b"), v.get("strength")))
    return votes


def _pref_value(v: dict) -> tuple:
    """(label, value, strength, flipped label, flipped value) of a preference value: parsed once per
    distinct value (`pair_pages(parse=…)`), not once a row."""
    label, p = v["choice"], v.get("prob_b")
    value = _PROB[label] if p is None else p
    return label, value, v.get("strength"), _FLIP[label], 1.0 - value


def preference_decisions(ctx: Context) -> dict[tuple, Decision]:
    """`ctx.decide(preference_votes(ctx), decide=decide_pair)`; for an unweighted majority (the
    default) the votes are read as plain tuples and kept flat per pair (`majority_flat`), with
    the same decisions: no `Vote` per row, no source read."""
    cfg = ctx.config
    if cfg.weighted or cfg.aggregate != "majority":
        return ctx.decide(preference_votes(ctx), decide=decide_pair)
    items: dict[tuple, list] = {}
    get = items.get
    for rows in ctx.pair_pages("preference", parse=_pref_value):
        for fid, pid, (label, value, s, flipped, fvalue), a, b in rows:
            if a < b:
                key = (pid, a, b)
            else:
                key = (pid, b, a)
                if a > b:
                    label, value = flipped, fvalue
            acc = get(key)
            if acc is None:
                items[key] = [label, value, fid, s]
            else:
                acc += (label, value, fid, s)
    counts: dict = {}
    out = majority_flat(items, cfg.on_tie, cfg.seed, counts)
    for k, n in counts.items():
        ctx.drop(k, n)
    return out


def pair_examples(ctx: Context, decisions: dict[tuple, Decision]) -> list[Example]:
    """Decided pairs → preference examples; ties are dropped and counted."""
    picked = []
    for (pid, x, y), d in decisions.items():
        if d.label == "tie":
            ctx.drop("tie")
            continue
        chosen, rejected = (x, y) if d.label == "a" else (y, x)
        picked.append((pid, chosen, rejected, d))
    texts = ctx.texts(r for p in picked for r in p[1:3])
    return [Example(pid, d.fids, chosen=texts[c], rejected=texts[r],
                    agreement=d.agreement, margin=d.margin) for pid, c, r, d in picked]


def label_decisions(ctx: Context, votes: list[Vote]) -> dict[str, Decision]:
    """Boolean votes per response → decisions (majority/mean; BT does not apply to one response)."""
    method = ctx.config.aggregate
    if method == "bt":
        raise InvalidInput("--aggregate bt ranks responses from pairwise outcomes; "
                           "for labels of single responses use majority or mean")
    return ctx.decide(votes, decide=lambda v: True if v > 0.5 else False if v < 0.5 else None)


def bool_vote(rid: str, ok: bool, fid: str, source: str) -> Vote:
    return Vote(rid, source, ok, 1.0 if ok else 0.0, fid)


def outcome_passed(value: dict, threshold: float) -> bool:
    """`passed` when the check says so; otherwise its score against the threshold."""
    return bool(value["passed"]) if value.get("passed") is not None else value["score"] >= threshold


def rating_scores(ctx: Context) -> tuple[dict[str, float], dict[str, float], dict[str, tuple], dict[str, str]]:
    """Aggregated, normalised ([0, 1]) rating per response, combined over aspects.

    Returns (score, agreement, feedback ids, prompt id) per response id. Aspects:
    `config.aspect` keeps one; `config.aspect_weights` takes a weighted sum (a
    response missing a weighted aspect is dropped, counted); otherwise the
    mean over the aspects a response was rated on (no aspect = "overall").
    """
    cfg = ctx.config
    if cfg.aggregate == "bt":
        raise InvalidInput("--aggregate bt needs pairwise outcomes; for ratings use majority or mean")
    votes, prompt_of = [], {}
    for row in ctx.feedback("rating"):
        v = row.value
        aspect = v.get("aspect") or "overall"
        if (cfg.aspect and aspect != cfg.aspect) or (cfg.aspect_weights and aspect not in cfg.aspect_weights):
            continue
        lo, hi = v["scale"]
        rid = row.targets[0]
        prompt_of[rid] = row.prompt_id
        votes.append(Vote((rid, aspect), row.source, v["score"], (v["score"] - lo) / (hi - lo), row.id))
    decisions = ctx.decide(votes, decide=None)
    per: dict[str, dict[str, Decision]] = defaultdict(dict)
    for (rid, aspect), d in decisions.items():
        per[rid][aspect] = d
    score, agree, fids = {}, {}, {}
    for rid, by_aspect in per.items():
        if cfg.aspect_weights:
            if set(cfg.aspect_weights) - set(by_aspect):
                ctx.drop("missing aspect")
                continue
            total = sum(cfg.aspect_weights.values())
            score[rid] = sum(w * by_aspect[a].value for a, w in cfg.aspect_weights.items()) / total
        else:
            score[rid] = sum(d.value for d in by_aspect.values()) / len(by_aspect)
        agree[rid] = min(d.agreement for d in by_aspect.values())
        fids[rid] = tuple(f for a in sorted(by_aspect) for f in by_aspect[a].fids)
    return score, agree, fids, prompt_of


def ordered_pairs(ranked: list[tuple[str, float]], pairing: str) -> list[tuple[str, str]]:
    """(better, worse) pairs from (id, score) sorted best first; equal scores make no pair."""
    if pairing not in ("all-pairs", "best-vs-rest"):
        raise InvalidInput(f"pairing must be all-pairs or best-vs-rest, got {pairing!r}")
    if not ranked:
        return []
    if pairing == "best-vs-rest":
        top = ranked[0][1]
        best = [r for r, s in ranked if s == top]
        return [(b, r) for b in best for r, s in ranked if s < top]
    return [(x, y) for i, (x, sx) in enumerate(ranked) for y, sy in ranked[i + 1:] if sx > sy]
