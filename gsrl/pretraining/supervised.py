"""Supervised graph-level pretraining: multi-task binary classification of whole molecules.

Hu et al. use ChEMBL (1310 assays); any labelled table works. The graph embedding (the encoder's
pooling, mean by default as in the paper) feeds one linear layer with a logit per task, and the
loss is BCE with logits averaged over the labelled entries of the batch only.

Labels are ``y`` of shape ``[1, num_tasks]`` per molecule: 1.0 active, 0.0 inactive, NaN missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from gsrl.models.encoder import MoleculeEncoder
from gsrl.pretraining.base import Metrics, PretrainingStrategy


@dataclass
class SupervisedSettings:
    num_tasks: int = 0  # label columns; must be set

    def validate(self) -> None:
        if self.num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {self.num_tasks}")


class SupervisedPretraining(PretrainingStrategy):
    name = "supervised"
    settings_type = SupervisedSettings

    def __init__(self, encoder: MoleculeEncoder, settings: SupervisedSettings | None = None) -> None:
        super().__init__(encoder)
        self.settings = settings or SupervisedSettings()
        self.settings.validate()
        self.task_head = nn.Linear(encoder.output_dim, self.settings.num_tasks)

    def prepare(self, data: Data, rng: np.random.Generator) -> Data:
        """Checks the label width and stores ``y`` as float ``[1, num_tasks]`` so batches stack it."""
        prepared = data.clone()
        labels = data.y.to(torch.float32).reshape(1, -1)
        if labels.size(1) != self.settings.num_tasks:
            raise ValueError(f"molecule has {labels.size(1)} labels, expected num_tasks={self.settings.num_tasks}")
        prepared.y = labels
        return prepared

    def loss(self, batch: Batch) -> tuple[Tensor, Metrics]:
        graphs = self.encoder(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        logits = self.task_head(graphs)
        labelled = ~torch.isnan(batch.y)
        targets = torch.nan_to_num(batch.y)
        losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        num_labelled = labelled.sum()
        loss = losses.masked_fill(~labelled, 0.0).sum() / num_labelled.clamp(min=1)
        correct = ((logits > 0) == (targets > 0.5)) & labelled
        return loss, {
            "loss": loss.item(),
            "accuracy": (correct.sum() / num_labelled.clamp(min=1)).item(),
            "labelled": float(num_labelled.item()),
        }
