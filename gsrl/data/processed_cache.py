"""The processed-dataset cache: everything derived from a labelled CSV, in one torch file.

A record holds the graphs, labels, SMILES, source row numbers and parse report of one dataset.
Its file name holds the dataset's cache name, the featurizer version and the sha256 of the
source CSV, so editing the CSV or the featurizer builds a new file, and a warm load does no
RDKit work at all. Records are written atomically and read with ``weights_only=True``; an
unreadable or mismatching file is rebuilt, never trusted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from gsrl.data.features import FEATURIZER_VERSION
from gsrl.data.graphs import MoleculeGraphs
from gsrl.data.labels import LabelTable, TableColumns
from gsrl.data.smiles_graphs import ParseReport

logger = logging.getLogger(__name__)

# Version of the cache file layout itself (independent of the featurizer version).
_CACHE_FORMAT = 1


def cache_path(cache_dir: Path, name: str, source_sha256: str) -> Path:
    """Processed-file path; it changes with the dataset, featurizer and source content."""
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return cache_dir / f"{safe_name}-{FEATURIZER_VERSION}-{source_sha256}.pt"


def cache_record(
    name: str, sha: str, table: LabelTable, graphs: MoleculeGraphs, report: ParseReport
) -> dict[str, Any]:
    """Everything a warm load needs, in types ``torch.load(weights_only=True)`` accepts."""
    return {
        "cache_format": _CACHE_FORMAT,
        "featurizer_version": FEATURIZER_VERSION,
        "dataset": name,
        "source_sha256": sha,
        "property_names": list(table.property_names),
        "smiles": list(table.smiles),
        "source_rows": torch.tensor(table.rows, dtype=torch.long),
        "labels": torch.from_numpy(table.labels),
        "report": {**asdict(report), "failed_examples": [list(e) for e in report.failed_examples]},
        "graphs": graphs.to_tensors(),
    }


def load_cache(path: Path, name: str, sha: str, spec: TableColumns) -> dict[str, Any] | None:
    """The cached record when it exists and matches; None means rebuild."""
    if not path.is_file():
        return None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file is rebuilt, not fatal
        logger.warning("Ignoring unreadable cache file %s (%s); rebuilding", path, err)
        return None
    expected = {
        "cache_format": _CACHE_FORMAT,
        "featurizer_version": FEATURIZER_VERSION,
        "dataset": name,
        "source_sha256": sha,
    }
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in expected.items()):
        return None
    if spec.label_columns is not None and record["property_names"] != list(spec.label_columns):
        return None
    return record


def report_from_record(record: dict[str, Any], source: Path) -> ParseReport:
    """The record's parse report, naming `source` as it is found now (the cache may have moved)."""
    report = dict(record["report"])
    report["failed_examples"] = [(int(r), str(s)) for r, s in report["failed_examples"]]
    report["source_file"] = str(source)
    return ParseReport(**report)
