"""Settings of link-prediction jobs and sweeps; defaults are Kipf & Welling 2016's GAE/VGAE setup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gsrl.config import DataPaths, RayResources, RunOutput, RunPlace
from gsrl.errors import ConfigError
from gsrl.gae.link.datasets import GRAPH_DATASETS
from gsrl.gae.link.models import AUTOENCODERS, CONVS

__all__ = ["LOSSES", "LinkPredictionConfig", "LinkSweepConfig"]

# dense: Kipf's weighted cross-entropy over every node pair of the training adjacency (self-loops as
# positives); sampled: one fresh negative per training edge each epoch (scales to large graphs).
LOSSES = ("dense", "sampled")


@dataclass
class LinkPredictionConfig:
    """One job: an autoencoder trained on one graph's training edges with one seed."""

    name: str = "gae-cora"
    dataset: str = "cora"
    model: str = "gae"  # gae | vgae
    conv: str = "gcn"  # gcn | graphsage | gat
    hidden_channels: int = 32
    latent_channels: int = 16
    heads: int = 1  # gat only
    loss: str = "dense"
    epochs: int = 200
    lr: float = 0.01
    val_fraction: float = 0.05
    test_fraction: float = 0.10
    seed: int = 0  # the edge split and the model's initialisation
    checkpoint_every: int = 50  # epochs
    data: DataPaths = field(default_factory=DataPaths)
    run: RunPlace = field(default_factory=lambda: RunPlace(output_dir="runs/gae", threads=1))
    ray: RayResources = field(default_factory=RayResources)  # worker_cpus/gpus: the job's Ray task

    def validate(self) -> None:
        checks = [
            (self.dataset in GRAPH_DATASETS, f"dataset {self.dataset!r} is unknown; known: {list(GRAPH_DATASETS)}"),
            (self.model in AUTOENCODERS, f"model {self.model!r} is unknown; known: {list(AUTOENCODERS)}"),
            (self.conv in CONVS, f"conv {self.conv!r} is unknown; known: {list(CONVS)}"),
            (self.loss in LOSSES, f"loss {self.loss!r} is unknown; known: {list(LOSSES)}"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (0 < self.val_fraction and 0 < self.test_fraction and self.val_fraction + self.test_fraction < 1,
             "val_fraction and test_fraction must be positive and sum to less than 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


_MODEL_KEYS = frozenset({"model", "conv"})


@dataclass
class LinkSweepConfig:
    """The grid datasets × models × seeds, each cell a :class:`LinkPredictionConfig` job."""

    name: str = "gae-sweep"
    datasets: list[str] = field(default_factory=lambda: ["cora", "citeseer", "amazon-photo", "amazon-computers"])
    models: list[dict[str, str]] = field(default_factory=lambda: [
        {"model": "gae", "conv": "gcn"}, {"model": "vgae", "conv": "gcn"},
        {"model": "gae", "conv": "graphsage"}, {"model": "vgae", "conv": "graphsage"},
    ])
    seeds: list[int] = field(default_factory=lambda: list(range(10)))
    job: LinkPredictionConfig = field(default_factory=LinkPredictionConfig)  # settings shared by every cell
    dataset_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> job settings
    run: RunOutput = field(default_factory=lambda: RunOutput(output_dir="runs/gae-sweep"))
    ray: RayResources = field(default_factory=RayResources)  # worker_cpus/gpus: each cell's Ray task

    def validate(self) -> None:
        unknown = [d for d in self.datasets if d not in GRAPH_DATASETS]
        if unknown:
            raise ConfigError(f"datasets: unknown {unknown}; known: {list(GRAPH_DATASETS)}")
        for i, entry in enumerate(self.models):
            if set(entry) != _MODEL_KEYS:
                raise ConfigError(f"models[{i}]: expected exactly the keys {sorted(_MODEL_KEYS)}, got {sorted(entry)}")
        names = [self.column(entry) for entry in self.models]
        if len(set(names)) != len(names):
            raise ConfigError(f"models: entries repeat ({names})")
        stray = sorted(set(self.dataset_overrides) - set(GRAPH_DATASETS))
        if stray:
            raise ConfigError(f"dataset_overrides: unknown datasets {stray}; known: {list(GRAPH_DATASETS)}")
        self.job.validate()

    @staticmethod
    def column(entry: dict[str, str]) -> str:
        return f"{entry['model']}-{entry['conv']}"
