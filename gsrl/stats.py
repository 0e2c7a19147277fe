"""Summaries of per-seed results shared by the benchmark tables."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

__all__ = ["co_selection_lift", "mean_std", "paired_difference"]


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


def co_selection_lift(counts: np.ndarray, meta_batches: int) -> np.ndarray:
    """How much more often two properties were selected together than their own frequencies predict.

    ``counts[a, b]`` is the number of meta-batches that selected both a and b (the diagonal: a alone), each
    meta-batch selecting k distinct properties of n. The expected count scales the product of the two
    properties' own counts so that a uniformly random k-subset each meta-batch gives a ratio of 1 on
    average; above 1, a and b were selected together more often than their frequencies alone explain (for
    very unequal frequencies the k-subset constraint moves the ratio a little by itself). Pairs with a
    property never selected, and the diagonal, are NaN.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.shape[0]
    selected = np.diag(counts)
    k = selected.sum() / meta_batches
    if n < 2 or k <= 1:
        raise ValueError(f"co-selection needs at least two properties per meta-batch (k = {k:.2f}, n = {n})")
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.outer(selected, selected) * (k - 1) * n / (k * (n - 1) * meta_batches)
        lift = np.where(expected > 0, counts / expected, np.nan)
    np.fill_diagonal(lift, np.nan)
    return lift
