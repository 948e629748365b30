"""`heedful generate`: sample responses from a model into the store (thin over heedful.models.sampling)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from heedful.cli.common import DbOption, app, console, open_store
from heedful.errors import InvalidInput


@app.command()
def generate(
    model: Annotated[str, typer.Option("--model", "-m", help=(
        "Model spec: smollm2, a HF folder or .gguf file, openai:MODEL@URL, fake."))] = "smollm2",
    prompts: Annotated[Path | None, typer.Option("--prompts", help=(
        "JSONL with a `prompt` field (text or chat messages), or a text file with one prompt per line."))] = None,
    tag: Annotated[str | None, typer.Option("--tag", help=(
        "Without --prompts: sample for the stored prompts with this tag. With --prompts: tag the new prompts."))] = None,
    n: Annotated[int, typer.Option("-n", "--samples", min=1, help="Responses per prompt.")] = 4,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 256,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="0 means greedy.")] = 0.7,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0)] = 1.0,
    seed: Annotated[int | None, typer.Option("--seed", help=(
        "Seed (default: a random one, printed). Re-running with the same seed skips stored samples."))] = None,
    stop: Annotated[list[str] | None, typer.Option("--stop", help="Stop string (repeatable).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many prompts.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help=(
        "Sequences decoded together (local models; default up to 128 as memory allows) "
        "or requests in flight (endpoints; default 8)."))] = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help=(
        "Reuse seeded/greedy completions from the completion cache ($HEEDFUL_CACHE/completions.db)."))] = True,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Sample N responses per prompt from a model into the store, with a progress bar and tokens/s."""
    from heedful.models import GenParams, get_model
    from heedful.models.sampling import generate_into_store, read_prompt_file

    if prompts is None and tag is None:
        raise InvalidInput("give --prompts FILE or --tag TAG (stored prompts with that tag)")
    store = open_store(db)
    todo = read_prompt_file(prompts, tags=[tag] if tag else []) if prompts else list(store.prompts(tag=tag))
    if not todo:
        raise InvalidInput(f"no stored prompts have the tag {tag!r}")
    todo = todo[:limit] if limit else todo
    params = GenParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                       seed=seed, stop=tuple(stop or ()))
    m = _model(get_model, model, batch_size, cache)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[tps]}"), console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"generating with {model}", total=len(todo), tps="")

        def progress(done: int, total: int, tokens: int) -> None:
            secs = bar.tasks[0].elapsed or 0
            bar.update(task, completed=done, total=total, tps=f"{tokens / secs:,.0f} tok/s" if secs else "")
        summary = generate_into_store(store, m, todo, params, chunk=_chunk(m, batch_size, n), progress=progress)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        _print(summary)


def _model(get_model, spec: str, batch_size: int | None, cache: bool):
    m = get_model(spec)
    if batch_size and hasattr(m, "batch_size"):
        m.batch_size = batch_size
    if batch_size and hasattr(m, "concurrency"):
        m.concurrency = batch_size
    if cache and not spec.startswith("fake"):
        from heedful.models.cache import CachedModel
        m = CachedModel(m)
    return m


def _chunk(model, batch_size: int | None, n: int) -> int:
    """Prompts per call: a few decode batches' worth, so progress moves and a crash loses little."""
    rows = batch_size or getattr(model, "batch_size", None) or getattr(model, "concurrency", 8)
    return max(1, 4 * rows // n)


def _print(s) -> None:
    table = Table(title=f"generate {s.model}")
    for col in ("prompts", "written", "skipped (stored before)", "failed", "tokens", "seconds", "tok/s"):
        table.add_column(col, justify="right")
    table.add_row(str(s.prompts), str(s.written), str(s.skipped), str(sum(s.failed.values())), str(s.tokens),
                  f"{s.seconds:.1f}", f"{s.tokens_per_s:,.1f}")
    console.print(table)
    for reason, k in s.failed.most_common():
        console.print(f"failed: {k} × {reason}")
    console.print(f"seed: {s.seed} (re-run with --seed {s.seed} to resume)   run: {s.run_id}")
