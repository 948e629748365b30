"""Linear layers through oneDNN on CPU: the same float32 product, on the faster of torch's two GEMMs.

Written by hand because nothing in torch or transformers does it for eager
models: on a CPU, `nn.Linear` always calls MKL's sgemm, and on AMD EPYC MKL
runs at about half of what the cores can do. Measured on a 2-core EPYC
(2026-12-07, bench/gemm.py): the model's layer shapes at 2048 rows ran at
175–188 GFLOP/s through `F.linear` and at 385–408 through oneDNN, which ships inside torch
and is what inductor calls for frozen linears (`torch.ops.mkldnn._linear_pointwise`).
That op takes the dense weight as it is (no copy, no extra memory), in
float32 (IEEE, no reduced-precision accumulation).

`route(model)` points every `nn.Linear` of a model at `forward` below:
- no gradient wanted (generation, scoring, judging): oneDNN;
- frozen weight, input needing a gradient (LoRA's base layers in training):
  `FrozenLinear`, oneDNN forward and backward (the input's gradient is the
  product with the transposed weight, which the op reads in place);
- a trainable weight, autocast (bf16 training), other dtypes or devices:
  `F.linear`, exactly as before.
Rounding differs from MKL's in the last bits (blocking order), as it does
between batch sizes; `HEEDFUL_ONEDNN=0` keeps MKL everywhere.
"""

from __future__ import annotations

import os
import types

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def built_in() -> bool:
    """oneDNN in this torch build, with the op `linear` calls."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def available() -> bool:
    """`built_in()`, and not switched off by HEEDFUL_ONEDNN=0."""
    if os.environ.get("HEEDFUL_ONEDNN", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return built_in()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear(x, weight, bias)` through oneDNN (no autograd of its own: see `FrozenLinear`)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class FrozenLinear(torch.autograd.Function):
    """y = x Wᵀ + b with W and b frozen: both directions through oneDNN, no weight gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(weight)
        return linear(x, weight, bias)

    @staticmethod
    @once_differentiable  # a second derivative through this raises instead of coming out wrong
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        return linear(grad.contiguous(), weight.t(), None), None, None


def _eligible(layer: torch.nn.Linear, x: torch.Tensor) -> bool:
    w = layer.weight
    return (x.dtype == w.dtype == torch.float32 and x.device.type == w.device.type == "cpu"
            and x.dim() >= 2 and not torch.is_autocast_enabled("cpu"))


def forward(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`nn.Linear.forward` on oneDNN where that computes the same thing (see the module docstring)."""
    if not _eligible(layer, x):
        return F.linear(x, layer.weight, layer.bias)
    frozen = not layer.weight.requires_grad and (layer.bias is None or not layer.bias.requires_grad)
    if not torch.is_grad_enabled() or (frozen and not x.requires_grad):
        return linear(x, layer.weight, layer.bias)
    if frozen:
        return FrozenLinear.apply(x, layer.weight, layer.bias)
    return F.linear(x, layer.weight, layer.bias)


def route(model: torch.nn.Module) -> int:
    """Point the model's `nn.Linear` layers at oneDNN (when `available()`); returns how many.

    Layers that already carry their own forward or an accelerate hook (offloading,
    device maps) are left alone, as are subclasses (PEFT's, quantised ones).
    The routing is an attribute of the loaded module: pickling a model drops it.
    """
    if not available():
        return 0
    n = 0
    for m in model.modules():
        if type(m) is torch.nn.Linear and "forward" not in vars(m) and not hasattr(m, "_hf_hook"):
            m.forward = types.MethodType(forward, m)
            n += 1
    return n


def unroute(model: torch.nn.Module) -> int:
    """Undo `route`: every `nn.Linear` back on torch's own forward; returns how many were routed."""
    n = 0
    for m in model.modules():
        if "forward" in vars(m) and getattr(m.forward, "__func__", None) is forward:
            del m.forward
            n += 1
    return n
