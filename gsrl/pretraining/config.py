"""Typed configuration of a pretraining job (`gsrl pretrain -c configs/pretrain/<strategy>.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gsrl.config import DataParallelRay, DataParallelRun, DataPaths, check_data_parallel_device
from gsrl.errors import ConfigError
from gsrl.models.config import EncoderConfig


@dataclass
class CorpusConfig:
    path: str = "moses/moses_train.csv.gz"  # relative to the data root, or absolute
    column: str | None = None  # SMILES column of a CSV; None: detect
    label_columns: list[str] | None = None  # supervised strategy: the CSV's label columns; None: all but SMILES/ids
    shard_size: int = 50_000
    max_shards: int | None = None  # use only the first shards (quick runs)
    featurize_tasks: int = 2  # Ray tasks featurizing shards at a time


@dataclass
class PretrainConfig:
    name: str = "pretrain"
    strategy: str = "attribute_masking"
    settings: dict[str, Any] = field(default_factory=dict)  # the strategy's own settings
    # The meta-training encoder section; `pretrained` chains strategies (start from another run's
    # encoder.pth). Hu et al.: dropout 0 for self-supervised strategies, 0.2 for supervised.
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(dropout=0.0))
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    data: DataPaths = field(default_factory=DataPaths)
    run: DataParallelRun = field(default_factory=DataParallelRun)
    ray: DataParallelRay = field(default_factory=DataParallelRay)

    def validate(self) -> None:
        from gsrl.pretraining.registry import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {sorted(STRATEGIES)}, got {self.strategy!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("epochs must be >= 1 and batch_size >= 2")
        check_data_parallel_device(self.run, self.ray)
