"""`heedful train sft|dpo|kto|reward|grpo`: flags generated from each method's config dataclass.

Every dataclass field becomes a `--flag` with the field's help text; `--config
FILE.yaml` holds the same keys, and flags given on the command line win over
the file. Only flags actually typed override the file, so a YAML value is
never silently reset to the dataclass default.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from heedful.cli.common import DbOption, app, console, err_console, open_store

train_app = typer.Typer(no_args_is_help=True, help="Train a model from a built dataset (TRL + PEFT).")
app.add_typer(train_app, name="train")

_PY_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


def _option(f: dataclasses.Field) -> inspect.Parameter:
    t = str(f.type)
    base = t.split("|")[0].strip()
    flag = "--" + f.name.replace("_", "-")
    help_ = f.metadata.get("help", "")
    if base.startswith("list"):
        ann = Annotated[Optional[list[str]], typer.Option(flag, help=help_, show_default=False)]
    elif base == "bool":
        ann = Annotated[Optional[bool], typer.Option(f"{flag}/--no-{f.name.replace('_', '-')}", help=help_,
                                                     show_default=False)]
    else:
        ann = Annotated[Optional[_PY_TYPES[base]], typer.Option(flag, help=f"{help_} [default: {f.default}]",
                                                                show_default=False)]
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=None)


def _common() -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("dataset", kw, default=..., annotation=Annotated[Path, typer.Option(
            "--dataset", "-d", help="Dataset folder from `heedful build` (or .jsonl/.parquet).")]),
        inspect.Parameter("model", kw, default="smollm2", annotation=Annotated[str, typer.Option(
            "--model", "-m", help="Base model: 'smollm2' (embedded), a .gguf file or an HF model folder.")]),
        inspect.Parameter("output", kw, default=..., annotation=Annotated[Path, typer.Option(
            "--output", "-o", help="Folder for checkpoints and the trained model.")]),
        inspect.Parameter("config", kw, default=None, annotation=Annotated[Optional[Path], typer.Option(
            "--config", help="YAML file with the same keys as the flags.")]),
        inspect.Parameter("resume", kw, default=False, annotation=Annotated[bool, typer.Option(
            "--resume", help="Continue from the last checkpoint in --output.")]),
        inspect.Parameter("db", kw, default=None, annotation=DbOption),
    ]


def _make_command(name: str):
    from heedful.learn.train import get_method
    spec = get_method(name)
    fields = spec.config_cls.fields()

    def command(**kw):
        overrides = {f.name: kw[f.name] for f in fields if kw.get(f.name) is not None}
        _run(name, kw, overrides)
    command.__signature__ = inspect.Signature(_common() + [_option(f) for f in fields])
    command.__doc__ = f"{spec.doc} (TRL {spec.module.__name__.rsplit('.', 1)[-1].upper()} trainer)"
    train_app.command(name, help=command.__doc__)(command)


def _run(name: str, kw: dict, overrides: dict) -> None:
    from heedful.learn.train import get_method, train
    from heedful.learn.train.run import is_main_process
    cls = get_method(name).config_cls
    cfg = cls.from_yaml(kw["config"], overrides) if kw["config"] else cls.from_dict(overrides, where="flags")
    store = open_store(kw["db"])
    try:
        res = train(name, kw["dataset"], kw["model"], kw["output"], cfg, store=store, resume=kw["resume"],
                    say=lambda s: err_console.print(s, markup=False, highlight=False))
    finally:
        store.close()
    if res.run_id is None and not is_main_process():
        return  # under accelerate/torchrun, only rank 0 reports
    m = res.metrics
    console.print(f"trained {name}: {m['global_step']} steps, final loss "
                  f"{m['loss_curve'][-1][1] if m['loss_curve'] else float('nan'):.4f}, "
                  f"{m['train_runtime_s']:.1f}s → {res.output_dir} (run {res.run_id})")


for _name in ("sft", "dpo", "kto", "reward", "grpo"):
    _make_command(_name)
