"""The eight MoleculeNet classification benchmarks of Hu et al. 2020 as multi-task label matrices.

BBBP, Tox21, ToxCast, SIDER, ClinTox, MUV, HIV and BACE are fine-tuned as whole datasets
(every task at once, scaffold split), unlike the few-shot benchmarks of
:mod:`gsrl.data.datasets`, which split tasks into meta-train and meta-test. Reading,
featurization and caching are shared with them (:mod:`gsrl.data.molecule_table`); what is
specific here is the column layout of each file and the label convention.

Labels come out as float32 ``[n_molecules, n_tasks]`` with 1 positive, 0 negative and NaN
missing. Two CSV conventions are accepted, decided per file:

* ``0``/``1`` with empty cells missing (MoleculeNet/DeepChem files, the shipped ones);
* ``-1``/``1`` with ``0`` missing (the convention pretrain-gnns stores internally). A file
  is read this way as soon as any of its label cells is ``-1`` (:func:`gsrl.data.labels.read_label_table`).

Rows whose SMILES RDKit cannot parse are dropped and counted in the parse report.

:data:`PROPERTY_SOURCES` is the registry (name -> :class:`PropertySource`), in the order of the
paper's tables; :func:`register_property_dataset` adds an entry. :data:`PROPERTY_DATASETS` are
the built-in names, the default datasets of a fine-tuning run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gsrl.data.labels import LabelTable, TableColumns, read_label_table
from gsrl.data.molecule_table import MoleculeTable
from gsrl.data.registry import lookup, register

__all__ = [
    "PROPERTY_DATASETS",
    "PROPERTY_SOURCES",
    "PropertyDataset",
    "PropertySource",
    "load_property_dataset",
    "property_source",
    "register_property_dataset",
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


def register_property_dataset(name: str, source: PropertySource) -> PropertySource:
    """Add a benchmark to :data:`PROPERTY_SOURCES` (names are unique)."""
    return register(PROPERTY_SOURCES, name, source, "property dataset")


def property_source(name: str) -> PropertySource:
    """The registry entry of `name`; an unknown name is an error listing the known ones."""
    return lookup(PROPERTY_SOURCES, name, "property dataset")


@dataclass(eq=False)
class PropertyDataset(MoleculeTable):
    """Molecules of one benchmark with all of its tasks."""

    # Each label column is one task of the multi-task model.
    task_names = MoleculeTable.label_names_alias()
    num_tasks = MoleculeTable.num_labels


def _read_source(path: Path, name: str, source: PropertySource) -> LabelTable:
    """The 1/0/nan label table of a benchmark's CSV, checked to have the benchmark's task count."""
    table = read_label_table(path, TableColumns(source.smiles_column, source.tasks))
    if len(table.property_names) != source.num_tasks:
        raise ValueError(
            f"{path}: {name} has {source.num_tasks} tasks, found {len(table.property_names)} label columns"
        )
    return table


def load_property_dataset(name: str, data_root: str | Path, cache_dir: str | Path) -> PropertyDataset:
    """Load one of :data:`PROPERTY_SOURCES`, featurizing it on first use and caching the result."""
    source = property_source(name)
    return PropertyDataset.load(
        name,
        Path(data_root) / source.file,
        Path(cache_dir),
        cache_name=_CACHE_PREFIX + name,
        columns=TableColumns(source.smiles_column, source.tasks),
        read=lambda path: _read_source(path, name, source),
    )
