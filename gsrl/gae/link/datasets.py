"""Node-attributed graphs for link prediction, read offline through PyG's dataset classes.

The raw files under the data root are copied into a cache folder keyed by their sha256, laid out
the way ``Planetoid`` / ``Amazon`` expect, so PyG processes them once and never tries a download;
a changed raw file gets a fresh cache entry instead of a stale processed graph. The entry is built in
a private folder and renamed into place, because a sweep's Ray tasks load the same graph at once and
PyG writes its processed file non-atomically (a concurrent reader saw a truncated file).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch_geometric.data import Data
from torch_geometric.datasets import Amazon, Planetoid
from torch_geometric.transforms import NormalizeFeatures
from torch_geometric.utils import remove_self_loops, to_undirected

from gsrl.checkpoint import sha256_of

__all__ = ["GRAPH_DATASETS", "GraphSource", "graph_source", "load_graph"]

_PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


@dataclass(frozen=True)
class GraphSource:
    """Where a graph's raw files sit under the data root and which PyG class reads them."""

    reader: str  # "planetoid" | "amazon"
    pyg_name: str  # the name PyG's class takes ("Cora", "Photo", ...)
    files: tuple[str, ...]  # relative to the data root
    # Row-normalise the features. Amazon's bag-of-words rows have ~250 active words (Cora's ~18); raw,
    # they saturated the inner-product decoder at the first step (GAE-GCN on Photo stuck at AUC 0.50).
    normalize_features: bool = False

    def read(self, root: Path) -> Data:
        reader = Planetoid if self.reader == "planetoid" else Amazon
        return reader(str(root), self.pyg_name, transform=NormalizeFeatures() if self.normalize_features else None)[0]


def _planetoid(name: str) -> GraphSource:
    files = tuple(f"graphs/planetoid/ind.{name.lower()}.{part}" for part in _PLANETOID_PARTS)
    return GraphSource("planetoid", name, files)


# The registry: every graph a config may name -> where its raw files are and how to read them.
GRAPH_DATASETS: dict[str, GraphSource] = {
    "cora": _planetoid("Cora"),
    "citeseer": _planetoid("CiteSeer"),
    "amazon-photo": GraphSource("amazon", "Photo", ("graphs/amazon/amazon_electronics_photo.npz",),
                                normalize_features=True),
    "amazon-computers": GraphSource("amazon", "Computers", ("graphs/amazon/amazon_electronics_computers.npz",),
                                    normalize_features=True),
}


def graph_source(name: str) -> GraphSource:
    """The registry's entry for ``name``; a ValueError naming every known graph otherwise."""
    if name not in GRAPH_DATASETS:
        raise ValueError(f"unknown graph dataset {name!r}; known: {', '.join(GRAPH_DATASETS)}")
    return GRAPH_DATASETS[name]


def _build_cache_entry(source: GraphSource, raw_files: list[Path], root: Path) -> None:
    """Copy the raw files and let PyG process them in a private folder, then rename it to ``root``;
    when another process got there first, its (complete) entry is kept and ours is dropped."""
    root.parent.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        raw_dir = private / source.pyg_name / "raw"
        raw_dir.mkdir(parents=True)
        for path in raw_files:
            shutil.copyfile(path, raw_dir / path.name)
        source.read(private)
        try:
            os.rename(private, root)
        except OSError:  # the entry appeared meanwhile (rename onto a non-empty folder fails)
            if not root.is_dir():
                raise
    finally:
        shutil.rmtree(private, ignore_errors=True)


def load_graph(name: str, data_root: Path, cache_dir: Path) -> Data:
    """The graph ``name`` as an undirected ``Data`` without self-loops (``x``, ``edge_index``, ``y``)."""
    source = graph_source(name)
    raw_files = [Path(data_root) / relative for relative in source.files]
    missing = [str(path) for path in raw_files if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{name}: missing raw file(s) {', '.join(missing)} (data root {data_root})")
    key = hashlib.sha256("".join(sha256_of(path) for path in raw_files).encode()).hexdigest()[:16]
    root = Path(cache_dir) / "graphs" / f"{name}-{key}"
    if not root.is_dir():
        _build_cache_entry(source, raw_files, root)
    data = source.read(root)
    edge_index, _ = remove_self_loops(data.edge_index)
    return Data(x=data.x, edge_index=to_undirected(edge_index, num_nodes=data.num_nodes), y=data.y,
                num_nodes=data.num_nodes)
