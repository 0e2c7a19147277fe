"""Dropout whose backward keeps a one-byte mask instead of a float noise tensor; the float32 boundary
of mixed precision.

MAML keeps every episode's graph until the meta-gradient, differentiated twice, so what autograd
saves per operation decides the memory of a meta-iteration. `F.dropout` on CPU keeps its float
noise (4 bytes per element); this version draws the same noise from the same generator, keeps it
as uint8 and computes the same values and gradients, NaN and infinities included
(`tests/test_functional.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """`F.dropout(x, p, training)`."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p == 1.0:  # CUDA's fused dropout already keeps a bool mask
        return F.dropout(x, p, training=True)
    keep = torch.empty_like(x, dtype=torch.float32).bernoulli_(1.0 - p).to(torch.uint8)  # same draws in bf16
    # x * keep keeps only `keep` for its backward, so scaling its output in place is safe.
    return (x * keep).mul_(1.0 / (1.0 - p))


def full_precision(x: Tensor) -> Tensor:
    """x in float32 when a bf16 / fp16 autocast produced it, else unchanged (float64 stays float64):
    normalisation and other elementwise work stays in full precision under mixed precision."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
