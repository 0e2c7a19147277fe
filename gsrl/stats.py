"""Summaries of per-seed results shared by the benchmark tables."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

__all__ = ["mean_std", "paired_difference"]


def mean_std(values: list[float]) -> dict[str, Any]:
    """Mean and population std (ddof 0, so a single seed gives 0) with the values; None for no values."""
    if not values:
        return {"mean": None, "std": None, "seeds": 0, "values": []}
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "seeds": len(values), "values": values}


def paired_difference(values: dict[Any, float], reference: dict[Any, float], level: float = 0.95) -> dict[Any, Any]:
    """Mean of ``values[k] - reference[k]`` over the keys (seeds) both have, with its Student-t confidence
    interval: runs paired by seed share initial weights and candidate pools, so the difference removes
    what the seed alone decides. The interval needs two pairs; with one it is None."""
    keys = sorted(set(values) & set(reference))
    differences = [float(values[k] - reference[k]) for k in keys]
    if not differences:
        return {"mean": None, "ci": None, "pairs": 0, "differences": []}
    mean = float(np.mean(differences))
    interval = None
    if len(differences) > 1:
        half = float(stats.t.ppf(0.5 + level / 2, len(differences) - 1) * stats.sem(differences))
        interval = [mean - half, mean + half]
    return {"mean": mean, "ci": interval, "level": level, "pairs": len(differences), "differences": differences}
