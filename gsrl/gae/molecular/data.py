"""Corpora for the molecular VGAE: dense molecule tensors with QED, logP and SAS, in the sharded corpus cache.

A shard stores, for every representable molecule of its rows, the atom classes ``[N]`` and the bond
classes of the slot pairs i < j ``[P]`` (both uint8), its properties and its canonical SMILES (for
novelty). Unparsable SMILES are counted as failed; parsable molecules that the model cannot represent
(more than ``max_atoms`` heavy atoms, an atom token outside the vocabulary) are counted as skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import QED, Crippen, RDConfig
from torch import Tensor
from torch_geometric.data import Data

from gsrl.data.corpora import CorpusManifest, FeaturizedShard, shard_file
from gsrl.data.featurize import parse_smiles
from gsrl.data.smiles_graphs import ParseReport
from gsrl.gae.molecular.model import upper_pairs
from gsrl.gae.molecular.molecules import AtomVocabulary, canonical_smiles, to_tensors

__all__ = ["PROPERTIES", "MolecularCorpus", "MolecularFeaturizer", "collate_molecules", "load_corpus",
           "load_molecular_shards", "molecular_properties"]

PROPERTIES = ("qed", "logp", "sas")
MAX_FAILED_EXAMPLES = 10


def _sa_scorer():
    """RDKit's contributed synthetic-accessibility scorer (Ertl & Schuffenhauer 2009)."""
    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer

    return sascorer


def molecular_properties(molecule: Chem.Mol) -> tuple[float, float, float]:
    """(QED, Crippen logP, SA score) of a sanitized molecule."""
    return QED.qed(molecule), Crippen.MolLogP(molecule), _sa_scorer().calculateScore(molecule)


class MolecularFeaturizer:
    """SMILES → the VGAE's tensors under a fixed atom vocabulary and atom budget."""

    def __init__(self, vocabulary: AtomVocabulary, max_atoms: int) -> None:
        self.vocabulary, self.max_atoms = vocabulary, max_atoms
        key = json.dumps({"tokens": vocabulary.to_list(), "max_atoms": max_atoms, "format": 1})
        self.version = "vgae-" + hashlib.sha256(key.encode()).hexdigest()[:12]
        self._rows, self._columns = upper_pairs(max_atoms)

    def __call__(self, smiles: Sequence[str], rows: Sequence[int], source_file: str) -> FeaturizedShard:
        atoms, bonds, properties, canonical = [], [], [], []
        kept = np.zeros(len(smiles), dtype=bool)
        failed: list[tuple[int, str]] = []
        skipped = 0
        for i, (text, row) in enumerate(zip(smiles, rows)):
            molecule = parse_smiles(text)
            if molecule is None or molecule.GetNumAtoms() == 0:
                failed.append((row, text))
                continue
            tensors = to_tensors(molecule, self.vocabulary, self.max_atoms)
            if tensors is None:
                skipped += 1
                continue
            atoms.append(tensors.atoms.to(torch.uint8))
            bonds.append(tensors.bonds[self._rows, self._columns].to(torch.uint8))
            properties.append(molecular_properties(molecule))
            canonical.append(canonical_smiles(molecule))
            kept[i] = True
        pairs = self._rows.numel()
        tensors = {
            "atoms": torch.stack(atoms) if atoms else torch.zeros(0, self.max_atoms, dtype=torch.uint8),
            "bonds": torch.stack(bonds) if bonds else torch.zeros(0, pairs, dtype=torch.uint8),
            "properties": torch.tensor(properties, dtype=torch.float32).reshape(-1, len(PROPERTIES)),
            "smiles": canonical,
        }
        parse = ParseReport(source_file, len(smiles), len(smiles) - len(failed), len(failed),
                            failed[:MAX_FAILED_EXAMPLES])
        return FeaturizedShard(tensors, kept, parse, skipped)


@dataclass
class MolecularCorpus:
    atoms: Tensor  # uint8 [M, N]
    bonds: Tensor  # uint8 [M, P]
    properties: Tensor  # float32 [M, len(PROPERTIES)]
    smiles: list[str]

    def __len__(self) -> int:
        return self.atoms.size(0)

    def subset(self, ids: Tensor | np.ndarray) -> MolecularCorpus:
        ids = torch.as_tensor(ids, dtype=torch.long)
        return MolecularCorpus(self.atoms[ids], self.bonds[ids], self.properties[ids],
                               [self.smiles[i] for i in ids.tolist()])


def load_molecular_shards(directory: Path, indices: Sequence[int]) -> MolecularCorpus:
    parts = [torch.load(shard_file(directory, i), weights_only=True) for i in indices]
    return MolecularCorpus(torch.cat([p["atoms"] for p in parts]), torch.cat([p["bonds"] for p in parts]),
                           torch.cat([p["properties"] for p in parts]), [s for p in parts for s in p["smiles"]])


def load_corpus(directory: str | Path, manifest: CorpusManifest, indices: Sequence[int] | None = None
                ) -> MolecularCorpus:
    """The manifest's shards ``indices`` (all of them with None) from the cache folder ``directory``."""
    return load_molecular_shards(Path(directory), indices if indices is not None else range(len(manifest.shards)))


def collate_molecules(atoms: Tensor, bonds: Tensor, properties: Tensor) -> Data:
    """The molecules as one disjoint PyG graph: ``x`` atom classes, ``slot`` each atom's canonical position,
    ``edge_index`` / ``edge_type`` (bond class − 1) in both directions, plus the dense targets ``atoms [B, N]``,
    ``bonds [B, P]``, ``properties``.

    Canonical order fills the first n slots of a molecule with n atoms, so slot s of molecule b is node
    ``offset[b] + s``; edges only join slots of the same molecule.
    """
    atoms, bonds = atoms.long(), bonds.long()
    count, max_atoms = atoms.shape
    rows, columns = upper_pairs(max_atoms)
    sizes = (atoms > 0).sum(dim=1)
    offsets = torch.cumsum(sizes, 0) - sizes
    molecule, pair = bonds.nonzero(as_tuple=True)
    source = offsets[molecule] + rows[pair]
    target = offsets[molecule] + columns[pair]
    kinds = bonds[molecule, pair] - 1
    return Data(
        x=atoms[atoms > 0],
        slot=torch.arange(int(sizes.sum())) - torch.repeat_interleave(offsets, sizes),
        edge_index=torch.stack([torch.cat([source, target]), torch.cat([target, source])]),
        edge_type=torch.cat([kinds, kinds]),
        batch=torch.repeat_interleave(torch.arange(count), sizes),
        atoms=atoms, bonds=bonds, properties=properties,
    )
