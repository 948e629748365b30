"""Supervised fine-tuning through TRL's SFTTrainer: `messages`, `prompt`+`completion` or `text` rows.

With `prompt`+`completion` rows the loss covers only the completion (TRL's
completion_only_loss), which is what corrections and top-rated answers need.
"""

from __future__ import annotations

from dataclasses import dataclass

from heedful.learn.train.config import TrainConfig, _f

COLUMNS = [("messages",), ("prompt", "completion"), ("text",)]


@dataclass
class SFTConfig(TrainConfig):
    """Supervised fine-tuning on demonstrations."""

    method = "sft"
    learning_rate: float = _f(2e-4, "Peak learning rate.")
    packing: bool = _f(False, "Pack several short examples into one sequence.")
    completion_only_loss: bool | None = _f(None, "Loss on completion tokens only (default: yes for prompt+completion).")
    assistant_only_loss: bool = _f(False, "For `messages`: loss on assistant turns only (needs a template with generation marks).")

    def method_kwargs(self) -> dict:
        return {"max_length": self.max_length, "packing": self.packing,
                "completion_only_loss": self.completion_only_loss,
                "assistant_only_loss": self.assistant_only_loss}


def build(job):
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer
    return SFTTrainer(model=job.model, args=TRLConfig(**job.trl_kwargs()), train_dataset=job.train,
                      processing_class=job.tokenizer, peft_config=job.peft_config("CAUSAL_LM"),
                      callbacks=job.callbacks)
