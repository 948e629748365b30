"""The fields every training method shares, and how a config maps onto TRL's.

heedful keeps its own small dataclasses (one per method, as TRL does) instead
of exposing TRL's ~150-field configs: these fields are the ones that matter on
the machines heedful targets, each field's `help` doubles as CLI help, and
`to_trl` fills in TRL's config with CPU-safe values (precision, device,
checkpointing) decided at run time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heedful.errors import InvalidInput, UnknownName


def _f(default: Any, help: str, **kw) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Fields shared by every method."""

    full: bool = _f(False, "Full fine-tuning instead of LoRA.")
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA scaling alpha.")
    lora_dropout: float = _f(0.0, "LoRA dropout.")
    lora_target_modules: str = _f("all-linear", "Modules LoRA adapts: 'all-linear' or comma-separated names.")
    merge: bool = _f(True, "Save the LoRA-merged model (else the adapter alone).")
    learning_rate: float = _f(1e-4, "Peak learning rate.")
    num_train_epochs: float = _f(1.0, "Epochs over the dataset.")
    max_steps: int = _f(-1, "Stop after this many optimiser steps (-1: run all epochs).")
    per_device_train_batch_size: int = _f(2, "Examples per device per step.")
    gradient_accumulation_steps: int = _f(1, "Steps to accumulate before an optimiser update.")
    lr_scheduler_type: str = _f("linear", "Learning-rate schedule (linear, cosine, constant, ...).")
    warmup_steps: int = _f(0, "Linear warm-up steps.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    max_length: int = _f(1024, "Token budget per sequence (prompt + completion).")
    precision: str = _f("auto", "auto (bf16 only where the hardware has it natively) | bf16 | fp32.")
    micro_batch_size: int | None = _f(None, "Examples per forward pass; a step accumulates per_device_train_batch_size "
                                      "of them (default on a CPU, for DPO: passes of at most 1024 tokens at max_length; else the whole batch).")
    gradient_checkpointing: bool | None = _f(None, "Recompute activations to save memory (default: on when a "
                                             "micro-batch's activations at max_length would pass 1 GiB).")
    seed: int = _f(0, "Seed for initialisation, data order and sampling.")
    logging_steps: int = _f(1, "Log loss every N steps.")
    save_steps: int = _f(50, "Write a resumable checkpoint every N steps (0: none).")
    save_total_limit: int = _f(2, "Keep at most this many checkpoints.")

    method = "base"  # class attribute, set per subclass
    sequences_per_example = 1  # sequences one example puts through the model (a DPO pair: 2)
    splits_batches = False  # whether a CPU may run a batch as smaller passes (hardware.micro_batches)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> TrainConfig:
        """Build from a mapping (YAML, flags); unknown keys fail with 'did you mean'."""
        names = {f.name: f for f in cls.fields()}
        kw = {}
        for key, value in data.items():
            k = str(key).replace("-", "_")
            if k not in names:
                raise UnknownName(f"{cls.method} option", k, names)
            kw[k] = _coerce(names[k], value, where)
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> TrainConfig:
        import yaml
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise InvalidInput(f"cannot read a YAML mapping: {e}", where=str(p)) from None
        if not isinstance(data, dict):
            raise InvalidInput(f"must hold a mapping of options, not {type(data).__name__}", where=str(p))
        return cls.from_dict({**data, **(overrides or {})}, where=str(p))

    def validate(self) -> None:
        positive = ("lora_r", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
                    "logging_steps")
        for name in positive:
            if getattr(self, name) <= 0:
                raise InvalidInput(f"{name} must be positive, got {getattr(self, name)}")
        if self.learning_rate <= 0 or self.num_train_epochs <= 0:
            raise InvalidInput("learning_rate and num_train_epochs must be positive")
        if self.save_steps < 0:
            raise InvalidInput(f"save_steps must be >= 0, got {self.save_steps}")
        micro = self.micro_batch_size
        if micro is not None and (micro <= 0 or self.per_device_train_batch_size % micro):
            raise InvalidInput(f"micro_batch_size must divide per_device_train_batch_size "
                               f"({self.per_device_train_batch_size}), got {micro}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise InvalidInput(f"precision must be auto, bf16 or fp32, got {self.precision!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # --- mapping onto TRL ---------------------------------------------------------------
    def method_kwargs(self) -> dict:
        """Method-specific TRL config fields (overridden per method)."""
        return {}

    def trl_kwargs(self, output_dir: str, bf16: bool, use_cpu: bool, checkpointing: bool,
                   batches: tuple[int, int] | None = None) -> dict:
        micro, accumulation = batches or (self.per_device_train_batch_size, self.gradient_accumulation_steps)
        return {
            "output_dir": output_dir, "learning_rate": self.learning_rate,
            "num_train_epochs": self.num_train_epochs, "max_steps": self.max_steps,
            "per_device_train_batch_size": micro, "gradient_accumulation_steps": accumulation,
            "lr_scheduler_type": self.lr_scheduler_type, "warmup_steps": self.warmup_steps,
            "weight_decay": self.weight_decay, "max_grad_norm": self.max_grad_norm,
            "bf16": bf16, "fp16": False, "use_cpu": use_cpu,
            "gradient_checkpointing": checkpointing, "seed": self.seed, "data_seed": self.seed,
            "logging_steps": self.logging_steps, "report_to": "none", "disable_tqdm": True,
            "save_strategy": "steps" if self.save_steps else "no", "save_steps": self.save_steps or 500,
            "save_total_limit": self.save_total_limit, "dataloader_num_workers": 0,
            **self.method_kwargs(),
        }

    def lora(self, task_type: str):
        from peft import LoraConfig
        targets = self.lora_target_modules
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=targets, task_type=task_type)


def _coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    """YAML and flags give strings, ints and lists; check them against the field's type."""
    t = str(f.type)
    if value is None:
        if "None" in t:
            return None
        raise InvalidInput(f"{f.name} may not be empty", where=where)
    try:
        if t.startswith("bool"):
            return _bool(value)
        if t.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if t.startswith("float"):
            return float(value)
        if t.startswith("list"):
            return [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        if t.startswith("str"):
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{f.name} must be {t}, got {value!r}", where=where) from None
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)
