"""Settings of the fine-tuning benchmark; defaults are Hu et al. 2020's (pretrain-gnns ``finetune.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from gsrl.config import DataPaths, RayResources, RunPlace
from gsrl.data.property_datasets import PROPERTY_DATASETS, PROPERTY_SOURCES
from gsrl.domains import Dropout, NonNegativeFloat, OneOf, PositiveFloat, PositiveInt, Range, Seed, describe_choices
from gsrl.errors import ConfigError, InvalidValue
from gsrl.models.checkpoints import resolve_checkpoint
from gsrl.models.config import CONV_TYPES, POOLING_TYPES

__all__ = ["EncoderSpec", "FinetuneConfig"]

_ENCODER_KEYS = frozenset({"name", "path", "conv"})


@dataclass(frozen=True)
class EncoderSpec:
    """One encoder to compare: random initialisation (``path`` None) or a Hu-format checkpoint."""

    name: str
    path: str | None
    conv: Annotated[str, OneOf(CONV_TYPES)]

    @property
    def pretrained(self) -> bool:
        return self.path is not None

    def checkpoint(self, data_root: Path) -> Path:
        """The checkpoint file, placeholders filled in (see ``gsrl.models.checkpoints``)."""
        if self.path is None:
            raise ValueError(f"encoder {self.name!r} has no checkpoint")
        try:
            return resolve_checkpoint(self.path, data_root)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"encoder {self.name!r}: {error}") from None


@dataclass
class FinetuneConfig:
    """The grid datasets x encoders x seeds and how each fine-tuning run trains."""

    name: str = "finetune"
    datasets: list[str] = field(default_factory=lambda: list(PROPERTY_DATASETS))
    seeds: list[Seed] = field(default_factory=lambda: list(range(10)))  # model init and batch order
    # Each entry: {name, path (null: no pretraining), conv (optional, default: `conv` below)}.
    # A pretrained encoder's baseline column is the path-null entry with the same conv.
    encoders: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "gin", "path": None}])
    conv: Annotated[str, OneOf(CONV_TYPES)] = "gin"
    num_layers: PositiveInt = 5
    emb_dim: PositiveInt = 300
    dropout: Dropout = 0.5
    pooling: Annotated[str, OneOf(POOLING_TYPES)] = "mean"
    epochs: PositiveInt = 100
    batch_size: Annotated[int, Range(2)] = 32
    eval_batch_size: PositiveInt = 256  # inference only (BatchNorm in eval mode), so it does not change results
    lr: PositiveFloat = 1e-3
    decay: NonNegativeFloat = 0.0  # Adam weight decay
    eval_train: bool = True  # also report train ROC-AUC each epoch (one more pass over the train set)
    data: DataPaths = field(default_factory=DataPaths)
    run: RunPlace = field(default_factory=lambda: RunPlace(output_dir="runs/finetune", threads=1))
    ray: RayResources = field(default_factory=RayResources)  # worker_cpus/gpus: each (dataset, encoder, seed) task

    def encoder_specs(self) -> list[EncoderSpec]:
        """The ``encoders`` entries, checked and with their conv type filled in."""
        specs = []
        for i, entry in enumerate(self.encoders):
            where = f"encoders[{i}]"
            unknown = sorted(set(entry) - _ENCODER_KEYS)
            if unknown:
                raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(_ENCODER_KEYS)}")
            name, path, conv = entry.get("name"), entry.get("path"), entry.get("conv") or self.conv
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}: 'name' must be a non-empty string")
            if path is not None and not (isinstance(path, str) and path):
                raise ConfigError(f"{where}: 'path' must be a checkpoint path or null")
            if conv not in CONV_TYPES:
                raise ConfigError(f"{where}: conv {conv!r} is not one of {CONV_TYPES}")
            specs.append(EncoderSpec(name, path, conv))
        return specs

    def validate(self) -> None:
        """Cross-field checks, run by ``gsrl.config.load_config``."""
        specs = self.encoder_specs()
        names = [spec.name for spec in specs]
        unknown = [d for d in self.datasets if d not in PROPERTY_SOURCES]  # registered additions included
        if unknown:
            raise InvalidValue("datasets", unknown, "datasets from " + describe_choices(PROPERTY_SOURCES))
        checks = [
            (bool(self.datasets), "datasets must not be empty"),
            (len(set(self.datasets)) == len(self.datasets), "datasets must not repeat"),
            (bool(self.seeds), "seeds must not be empty"),
            (len(set(self.seeds)) == len(self.seeds), "seeds must not repeat"),
            (bool(specs), "encoders must not be empty"),
            (len(set(names)) == len(names), f"encoder names must be unique, got {names}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
