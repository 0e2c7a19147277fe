"""Settings of link-prediction jobs and sweeps; defaults are Kipf & Welling 2016's GAE/VGAE setup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from gsrl.config import DataPaths, RayResources, RunOutput, RunPlace, check_fp32_only
from gsrl.domains import PositiveFloat, PositiveInt, Range, Seed, describe_choices
from gsrl.errors import ConfigError, InvalidValue
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
    hidden_channels: PositiveInt = 32
    latent_channels: PositiveInt = 16
    heads: PositiveInt = 1  # gat only
    loss: str = "dense"
    epochs: PositiveInt = 200
    lr: PositiveFloat = 0.01
    val_fraction: Annotated[float, Range(0, 1, open_low=True)] = 0.05
    test_fraction: Annotated[float, Range(0, 1, open_low=True)] = 0.10
    seed: Seed = 0  # the edge split and the model's initialisation
    checkpoint_every: PositiveInt = 50  # epochs
    data: DataPaths = field(default_factory=DataPaths)
    run: RunPlace = field(default_factory=lambda: RunPlace(output_dir="runs/gae", threads=1))
    ray: RayResources = field(default_factory=RayResources)  # worker_cpus/gpus: the job's Ray task

    def validate(self) -> None:
        for key, registry in (("dataset", GRAPH_DATASETS), ("model", AUTOENCODERS), ("conv", CONVS),
                              ("loss", LOSSES)):
            if getattr(self, key) not in registry:
                raise InvalidValue(key, getattr(self, key), describe_choices(registry))
        check_fp32_only(self.run, "link-prediction job")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(f"val_fraction + test_fraction must be below 1, got {self.val_fraction} + "
                              f"{self.test_fraction}")


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
    seeds: list[Seed] = field(default_factory=lambda: list(range(10)))
    job: LinkPredictionConfig = field(default_factory=LinkPredictionConfig)  # settings shared by every cell
    dataset_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> job settings
    run: RunOutput = field(default_factory=lambda: RunOutput(output_dir="runs/gae-sweep"))
    ray: RayResources = field(default_factory=RayResources)  # worker_cpus/gpus: each cell's Ray task

    def validate(self) -> None:
        unknown = [d for d in self.datasets if d not in GRAPH_DATASETS]
        if unknown:
            raise InvalidValue("datasets", unknown, "datasets from " + describe_choices(GRAPH_DATASETS))
        for i, entry in enumerate(self.models):
            if set(entry) != _MODEL_KEYS:
                raise ConfigError(f"models[{i}]: expected exactly the keys {sorted(_MODEL_KEYS)}, got {sorted(entry)}")
        names = [self.column(entry) for entry in self.models]
        if len(set(names)) != len(names):
            raise ConfigError(f"models: entries repeat ({names})")
        stray = sorted(set(self.dataset_overrides) - set(GRAPH_DATASETS))
        if stray:
            raise ConfigError(f"dataset_overrides: unknown datasets {stray}; known: {list(GRAPH_DATASETS)}")

    @staticmethod
    def column(entry: dict[str, str]) -> str:
        return f"{entry['model']}-{entry['conv']}"
