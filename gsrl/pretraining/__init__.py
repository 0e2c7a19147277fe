"""The five graph pretraining strategies of Hu et al. 2020, "Strategies for Pre-training GNNs"."""

from gsrl.pretraining.base import PretrainingStrategy, other_graph_index
from gsrl.pretraining.context import ContextPrediction, ContextPredictionSettings, SubstructureContextPair
from gsrl.pretraining.edge_prediction import EdgePrediction, EdgePredictionSettings
from gsrl.pretraining.infomax import Infomax, InfomaxSettings
from gsrl.pretraining.masking import AttributeMasking, AttributeMaskingSettings
from gsrl.pretraining.registry import STRATEGIES, make_strategy
from gsrl.pretraining.supervised import SupervisedPretraining, SupervisedSettings

__all__ = [
    "STRATEGIES",
    "AttributeMasking",
    "AttributeMaskingSettings",
    "ContextPrediction",
    "ContextPredictionSettings",
    "EdgePrediction",
    "EdgePredictionSettings",
    "Infomax",
    "InfomaxSettings",
    "PretrainingStrategy",
    "SubstructureContextPair",
    "SupervisedPretraining",
    "SupervisedSettings",
    "make_strategy",
    "other_graph_index",
]
