"""Strategy names, as used in configs, and construction from a name and settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gsrl.models.encoder import MoleculeEncoder
from gsrl.pretraining.base import PretrainingStrategy
from gsrl.pretraining.context import ContextPrediction
from gsrl.pretraining.edge_prediction import EdgePrediction
from gsrl.pretraining.infomax import Infomax
from gsrl.pretraining.masking import AttributeMasking
from gsrl.pretraining.supervised import SupervisedPretraining

STRATEGIES: dict[str, type[PretrainingStrategy]] = {
    strategy.name: strategy
    for strategy in (AttributeMasking, ContextPrediction, EdgePrediction, Infomax, SupervisedPretraining)
}


def make_strategy(
    name: str, encoder: MoleculeEncoder, settings: object | Mapping[str, Any] | None = None
) -> PretrainingStrategy:
    """The strategy ``name`` around ``encoder``.

    ``settings`` is the strategy's settings dataclass (``STRATEGIES[name].settings_type``), a
    mapping of its fields (e.g. a YAML section), or None for the defaults.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown pretraining strategy {name!r}; expected one of {sorted(STRATEGIES)}")
    strategy = STRATEGIES[name]
    if isinstance(settings, Mapping):
        known = {field.name for field in dataclasses.fields(strategy.settings_type)}
        unknown = sorted(settings.keys() - known)
        if unknown:
            raise ValueError(f"unknown settings for {name!r}: {unknown}; expected some of {sorted(known)}")
        settings = strategy.settings_type(**settings)
    elif settings is not None and not isinstance(settings, strategy.settings_type):
        raise TypeError(f"{name!r} takes {strategy.settings_type.__name__}, got {type(settings).__name__}")
    return strategy(encoder, settings)
