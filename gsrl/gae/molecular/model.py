"""The molecular VGAE: a relational GCN encoder over typed bonds, one latent vector per molecule, a
decoder that emits a whole molecule (atom class per slot, bond class per slot pair) and a property head.

The encoder reads a molecule out in slot order: atom k of the canonical order fills slot k, so the
concatenation of the atoms' final states, slot by slot, is a readout that no renumbering of the input
changes, and unlike mean/max pooling it keeps which atom sits where. The decoder gives every atom slot
a vector (a learned slot embedding plus that slot's own linear projection of z), lets the slots attend
to each other (so a slot knows what its neighbours in the canonical order will be), then reads atom
classes off each slot and bond classes off each slot pair with one pair scorer shared by all pairs.

Why these two readouts: an autoencoder (no KL) reconstructing 1,000 ZINC molecules was, after 60
epochs, at 97 nats per molecule with pooling and one projection of z shared by all slots, 89 with the
slot-order readout alone, 42 with the per-slot projections alone, and 12 with both.

Loss per molecule = reconstruction (cross-entropy summed over every atom slot and every slot pair)
+ β · KL(q(z | G) ‖ N(0, I)) + λ · squared error of the standardised properties; averaged over the
batch. The reconstruction targets are each molecule's own dense tensors, so no target (and no
"negative" non-bond) ever pairs atoms of two different molecules in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import RGCNConv
from torch_geometric.utils import to_dense_batch

from gsrl.gae.molecular.molecules import BOND_TYPES

__all__ = ["LossTerms", "MolecularVGAE", "SlotDecoder", "gaussian_kl", "reconstruction_loss", "upper_pairs"]

BOND_CLASSES = len(BOND_TYPES)


def upper_pairs(max_atoms: int) -> tuple[Tensor, Tensor]:
    """Row and column slots of every unordered slot pair i < j, in a fixed order."""
    return torch.triu_indices(max_atoms, max_atoms, offset=1).unbind(0)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) ‖ N(0, I)) per row."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def reconstruction_loss(atom_logits: Tensor, bond_logits: Tensor, atoms: Tensor, bonds: Tensor) -> Tensor:
    """Cross-entropy summed over the atom slots ``[B, N]`` and the slot pairs ``[B, P]``, per molecule."""
    atom_term = F.cross_entropy(atom_logits.transpose(1, 2), atoms, reduction="none").sum(dim=1)
    bond_term = F.cross_entropy(bond_logits.transpose(1, 2), bonds, reduction="none").sum(dim=1)
    return atom_term + bond_term


@dataclass
class LossTerms:
    loss: Tensor  # what is minimised (batch mean)
    reconstruction: Tensor  # batch means of the unweighted terms
    kl: Tensor
    property_error: Tensor

    def scalars(self) -> dict[str, float]:
        return {"loss": self.loss.item(), "reconstruction": self.reconstruction.item(), "kl": self.kl.item(),
                "property_mse": self.property_error.item()}


class SlotDecoder(nn.Module):
    """z ``[B, latent]`` → atom logits ``[B, N, atom_classes]`` and bond logits ``[B, P, bond classes]``."""

    def __init__(self, latent: int, max_atoms: int, atom_classes: int, width: int, layers: int, heads: int,
                 pair_width: int) -> None:
        super().__init__()
        self.slots = nn.Parameter(torch.randn(max_atoms, width) * 0.02)
        self.from_latent = nn.Linear(latent, max_atoms * width)  # each slot its own projection of z
        block = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.mixer = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.atom_out = nn.Linear(width, atom_classes)
        # Pairs outnumber slots N / 2 to 1, so the pair scorer works on a narrower projection of the slots.
        self.to_pair = nn.Linear(width, pair_width)
        self.pair_out = nn.Sequential(nn.Linear(2 * pair_width, pair_width), nn.ReLU(),
                                      nn.Linear(pair_width, BOND_CLASSES))
        rows, columns = upper_pairs(max_atoms)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("columns", columns, persistent=False)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        h = self.mixer(self.slots + self.from_latent(z).view(z.size(0), *self.slots.shape))
        narrow = self.to_pair(h)
        first, second = narrow[:, self.rows], narrow[:, self.columns]
        return self.atom_out(h), self.pair_out(torch.cat([first + second, first * second], dim=-1))


class MolecularVGAE(nn.Module):
    def __init__(self, atom_classes: int, max_atoms: int, num_properties: int, hidden: int = 128,
                 latent: int = 56, encoder_layers: int = 3, decoder_width: int = 64, decoder_layers: int = 3,
                 decoder_heads: int = 4, decoder_pair_width: int = 32, property_hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(atom_classes, hidden)
        # The decoder writes atom k of a molecule into slot k of the canonical order; telling the encoder
        # each atom's slot lets z say what sits where without rediscovering the canonical ranking.
        self.embed_slot = nn.Embedding(max_atoms, hidden)
        self.convs = nn.ModuleList(RGCNConv(hidden, hidden, num_relations=BOND_CLASSES - 1)
                                   for _ in range(encoder_layers))
        self.max_atoms = max_atoms
        self.to_mu = nn.Linear(max_atoms * hidden, latent)
        self.to_logvar = nn.Linear(max_atoms * hidden, latent)
        self.decoder = SlotDecoder(latent, max_atoms, atom_classes, decoder_width, decoder_layers, decoder_heads,
                                   decoder_pair_width)
        self.property_head = nn.Sequential(nn.Linear(latent, property_hidden), nn.ReLU(),
                                           nn.Linear(property_hidden, num_properties))
        # Standardisation of the property targets (set from the training corpus, saved with the model).
        self.register_buffer("property_mean", torch.zeros(num_properties))
        self.register_buffer("property_std", torch.ones(num_properties))

    def encode(self, batch: Data) -> tuple[Tensor, Tensor]:
        """Latent mean and log-variance ``[B, latent]`` of each molecule (``collate_molecules``' batch)."""
        h = self.embed(batch.x) + self.embed_slot(batch.slot)
        for conv in self.convs:
            h = torch.relu(conv(h, batch.edge_index, batch.edge_type))
        # Canonical order fills the first n slots, so the dense layout puts atom k in slot k (empty slots: 0).
        slots, _ = to_dense_batch(h, batch.batch, max_num_nodes=self.max_atoms, batch_size=batch.atoms.size(0))
        readout = slots.flatten(1)
        return self.to_mu(readout), self.to_logvar(readout).clamp(-10.0, 10.0)

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Atom logits ``[B, N, atom_classes]`` and bond logits ``[B, P, bond classes]`` (P = pairs i < j)."""
        return self.decoder(z)

    def predict_properties(self, z: Tensor) -> Tensor:
        """Properties in their own units ``[B, num_properties]``."""
        return self.property_head(z) * self.property_std + self.property_mean

    def forward(self, batch: Data, kl_weight: float, property_weight: float) -> LossTerms:
        mu, logvar = self.encode(batch)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        atom_logits, bond_logits = self.decode(z)
        reconstruction = reconstruction_loss(atom_logits, bond_logits, batch.atoms, batch.bonds)
        kl = gaussian_kl(mu, logvar)
        standardised = (batch.properties - self.property_mean) / self.property_std
        property_error = (self.property_head(mu) - standardised).pow(2).sum(dim=1)
        loss = (reconstruction + kl_weight * kl + property_weight * property_error).mean()
        return LossTerms(loss, reconstruction.mean(), kl.mean(), property_error.mean())
