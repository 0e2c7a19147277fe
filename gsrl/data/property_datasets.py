"""The eight MoleculeNet classification benchmarks of Hu et al. 2020 as multi-task label matrices.

BBBP, Tox21, ToxCast, SIDER, ClinTox, MUV, HIV and BACE are fine-tuned as whole datasets
(every task at once, scaffold split), unlike the few-shot benchmarks of
:mod:`gsrl.data.datasets`, which split tasks into meta-train and meta-test. Reading,
featurization and caching are shared with that module; what is specific here is the
column layout of each file and the label convention.

Labels come out as float32 ``[n_molecules, n_tasks]`` with 1 positive, 0 negative and NaN
missing. Two CSV conventions are accepted, decided per file:

* ``0``/``1`` with empty cells missing (MoleculeNet/DeepChem files, the shipped ones);
* ``-1``/``1`` with ``0`` missing (the convention pretrain-gnns stores internally). A file
  is read this way as soon as any of its label cells is ``-1``.

Rows whose SMILES RDKit cannot parse are dropped and counted in the parse report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from gsrl.data.datasets import (
    DataFileMissing,
    DatasetSpec,
    LabelTable,
    MoleculeGraphs,
    ParseReport,
    atomic_torch_save,
    cache_path,
    cache_record,
    check_sizes,
    featurize_smiles,
    load_cache,
    read_table,
    select_rows,
)
from gsrl.data.download import file_sha256

__all__ = [
    "PROPERTY_DATASETS",
    "PROPERTY_SOURCES",
    "PropertyDataset",
    "PropertySource",
    "load_property_dataset",
]


@dataclass(frozen=True)
class PropertySource:
    """Where one benchmark's CSV lives and which of its columns are tasks."""

    title: str  # display name, as in the paper's tables
    file: str  # relative to the data root
    smiles_column: str
    tasks: tuple[str, ...] | None  # None: every column except the SMILES (and id) columns
    num_tasks: int  # checked after reading, so that a wrong file is an error, not a different benchmark


_TOX21_TASKS = (
    "NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD",
    "NR-PPAR-gamma", "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53",
)
_MUV_TASKS = tuple(
    f"MUV-{n}" for n in (466, 548, 600, 644, 652, 689, 692, 712, 713, 733, 737, 810, 832, 846, 852, 858, 859)
)

# In the order of the paper's tables.
PROPERTY_SOURCES: dict[str, PropertySource] = {
    "bbbp": PropertySource("BBBP", "moleculenet/bbbp.csv", "smiles", ("p_np",), 1),
    "tox21": PropertySource("Tox21", "moleculenet/tox21.csv", "smiles", _TOX21_TASKS, 12),
    "toxcast": PropertySource("ToxCast", "moleculenet/toxcast.csv.gz", "smiles", None, 617),
    "sider": PropertySource("SIDER", "moleculenet/sider.csv", "smiles", None, 27),
    "clintox": PropertySource("ClinTox", "moleculenet/clintox.csv", "smiles", ("FDA_APPROVED", "CT_TOX"), 2),
    "muv": PropertySource("MUV", "moleculenet/muv.csv.gz", "smiles", _MUV_TASKS, 17),
    "hiv": PropertySource("HIV", "moleculenet/hiv.csv.gz", "smiles", ("HIV_active",), 1),
    "bace": PropertySource("BACE", "moleculenet/bace.csv", "mol", ("Class",), 1),
}
PROPERTY_DATASETS: tuple[str, ...] = tuple(PROPERTY_SOURCES)

# Cache files get their own name space: the few-shot loader may cache the same CSV with other rows.
_CACHE_PREFIX = "property-"

_CELL_VALUES: dict[str, float] = {
    "": np.nan, "0": 0.0, "1": 1.0, "-1": -1.0, "0.0": 0.0, "1.0": 1.0, "-1.0": -1.0,
}


@dataclass(eq=False)
class PropertyDataset:
    """Molecules of one benchmark with all of its tasks."""

    name: str
    task_names: list[str]
    smiles: list[str]
    source_rows: list[int]  # 1-based data row of each molecule in the CSV
    labels: Tensor  # float32 [n_molecules, n_tasks]; 1 positive, 0 negative, nan missing
    graphs: MoleculeGraphs
    parse_report: ParseReport

    def __post_init__(self) -> None:
        check_sizes(self.name, self.smiles, self.labels, self.graphs, self.task_names)

    @property
    def num_molecules(self) -> int:
        return len(self.smiles)

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)


def _spec(name: str) -> DatasetSpec:
    """The few-shot loader's spec type, reused for reading and cache validation (no task split)."""
    source = PROPERTY_SOURCES[name]
    return DatasetSpec(_CACHE_PREFIX + name, source.file, source.smiles_column, source.tasks, (), (), False)


def _to_binary(raw: np.ndarray) -> np.ndarray:
    """Raw cell values -> 1 / 0 / nan, choosing the file's convention (see module docstring)."""
    if not (raw == -1).any():
        return raw
    labels = np.where(raw == 0, np.nan, raw)
    labels[labels == -1] = 0.0
    return labels.astype(np.float32)


def read_label_table(path: Path, spec: DatasetSpec) -> LabelTable:
    """SMILES and 1/0/nan labels of every data row of a CSV (plain or gzipped), in either convention."""
    table = read_table(path, spec, _CELL_VALUES)
    return dataclasses.replace(table, labels=_to_binary(table.labels))


def load_property_dataset(name: str, data_root: str | Path, cache_dir: str | Path) -> PropertyDataset:
    """Load one of :data:`PROPERTY_DATASETS`, featurizing it on first use and caching the result."""
    if name not in PROPERTY_SOURCES:
        raise ValueError(f"Unknown property dataset {name!r}; known: {', '.join(PROPERTY_DATASETS)}")
    source, spec = PROPERTY_SOURCES[name], _spec(name)
    path = Path(data_root) / source.file
    if not path.is_file():
        raise DataFileMissing(path)
    sha = file_sha256(path)
    cached = cache_path(Path(cache_dir), spec.name, sha)
    record = load_cache(cached, spec.name, sha, spec)
    if record is None:
        table = read_label_table(path, spec)
        if len(table.property_names) != source.num_tasks:
            raise ValueError(
                f"{path}: {name} has {source.num_tasks} tasks, found {len(table.property_names)} label columns"
            )
        graphs, parsed, report = featurize_smiles(table.smiles, table.rows, str(path), name)
        record = cache_record(spec.name, sha, select_rows(table, parsed), graphs, report)
        atomic_torch_save(record, cached)
    report = dict(record["report"])
    report["failed_examples"] = [(int(r), str(s)) for r, s in report["failed_examples"]]
    report["source_file"] = str(path)
    return PropertyDataset(
        name=name,
        task_names=list(record["property_names"]),
        smiles=list(record["smiles"]),
        source_rows=record["source_rows"].tolist(),
        labels=record["labels"],
        graphs=MoleculeGraphs.from_tensors(**record["graphs"]),
        parse_report=ParseReport(**report),
    )
