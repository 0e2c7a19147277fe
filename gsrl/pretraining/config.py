"""Typed configuration of a pretraining job (`gsrl pretrain -c configs/pretrain/<strategy>.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from gsrl.config import DataParallelRay, DataParallelRun, DataPaths, check_data_parallel_device
from gsrl.domains import NonNegativeFloat, PositiveFloat, PositiveInt, Range, Seed, describe_choices
from gsrl.errors import InvalidValue
from gsrl.models.config import EncoderConfig


@dataclass
class CorpusConfig:
    path: str = "moses/moses_train.csv.gz"  # relative to the data root, or absolute
    column: str | None = None  # SMILES column of a CSV; None: detect
    label_columns: list[str] | None = None  # supervised strategy: the CSV's label columns; None: all but SMILES/ids
    shard_size: PositiveInt = 50_000
    max_shards: PositiveInt | None = None  # use only the first shards (quick runs)
    featurize_tasks: PositiveInt = 2  # Ray tasks featurizing shards at a time


@dataclass
class PretrainConfig:
    name: str = "pretrain"
    strategy: str = "attribute_masking"
    settings: dict[str, Any] = field(default_factory=dict)  # the strategy's own settings
    # The meta-training encoder section; `pretrained` chains strategies (start from another run's
    # encoder.pth). Hu et al.: dropout 0 for self-supervised strategies, 0.2 for supervised.
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(dropout=0.0))
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    epochs: PositiveInt = 100
    batch_size: Annotated[int, Range(2)] = 256
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    seed: Seed = 0
    data: DataPaths = field(default_factory=DataPaths)
    run: DataParallelRun = field(default_factory=DataParallelRun)
    ray: DataParallelRay = field(default_factory=DataParallelRay)

    def validate(self) -> None:
        from gsrl.pretraining.registry import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise InvalidValue("strategy", self.strategy, describe_choices(STRATEGIES))
        check_data_parallel_device(self.run, self.ray)
