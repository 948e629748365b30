"""`heedful eval winrate|verify|rm|agreement|bias` and `heedful report`: thin shells over heedful.evaluate."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from heedful.cli.common import DbOption, app, console, open_store

eval_app = typer.Typer(no_args_is_help=True, help="Measure models and judges: win rate, pass rate, RM accuracy, "
                                                  "agreement, bias.")
app.add_typer(eval_app, name="eval")

JsonOption = Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON to this file.")]


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _emit(result: dict, json_path: Path | None) -> None:
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_path.with_name(json_path.name + ".part")
        tmp.write_text(json.dumps(_clean(result), indent=2, default=str), encoding="utf-8")
        tmp.replace(json_path)
        console.print(f"wrote {json_path}")


def _f(v, digits: int = 2) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _table(title: str, columns: list[str], rows: list[list]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    console.print(t)


def _ci(e: dict | None) -> list[str]:
    return ["—", "—", "0"] if e is None else [_f(e["value"], 1), f"{_f(e['low'], 1)} – {_f(e['high'], 1)}", str(e["n"])]


@eval_app.command("winrate")
def winrate_cmd(
    model: Annotated[str, typer.Option("--model", help="The model whose answers are judged.")],
    reference: Annotated[str, typer.Option("--reference", help="The reference model's answers.")],
    judge: Annotated[str | None, typer.Option("--judge", help=(
        "Judge name: selects stored verdicts by source name, or runs this judge where none are stored "
        "(default: use what is stored, else run `pairwise`)."))] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for A/B swaps and the bootstrap.")] = 0,
    both_orders: Annotated[bool, typer.Option("--both-orders", help="Judge each pair in both orders.")] = False,
    judge_model: Annotated[str | None, typer.Option("--judge-model", help="Override the judge's model spec.")] = None,
    no_difficulty: Annotated[bool, typer.Option("--no-difficulty", help=(
        "Leave instruction difficulty out of the length-controlled GLM."))] = False,
    json_path: JsonOption = None,
    db: DbOption = None,
) -> None:
    """Win rate of MODEL against REFERENCE (AlpacaEval's figures, 95% bootstrap CI, length-controlled)."""
    from heedful.annotate.registry import Resolver
    from heedful.evaluate.winrate import winrate
    store = open_store(db)
    resolver = Resolver(judge_model=judge_model)
    with console.status("computing the win rate"):
        res = winrate(store, model, reference, judge=judge, seed=seed, both_orders=both_orders,
                      resolver=resolver, difficulty=None if no_difficulty else "auto")
    d = res.as_dict()
    _table(f"{model} vs {reference} ({res.judge})", ["figure", "value"], [
        ["win rate %", _f(d["win_rate"])], ["standard error", _f(d["standard_error"])],
        ["95% CI", f"{_f(d['ci_low'])} – {_f(d['ci_high'])}"], ["discrete win rate %", _f(d["discrete_win_rate"])],
        ["length-controlled %", _f(d["length_controlled_win_rate"])],
        ["wins / losses / draws", f"{res.n_wins} / {res.n_wins_base} / {res.n_draws}"],
        ["items (missing verdicts)", f"{res.n} ({res.n_missing})"], ["judged now", str(res.judged_now)]])
    _emit(d, json_path)


@eval_app.command("verify")
def verify_cmd(
    model: Annotated[str | None, typer.Option("--model", help="Only this model's answers.")] = None,
    on: Annotated[str | None, typer.Option("--on", help="Only prompts with this tag.")] = None,
    check: Annotated[list[str] | None, typer.Option("--check", help="Only these checks (repeatable).")] = None,
    json_path: JsonOption = None,
    db: DbOption = None,
) -> None:
    """Verifier pass rate per check and overall, with 95% Wilson intervals."""
    from heedful.errors import NotFound
    from heedful.evaluate.verify import pass_rates
    d = pass_rates(open_store(db), model=model, tag=on, checks=check).as_dict()
    if not d["per_check"]:
        raise NotFound("no verifier outcomes match (run `heedful annotate -a verify:CHECK` first)")
    rows = [[c, *_ci(e)] for c, e in d["per_check"].items()]
    rows += [["all checks on a response", *_ci(d["response_level"])], ["pooled (check-level)", *_ci(d["check_level"])]]
    _table(f"pass rates{f' of {model}' if model else ''}", ["check", "pass %", "95% CI", "n"], rows)
    _emit(d, json_path)


@eval_app.command("rm")
def rm_cmd(
    model: Annotated[Path, typer.Argument(help="A reward model folder (sequence classification, one output).")],
    pairs: Annotated[Path, typer.Argument(help="Held-out pairs: a datasets folder or .jsonl/.json/.parquet.")],
    split: Annotated[str, typer.Option("--split", help="auto (test if present), train or test.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    max_length: Annotated[int, typer.Option("--max-length", min=8)] = 512,
    json_path: JsonOption = None,
) -> None:
    """Reward-model accuracy on preference pairs (chosen scored above rejected), overall and per subset."""
    from heedful.errors import InvalidInput
    from heedful.evaluate.rm import rm_accuracy
    if split not in ("auto", "train", "test"):
        raise InvalidInput(f"--split must be auto, train or test, got {split!r}")
    with console.status("scoring pairs"):
        d = rm_accuracy(model, pairs, split=split, batch_size=batch_size, max_length=max_length)
    rows = [[s, *_ci(e)] for s, e in d["per_subset"].items()] + [["overall", *_ci(d["accuracy"])]]
    _table(f"reward model accuracy ({d['ties']} ties)", ["subset", "accuracy %", "95% CI", "n"], rows)
    _emit(d, json_path)


@eval_app.command("agreement")
def agreement_cmd(
    sources: Annotated[list[str] | None, typer.Argument(help="Sources as TYPE:NAME (two or more; default all).")] = None,
    kind: Annotated[str, typer.Option("--kind", help="preference, rating, outcome or binary.")] = "preference",
    min_items: Annotated[int, typer.Option("--min-items", min=1, help="Skip pairs with fewer shared items.")] = 1,
    json_path: JsonOption = None,
    db: DbOption = None,
) -> None:
    """Agreement between sources on the same items: percent, Cohen's kappa, Krippendorff's alpha."""
    from heedful.errors import NotFound
    from heedful.evaluate.agreement import agreement_matrix
    m = agreement_matrix(open_store(db), sources or None, kind=kind, min_items=min_items)
    if not m["pairs"]:
        raise NotFound(f"no two sources judged the same items ({kind}); sources seen: {', '.join(m['sources']) or 'none'}")
    rows = [[a, b, r["n"], _f(r["percent_agreement"] * 100, 1), _f(r["cohen_kappa"], 3), _f(r["krippendorff_alpha"], 3)]
            for (a, b), r in m["pairs"].items()]
    _table(f"agreement ({kind})", ["source A", "source B", "items", "% agree", "Cohen's κ", "Krippendorff's α"], rows)
    _emit({"kind": kind, "sources": m["sources"],
           "pairs": [{"source_a": a, "source_b": b, **r} for (a, b), r in m["pairs"].items()]}, json_path)


@eval_app.command("bias")
def bias_cmd(
    judge: Annotated[str, typer.Argument(help="The judge as TYPE:NAME, e.g. ai:pairwise.")],
    reference: Annotated[str | None, typer.Option("--reference", help="A source to compare with (e.g. human:alice).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only pairs involving this model.")] = None,
    judge_family: Annotated[str | None, typer.Option("--judge-family", help=(
        "The judge's model family (e.g. gpt) where its source does not record its model."))] = None,
    json_path: JsonOption = None,
    db: DbOption = None,
) -> None:
    """Position consistency, position preference, length preference and self-preference of a judge."""
    from heedful.errors import NotFound
    from heedful.evaluate.bias import bias_report
    d = bias_report(open_store(db), judge, reference=reference, model=model, judge_family=judge_family)
    if not d["n_verdicts"]:
        raise NotFound(f"no preference verdicts from {judge!r}")
    rows = [["position consistency", *_ci(d["position_consistency"])],
            ["picks the answer shown first", *_ci(d["first_position_preference"])],
            ["picks the longer answer", *_ci(d["length_preference"])],
            [f"picks its own family ({d['self_preference']['judge_family']})", *_ci(d["self_preference"])]]
    if reference:
        r = d["reference"]
        rows += [[f"{reference}: picks the longer answer", *_ci(r["length_preference"])],
                 [f"{reference}: picks the judge's family", *_ci(r["self_preference"])]]
    _table(f"bias of {judge} ({d['n_verdicts']} verdicts)", ["diagnostic", "%", "95% CI", "n"], rows)
    _emit(d, json_path)


@app.command("report")
def report_cmd(
    item: Annotated[str, typer.Argument(help="A run id or dataset id.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.")] = Path("report.html"),
    db: DbOption = None,
) -> None:
    """One self-contained HTML report: comparisons, pass rates, curves, agreement, bias, lineage."""
    from heedful.evaluate.report import write_report
    with console.status("writing the report"):
        path = write_report(open_store(db), item, out)
    console.print(f"report: {path.resolve()}")
