"""`heedful build RULE`: feedback in the store → a TRL dataset folder, with a summary table.

Thin over `heedful.build.build`; the option help comes from `BuildConfig`'s
field help so the CLI and the library say the same thing.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Annotated

import typer
from rich.table import Table

from heedful.cli.common import DbOption, app, console, open_store
from heedful.errors import InvalidInput


def _help(name: str) -> str:
    from heedful.build.config import BuildConfig  # light: every `heedful …` call runs this
    return next(f.metadata["help"] for f in fields(BuildConfig) if f.name == name)


@app.command("build")
def build_cmd(
    rule: Annotated[str, typer.Argument(help="Rule name; `heedful build-rules` lists them.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Folder to write the dataset to.")],
    from_: Annotated[list[str] | None, typer.Option(
        "--from", help="Feedback filter KEY=VALUE, repeatable: kind=, source=TYPE[:NAME], model=, tag=, "
                       "prompt=, response=, since=, until=.")] = None,
    aggregate: Annotated[str, typer.Option(help=_help("aggregate"))] = "majority",
    weighted: Annotated[bool, typer.Option("--weighted", help=_help("weighted"))] = False,
    on_tie: Annotated[str, typer.Option(help=_help("on_tie"))] = "drop",
    pairing: Annotated[str, typer.Option(help=_help("pairing"))] = "all-pairs",
    aspect: Annotated[str | None, typer.Option(help=_help("aspect"))] = None,
    aspect_weight: Annotated[list[str] | None, typer.Option(
        help="ASPECT=WEIGHT, repeatable: rate by a weighted sum of aspects.")] = None,
    min_agreement: Annotated[float, typer.Option(help=_help("min_agreement"))] = 0.0,
    min_margin: Annotated[float, typer.Option(help=_help("min_margin"))] = 0.0,
    min_score: Annotated[float, typer.Option(help=_help("min_score"))] = 0.75,
    dedup: Annotated[bool, typer.Option("--dedup", help=_help("dedup"))] = False,
    near_dup_threshold: Annotated[float, typer.Option(help=_help("near_dup_threshold"))] = 0.9,
    balance_length: Annotated[bool, typer.Option(
        "--balance-length/--allow-length-bias", help=_help("balance_length"))] = True,
    diverse: Annotated[int | None, typer.Option(help=_help("diverse"))] = None,
    split: Annotated[float, typer.Option(help=_help("split"))] = 0.0,
    seed: Annotated[int, typer.Option(help=_help("seed"))] = 0,
    name: Annotated[str | None, typer.Option(help="Dataset name in the store (default RULE:FOLDER).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty output folder.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Turn stored feedback into a training dataset in TRL's format, registered with its lineage."""
    from heedful.build import BuildConfig, build

    cfg = BuildConfig(aggregate=aggregate, weighted=weighted, on_tie=on_tie, pairing=pairing, aspect=aspect,
                      aspect_weights=_weights(aspect_weight), min_agreement=min_agreement, min_margin=min_margin,
                      min_score=min_score, dedup=dedup, near_dup_threshold=near_dup_threshold,
                      balance_length=balance_length, diverse=diverse, split=split, seed=seed)
    with open_store(db) as store:
        res = build(store, rule, out, filters=from_ or [], config=cfg, name=name, overwrite=overwrite)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in vars(res).items() if k != "config"}, indent=2, default=str))
        return
    console.print(_summary(res))
    console.print(f"dataset [bold]{res.dataset_id}[/] → {res.path}  (for {res.trainer})", highlight=False)


def _weights(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise InvalidInput(f"{item!r} must look like ASPECT=WEIGHT, e.g. helpfulness=2",
                               where="--aspect-weight") from None
    return out


def _summary(res) -> Table:
    table = Table(title=f"build {res.rule} ({res.format})")
    table.add_column("step")
    table.add_column("rows", justify="right")
    table.add_row("feedback rows in", str(res.rows_in))
    table.add_row(f"examples from {res.rule}", str(res.examples))
    for reason, n in sorted(res.dropped.items()):
        table.add_row(f"  dropped: {reason}", str(n))
    before, after = res.chosen_longer
    if before is not None:
        table.add_row("chosen longer (before → after)", f"{before:.1%} → {after:.1%}" if after is not None
                      else f"{before:.1%} → n/a")
    for split, n in res.rows_out.items():
        table.add_row(f"rows out: {split}", str(n))
    return table


@app.command("build-rules")
def build_rules() -> None:
    """List the build rules: what each reads and which TRL format it writes."""
    from heedful.build import all_rules

    table = Table(title="build rules")
    table.add_column("rule", no_wrap=True, min_width=len("reward_regression"))
    for col in ("reads", "format", "trainer", "what"):
        table.add_column(col)
    for name, r in sorted(all_rules().items()):
        table.add_row(name, ", ".join(r.kinds), r.format, r.trainer, _first_sentence(r.doc))
    console.print(table)


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split("\n\n")[0].split())
    return text.split(". ")[0].rstrip(".") + "."
