"""Attribute masking: hide some atoms' types and predict them from their node embeddings.

Hu et al. mask ``int(num_atoms * mask_rate + 1)`` atoms per molecule (so at least one) with
``mask_rate = 0.15``, replace their features by ``[MASK_ATOM_TYPE, 0]`` and classify the original
atom type with a linear layer over the 119 real atom-type rows. With ``mask_edge`` the bonds that
touch a masked atom get ``[MASK_BOND_TYPE, 0]`` too, and their bond type is predicted from the sum of
the two end-node embeddings.

The true types live only in the target fields ``masked_atom_types`` / ``masked_bond_types``; the
input ``x`` / ``edge_attr`` hold nothing but the mask tokens at those positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from gsrl.data.features import MASK_ATOM_TYPE, MASK_BOND_TYPE, SELF_LOOP_BOND_TYPE
from gsrl.models.encoder import MoleculeEncoder
from gsrl.pretraining.base import Metrics, PretrainingStrategy

# Classes the heads choose from: every atom-type row but the mask token, every real bond type.
NUM_PREDICTED_ATOM_TYPES = MASK_ATOM_TYPE
NUM_PREDICTED_BOND_TYPES = SELF_LOOP_BOND_TYPE


@dataclass
class AttributeMaskingSettings:
    mask_rate: float = 0.15
    mask_edge: bool = False  # also mask, and predict, the bonds of masked atoms

    def validate(self) -> None:
        if not 0.0 < self.mask_rate <= 1.0:
            raise ValueError(f"mask_rate must be in (0, 1], got {self.mask_rate}")


def masked_atom_count(num_atoms: int, mask_rate: float) -> int:
    """``int(num_atoms * mask_rate + 1)`` as in the published code, capped at ``num_atoms``."""
    return min(num_atoms, int(num_atoms * mask_rate + 1))


class AttributeMasking(PretrainingStrategy):
    """Masked atom-type (and optionally bond-type) prediction.

    Prepared fields: ``masked_atoms`` (bool per node), ``masked_atom_types`` (target per masked
    atom, in node order) and, with ``mask_edge``, ``masked_bonds`` (bool per directed edge) and
    ``masked_bond_types`` (target per masked directed edge, in edge order).
    """

    name = "attribute_masking"
    settings_type = AttributeMaskingSettings

    def __init__(self, encoder: MoleculeEncoder, settings: AttributeMaskingSettings | None = None) -> None:
        super().__init__(encoder)
        self.settings = settings or AttributeMaskingSettings()
        self.settings.validate()
        self.atom_head = nn.Linear(encoder.output_dim, NUM_PREDICTED_ATOM_TYPES)
        self.bond_head = nn.Linear(encoder.output_dim, NUM_PREDICTED_BOND_TYPES) if self.settings.mask_edge else None

    def prepare(self, data: Data, rng: np.random.Generator) -> Data:
        num_atoms = data.num_nodes
        chosen = np.sort(rng.choice(num_atoms, masked_atom_count(num_atoms, self.settings.mask_rate), replace=False))
        masked_atoms = torch.zeros(num_atoms, dtype=torch.bool)
        masked_atoms[torch.from_numpy(chosen)] = True

        prepared = data.clone()
        prepared.masked_atoms = masked_atoms
        prepared.masked_atom_types = data.x[masked_atoms, 0].clone()
        prepared.x[masked_atoms] = torch.tensor([MASK_ATOM_TYPE, 0])
        if self.settings.mask_edge:
            source, target = data.edge_index
            masked_bonds = masked_atoms[source] | masked_atoms[target]
            prepared.masked_bonds = masked_bonds
            prepared.masked_bond_types = data.edge_attr[masked_bonds, 0].clone()
            prepared.edge_attr[masked_bonds] = torch.tensor([MASK_BOND_TYPE, 0])
        return prepared

    def loss(self, batch: Batch) -> tuple[Tensor, Metrics]:
        nodes = self.encoder.node_embeddings(batch.x, batch.edge_index, batch.edge_attr)
        atom_logits = self.atom_head(nodes[batch.masked_atoms])
        loss = F.cross_entropy(atom_logits, batch.masked_atom_types)
        metrics = {"atom_accuracy": _accuracy(atom_logits, batch.masked_atom_types)}
        if self.bond_head is not None and bool(batch.masked_bonds.any()):
            source, target = batch.edge_index[:, batch.masked_bonds]
            bond_logits = self.bond_head(nodes[source] + nodes[target])
            loss = loss + F.cross_entropy(bond_logits, batch.masked_bond_types)
            metrics["bond_accuracy"] = _accuracy(bond_logits, batch.masked_bond_types)
        metrics["loss"] = loss.item()
        return loss, metrics


def _accuracy(logits: Tensor, targets: Tensor) -> float:
    return (logits.argmax(dim=1) == targets).float().mean().item()
