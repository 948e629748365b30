"""`run_recipe`: load the prompts, run each step in order with Rich progress, collect the figures.

A run has its own tag (`<recipe>-<time>`): its prompts, responses and
feedback carry it, so several runs can share one store without mixing, and
every step selects by it. Datasets and models go under the run's folder;
`RunResult.figures` holds what `--json` writes (held-out compliance before
and after, one entry per compared method) and what the report shows.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from heedful.errors import InvalidInput
from heedful.recipes.spec import PromptsSpec, Recipe, Step


@dataclass
class Context:
    """What steps share: the store, the run's folder and tag, prompts per split, what earlier steps made."""

    store: object
    recipe: Recipe
    out_dir: Path
    tag: str
    progress: object = None
    say: Callable[[str], None] = print
    prompts: dict[str, list] = field(default_factory=dict)
    datasets: dict[str, object] = field(default_factory=dict)   # build name -> BuildResult
    models: dict[str, str] = field(default_factory=dict)        # model name -> folder (or spec for base)
    runs: dict[str, str] = field(default_factory=dict)          # train name -> run id
    train_metrics: dict[str, dict] = field(default_factory=dict)
    loaded: dict[str, object] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    sections: list = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def split_tag(self, split: str) -> str:
        return f"{self.tag}:{split}"

    def model(self, name: str):
        """A loaded model by recipe name ('base' or a train step), kept for later steps."""
        if name not in self.loaded:
            from heedful.models import get_model
            spec = self.models[name]
            self.loaded[name] = (get_model(spec) if name == "base"
                                 else get_model(spec, name=f"{self.tag}/{name}"))
        return self.loaded[name]

    def task(self, description: str, total: int | None):
        """A progress bar row; returns an `advance(n)` function."""
        if self.progress is None:
            return lambda n=1: None
        tid = self.progress.add_task(description, total=total)
        return lambda n=1: self.progress.advance(tid, n)


@dataclass
class RunResult:
    tag: str
    out_dir: str
    figures: dict
    report: str | None
    timings: dict


def read_prompt_rows(recipe: Recipe) -> list[dict]:
    """The recipe's JSONL prompt file, each row checked for the fields a run needs."""
    spec = recipe.prompts
    path = recipe.path_of(spec.file)
    if not path.is_file():
        raise InvalidInput(f"prompts file {path} does not exist", field="prompts.file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InvalidInput(f"line {n}: not JSON ({e.msg})", where=str(path)) from None
        if not isinstance(row, dict) or ("prompt" not in row and "messages" not in row):
            raise InvalidInput(f"line {n}: a row needs 'prompt' (text) or 'messages' (chat)", where=str(path))
        row.setdefault("id", f"p{n}")
        rows.append(row)
    if not rows:
        raise InvalidInput("no prompts in the file", where=str(path))
    return rows


def split_rows(rows: list[dict], spec: PromptsSpec) -> dict[str, list[dict]]:
    """Held-out by group (all rows of a topic on one side), seeded; then the size caps."""
    key = spec.group_by
    groups = sorted({str(r.get(key, r["id"])) if key else r["id"] for r in rows})
    random.Random(spec.seed).shuffle(groups)
    n_held = round(len(groups) * spec.heldout)
    held = set(groups[:n_held])
    out: dict[str, list[dict]] = {"train": [], "heldout": []}
    for r in rows:
        g = str(r.get(key, r["id"])) if key else r["id"]
        out["heldout" if g in held else "train"].append(r)
    for split, cap in (("train", spec.max_train), ("heldout", spec.max_heldout)):
        if cap is not None:
            out[split] = _spread(out[split], cap, spec.seed)
    return out


def _spread(rows: list[dict], cap: int, seed: int) -> list[dict]:
    """`cap` rows picked at random but kept in file order (so every kind of row stays represented)."""
    if len(rows) <= cap:
        return rows
    keep = set(random.Random(seed).sample(range(len(rows)), cap))
    return [r for i, r in enumerate(rows) if i in keep]


def store_prompts(ctx: Context, rows_by_split: dict[str, list[dict]]) -> None:
    rows = []
    for split, rs in rows_by_split.items():
        for r in rs:
            meta = {k: v for k, v in r.items() if k not in ("id", "prompt", "messages", "tags")}
            # a text prompt is stored as one user turn: the datasets built from it are then conversational,
            # so TRL applies the chat template in training exactly as generation did
            messages = r.get("messages") or [{"role": "user", "content": r["prompt"]}]
            rows.append({"id": f"{ctx.tag}/{r['id']}", "messages": messages,
                         "tags": [ctx.recipe.name, ctx.split_tag(split), *r.get("tags", [])], "meta": meta})
    ctx.store.write(prompts=rows)
    for split in rows_by_split:
        ctx.prompts[split] = list(ctx.store.prompts(tag=ctx.split_tag(split)))


def new_tag(recipe: Recipe) -> str:
    return f"{recipe.name}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


def run_recipe(recipe: Recipe, steps: list[Step], store, out_dir: str | Path, *, progress=None,
               say: Callable[[str], None] = print, tag: str | None = None) -> RunResult:
    """Run every step of a validated recipe against `store`, writing under `out_dir`."""
    from heedful.recipes import steps as impl
    tag = tag or new_tag(recipe)
    t0, c0 = time.perf_counter(), time.process_time()
    split = split_rows(read_prompt_rows(recipe), recipe.prompts)  # a bad file fails before anything is written
    out = Path(out_dir) / tag
    out.mkdir(parents=True, exist_ok=False)
    ctx = Context(store, recipe, out, tag, progress, say, models={"base": recipe.model})
    store_prompts(ctx, split)
    say(f"run {tag}: {len(ctx.prompts['train'])} train and {len(ctx.prompts['heldout'])} held-out prompts "
        f"(split by {recipe.prompts.group_by or 'prompt'}); writing to {out}")
    ctx.timings["prompts"] = {"wall_s": round(time.perf_counter() - t0, 1),
                              "cpu_s": round(time.process_time() - c0, 1)}
    report = None
    for i, s in enumerate(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        result = impl.STEP_FUNCTIONS[s.step](ctx, s)
        # CPU seconds beside wall seconds: on a shared machine the wall time says little about the work
        ctx.timings[f"{i}:{s.step}" + (f":{s.name}" if hasattr(s, "name") else "")] = {
            "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)}
        if s.step == "report":
            report = str(result)
    ctx.figures["timings_s"] = ctx.timings
    figures = {k: v for k, v in ctx.figures.items() if not k.startswith("_")}
    (out / "figures.json").write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return RunResult(tag, str(out), figures, report, ctx.timings)
