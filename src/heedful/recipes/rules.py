"""`outcome_sft`: responses whose aggregated checks passed → (prompt, completion) for SFT.

The built-in `sft` rule takes accepted thumbs, top ratings and corrections;
the demo's feedback is `outcome` rows (a verifier and a noisy pool), so
"SFT on accepted responses" (rejection-sampling fine-tuning) needs this rule.
It is registered through the same `@rule` decorator a plugin uses; importing
`heedful.recipes` registers it. (It belongs beside `outcome_kto` in
`heedful.build.rules.labels`; it lives here until that module takes it.)
"""

from __future__ import annotations

from heedful.build.core import RULES, Context, Example, rule
from heedful.build.rules.common import bool_vote, label_decisions, outcome_passed


def _outcome_sft(ctx: Context) -> list[Example]:
    """Checks → SFT targets: every response whose aggregated outcome (all sources) is a pass."""
    votes, prompt_of = [], {}
    for row in ctx.feedback("outcome"):
        prompt_of[row.targets[0]] = row.prompt_id
        votes.append(bool_vote(row.targets[0], outcome_passed(row.value, ctx.config.min_score), row.id, row.source))
    decisions = label_decisions(ctx, votes)
    texts = ctx.responses(decisions)
    out = []
    for rid, d in decisions.items():
        if d.label:
            out.append(Example(prompt_of[rid], d.fids, completion=texts[rid].text, agreement=d.agreement))
        else:
            ctx.drop("failed")
    return out


if "outcome_sft" not in RULES:
    rule("outcome_sft", kinds=["outcome"], format="completion",
         trainer="SFTTrainer (prompt-completion)")(_outcome_sft)
