"""GRPO (Shao et al., 2024) through TRL's GRPOTrainer, on `prompt` rows, rewarded by name.

Rewards come from heedful's registries (verifiers, trained reward models; see
rewards.py). Other dataset columns reach the reward functions per row, so a
verifier's `expected` answer can live in the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from heedful.errors import InvalidInput
from heedful.learn.train.config import TrainConfig, _f

COLUMNS = [("prompt",)]


@dataclass
class GRPOConfig(TrainConfig):
    """Group-relative policy optimisation against verifiers or reward models."""

    method = "grpo"
    reward_funcs: list[str] = _f([], "Reward functions: verifier names, verifier:NAME, or rm:PATH (repeatable).")
    reward_weights: list[str] = _f([], "One weight per reward function (default: all 1).")
    per_device_train_batch_size: int = _f(4, "Completions per device per step (a multiple of num_generations).")
    num_generations: int = _f(4, "Completions sampled per prompt (the group).")
    max_completion_length: int = _f(64, "Most new tokens per completion.")
    temperature: float = _f(1.0, "Sampling temperature.")
    beta: float = _f(0.0, "KL penalty towards the reference (0: no reference model needed).")
    learning_rate: float = _f(1e-5, "Peak learning rate.")

    def validate(self) -> None:
        super().validate()
        if self.num_generations < 2:
            raise InvalidInput("GRPO needs num_generations >= 2 (advantages are relative within a group)")
        if self.per_device_train_batch_size % self.num_generations:
            raise InvalidInput(f"per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple "
                               f"of num_generations ({self.num_generations})")
        if self.reward_weights and len(self.reward_weights) != len(self.reward_funcs):
            raise InvalidInput("give one reward weight per reward function")
        if not self.reward_funcs:
            raise InvalidInput("GRPO needs at least one reward function: --reward-funcs VERIFIER or rm:PATH")
        from heedful.learn.train.rewards import check_names
        check_names(self.reward_funcs)  # before any model loads: a typo fails with "did you mean"

    def method_kwargs(self) -> dict:
        weights = [float(w) for w in self.reward_weights] or None
        return {"num_generations": self.num_generations, "max_completion_length": self.max_completion_length,
                "temperature": self.temperature, "beta": self.beta, "reward_weights": weights}


def build(job):
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    from heedful.learn.train.rewards import resolve
    cfg: GRPOConfig = job.config
    return GRPOTrainer(model=job.model, reward_funcs=resolve(cfg.reward_funcs), args=TRLConfig(**job.trl_kwargs()),
                       train_dataset=job.train, processing_class=job.tokenizer,
                       peft_config=job.peft_config("CAUSAL_LM"), callbacks=job.callbacks)
