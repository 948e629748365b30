"""`heedful annotate` and `heedful annotators`: thin shells over heedful.annotate.run/registry."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from heedful.cli.common import DbOption, app, console, open_store

JudgesDirOption = Annotated[list[Path] | None, typer.Option(
    "--judges-dir", help="Folder of extra judge/pool YAML files (repeatable; also $HEEDFUL_JUDGES).")]


@app.command()
def annotate(
    annotator: Annotated[str, typer.Option("--annotator", "-a", help=(
        "A judge name, sim:POOL, verify:CHECK[,CHECK...] or mine:implicit (see `heedful annotators`)."))],
    on: Annotated[str | None, typer.Option("--on", help="Only responses to prompts with this tag.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only responses from this model.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Only responses to this prompt id.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many items.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for position swaps, sampling and noise.")] = 0,
    both_orders: Annotated[bool, typer.Option("--both-orders", help=(
        "Judge each pair in both orders and record whether the verdicts agree."))] = False,
    judge_model: Annotated[str | None, typer.Option("--judge-model", help=(
        "Model spec for the judge, overriding its config (e.g. smollm2, openai:MODEL@URL)."))] = None,
    pairs: Annotated[str, typer.Option("--pairs", help="Pairs per prompt: adjacent or all.")] = "adjacent",
    max_pairs: Annotated[int, typer.Option("--max-pairs", min=1, help="At most this many pairs per prompt.")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per model call.")] = 64,
    judges_dir: JudgesDirOption = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run an annotator over stored responses and write its feedback (resumable)."""
    from heedful.annotate.registry import Resolver
    from heedful.annotate.run import Selection, annotate as run_annotate, jsonable

    store = open_store(db)
    resolver = Resolver(judges_dir=list(judges_dir or []), judge_model=judge_model, batch_size=batch_size)
    ann = resolver.resolve(annotator)
    sel = Selection(tag=on, model=model, prompt_id=prompt, limit=limit, pairs=pairs, max_pairs_per_prompt=max_pairs)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"annotating with {annotator}", total=None)
        summary = run_annotate(store, ann, selection=sel, seed=seed, both_orders=both_orders,
                               resolver=resolver, chunk_size=max(batch_size, 16),
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        typer.echo(json.dumps(jsonable(summary.as_dict()), indent=2, default=str))
        return
    _print_summary(summary)


def _print_summary(s) -> None:
    table = Table(title=f"annotate {s.annotator}")
    for col in ("items", "judgements", "written", "skipped (done before)", "missing"):
        table.add_column(col, justify="right")
    table.add_row(str(s.items), str(s.tasks), str(s.written), str(s.skipped), str(sum(s.missing.values())))
    console.print(table)
    if s.missing:
        reasons = Table(title="missing values by reason")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, n in s.missing.most_common():
            reasons.add_row(reason, str(n))
        console.print(reasons)
    if s.agreement:
        a = s.agreement
        fmt = lambda x: "undefined" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"  # noqa: E731
        console.print(f"pool agreement over {a['items']} item(s), {len(a['raters'])} annotators: "
                      f"percent agreement {fmt(a['percent_agreement'])}, Fleiss' kappa {fmt(a['fleiss_kappa'])}")
    if s.run_id:
        console.print(f"run: {s.run_id}")


@app.command()
def annotators(judges_dir: JudgesDirOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False) -> None:
    """List the annotators a name can resolve to: judges, pools, verifiers, miners."""
    from heedful.annotate.registry import list_annotators

    found = list_annotators(list(judges_dir or []))
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    judges = Table(title="judges")
    for col in ("name", "kind", "model", "version", "aspects / principles", "description"):
        judges.add_column(col)
    for j in found["judges"]:
        extra = ", ".join(j["aspects"]) or (f"{j['principles']} principles" if j["principles"] else "")
        judges.add_row(j["name"], j["kind"], j["model"], j["version"], extra, j["description"])
    console.print(judges)
    pools = Table(title="simulated pools")
    for col in ("name", "members", "base", "description"):
        pools.add_column(col)
    for p in found["pools"]:
        pools.add_row(p["name"], ", ".join(p["members"]), ", ".join(p["bases"]), p["description"])
    console.print(pools)
    console.print("verifiers: " + (", ".join(found["verifiers"]) or "(none installed)"))
    console.print("miners: " + (", ".join(found["miners"]) or "(none installed)"))
