"""`heedful demo`: the bundled recipe (demo.yaml) on the embedded default, with Rich progress.

`--quick` shrinks the same recipe (fewer prompts, samples and training
steps) so that CI can run the whole loop in a few minutes; the figures it
gives are real but noisy. `--json FILE` writes held-out compliance before and
after (percent, 95% Wilson intervals) and one entry per compared method.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

QUICK = {
    "prompts": {"max_train": 8, "max_heldout": 12},
    "generate": {"n": 4, "max_new_tokens": 40},
    "train:dpo": {"config": {"max_steps": 4}},
    "train:sft": {"config": {"max_steps": 3}},
    "eval": {"max_new_tokens": 40, "best_of_n": {"n": 3}},
}


def demo_path() -> Path:
    return Path(str(resources.files("heedful.recipes") / "demo.yaml"))


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def apply_overrides(data: dict, overrides: dict) -> dict:
    """Overrides by `prompts`, by step name (`generate`) or step + name (`train:dpo`), merged deeply."""
    data = copy.deepcopy(data)
    if "prompts" in overrides:
        data["prompts"] = _merge(data["prompts"], overrides["prompts"])
    for step in data["steps"]:
        for key in (step["step"], f"{step['step']}:{step.get('name')}"):
            if key in overrides:
                step.update(_merge(step, overrides[key]))
    return data


def load_demo(quick: bool = False):
    import yaml

    from heedful.recipes.spec import recipe_from_dict
    path = demo_path()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if quick:
        data = apply_overrides(data, QUICK)
        data["name"] = "demo-quick"
    return recipe_from_dict(data, where=str(path), base_dir=path.parent)


def json_figures(result, quick: bool) -> dict:
    """What `--json` writes: before/after with intervals, the gain, and every compared method."""
    ev = result.figures.get("eval") or {}
    pick = lambda r: None if r is None else {k: r[k] for k in ("label", "value", "low", "high", "n")}  # noqa: E731
    return {
        "quick": quick, "run": result.tag, "report": result.report, "unit": "percent of held-out prompts",
        "check": ev.get("check"), "heldout_prompts": ev.get("n_prompts"),
        "before": pick(ev.get("before")), "after": pick(ev.get("after")), "gain_points": ev.get("gain_points"),
        "methods": [{"name": r["name"], "decoding": r["decoding"], **pick(r)} for r in ev.get("methods", [])],
        "datasets": result.figures.get("datasets"), "training": result.figures.get("training"),
        "annotate": result.figures.get("annotate"), "timings_s": result.timings,
    }


def write_json(path: str | Path, figures: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    tmp.write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    tmp.replace(p)
