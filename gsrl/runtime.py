"""Turning a Config into live objects: device, thread count, dataset, model."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gsrl.config import Config
from gsrl.errors import InvalidValue, UnknownName
from gsrl.data.datasets import FewShotDataset, load_fewshot_dataset
from gsrl.data.roots import resolve_data_root
from gsrl.models.checkpoints import resolve_checkpoint
from gsrl.meta.algorithms import algorithm_named
from gsrl.models.episode_network import EpisodeNetwork


def device_named(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for ``cuda`` without a device is an error, not a CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def resolve_device(config: Config) -> torch.device:
    return device_named(config.run.device)


def apply_threads(config: Config) -> None:
    if config.run.threads is not None:
        torch.set_num_threads(config.run.threads)


def cache_dir(config: Config) -> Path:
    return resolve_cache_dir(config.data.cache_dir)


def resolve_cache_dir(configured: str | None) -> Path:
    """Processed-data cache: the configured folder, else $GSRL_CACHE_DIR, else ~/.cache/gsrl."""
    configured = configured or os.environ.get("GSRL_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "gsrl"


def load_dataset(config: Config) -> FewShotDataset:
    """The configured few-shot dataset; an unknown name is refused as the value of `data.dataset`."""
    try:
        return load_fewshot_dataset(config.data.dataset, resolve_data_root(config.data.root), cache_dir(config))
    except UnknownName as error:
        raise InvalidValue("data.dataset", error.name, "one of " + ", ".join(error.known)) from None


def build_model(dataset: FewShotDataset, config: Config, seed: int | None = None) -> EpisodeNetwork:
    """The configured algorithm's network, freshly initialised (seeded), with a pretrained encoder when
    the config names one."""
    if seed is not None:
        torch.manual_seed(seed)
    model = algorithm_named(config.meta.algorithm).network.for_dataset(dataset, config.network)
    if config.encoder.pretrained:
        data_root = resolve_data_root(config.data.root)
        model.encoder.load_pretrained(resolve_checkpoint(config.encoder.pretrained, data_root))
    return model
