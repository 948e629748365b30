"""Reward modelling (Bradley–Terry) through TRL's RewardTrainer, on `chosen/rejected` pairs.

TRL silently drops pairs longer than `max_length` (DPO truncates instead) and,
when none are left, fails later with an IndexError on an empty dataset
(NOTES-models.md, trap 4). The subclass below counts what the filter removed,
reports it, and stops with a clear message when nothing is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from heedful.errors import InvalidInput
from heedful.learn.train.config import TrainConfig, _f

COLUMNS = [("chosen", "rejected")]


@dataclass
class RewardConfig(TrainConfig):
    """A scalar reward model: score(chosen) > score(rejected)."""

    method = "reward"
    learning_rate: float = _f(5e-5, "Peak learning rate.")
    center_rewards_coefficient: float | None = _f(None, "Push mean reward towards zero with this weight.")

    def method_kwargs(self) -> dict:
        return {"max_length": self.max_length, "center_rewards_coefficient": self.center_rewards_coefficient}


def trainer_class():
    from trl import RewardTrainer

    class HeedfulRewardTrainer(RewardTrainer):
        dropped: dict[str, int] = {}

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            n_in = len(dataset)
            out = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            n_out = len(out)
            self.dropped = {**self.dropped, dataset_name: n_in - n_out}
            if n_out == 0:
                raise InvalidInput(f"all {n_in} pairs of the {dataset_name} set are longer than "
                                   f"max_length={args.max_length} tokens, and the reward trainer drops such pairs; "
                                   "raise --max-length or shorten the texts")
            return out
    return HeedfulRewardTrainer


def build(job):
    from trl import RewardConfig as TRLConfig
    t = trainer_class()(model=job.model, args=TRLConfig(**job.trl_kwargs()), train_dataset=job.train,
                        processing_class=job.tokenizer, peft_config=job.peft_config("SEQ_CLS"),
                        callbacks=job.callbacks)
    dropped = t.dropped.get("train", 0)
    job.metrics["pairs_dropped_too_long"] = dropped
    if dropped:
        job.say(f"reward: dropped {dropped} of {len(job.train)} pairs longer than max_length={job.config.max_length}")
    return t
