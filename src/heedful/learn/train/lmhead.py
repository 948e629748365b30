"""Log-probabilities for the labelled (completion) positions only, on a CPU too.

TRL 1.16 patches the policy so that `model(..., fused_lm_head=True)` returns
per-token log-probs, computed through the LM head in vocabulary tiles without
building the full logits. On CUDA/XPU it projects only the positions whose
label is not -100 ("compact"); on other devices it projects every position,
prompt and padding included, and zeroes them afterwards, so that tile shapes
stay fixed for compilers that would otherwise recompile per batch. A CPU
recompiles nothing, so there the fixed shape is pure waste: in DPO about half
the positions are prompt or padding, and the head (49152×576 for SmolLM2, a
fifth of the model's FLOPs) with its log-sum-exp over the vocabulary runs on
them in the forward and again in the backward, which recomputes each tile.

`compact_head()` turns TRL's own compact branch on for CPU tensors for the
duration of a call, by answering yes to the one predicate TRL's patched
forward reads there (`trl.trainer.utils._use_triton`). The tile kernel chooses
its folding code through its own module's predicate, untouched, so a CPU still
folds tiles with torch ops. The log-probs are TRL's: the same rows through the same function,
zeros where the label is -100 (tests/learn/test_train_fast.py compares both).
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def compact_head():
    """Within the block, TRL's fused LM head scores only positions with a label."""
    from trl.trainer import utils
    if not callable(getattr(utils, "_use_triton", None)):  # another TRL: its own default, same results
        yield False
        return
    saved = utils._use_triton
    utils._use_triton = lambda device: device.type == "cpu" or saved(device)  # other devices: TRL's choice
    try:
        yield True
    finally:
        utils._use_triton = saved


class CompactHeadMixin:
    """Put before a TRL trainer class whose `_compute_loss` / `compute_ref_log_probs` use the fused head."""

    heedful_head = "compact"  # part of the reference cache key (refcache.py): rows may round differently

    def compute_loss(self, *args, **kwargs):
        with compact_head():
            return super().compute_loss(*args, **kwargs)

    def compute_ref_log_probs(self, *args, **kwargs):
        with compact_head():
            return super().compute_ref_log_probs(*args, **kwargs)
