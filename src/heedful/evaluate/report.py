"""`heedful report`: one self-contained HTML file that says whether feedback made the model better.

Everything is inside the file: PNG plots (matplotlib, Agg backend, no
display needed) embedded as base64 data URIs, inline CSS, no scripts, no
external URLs, so it can be mailed or attached to a ticket. Every string that
came from data (prompts, model names, judge names) goes through Jinja2's
autoescape. Sections: comparisons with 95% intervals (before/after bars),
verifier pass rates per check, training curves (loss logged by trainers in
run metrics), the agreement matrix between sources, judge bias diagnostics,
and the lineage feedback -> dataset -> run -> model.

Callers (the demo) add their own figures with `comparisons` (rows with a
value and an interval) and `extra_sections` (title, text, tables, PNGs or
matplotlib figures).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from heedful.errors import InvalidInput, NotFound


@dataclass
class Section:
    """An extra section: `figures` are PNG bytes or matplotlib figures; `table` is a list of flat dicts."""

    title: str
    text: str = ""
    figures: list[Any] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise NotFound("the HTML report draws its plots with matplotlib, which is not installed "
                       "(pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def png(fig) -> str:
    """A matplotlib figure (or PNG bytes) as a data URI; closes the figure."""
    if isinstance(fig, (bytes, bytearray)):
        data = bytes(fig)
    else:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        _plt().close(fig)
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def bars_with_ci(rows: list[dict], title: str, unit: str = "%") -> str:
    """Horizontal bars of row['value'] with [low, high] error bars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    labels = [str(r["label"]) for r in rows]
    vals = [float(r["value"]) for r in rows]
    lo = [max(0.0, v - float(r.get("low", v))) for v, r in zip(vals, rows)]
    hi = [max(0.0, float(r.get("high", v)) - v) for v, r in zip(vals, rows)]
    ax.barh(range(len(rows)), vals, xerr=[lo, hi], color="#4c78a8", capsize=4)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    return png(fig)


def curves(runs: list[dict]) -> str | None:
    pts = [(r["label"], r["curve"]) for r in runs if r["curve"]]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, curve in pts:
        ax.plot([s for s, _ in curve], [v for _, v in curve], marker=".", label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    return png(fig)


def heatmap(names: list[str], pairs: dict, key: str = "cohen_kappa") -> str | None:
    import numpy as np
    if len(names) < 2 or not pairs:
        return None
    m = np.full((len(names), len(names)), np.nan)
    for i in range(len(names)):
        m[i, i] = 1.0
    for (a, b), res in pairs.items():
        i, j = names.index(a), names.index(b)
        m[i, j] = m[j, i] = res[key] if res[key] is not None else np.nan
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.0 * len(names) + 1.5))
    im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            if not np.isnan(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label=key.replace("_", " "))
    return png(fig)


# --- gathering from the store ------------------------------------------------------------

def lineage_of(store, item_id: str) -> dict:
    """What the report is about: the run or dataset, its runs, datasets, feedback and models."""
    from heedful.store import lineage as lin
    from heedful.store import tables as t
    target = store.get(item_id)
    if isinstance(target, lin.Run):
        behind = store.feedback_behind(item_id, "run")
        models = [ref for rt, ref in target.outputs if rt == "model"]
        about = {"type": "run", "id": target.id, "kind": target.kind, "name": target.name, "status": target.status}
    elif isinstance(target, lin.Dataset):
        behind = store.feedback_behind(item_id, "dataset")
        rl = t.run_links
        with store.engine.connect() as conn:
            users = conn.execute(sa.select(rl.c.run_id).where(rl.c.role == "input", rl.c.ref_type == "dataset",
                                                              rl.c.ref == item_id)).scalars().all()
        behind["runs"] = sorted(set(behind["runs"]) | set(users))
        models = [ref for r in users for rt, ref in store.run(r).outputs if rt == "model"]
        about = {"type": "dataset", "id": target.id, "name": target.name, "rule": target.rule,
                 "rows": target.n_rows}
    else:
        raise InvalidInput(f"{item_id!r} is a {type(target).__name__.lower()}; a report is about a run or a dataset")
    runs = [store.run(r) for r in dict.fromkeys(behind["runs"])]
    return {"about": about, "runs": runs, "datasets": [store.dataset(d) for d in behind["datasets"]],
            "feedback_ids": behind["feedback_ids"], "models": models}


def feedback_summary(store, ids: list[str]) -> list[dict]:
    from heedful.store import tables as t
    f = t.feedback
    counts: Counter = Counter()
    with store.engine.connect() as conn:
        for i in range(0, len(ids), 500):
            q = sa.select(f.c.kind, f.c.source_type, f.c.source_name).where(f.c.id.in_(ids[i:i + 500]))
            counts.update(conn.execute(q).all())
    return [{"kind": k, "source": f"{st}:{sn}", "rows": n} for (k, st, sn), n in counts.most_common()]


def eval_rows(store, models: list[str]) -> list[dict]:
    """Win-rate evaluations recorded in the store (kind eval): of these models where there are any, else all."""
    from heedful.store import tables as t
    with store.engine.connect() as conn:
        ids = conn.execute(sa.select(t.runs.c.id).where(t.runs.c.kind == "eval", t.runs.c.status == "succeeded")
                           .order_by(t.runs.c.seq)).scalars().all()
    rows = []
    for rid in ids:
        m = store.run(rid).metrics
        if "win_rate" in m and m.get("ci_low") is not None:
            rows.append({"label": f"{m['model']} vs {m['reference']}", "value": m["win_rate"],
                         "low": m["ci_low"], "high": m["ci_high"], "n": m.get("n"), "model": m.get("model")})
    mine = [r for r in rows if r["model"] in models]
    return mine or rows  # trained models are often named by path while answers carry a short name


def examples(store, ids: list[str], k: int = 5, width: int = 300) -> list[dict]:
    """A few feedback rows behind the item, with their prompt and answers (shortened; escaped by the template)."""
    out = []
    for fid in ids[:k]:
        fb = store.get_feedback(fid)
        responses = [store.get_response(r) for r in fb.response_ids]
        prompt = store.get_prompt(responses[0].prompt_id)
        text = prompt.text if prompt.text is not None else " / ".join(m.content for m in prompt.messages)
        out.append({"prompt": text[:width], "kind": fb.kind, "source": f"{fb.source.type}:{fb.source.name}",
                    "value": "" if fb.value is None else json.dumps(fb.value_dict(), ensure_ascii=False)[:width],
                    "responses": [f"{r.model or '?'}: {r.text[:width]}" for r in responses]})
    return out


def pass_rate_rows(store, models: list[str] = (), limit: int = 8) -> list[dict]:
    """Pass rates per check of the lineage's models first, then the store's most answered ones."""
    from heedful.evaluate.verify import pass_rates
    stored = list(store.stats()["responses_by_model"])
    ordered = [m for m in models if m in stored] + [m for m in stored if m not in models]
    rows = []
    for model in ordered[:limit]:
        pr = pass_rates(store, model=None if model == "None" else model)
        for check, est in pr.per_check.items():
            e = est.percent()
            rows.append({"label": f"{model} · {check}", "value": e.value, "low": e.low, "high": e.high, "n": e.n})
    return rows


def bias_rows(store, limit: int = 5) -> list[dict]:
    from heedful.evaluate.bias import bias_report
    ai = [s for s in store.stats()["feedback_by_source"] if s.startswith("ai:")]
    out = []
    for src in ai[:limit]:
        rep = bias_report(store, src)
        if rep["n_verdicts"]:
            out.append({"source": src, "n": rep["n_verdicts"],
                        "position_consistency": rep["position_consistency"]["value"],
                        "first_position": rep["first_position_preference"]["value"],
                        "longer_preferred": rep["length_preference"]["value"],
                        "own_family_preferred": rep["self_preference"]["value"]})
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.2f}"
    return "—" if v is None else str(v)


def _section(s: Section) -> dict:
    return {"title": s.title, "text": s.text, "images": [png(f) for f in s.figures],
            "columns": list(s.table[0]) if s.table else [],
            "rows": [[_fmt(r.get(c)) for c in s.table[0]] for r in s.table] if s.table else []}


def gather(store, item_id: str, comparisons: list[dict] | None = None,
           extra_sections: list[Section] | None = None, title: str | None = None) -> dict:
    """Everything the template shows, with plots rendered to data URIs."""
    from heedful.evaluate.agreement import agreement_matrix
    lin = lineage_of(store, item_id)
    comp = list(comparisons or []) + eval_rows(store, lin["models"])
    passes = pass_rate_rows(store, lin["models"])
    train = [{"label": f"{r.name or r.kind} ({r.id})", "curve": r.metrics.get("loss_curve") or []}
             for r in lin["runs"] if r.kind == "train"]
    for kind in ("preference", "outcome", "binary", "rating"):  # the first kind two sources share
        am = agreement_matrix(store, kind=kind, min_items=5)
        if am["pairs"]:
            break
    bias = bias_rows(store)
    fb = feedback_summary(store, lin["feedback_ids"])
    return {
        "title": title or f"heedful report: {lin['about']['type']} {item_id}",
        "about": lin["about"],
        "comparisons": comp, "comparison_png": bars_with_ci(comp, "comparison (95% CI)") if comp else None,
        "passes": passes, "passes_png": bars_with_ci(passes, "verifier pass rate (95% Wilson CI)") if passes else None,
        "train": train, "train_png": curves(train),
        "agreement": [{"a": a, "b": b, **{k: _fmt(v) for k, v in r.items()}} for (a, b), r in am["pairs"].items()],
        "agreement_png": heatmap(am["sources"], am["pairs"]), "agreement_kind": am["kind"],
        "bias": [{k: _fmt(v) for k, v in r.items()} for r in bias],
        "bias_png": _bias_png(bias),
        "datasets": [{"id": d.id, "name": d.name, "rule": d.rule, "rows": d.n_rows} for d in lin["datasets"]],
        "runs": [{"id": r.id, "kind": r.kind, "name": r.name, "status": r.status,
                  "inputs": ", ".join(f"{t}:{x}" for t, x in r.inputs),
                  "outputs": ", ".join(f"{t}:{x}" for t, x in r.outputs)} for r in lin["runs"]],
        "feedback": fb, "feedback_total": len(lin["feedback_ids"]), "models": lin["models"],
        "examples": examples(store, lin["feedback_ids"]),
        "extra": [_section(s) for s in extra_sections or []],
    }


def _bias_png(rows: list[dict]) -> str | None:
    if not rows:
        return None
    import numpy as np
    plt = _plt()
    keys = ["position_consistency", "first_position", "longer_preferred", "own_family_preferred"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    w = 0.8 / len(rows)
    for i, r in enumerate(rows):
        vals = [float(r[k]) if r[k] != "—" else np.nan for k in keys]
        ax.bar(np.arange(len(keys)) + i * w, vals, width=w, label=r["source"])
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(keys)) + 0.4 - w / 2, [k.replace("_", " ") for k in keys], fontsize=8)
    ax.set_ylabel("%")
    ax.legend(fontsize=8)
    return png(fig)


def write_report(store, run_or_dataset_id: str, out_path: str | Path, *, comparisons: list[dict] | None = None,
                 extra_sections: list[Section] | None = None, title: str | None = None) -> Path:
    """Render the report to `out_path` (written whole or not at all). Returns the path.

    `comparisons` rows: {"label", "value", "low", "high"} (percent), e.g. held-out
    compliance before and after training; they come first in the bar chart.
    """
    from jinja2 import Environment, PackageLoader, select_autoescape
    env = Environment(loader=PackageLoader("heedful.evaluate", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    html = env.get_template("report.html.j2").render(**gather(store, run_or_dataset_id, comparisons,
                                                              extra_sections, title))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
