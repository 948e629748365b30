"""Rules that keep feedback as language: Chain of Hindsight and refinement (ILF) targets."""

from __future__ import annotations

import random
from collections import defaultdict

from heedful.build import load
from heedful.build.core import Context, Example, rule
from heedful.build.rules.common import (
    bool_vote, label_decisions, pair_examples, preference_decisions,
)

SFT = "SFTTrainer (prompt-completion)"


@rule("hindsight", kinds=["preference", "binary", "critique"], format="completion", trainer=SFT)
def hindsight(ctx: Context) -> list[Example]:
    """Chain of Hindsight (Liu et al., 2023): every kind of feedback becomes a sentence
    sequence the model learns to continue, so at inference it can be asked for the
    good one ("A helpful answer:").

    - an aggregated preference pair → "A helpful answer: {chosen}\\nAn unhelpful answer:
      {rejected}", the two halves in a seeded random order (as in the paper);
    - an aggregated thumbs label → "A helpful answer: {text}" or "An unhelpful answer: {text}";
    - a critique → "{response}\\nFeedback: {critique}".
    The phrases are `good_phrase` / `bad_phrase` in the config. Rows are SFT
    prompt-completion pairs; the completion holds the whole chain.
    """
    cfg = ctx.config
    rng = random.Random(cfg.seed)
    good, bad = cfg.good_phrase, cfg.bad_phrase
    out = []
    if "preference" in ctx.kinds:
        for ex in pair_examples(ctx, preference_decisions(ctx)):
            halves = [f"{good} {ex.chosen}", f"{bad} {ex.rejected}"]
            if rng.random() < 0.5:
                halves.reverse()
            out.append(Example(ex.prompt_id, ex.fids, completion="\n".join(halves), agreement=ex.agreement))
    votes, prompt_of, critiques = [], {}, []
    for row in ctx.feedback("binary", "critique"):
        prompt_of[row.targets[0]] = row.prompt_id
        if row.kind == "binary":
            votes.append(bool_vote(row.targets[0], bool(row.value["label"]), row.id, row.source))
        else:
            critiques.append(row)
    labels = label_decisions(ctx, votes) if votes else {}
    texts = ctx.responses(set(labels) | {r.targets[0] for r in critiques})
    for rid, d in labels.items():
        out.append(Example(prompt_of[rid], d.fids, completion=f"{good if d.label else bad} {texts[rid].text}",
                           agreement=d.agreement))
    for row in critiques:
        out.append(Example(row.prompt_id, (row.id,),
                           completion=f"{texts[row.targets[0]].text}\nFeedback: {row.value['text']}"))
    return out


@rule("refinement", kinds=["critique", "correction"], format="completion", trainer=SFT)
def refinement(ctx: Context) -> list[Example]:
    """Imitation learning from language feedback (Scheurer et al., 2023): prompt + draft +
    critique → refined answer.

    A refined answer is a response whose parent is the draft: a correction
    (stored as such a response) or a later revision logged with `parent_id`.
    All critiques of one draft are shown together (in store order); there is
    one row per refined answer. A chat prompt continues as a chat (the draft as
    the assistant's turn, the feedback as the user's); a text prompt becomes
    "{prompt}\\n\\nDraft answer:\\n…\\n\\nFeedback:\\n…\\n\\nImproved answer:\\n".
    Drafts with critiques but no refinement are dropped ("no refinement").
    """
    crits: dict[str, list] = defaultdict(list)
    fix_fid: dict[str, list[str]] = defaultdict(list)  # corrected response id -> correction ids
    for row in ctx.feedback("critique", "correction"):
        if row.kind == "critique":
            crits[row.targets[0]].append(row)
        elif row.value.get("corrected_id"):
            fix_fid[row.value["corrected_id"]].append(row.id)
    kids = ctx.children(crits)
    drafts = ctx.responses(crits)
    prompts = load.prompts(ctx.store, {d.prompt_id for d in drafts.values()})
    out = []
    for rid, rows in crits.items():
        if not kids.get(rid):
            ctx.drop("no refinement")
            continue
        draft = drafts[rid]
        notes = [r.value["text"] for r in rows]
        feedback = notes[0] if len(notes) == 1 else "\n".join(f"- {n}" for n in notes)
        prompt = _refine_prompt(prompts[draft.prompt_id], draft.text, feedback)
        for kid in kids[rid]:
            fids = tuple(r.id for r in rows) + tuple(fix_fid.get(kid.id, ()))
            out.append(Example(draft.prompt_id, fids, completion=kid.text, prompt=prompt))
    return out


def _refine_prompt(prompt: str | list[dict], draft: str, feedback: str) -> str | list[dict]:
    if isinstance(prompt, list):
        return prompt + [{"role": "assistant", "content": draft},
                         {"role": "user", "content": f"Feedback on your answer:\n{feedback}\n\n"
                                                     "Please write an improved answer."}]
    return f"{prompt}\n\nDraft answer:\n{draft}\n\nFeedback:\n{feedback}\n\nImproved answer:\n"
