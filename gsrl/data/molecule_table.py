"""What every labelled molecule dataset is: the parsable molecules of one CSV, their graphs and label matrix.

The few-shot benchmarks (:mod:`gsrl.data.datasets`) and the fine-tuning benchmarks
(:mod:`gsrl.data.property_datasets`) differ only in which columns they read, how they check
them and what they add (a meta-train/meta-test task split); reading, featurizing, caching and
the size checks are this module's, so both load the same way and their caches stay comparable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from torch import Tensor

from gsrl.checkpoint import atomic_torch_save, sha256_of
from gsrl.data.graphs import MoleculeGraphs
from gsrl.data.labels import LabelTable, TableColumns, select_rows
from gsrl.data.processed_cache import cache_path, cache_record, load_cache, report_from_record
from gsrl.data.roots import DOWNLOAD_HINT, DataFileMissing
from gsrl.data.smiles_graphs import ParseReport, featurize_smiles

logger = logging.getLogger(__name__)

T = TypeVar("T", bound="MoleculeTable")


@dataclass(eq=False)
class MoleculeTable:
    """Molecules of one source CSV that RDKit could parse, in file order, with one label row each."""

    name: str
    label_names: list[str]  # one per label column
    smiles: list[str]
    source_rows: list[int]  # 1-based data row of each molecule in the CSV
    labels: Tensor  # float32 [n_molecules, n_labels]; 1 positive/active, 0 negative/inactive, nan missing
    graphs: MoleculeGraphs
    parse_report: ParseReport

    def __post_init__(self) -> None:
        """One molecule per SMILES, one graph and one label row per molecule, one column per label name."""
        n = len(self.smiles)
        if tuple(self.labels.shape) != (n, len(self.label_names)) or len(self.graphs) != n:
            raise ValueError(f"{self.name}: inconsistent sizes: {n} smiles, labels {tuple(self.labels.shape)}, "
                             f"{len(self.graphs)} graphs, {len(self.label_names)} label columns")

    @property
    def num_molecules(self) -> int:
        return len(self.smiles)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @staticmethod
    def label_names_alias() -> property:
        """A read-only view of `label_names` under the name a kind of dataset uses for its columns."""
        return property(lambda self: self.label_names, doc="The label column names, in column order.")

    @classmethod
    def load(
        cls: type[T],
        name: str,
        source: Path,
        cache_dir: Path,
        *,
        cache_name: str,
        columns: TableColumns,
        read: Callable[[Path], LabelTable],
        missing_hint: str = DOWNLOAD_HINT,
        **extra: Any,
    ) -> T:
        """Load `source` from the processed cache, reading it with `read` and featurizing it on first use.

        `cache_name` names the cache file (with the featurizer version and the source sha256);
        `columns` says which label columns a cached record must have; `extra` are the fields a
        subclass adds.
        """
        if not source.is_file():
            raise DataFileMissing(source, missing_hint)
        sha = sha256_of(source)
        path = cache_path(cache_dir, cache_name, sha)
        record = load_cache(path, cache_name, sha, columns)
        if record is None:
            logger.info("Featurizing %s from %s (cache %s)", name, source, path)
            table = read(source)
            graphs, parsed, report = featurize_smiles(table.smiles, table.rows, str(source), name)
            record = cache_record(cache_name, sha, select_rows(table, parsed), graphs, report)
            atomic_torch_save(record, path)
        return cls(
            name=name,
            label_names=list(record["property_names"]),
            smiles=list(record["smiles"]),
            source_rows=record["source_rows"].tolist(),
            labels=record["labels"],
            graphs=MoleculeGraphs.from_tensors(**record["graphs"]),
            parse_report=report_from_record(record, source),
            **extra,
        )
