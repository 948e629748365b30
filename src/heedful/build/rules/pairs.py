"""Rules that make preference pairs (prompt / chosen / rejected) for DPO and reward models."""

from __future__ import annotations

from collections import defaultdict

from heedful.build.core import Context, Example, rule
from heedful.build.rules.common import (
    bool_vote, decide_pair, label_decisions, ordered_pairs, outcome_passed, pair_examples,
    pair_vote, preference_decisions, rating_scores,
)

PAIR_TRAINER = "DPOTrainer, RewardTrainer (preference)"


@rule("preference_pairs", kinds=["preference"], format="preference", trainer=PAIR_TRAINER)
def preference_pairs(ctx: Context) -> list[Example]:
    """A vs B judgements → (chosen, rejected), aggregated per pair across annotators.

    Each response pair is one item whatever order it was shown in. Majority
    votes on a/b/tie, mean averages P(b better) (soft labels `prob_b` count
    as given), bt fits Bradley–Terry strengths over all pairs of a prompt.
    Ties are dropped; margin = mean `strength` of the winning votes (bt: the
    log-strength gap).
    """
    # no local name for the votes: they are freed before the texts are fetched (peak memory)
    return pair_examples(ctx, preference_decisions(ctx))


@rule("ranking_pairs", kinds=["ranking"], format="preference", trainer=PAIR_TRAINER)
def ranking_pairs(ctx: Context) -> list[Example]:
    """Rankings of k responses → pairs: every ordered pair (all-pairs) or the best against each
    other (best-vs-rest); equal ranks are tie votes. Pairs from several rankings are
    aggregated like preferences; margin = mean rank gap."""
    votes = []
    for row in ctx.feedback("ranking"):
        ranks = row.value["ranks"]
        for x, y in _ranking_pairs(list(zip(row.targets, ranks)), ctx.config.pairing):
            rx, ry = ranks[row.targets.index(x)], ranks[row.targets.index(y)]
            label = "a" if rx < ry else "b" if ry < rx else "tie"
            votes.append(pair_vote(row.prompt_id, x, y, label, row.id, row.source, strength=float(abs(rx - ry))))
    return pair_examples(ctx, ctx.decide(votes, decide=decide_pair))


def _ranking_pairs(items: list[tuple[str, int]], pairing: str) -> list[tuple[str, str]]:
    if pairing == "best-vs-rest":
        best = min(r for _, r in items)
        return [(x, y) for x, rx in items if rx == best for y, ry in items if ry != best]
    ordered_pairs([], pairing)  # validates the name
    return [(items[i][0], items[j][0]) for i in range(len(items)) for j in range(i + 1, len(items))]


@rule("rating_pairs", kinds=["rating"], format="preference", trainer=PAIR_TRAINER)
def rating_pairs(ctx: Context) -> list[Example]:
    """Ratings → pairs between responses to one prompt whose aggregated scores differ.

    Scores are normalised to [0, 1] on their scale, aggregated per response
    and aspect (majority or mean), then combined over aspects (one aspect, a
    weighted sum, or the mean). Margin = score gap on [0, 1]; `min_margin`
    drops the close ones later. Pairing: all-pairs or best-vs-rest.
    """
    score, agree, fids, prompt_of = rating_scores(ctx)
    by_prompt = defaultdict(list)
    for rid, s in score.items():
        by_prompt[prompt_of[rid]].append((rid, s))
    picked = []
    for pid, ranked in by_prompt.items():
        ranked.sort(key=lambda p: (-p[1], p[0]))
        for x, y in ordered_pairs(ranked, ctx.config.pairing):
            picked.append((pid, x, y))
    texts = ctx.responses({r for p in picked for r in p[1:]})
    return [Example(pid, fids[x] + fids[y], chosen=texts[x].text, rejected=texts[y].text,
                    agreement=min(agree[x], agree[y]), margin=score[x] - score[y]) for pid, x, y in picked]


@rule("correction_pairs", kinds=["correction"], format="preference", trainer=PAIR_TRAINER)
def correction_pairs(ctx: Context) -> list[Example]:
    """Each correction → (corrected ≻ original). The same correction of the same response from
    several sources is one pair carrying all their feedback ids; a correction identical
    to the original is dropped ("no change")."""
    merged: dict[tuple, list[str]] = {}
    for row in ctx.feedback("correction"):
        key = (row.prompt_id, row.targets[0], row.value["text"])
        merged.setdefault(key, []).append(row.id)
    texts = ctx.responses({k[1] for k in merged})
    out = []
    for (pid, orig, fixed), ids in merged.items():
        if fixed == texts[orig].text:
            ctx.drop("no change")
            continue
        out.append(Example(pid, tuple(ids), chosen=fixed, rejected=texts[orig].text))
    return out


@rule("outcome_pairs", kinds=["outcome"], format="preference", trainer=PAIR_TRAINER)
def outcome_pairs(ctx: Context) -> list[Example]:
    """Checks → (passing ≻ failing) for the same prompt. A response's verdict aggregates every
    check on it (pass = `passed`, or `score >= min_score` when only a score is given);
    pairing all-pairs makes every pass × fail pair, best-vs-rest the first passing
    response (in store order) against each failing one."""
    votes, prompt_of = [], {}
    for row in ctx.feedback("outcome"):
        rid = row.targets[0]
        prompt_of[rid] = row.prompt_id
        votes.append(bool_vote(rid, outcome_passed(row.value, ctx.config.min_score), row.id, row.source))
    decisions = label_decisions(ctx, votes)
    resp = ctx.responses(decisions)
    by_prompt = defaultdict(list)
    for rid in sorted(decisions, key=lambda r: resp[r].created_seq):
        by_prompt[prompt_of[rid]].append((rid, bool(decisions[rid].label)))
    ordered_pairs([], ctx.config.pairing)  # validates the name
    out = []
    for pid, items in by_prompt.items():
        passes = [r for r, ok in items if ok]
        fails = [r for r, ok in items if not ok]
        if ctx.config.pairing == "best-vs-rest":
            passes = passes[:1]
        for x, y in ((x, y) for x in passes for y in fails):
            dx, dy = decisions[x], decisions[y]
            out.append(Example(pid, dx.fids + dy.fids, chosen=resp[x].text, rejected=resp[y].text,
                               agreement=min(dx.agreement, dy.agreement), margin=1.0))
    return out
