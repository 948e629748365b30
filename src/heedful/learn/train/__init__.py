"""Training through TRL + PEFT: one config dataclass per method, CPU-safe defaults, lineage.

    from heedful.learn.train import train, DPOConfig
    train("dpo", "data/pairs", "smollm2", "out/dpo", DPOConfig(max_steps=20), store=store)

| method | TRL trainer | dataset columns |
|---|---|---|
| sft | SFTTrainer | messages, prompt+completion, or text |
| dpo | DPOTrainer | prompt/chosen/rejected |
| kto | KTOTrainer | prompt/completion/label |
| reward | RewardTrainer | chosen/rejected (prompt optional) |
| grpo | GRPOTrainer | prompt (+ columns the reward functions read) |

The config modules import nothing heavy; TRL, PEFT and torch load when a
trainer is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from heedful.errors import UnknownName
from heedful.learn.train import dpo, grpo, kto, reward, sft
from heedful.learn.train.config import TrainConfig
from heedful.learn.train.dpo import DPOConfig
from heedful.learn.train.grpo import GRPOConfig
from heedful.learn.train.kto import KTOConfig
from heedful.learn.train.reward import RewardConfig
from heedful.learn.train.sft import SFTConfig


@dataclass(frozen=True)
class Method:
    name: str
    module: ModuleType
    config_cls: type[TrainConfig]
    model_kind: str = "causal"  # "causal" | "seq_cls"

    @property
    def columns(self) -> list[tuple[str, ...]]:
        return self.module.COLUMNS

    def build(self, job):
        return self.module.build(job)

    @property
    def doc(self) -> str:
        return (self.config_cls.__doc__ or "").strip()


METHODS = {m.name: m for m in (
    Method("sft", sft, SFTConfig), Method("dpo", dpo, DPOConfig), Method("kto", kto, KTOConfig),
    Method("reward", reward, RewardConfig, "seq_cls"), Method("grpo", grpo, GRPOConfig))}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UnknownName("training method", name, METHODS)
    return METHODS[name]


def train(*args, **kw):
    """See heedful.learn.train.run.train."""
    from heedful.learn.train.run import train as _train
    return _train(*args, **kw)


__all__ = ["METHODS", "Method", "TrainConfig", "SFTConfig", "DPOConfig", "KTOConfig", "RewardConfig",
           "GRPOConfig", "get_method", "train"]
