"""Summaries of per-seed results shared by the benchmark tables."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["mean_std"]


def mean_std(values: list[float]) -> dict[str, Any]:
    """Mean and population std (ddof 0, so a single seed gives 0) with the values; None for no values."""
    if not values:
        return {"mean": None, "std": None, "seeds": 0, "values": []}
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "seeds": len(values), "values": values}
