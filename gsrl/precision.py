"""Mixed precision (`run.precision`): bf16 matrix products under torch.autocast, fp32 everywhere else.

fp32 is the reference. bf16 runs the matrix products (linear, mm, bmm) in bfloat16 with float32
accumulation and keeps reductions, normalisation and losses in float32, as torch.autocast's
policy does. It is refused where the hardware would emulate bf16: a CPU without bf16 instructions
runs bf16 matrix products far slower than fp32 (one thread on an AVX2 EPYC, torch 2.13: 2-7 GFLOP/s
against 65-90), so asking for it there is an error, not a slow run.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator
from pathlib import Path

import torch

from gsrl.errors import ConfigError

CPU_BF16_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16", "bf16")  # x86 flags, and aarch64's FEAT_BF16


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first processor's feature flags (x86 'flags', aarch64 'Features'); empty where unreadable."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def bf16_unsupported_reason(device: torch.device, flags: set[str] | None = None) -> str | None:
    """Why bf16 cannot run fast on `device`, or None when it can."""
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else f"{torch.cuda.get_device_name(device)} has no bf16 support"
    flags = cpu_flags() if flags is None else flags
    if flags & set(CPU_BF16_FLAGS):
        return None
    model = platform.processor() or platform.machine()
    return (f"this CPU ({model}) has no bf16 instructions ({' / '.join(CPU_BF16_FLAGS)}), so bf16 matrix products "
            "would be emulated and slower than fp32")


def check_precision(precision: str, device: torch.device, flags: set[str] | None = None) -> None:
    """Refuse run.precision=bf16 where the device cannot run it natively (one line naming the key)."""
    if precision == "bf16":
        reason = bf16_unsupported_reason(device, flags)
        if reason is not None:
            raise ConfigError(f"key 'run.precision' is 'bf16', but {reason}; use run.precision=fp32")


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Forward passes inside run in `precision`; fp32 is a no-op."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield
