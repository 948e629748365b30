"""KTO (Ethayarajh et al., 2024) through TRL's KTOTrainer, on `prompt/completion/label` rows.

Unpaired thumbs-up/down feedback trains directly, without forming pairs. The
reference is handled as in DPO (adapter-disabled policy, or precomputed and
cached log-probs, or an explicit copy) so nothing is looked up on a hub.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from heedful.learn.train.config import TrainConfig, _f

COLUMNS = [("prompt", "completion", "label")]


@dataclass
class KTOConfig(TrainConfig):
    """Kahneman–Tversky optimisation from binary labels."""

    method = "kto"
    per_device_train_batch_size: int = _f(4, "Examples per device per step (KTO's KL estimate needs > 1).")
    beta: float = _f(0.1, "Strength of the KL penalty towards the reference.")
    desirable_weight: float = _f(1.0, "Loss weight of desirable (label true) examples.")
    undesirable_weight: float = _f(1.0, "Loss weight of undesirable (label false) examples.")
    precompute_ref_log_probs: bool = _f(True, "Compute reference log-probs once before training (and cache them).")
    ref_cache: bool = _f(True, "Keep precomputed reference log-probs on disk for later runs on the same model+data.")

    def validate(self) -> None:
        super().validate()
        from heedful.errors import InvalidInput
        if self.per_device_train_batch_size < 2:
            raise InvalidInput("KTO needs per_device_train_batch_size >= 2 (its KL term pairs examples in a batch)")

    def method_kwargs(self) -> dict:
        return {"beta": self.beta, "desirable_weight": self.desirable_weight,
                "undesirable_weight": self.undesirable_weight, "max_length": self.max_length,
                "precompute_ref_log_probs": self.precompute_ref_log_probs}


def build(job):
    from trl import KTOConfig as TRLConfig
    from trl import KTOTrainer

    from heedful.learn.train.refcache import RefLogpCacheMixin

    class HeedfulKTOTrainer(RefLogpCacheMixin, KTOTrainer):
        pass
    cfg: KTOConfig = job.config
    # without the shared cache, a per-run folder: TRL's own temporary file breaks multi-process runs
    HeedfulKTOTrainer.heedful_ref_cache = job.ref_cache_dir if cfg.ref_cache else job.output_dir / ".ref-logps"
    HeedfulKTOTrainer.heedful_model_fp = job.model_fingerprint() if cfg.precompute_ref_log_probs else None
    ref = copy.deepcopy(job.model).eval() if cfg.full and not cfg.precompute_ref_log_probs else None
    return HeedfulKTOTrainer(model=job.model, ref_model=ref, args=TRLConfig(**job.trl_kwargs()),
                             train_dataset=job.train, processing_class=job.tokenizer,
                             peft_config=job.peft_config("CAUSAL_LM"), callbacks=job.callbacks)
