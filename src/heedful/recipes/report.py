"""The recipe's report: heedful.evaluate's HTML report plus what only the run knows.

The evaluate report covers lineage, training curves, pass rates and judge
diagnostics from the store; a run adds its comparison table (held-out
compliance per method, 95% Wilson intervals), how noisy each annotator was
against the verifier and what aggregation recovered, and a few held-out
answers before and after.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from heedful.recipes.run import Context
from heedful.recipes.spec import ReportStep


def feedback_quality(ctx: Context, split: str = "train") -> list[dict]:
    """Each outcome source's agreement with the verifier on the same responses, and the majority's."""
    by_resp: dict[str, dict[str, bool]] = defaultdict(dict)
    for fb in ctx.store.feedback(kind="outcome", tag=ctx.split_tag(split)):
        if fb.value is not None and fb.value.passed is not None:
            name = f"{fb.source.type}:{fb.source.name}"
            by_resp[fb.response_ids[0]][name] = bool(fb.value.passed)
    truth = {r: v[k] for r, v in by_resp.items() for k in v if k.startswith("verifier:")}
    sources = sorted({k for v in by_resp.values() for k in v})
    if not truth or len(sources) < 2:
        return []
    rows = []
    for src in sources:
        pairs = [(v[src], truth[r]) for r, v in by_resp.items() if src in v and r in truth]
        rows.append({"source": src, "labels": len(pairs),
                     "agrees_with_verifier_%": round(100 * sum(a == b for a, b in pairs) / len(pairs), 1),
                     "says_pass_%": round(100 * sum(a for a, _ in pairs) / len(pairs), 1)})
    majority = [(sum(v.values()) * 2 > len(v), truth[r]) for r, v in by_resp.items() if r in truth]
    rows.append({"source": "majority of all sources (what build used)", "labels": len(majority),
                 "agrees_with_verifier_%": round(100 * sum(a == b for a, b in majority) / len(majority), 1),
                 "says_pass_%": round(100 * sum(a for a, _ in majority) / len(majority), 1)})
    return rows


def _clip(text: str, n: int = 240) -> str:
    return text if len(text) <= n else text[:n] + " …"


def examples(ctx: Context, k: int = 6) -> list[dict]:
    answers = ctx.figures.get("_answers") or {}
    names = list(answers)
    if len(names) < 2:
        return []
    before, after = answers[names[0]], answers[names[1]]
    prompts = {p.id: p for p in ctx.prompts.get("heldout", [])}
    changed = [i for i, (b, a) in enumerate(zip(before, after)) if b[2] != a[2]] or list(range(len(before)))
    rows = []
    for i in changed[:k]:
        pid, btext, bok = before[i]
        _, atext, aok = after[i]
        p = prompts.get(pid)
        rows.append({"prompt": _clip(p.text if p and p.text else pid, 160),
                     f"{names[0]}": _clip(btext), f"{names[0]} follows": bok,
                     f"{names[1]}": _clip(atext), f"{names[1]} follows": aok})
    return rows


def write(ctx: Context, s: ReportStep) -> Path:
    from heedful.evaluate.report import Section, write_report
    ev = ctx.figures.get("eval") or {}
    comparisons = [{"label": r["label"], "value": r["value"], "low": r["low"], "high": r["high"], "n": r["n"]}
                   for r in ev.get("methods", [])]
    subject = next(iter(ctx.runs.values()), None) or next(iter(ctx.datasets.values())).dataset_id
    sections = [Section("Held-out compliance by method", _summary_text(ctx, ev), table=ev.get("methods", []))]
    quality = feedback_quality(ctx)
    if quality:
        sections.append(Section("Annotators against the verifier (train responses)",
                                "How often each source's pass/fail matched the verifier, and what the "
                                "majority vote that built the datasets recovered.", table=quality))
    ex = examples(ctx)
    if ex:
        sections.append(Section("Held-out answers before and after", "Prompts where the verdict changed "
                                "(first few).", table=ex))
    sections.append(Section("Run", f"tag {ctx.tag}; folder {ctx.out_dir}",
                            table=[{"step": k, **v} for k, v in ctx.timings.items()]))
    path = Path(s.path) if Path(s.path).is_absolute() else ctx.out_dir / s.path
    return write_report(ctx.store, subject, path, comparisons=comparisons, extra_sections=sections,
                        title=s.title or f"heedful {ctx.recipe.name}: {ctx.tag}")


def _summary_text(ctx: Context, ev: dict) -> str:
    if not ev:
        return "No eval step ran."
    text = (f"Share of the {ev['n_prompts']} {ev['split']} prompts (topics never seen in training) whose "
            f"answer passes the '{ev['check']}' verifier; 95% Wilson intervals.")
    if ev.get("after"):
        text += (f" {ev['before']['label']}: {ev['before']['value']:.1f}% → {ev['after']['label']}: "
                 f"{ev['after']['value']:.1f}% ({ev['gain_points']:+.1f} points).")
    return text
