"""What this machine can do, decided at run time: precision, device, gradient checkpointing.

TRL's configs default to bf16; on a CPU without native bf16 instructions
(AVX-512 BF16 or AMX on x86, the `bf16` feature on Arm) torch emulates it and
a LoRA DPO step becomes ~12x slower (see NOTES-models.md). Where the CPU does
have them, bf16 matmuls run several times faster than float32. So the choice is
made from the CPU's feature flags, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
ACTIVATION_BUDGET = 1 << 30  # bytes of activations a micro-batch may keep before checkpointing pays
TOKENS_PER_PASS = 1024  # on a CPU, enough rows for full-rate matmuls; a longer pass only pads and keeps more


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags of the first CPU in /proc/cpuinfo (x86 `flags`, Arm `Features`)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_has_bf16(flags: set[str] | None = None) -> bool:
    """True when the CPU computes bf16 natively (not emulated through float32)."""
    return bool((cpu_flags() if flags is None else flags) & BF16_CPU_FLAGS)


@dataclass(frozen=True)
class Hardware:
    """The decisions a run takes from the machine; recorded in the run's config."""

    device: str  # "cuda" | "cpu"
    bf16: bool
    reason: str

    def as_dict(self) -> dict:
        return {"device": self.device, "bf16": self.bf16, "reason": self.reason}


def detect(precision: str = "auto", flags: set[str] | None = None, cuda: bool | None = None) -> Hardware:
    """Resolve `precision` ("auto" | "bf16" | "fp32") against what the machine supports."""
    import torch

    from heedful.errors import InvalidInput
    if precision not in ("auto", "bf16", "fp32"):
        raise InvalidInput(f"precision must be auto, bf16 or fp32, got {precision!r}")
    cuda = torch.cuda.is_available() if cuda is None else cuda
    device = "cuda" if cuda else "cpu"
    if precision != "auto":
        return Hardware(device, precision == "bf16", f"precision={precision} requested")
    if cuda:
        ok = torch.cuda.is_bf16_supported()
        return Hardware(device, ok, "GPU supports bf16" if ok else "GPU lacks bf16: float32")
    ok = cpu_has_bf16(flags)
    why = ("CPU has native bf16 (avx512_bf16/amx_bf16)" if ok
           else "CPU lacks native bf16 (it would be emulated, ~12x slower): float32")
    return Hardware(device, ok, why)


def micro_batches(cfg, device: str) -> tuple[int, int]:
    """(examples per forward pass, passes accumulated per optimiser step), the same examples per step.

    On a CPU a batch runs as the largest passes of at most TOKENS_PER_PASS
    tokens (at max_length): a smaller pass pads less (a DPO pair's chosen and
    rejected only to the longer of the two) and keeps fewer activations, so
    checkpointing can stay off. Measured at SmolLM2-135M, an epoch of 8 pairs
    of ~256 tokens: one checkpointed pass of 2 pairs a step 34.7 s, two passes of
    1 pair without checkpointing 25.5 s at 3.2 GB peak RSS (TRL's DPOTrainer:
    3.4 GB). Pairs of ~100 tokens (max_length 160), 4 a step, no checkpointing:
    passes of 4 pairs 33.8–34.4 s, of 2 pairs 30.9–34.7 s, of 1 pair 36.4–40.5 s.
    A GPU keeps the whole batch in one pass.
    """
    per, acc = cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps
    micro = cfg.micro_batch_size or per
    if not cfg.micro_batch_size and device == "cpu" and cfg.splits_batches:
        tokens = cfg.sequences_per_example * cfg.max_length
        micro = max((d for d in range(1, per + 1) if per % d == 0 and d * tokens <= TOKENS_PER_PASS), default=1)
    return micro, acc * (per // micro)


def activation_bytes(model_config, sequences: int, length: int, bytes_per_value: int = 4) -> int:
    """What backward keeps of one pass, about: per token and layer, ~9 hidden-size and 4 MLP-size vectors."""
    c = model_config
    per_token_layer = 9 * c.hidden_size + 4 * getattr(c, "intermediate_size", 4 * c.hidden_size)
    return sequences * length * c.num_hidden_layers * per_token_layer * bytes_per_value


def want_checkpointing(setting: bool | None, activations: int) -> bool:
    """Gradient checkpointing: as asked, else on when a pass would keep more than ACTIVATION_BUDGET."""
    return setting if setting is not None else activations > ACTIVATION_BUDGET
