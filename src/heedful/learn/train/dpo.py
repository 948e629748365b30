"""DPO (Rafailov et al., 2023) through TRL's DPOTrainer, on `prompt/chosen/rejected` pairs.

The reference model is never looked up on a hub (NOTES-models.md, trap 2):
with LoRA it is the adapter-disabled policy; in full fine-tuning with
precomputed reference log-probs (the default) no reference is kept at all, and
without them an explicit frozen copy of the base is passed.

Where the time goes on a CPU, and what the trainer below does about it: the
reference pass runs once per (model, data) and is cached on disk
(refcache.py), so epochs, runs and loop rounds after the first skip it; the
LM head and its log-softmax run on completion positions only (lmhead.py), not
on the prompt and padding as TRL does off CUDA. On a CPU a batch runs as
passes of at most 1024 tokens (hardware.micro_batches): long pairs go one a
pass, so nothing is padded past a pair's longer sequence, and one pair's
activations are small enough to keep, so no layer is recomputed. At
SmolLM2-135M, 2 pairs × ~256 tokens, that took 25.5 s an epoch of 8 pairs
against 34.7 s for one checkpointed pass of 2 pairs, at 3.2 GB peak RSS
against TRL's 3.4 GB.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from heedful.learn.train.config import TrainConfig, _f

COLUMNS = [("prompt", "chosen", "rejected"), ("chosen", "rejected")]


@dataclass
class DPOConfig(TrainConfig):
    """Direct preference optimisation."""

    method = "dpo"
    sequences_per_example = 2  # chosen and rejected
    splits_batches = True
    beta: float = _f(0.1, "Strength of the KL penalty towards the reference (higher: stay closer).")
    loss_type: str = _f("sigmoid", "DPO loss: sigmoid (DPO), ipo, hinge, robust, ... (TRL's loss_type).")
    label_smoothing: float = _f(0.0, "Assumed label noise for robust/conservative DPO.")
    precompute_ref_log_probs: bool = _f(True, "Compute reference log-probs once before training (and cache them).")
    ref_cache: bool = _f(True, "Keep precomputed reference log-probs on disk for later runs on the same model+data.")

    def method_kwargs(self) -> dict:
        return {"beta": self.beta, "loss_type": [self.loss_type], "label_smoothing": self.label_smoothing,
                "max_length": self.max_length, "precompute_ref_log_probs": self.precompute_ref_log_probs,
                # whole batches, not micro-batches: a forward pass keeps no activations
                "precompute_ref_batch_size": self.per_device_train_batch_size}


def trainer_class():
    from trl import DPOTrainer

    from heedful.learn.train.lmhead import CompactHeadMixin
    from heedful.learn.train.refcache import RefLogpCacheMixin

    class HeedfulDPOTrainer(CompactHeadMixin, RefLogpCacheMixin, DPOTrainer):
        pass
    return HeedfulDPOTrainer


def build(job):
    from trl import DPOConfig as TRLConfig
    cfg: DPOConfig = job.config
    cls = trainer_class()
    # without the shared cache, a per-run folder: TRL's own temporary file breaks multi-process runs
    cls.heedful_ref_cache = job.ref_cache_dir if cfg.ref_cache else job.output_dir / ".ref-logps"
    cls.heedful_model_fp = job.model_fingerprint() if cfg.precompute_ref_log_probs else None
    ref = None
    if cfg.full and not cfg.precompute_ref_log_probs:
        ref = copy.deepcopy(job.model).eval()
    return cls(model=job.model, ref_model=ref, args=TRLConfig(**job.trl_kwargs()),
               train_dataset=job.train, processing_class=job.tokenizer,
               peft_config=job.peft_config("CAUSAL_LM"), callbacks=job.callbacks)
