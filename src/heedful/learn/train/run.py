"""One training run, end to end: load, train (or resume), save a normal HF folder, record lineage.

The store sees the run start (config, seed, the dataset and base model it
reads) and finish (the model folder it wrote, the loss curve, runtime), or
fail with the error. Under `accelerate launch` only the main process records
and saves; every process trains.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heedful.errors import InvalidInput, NotFound
from heedful.learn.train import hardware, loading
from heedful.learn.train.config import TrainConfig


@dataclass
class Job:
    """What a method's `build(job)` needs to construct its TRL trainer."""

    config: TrainConfig
    model: Any
    tokenizer: Any
    train: Any
    output_dir: Path
    hw: hardware.Hardware
    checkpointing: bool
    batches: tuple[int, int]  # (examples per pass, passes per step): hardware.micro_batches
    ref_cache_dir: Path
    callbacks: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    say: Callable[[str], None] = print
    _fp: str | None = None

    def trl_kwargs(self) -> dict:
        return self.config.trl_kwargs(str(self.output_dir), self.hw.bf16, self.hw.device == "cpu",
                                      self.checkpointing, self.batches)

    def peft_config(self, task_type: str):
        return None if self.config.full else self.config.lora(task_type)

    def model_fingerprint(self) -> str:
        """Hash of the base weights (the reference), before any adapter is attached."""
        if self._fp is None:
            from heedful.learn.train.refcache import model_fingerprint
            self._fp = model_fingerprint(self.model)
        return self._fp


@dataclass
class TrainResult:
    output_dir: str
    run_id: str | None
    metrics: dict
    trainer: Any = None


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest *complete* checkpoint-N folder.

    transformers writes a checkpoint in place and its own `get_last_checkpoint`
    takes the highest number, so a process killed while saving leaves a folder
    that breaks the resume. `trainer_state.json` is written last: a checkpoint
    whose state file parses is complete.
    """
    import json
    import re
    if not output_dir.is_dir():
        return None
    found = []
    for p in output_dir.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and p.is_dir():
            try:
                json.loads((p / "trainer_state.json").read_text())
            except (OSError, ValueError):
                continue
            found.append((int(m.group(1)), str(p)))
    return max(found)[1] if found else None


def _check_output(out: Path, resume: bool) -> str | None:
    ckpt = last_checkpoint(out)
    if resume:
        if ckpt is None:
            raise NotFound(f"--resume: no checkpoint-N folder in {out}; start without --resume")
        return ckpt
    # under torchrun/accelerate only rank 0 judges: another rank may already be writing here
    if is_main_process() and out.exists() and (not out.is_dir() or any(
            not p.name.startswith(".") for p in out.iterdir())):
        hint = "; pass --resume to continue from its last checkpoint" if ckpt else ""
        raise InvalidInput(f"{out} exists and is not empty{hint}; choose another -o")
    return None


def dataset_ref(store, path: Path) -> str:
    """The dataset id `heedful build` registered for this folder, else the folder's path."""
    import sqlalchemy as sa

    from heedful.store import tables as t
    paths = list(dict.fromkeys([str(path), str(path.resolve())]))
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.datasets.c.id).where(t.datasets.c.path.in_(paths))
                           .order_by(t.datasets.c.created_at.desc()).limit(1)).first()
    return row[0] if row else str(path.resolve())


def train(method: str, dataset: str | os.PathLike, model: str, output_dir: str | os.PathLike,
          config: TrainConfig | None = None, *, store=None, resume: bool = False,
          callbacks: list | None = None, say: Callable[[str], None] = print) -> TrainResult:
    """Train `model` on `dataset` with `method`; write an HF model folder to `output_dir`."""
    from heedful.learn.train import get_method
    spec = get_method(method)
    cfg = config or spec.config_cls()
    if not isinstance(cfg, spec.config_cls):
        raise InvalidInput(f"{method} takes a {spec.config_cls.__name__}, got {type(cfg).__name__}")
    cfg.validate()
    out = Path(output_dir).resolve()
    ckpt = _check_output(out, resume)
    ds_path = Path(dataset)
    train_ds, _ = loading.load_dataset_dir(ds_path)
    loading.require_columns(train_ds, spec.columns, method, str(ds_path))
    base = loading.resolve_model(model)
    run_id = None
    if store is not None and is_main_process():
        run_id = store.start_run("train", name=method, seed=cfg.seed, config={
            "method": method, "config": cfg.to_dict(), "dataset": str(ds_path.resolve()), "model": model,
            "model_path": str(base), "resume_from": ckpt},
            inputs=[("dataset", dataset_ref(store, ds_path)), ("model", model)])
    try:
        result = _train(spec, cfg, train_ds, base, out, ckpt, callbacks or [], say)
    except BaseException as e:
        if run_id is not None:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            store.finish_run(run_id, status=status, error=f"{type(e).__name__}: {e}",
                             metrics={"traceback": traceback.format_exc()[-4000:]})
        raise
    if run_id is not None:
        store.finish_run(run_id, metrics=result.metrics, outputs=[("model", str(out))])
    result.run_id = run_id
    return result


def _train(spec, cfg: TrainConfig, train_ds, base: Path, out: Path, ckpt: str | None,
           callbacks: list, say) -> TrainResult:
    from transformers import set_seed
    set_seed(cfg.seed)  # before loading: a reward head and LoRA weights are initialised randomly
    hw = hardware.detect(cfg.precision)
    tok = loading.load_tokenizer(base)
    model = loading.load_model(base, spec.model_kind, tok.pad_token_id)
    n_params = sum(p.numel() for p in model.parameters())
    batches = hardware.micro_batches(cfg, hw.device)
    kept = hardware.activation_bytes(model.config, batches[0] * cfg.sequences_per_example, cfg.max_length,
                                     2 if hw.bf16 else 4)
    job = Job(cfg, model, tok, train_ds, out, hw, hardware.want_checkpointing(cfg.gradient_checkpointing, kept),
              batches, loading.cache_dir() / "ref-logps", callbacks=[LogCallback(say), *callbacks], say=say)
    (say if is_main_process() else (lambda _: None))(f"{spec.name}: {len(train_ds)} rows, {n_params / 1e6:.1f}M parameters, "
        f"{'full' if cfg.full else f'LoRA r={cfg.lora_r}'}, {'bf16' if hw.bf16 else 'fp32'} ({hw.reason}), "
        f"{batches[0]} example(s) a pass × {batches[1]} a step, "
        f"gradient checkpointing {'on' if job.checkpointing else 'off'}")
    t0 = time.perf_counter()
    trainer = spec.build(job)
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)  # LogCallback prints the same, one readable line per step
    setup_s = time.perf_counter() - t0
    output = trainer.train(resume_from_checkpoint=ckpt)
    if trainer.accelerator.is_main_process:
        save_output(trainer, tok, out, merge=cfg.merge and not cfg.full)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(str(out), None, _metrics(trainer, output, job, hw, setup_s, n_params), trainer)


def save_output(trainer, tok, out: Path, merge: bool) -> None:
    """A normal HF folder: merged weights (default), the adapter alone, or the fully tuned model."""
    model = trainer.model
    if merge and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))


def _metrics(trainer, output, job: Job, hw, setup_s: float, n_params: int) -> dict:
    hist = trainer.state.log_history
    curve = [[h["step"], h["loss"]] for h in hist if "loss" in h]
    m = {"train_loss": output.training_loss, "loss_curve": curve, "global_step": trainer.state.global_step,
         "train_runtime_s": output.metrics.get("train_runtime"), "setup_s": round(setup_s, 3),
         "samples_per_second": output.metrics.get("train_samples_per_second"),
         "n_params": n_params, "world_size": trainer.args.world_size,
         "distributed": str(trainer.accelerator.distributed_type), "backend": trainer.accelerator.state.backend,
         "hardware": hw.as_dict(), "gradient_checkpointing": job.checkpointing,
         "micro_batch_size": job.batches[0], "gradient_accumulation_steps": job.batches[1],
         **job.metrics}
    if hasattr(trainer, "ref_cache_hits"):
        m["ref_cache"] = {"hits": trainer.ref_cache_hits, "misses": trainer.ref_cache_misses,
                          "files": trainer.ref_cache_files}
    return m


def _log_callback_base():
    from transformers import TrainerCallback
    return TrainerCallback


class LogCallback(_log_callback_base()):
    """One line per logging step: step/total, loss and the method's own metrics."""

    KEYS = ("loss", "rewards/accuracies", "rewards/margins", "accuracy", "reward", "kl", "learning_rate")

    def __init__(self, say):
        self.say = say

    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        parts = [f"{k}={logs[k]:.4g}" for k in self.KEYS if isinstance(logs.get(k), (int, float))]
        self.say(f"step {state.global_step}/{state.max_steps} " + " ".join(parts))
