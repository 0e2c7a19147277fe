"""The fine-tuning benchmark: every (dataset, encoder, seed) run as a Ray task, then one table.

The driver featurizes each dataset once (so the tasks only read the cache) and computes its
scaffold split once (shared with the tasks through the object store); the tasks train. Each run
checkpoints every epoch in its own directory under ``<output_dir>/runs/``, named by a digest of
what decides its numbers, so the same command finishes an interrupted grid, and a grid asked for
more epochs continues the runs of a shorter one instead of starting again. The
table has a row per dataset plus the average over datasets, and a column per encoder where
each pretrained encoder stands right after its baseline, the encoder of the same conv type
without pretraining, so the effect of pretraining reads off side by side.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gsrl.checkpoint import identity_digest, sha256_of
from gsrl.data.features import FEATURIZER_VERSION
from gsrl.data.property_datasets import PROPERTY_SOURCES, PropertyDataset
from gsrl.data.scaffold import ScaffoldSplit
from gsrl.finetune.config import EncoderSpec, FinetuneConfig
from gsrl.finetune.train import FinetuneResult
from gsrl.models.encoder import MoleculeEncoder
from gsrl.stats import mean_std

__all__ = [
    "baselines",
    "column_order",
    "data_digest",
    "format_markdown",
    "run_directory",
    "summarize",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- table


def baselines(encoders: Sequence[EncoderSpec]) -> dict[str, str | None]:
    """Baseline column of each pretrained encoder: the first listed unpretrained encoder of its conv."""
    first_unpretrained: dict[str, str] = {}
    for spec in encoders:
        if not spec.pretrained:
            first_unpretrained.setdefault(spec.conv, spec.name)
    return {spec.name: first_unpretrained.get(spec.conv) if spec.pretrained else None for spec in encoders}


def column_order(encoders: Sequence[EncoderSpec]) -> list[str]:
    """Encoders in listed order, each pretrained one directly preceded by its baseline (once)."""
    baseline_of = baselines(encoders)
    order: list[str] = []
    for spec in encoders:
        for name in (baseline_of[spec.name], spec.name):
            if name is not None and name not in order:
                order.append(name)
    return order


def summarize(
    results: Sequence[FinetuneResult], datasets: Sequence[str], encoders: Sequence[EncoderSpec]
) -> dict[str, Any]:
    """Test ROC-AUC per dataset and encoder (mean ± std over seeds) and the average over datasets.

    ``average[encoder]`` is the mean of the per-dataset means, defined only when the encoder has
    a result on every dataset; ``gain`` is that average minus the baseline's.
    """
    columns = column_order(encoders)
    by_cell: dict[tuple[str, str], list[float]] = {}
    for result in results:
        if result.test_auc is not None:
            by_cell.setdefault((result.dataset, result.encoder), []).append(result.test_auc)
    cells = {d: {e: mean_std(by_cell.get((d, e), [])) for e in columns} for d in datasets}
    average: dict[str, float | None] = {}
    for e in columns:
        means = [cells[d][e]["mean"] for d in datasets]
        average[e] = None if None in means else float(np.mean(means))
    baseline_of = baselines(encoders)
    gain: dict[str, float | None] = {}
    for e in columns:
        base = baseline_of.get(e)
        known = base is not None and average[e] is not None and average[base] is not None
        gain[e] = average[e] - average[base] if known else None
    return {
        "metric": "test ROC-AUC at the best-validation epoch",
        "datasets": list(datasets),
        "columns": columns,
        "baseline_of": {e: baseline_of.get(e) for e in columns},
        "cells": cells,
        "average": average,
        "gain": gain,
    }


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def format_markdown(summary: dict[str, Any], encoders: Sequence[EncoderSpec], title: str, note: str = "") -> str:
    """The summary as a Markdown table (percent), with a legend of the columns."""
    columns = summary["columns"]
    specs = {spec.name: spec for spec in encoders}
    lines = [f"# {title}", ""]
    if note:
        lines += [note, ""]
    lines += [
        "| Dataset | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for dataset in summary["datasets"]:
        row = []
        for e in columns:
            cell = summary["cells"][dataset][e]
            row.append("—" if cell["mean"] is None else f"{_percent(cell['mean'])} ± {_percent(cell['std'])}")
        lines.append(f"| {PROPERTY_SOURCES[dataset].title} | " + " | ".join(row) + " |")
    average_row = []
    for e in columns:
        value, gain = summary["average"][e], summary["gain"][e]
        text = "—" if value is None else _percent(value)
        if gain is not None:
            text += f" ({'+' if gain >= 0 else '−'}{_percent(abs(gain))})"
        average_row.append(text)
    lines += ["| Average | " + " | ".join(average_row) + " |", "", "Columns:", ""]
    for e in columns:
        spec = specs[e]
        if spec.pretrained:
            base = summary["baseline_of"][e]
            against = f"; gain vs `{base}` in the Average row" if base else "; no baseline listed"
            lines.append(f"- `{e}`: {spec.conv}, pretrained from `{spec.path}`{against}")
        else:
            lines.append(f"- `{e}`: {spec.conv}, no pretraining (random initialisation)")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- runs


# Settings that do not change a run's numbers (or, for epochs, only how far it goes): left out of its identity.
_NOT_RUN_IDENTITY = frozenset({"name", "datasets", "seeds", "encoders", "epochs", "eval_batch_size", "data", "run",
                               "ray"})


def data_digest(dataset: PropertyDataset) -> str:
    """The molecules, labels and featurizer a run trains on."""
    digest = hashlib.sha256(f"{FEATURIZER_VERSION}\n".encode())
    digest.update("\n".join(dataset.smiles).encode())
    digest.update(dataset.labels.numpy().tobytes())
    return digest.hexdigest()


def run_directory(output_dir: Path, dataset: str, molecules: str, encoder: EncoderSpec, seed: int,
                  config: FinetuneConfig) -> Path:
    """The directory of one run: ``<output_dir>/runs/<dataset>-<encoder>-seed<seed>-<digest>``, the digest
    covering the data (``molecules``, from `data_digest`), the encoder's checkpoint bytes, the seed and the
    training settings."""
    identity = {
        "dataset": dataset, "molecules": molecules, "seed": seed, "conv": encoder.conv,
        "checkpoint_sha256": sha256_of(Path(encoder.path)) if encoder.pretrained else None,
        "training": {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_RUN_IDENTITY},
    }
    if config.run.precision != "fp32":  # it changes the numbers; fp32 runs keep the directories they had
        identity["precision"] = config.run.precision
    return output_dir / "runs" / f"{dataset}-{encoder.name}-seed{seed}-{identity_digest(identity)}"


def resolved_encoders(config: FinetuneConfig, data_root: Path) -> list[EncoderSpec]:
    """Encoder specs with checkpoint paths made real, each checkpoint checked to fit before any run."""
    specs = []
    for spec in config.encoder_specs():
        if spec.pretrained:
            path = spec.checkpoint(data_root)
            MoleculeEncoder(spec.conv, config.num_layers, config.emb_dim).load_pretrained(path)
            spec = dataclasses.replace(spec, path=str(path))
        specs.append(spec)
    return specs


def dataset_summary(dataset: PropertyDataset, split: ScaffoldSplit) -> dict[str, Any]:
    """Source, molecule counts and split sizes of one dataset, for the results file (a dataset keeps
    exactly the molecules RDKit parsed, so "molecules" is the parse report's parsed count)."""
    return {
        **dataset.parse_report.summary(parsed_key="molecules", failed_key="invalid_smiles"),
        "tasks": dataset.num_tasks,
        "split": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
    }
