"""From the molecular VGAE's outputs to molecules, and how good the molecules are.

Two decoders read the same logits. The raw one takes every argmax (atom class per slot, bond class per
pair) and asks RDKit; it shows what the network itself learned. The valence-aware one places the
decoder's expected number of bonds, most probable pairs first, each only while both atoms have valence
left (the highest valence of the token's isoelectronic neutral element), then joins fragments by the
most probable bonds that still fit and keeps the largest fragment if some cannot be joined, so what it
returns always sanitizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem
from scipy.stats import wasserstein_distance
from torch import Tensor

from gsrl.gae.molecular.data import PROPERTIES, molecular_properties
from gsrl.gae.molecular.model import upper_pairs
from gsrl.gae.molecular.molecules import AtomVocabulary, canonical_smiles, to_molecule

__all__ = ["GenerationReport", "decode_raw", "decode_valence_aware", "evaluate_samples"]


def decode_raw(atom_logits: Tensor, bond_logits: Tensor, vocabulary: AtomVocabulary) -> list[Chem.Mol | None]:
    """Argmax decoding; None where RDKit rejects the result or it is not one connected molecule."""
    rows, columns = upper_pairs(atom_logits.size(1))
    atoms, bonds = atom_logits.argmax(-1), bond_logits.argmax(-1)
    molecules = []
    for b in range(atoms.size(0)):
        present = bonds[b].nonzero().flatten().tolist()
        triples = [(int(rows[p]), int(columns[p]), int(bonds[b, p])) for p in present]
        molecule = to_molecule(atoms[b].tolist(), triples, vocabulary)
        connected = molecule is not None and molecule.GetNumAtoms() > 0 and len(Chem.GetMolFrags(molecule)) == 1
        molecules.append(molecule if connected else None)
    return molecules


class _Fragments:
    """Union-find over atom slots."""

    def __init__(self, slots: list[int]) -> None:
        self.parent = {s: s for s in slots}

    def find(self, slot: int) -> int:
        while self.parent[slot] != slot:
            self.parent[slot] = self.parent[self.parent[slot]]
            slot = self.parent[slot]
        return slot

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _decode_one(atom_probs: np.ndarray, bond_probs: np.ndarray, rows: np.ndarray, columns: np.ndarray,
                vocabulary: AtomVocabulary) -> Chem.Mol | None:
    atoms = atom_probs.argmax(-1)
    if not atoms.any():  # at least one atom: the slot most confident about a real atom
        slot = int(atom_probs[:, 1:].max(-1).argmax())
        atoms[slot] = int(atom_probs[slot, 1:].argmax()) + 1
    slots = [int(s) for s in np.flatnonzero(atoms)]
    capacity = {s: vocabulary.max_valence(int(atoms[s])) for s in slots}
    live = atoms[rows].astype(bool) & atoms[columns].astype(bool)
    candidates = np.flatnonzero(live)
    fragments = _Fragments(slots)
    chosen: list[tuple[int, int, int]] = []

    def place(pair: int, orders: list[int]) -> bool:
        i, j = int(rows[pair]), int(columns[pair])
        for order in orders:
            if capacity[i] >= order and capacity[j] >= order:
                capacity[i] -= order
                capacity[j] -= order
                chosen.append((i, j, order))
                fragments.join(i, j)
                return True
        return False

    # 1. As many bonds as the decoder expects (K = the sum of P(bond) over the live pairs): the K most
    #    probable pairs, most probable first; an order that does not fit falls back to a lower one.
    #    Argmax alone keeps only pairs with P(bond) > P(none), and so drops ring closures, which the
    #    decoder spreads over several candidate pairs (on held-out ZINC: 20.8 bonds per molecule against
    #    25.5 true and 24.9 expected; 0.3 rings per decoded molecule).
    bond_mass = bond_probs[candidates, 1:].sum(-1)
    expected = int(round(float(bond_mass.sum())))
    for pair in candidates[np.argsort(-bond_mass, kind="stable")[:expected]]:
        best = int(bond_probs[pair, 1:].argmax()) + 1
        place(pair, list(range(best, 0, -1)))
    # 2. Join fragments through the pairs with the highest bond probability that still fit.
    used = {(i, j) for i, j, _ in chosen}
    joining = [p for p in candidates if (int(rows[p]), int(columns[p])) not in used]
    for pair in sorted(joining, key=lambda p: -bond_probs[p, 1:].sum()):
        if len({fragments.find(s) for s in slots}) == 1:
            break
        if fragments.find(int(rows[pair])) != fragments.find(int(columns[pair])):
            place(pair, [1])
    molecule = to_molecule(atoms.tolist(), chosen, vocabulary)
    if molecule is None:  # not expected: every placed bond fits both atoms' valence
        return None
    pieces = Chem.GetMolFrags(molecule, asMols=True, sanitizeFrags=True)
    return max(pieces, key=lambda m: m.GetNumAtoms())


def decode_valence_aware(atom_logits: Tensor, bond_logits: Tensor,
                         vocabulary: AtomVocabulary) -> list[Chem.Mol | None]:
    rows, columns = (t.numpy() for t in upper_pairs(atom_logits.size(1)))
    atom_probs = torch.softmax(atom_logits.float(), -1).cpu().numpy()
    bond_probs = torch.softmax(bond_logits.float(), -1).cpu().numpy()
    return [_decode_one(atom_probs[b], bond_probs[b], rows, columns, vocabulary) for b in range(atom_probs.shape[0])]


@dataclass
class GenerationReport:
    samples: int
    validity_raw: float
    validity: float  # valence-aware decoding
    uniqueness: float  # unique canonical SMILES / valid (valence-aware)
    novelty: float  # unique molecules not in the training set / unique
    properties: dict[str, dict[str, float]]  # per property: generated and training mean / std, Wasserstein-1
    unique_smiles: list[str]


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "std": float(values.std())} if values.size else {"mean": None, "std": None}


def evaluate_samples(raw: list[Chem.Mol | None], decoded: list[Chem.Mol | None], training_smiles: set[str],
                     training_properties: np.ndarray) -> GenerationReport:
    """Validity (raw and valence-aware), uniqueness, novelty and property distributions of one batch of samples."""
    valid = [m for m in decoded if m is not None and m.GetNumAtoms() > 0]
    unique: dict[str, Chem.Mol] = {}
    for molecule in valid:
        unique.setdefault(canonical_smiles(molecule), molecule)
    novel = [s for s in unique if s not in training_smiles]
    generated = np.array([molecular_properties(m) for m in unique.values()], dtype=np.float64).reshape(-1, 3)
    properties = {}
    for k, name in enumerate(PROPERTIES):
        properties[name] = {"generated": _summary(generated[:, k]), "training": _summary(training_properties[:, k]),
                            "wasserstein": float(wasserstein_distance(generated[:, k], training_properties[:, k]))
                            if len(generated) else None}
    count = len(decoded)
    return GenerationReport(
        samples=count,
        validity_raw=sum(m is not None for m in raw) / count,
        validity=len(valid) / count,
        uniqueness=len(unique) / len(valid) if valid else 0.0,
        novelty=len(novel) / len(unique) if unique else 0.0,
        properties=properties,
        unique_smiles=list(unique),
    )
