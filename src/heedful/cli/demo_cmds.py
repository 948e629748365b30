"""`heedful demo` (the bundled loop on the embedded default) and `heedful run RECIPE.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heedful.cli.common import DbOption, app, console

JsonOption = Annotated[Path | None, typer.Option("--json", help="Write the figures (percent, 95% CIs) to this file.")]


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _quiet() -> None:
    """One Rich display: the libraries' own tqdm bars and deprecation chatter would tear it apart."""
    import os
    import warnings
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="transformers|trl|peft")


def _execute(recipe, steps, db: str | None, out: Path):
    from heedful.cli.common import open_store
    _quiet()
    from heedful.recipes import run_recipe
    store = open_store(db)
    try:
        with _progress() as progress:
            return run_recipe(recipe, steps, store, out, progress=progress,
                              say=lambda m: progress.console.print(m, markup=False, highlight=False))
    finally:
        store.close()


def _table(result) -> None:
    from rich.table import Table
    ev = result.figures.get("eval")
    if not ev:
        return
    t = Table(title=f"{ev['split']} compliance ({ev['n_prompts']} prompts, '{ev['check']}' verifier, 95% Wilson CI)")
    for col in ("method", "decoding", "compliance %", "95% CI"):
        t.add_column(col, justify="right" if col != "method" else "left")
    for r in ev["methods"]:
        t.add_row(r["label"], r["decoding"], f"{r['value']:.1f}", f"[{r['low']:.1f}, {r['high']:.1f}]")
    console.print(t)
    if ev.get("gain_points") is not None:
        console.print(f"gain: {ev['gain_points']:+.1f} points ({ev['before']['label']} → {ev['after']['label']})")


@app.command("demo")
def demo(quick: Annotated[bool, typer.Option("--quick", help="A small run (a few minutes) for CI.")] = False,
         json_file: JsonOption = None,
         db: Annotated[str | None, typer.Option(
             "--db", help="Database URL or SQLite path (default OUT/heedful.db).")] = None,
         out: Annotated[Path, typer.Option(
             "--out", help="Folder for the run (datasets, models, report).")] = Path("heedful-demo")):
    """Run the whole loop on SmolLM2-135M: sample, annotate, build, DPO/SFT, evaluate, report."""
    from heedful.recipes.demo import json_figures, load_demo, write_json
    recipe, steps = load_demo(quick)
    out.mkdir(parents=True, exist_ok=True)
    result = _execute(recipe, steps, db or str(out / "heedful.db"), out)
    _table(result)
    if json_file:
        write_json(json_file, json_figures(result, quick))
        console.print(f"figures: {json_file}")
    console.print(f"report: {result.report}")


@app.command("run")
def run(recipe_file: Annotated[Path, typer.Argument(help="A recipe YAML file (see examples/recipes/).")],
        db: DbOption = None, json_file: JsonOption = None,
        out: Annotated[Path, typer.Option(
            "--out", help="Folder for the run's datasets, models and report.")] = Path("runs"),
        check: Annotated[bool, typer.Option("--check", help="Only validate the recipe.")] = False):
    """Run a recipe: generate → annotate → build → train → eval → report, as the YAML says."""
    from heedful.recipes import load_recipe
    from heedful.recipes.demo import json_figures, write_json
    recipe, steps = load_recipe(recipe_file)
    if check:
        console.print(f"{recipe_file}: valid ({len(steps)} steps: {', '.join(s.step for s in steps)})")
        return
    result = _execute(recipe, steps, db, out)
    _table(result)
    if json_file:
        write_json(json_file, json_figures(result, False))
    if result.report:
        console.print(f"report: {result.report}")
