"""A list of SMILES -> one ``MoleculeGraphs`` plus a report of what RDKit could not parse.

The glue between the per-molecule featurizer (:mod:`gsrl.data.featurize`) and everything that
featurizes many molecules at once (datasets, corpus shards). Unparsable SMILES are skipped, not
fatal: they are counted and the first few named by their row, so a user can check a data folder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gsrl.data.graphs import MoleculeGraphs

logger = logging.getLogger(__name__)

MAX_FAILED_EXAMPLES = 10


@dataclass
class ParseReport:
    """What happened when a source CSV was turned into molecules."""

    source_file: str
    rows: int  # data rows read (header excluded; for toxcast-* only rows with a label)
    parsed: int
    failed: int
    failed_examples: list[tuple[int, str]]  # (1-based data row number, smiles), at most 10

    def summary(self, parsed_key: str = "parsed", failed_key: str = "failed") -> dict[str, Any]:
        """Source and counts as plain data, under the key names of the caller's report (so that the
        ``gsrl data report`` output and the fine-tuning results keep their own vocabulary)."""
        return {"source_file": self.source_file, "rows": self.rows, parsed_key: self.parsed, failed_key: self.failed}


def featurize_smiles(
    smiles_list: Sequence[str], rows: Sequence[int], source_file: str, name: str
) -> tuple[MoleculeGraphs, np.ndarray, ParseReport]:
    """Graphs of every parsable SMILES, the mask of parsed entries and the parse report
    (failures named by their row in `source_file`)."""
    from gsrl.data.featurize import mol_to_arrays, parse_smiles  # RDKit: needed to featurize, not to load a cache

    xs, edge_indices, edge_attrs = [], [], []
    parsed = np.zeros(len(smiles_list), dtype=bool)
    failed: list[tuple[int, str]] = []
    for i, (smiles, row) in enumerate(zip(smiles_list, rows)):
        mol = parse_smiles(smiles)
        if mol is None or mol.GetNumAtoms() == 0:
            failed.append((row, smiles))
            continue
        x, edge_index, edge_attr = mol_to_arrays(mol)
        xs.append(x)
        edge_indices.append(edge_index)
        edge_attrs.append(edge_attr)
        parsed[i] = True
    graphs = MoleculeGraphs.from_arrays(xs, edge_indices, edge_attrs)
    report = ParseReport(
        source_file=source_file,
        rows=len(smiles_list),
        parsed=int(parsed.sum()),
        failed=len(failed),
        failed_examples=failed[:MAX_FAILED_EXAMPLES],
    )
    if failed:
        logger.warning(
            "%s: RDKit could not parse %d of %d SMILES in %s; they are skipped (first rows: %s)",
            name, len(failed), report.rows, source_file, ", ".join(str(r) for r, _ in failed[:5]),
        )
    return graphs, parsed, report
