"""Molecules as fixed-size tensors for the molecular VGAE, and back.

A molecule is kekulized (single, double and triple bonds only, so decoding never has to place
aromatic bonds) and its heavy atoms are put in RDKit's canonical SMILES output order, so the same
molecule always gives the same tensors and bonded atoms sit close together. Atoms are tokens
(element, formal charge) from a vocabulary built on the training corpus; hydrogens stay implicit and
RDKit restores them from valence. Stereochemistry is not modelled: SMILES are compared without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from rdkit import Chem, rdBase
from torch import Tensor

__all__ = ["BOND_TYPES", "AtomVocabulary", "MoleculeTensors", "canonical_smiles", "to_tensors", "to_molecule"]

BOND_TYPES = (None, Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE)  # index 0: no bond
_BOND_INDEX = {bond: i for i, bond in enumerate(BOND_TYPES) if bond is not None}
_PERIODIC_TABLE = Chem.GetPeriodicTable()
_HYPERVALENT = frozenset({"P", "S"})


def canonical_smiles(molecule: Chem.Mol) -> str:
    """Canonical SMILES without stereochemistry: the identity used for uniqueness and novelty."""
    return Chem.MolToSmiles(molecule, isomericSmiles=False)


@dataclass(frozen=True)
class AtomVocabulary:
    """Atom tokens (element symbol, formal charge); index 0 of every atom slot means "no atom"."""

    tokens: tuple[tuple[str, int], ...]

    @property
    def size(self) -> int:
        """Classes per atom slot: the tokens plus "no atom"."""
        return len(self.tokens) + 1

    def index(self, token: tuple[str, int]) -> int | None:
        try:
            return self.tokens.index(token) + 1
        except ValueError:
            return None

    def max_valence(self, index: int) -> int:
        """Most bonds (by order) the token may carry: the valence of its isoelectronic neutral element, the
        highest one for P and S (phosphates, sulfonyls), the lowest otherwise (RDKit's clean-up would turn a
        hypervalent halogen into a charge-separated form that no longer fits its neighbours)."""
        symbol, charge = self.tokens[index - 1]
        neutral = _PERIODIC_TABLE.GetAtomicNumber(symbol) - charge
        valences = _PERIODIC_TABLE.GetValenceList(neutral)
        return max(valences) if _PERIODIC_TABLE.GetElementSymbol(neutral) in _HYPERVALENT else valences[0]

    def to_list(self) -> list[list]:
        return [[symbol, charge] for symbol, charge in self.tokens]

    @classmethod
    def from_list(cls, tokens: Sequence[Sequence]) -> AtomVocabulary:
        return cls(tuple((str(symbol), int(charge)) for symbol, charge in tokens))


@dataclass
class MoleculeTensors:
    """One molecule: atom classes ``[N]`` (0 = none) and bond classes ``[N, N]`` (symmetric, 0 = none)."""

    atoms: Tensor
    bonds: Tensor

    def edges(self) -> tuple[Tensor, Tensor]:
        """Directed bonded pairs ``[2, E]`` and their bond classes ``[E]`` (for the encoder)."""
        index = self.bonds.nonzero().t()
        return index, self.bonds[index[0], index[1]]


def to_tensors(molecule: Chem.Mol, vocabulary: AtomVocabulary, max_atoms: int) -> MoleculeTensors | None:
    """Kekulized, canonically ordered tensors; None when the molecule is too large, has an atom outside the
    vocabulary, or cannot be kekulized."""
    if molecule.GetNumAtoms() > max_atoms:
        return None
    molecule = Chem.Mol(molecule)
    try:
        Chem.Kekulize(molecule, clearAromaticFlags=True)
    except Chem.KekulizeException:
        return None
    Chem.MolToSmiles(molecule)  # sets the canonical output order
    order = list(molecule.GetProp("_smilesAtomOutputOrder").strip("[]").rstrip(",").split(","))
    position = {int(atom): slot for slot, atom in enumerate(order)}
    atoms = torch.zeros(max_atoms, dtype=torch.long)
    for atom in molecule.GetAtoms():
        index = vocabulary.index((atom.GetSymbol(), atom.GetFormalCharge()))
        if index is None:
            return None
        atoms[position[atom.GetIdx()]] = index
    bonds = torch.zeros(max_atoms, max_atoms, dtype=torch.long)
    for bond in molecule.GetBonds():
        i, j = position[bond.GetBeginAtomIdx()], position[bond.GetEndAtomIdx()]
        bonds[i, j] = bonds[j, i] = _BOND_INDEX[bond.GetBondType()]
    return MoleculeTensors(atoms, bonds)


def to_molecule(atoms: Sequence[int], bonds: Iterable[tuple[int, int, int]], vocabulary: AtomVocabulary,
                sanitize: bool = True) -> Chem.Mol | None:
    """Build a molecule from atom classes (0 slots skipped) and (slot i, slot j, bond class) triples.

    Returns None when RDKit rejects it (sanitization fails: a valence is exceeded, ...)."""
    editable = Chem.RWMol()
    atom_of_slot = {}
    for slot, index in enumerate(atoms):
        if index:
            symbol, charge = vocabulary.tokens[index - 1]
            atom = Chem.Atom(symbol)
            atom.SetFormalCharge(charge)
            atom_of_slot[slot] = editable.AddAtom(atom)
    for i, j, kind in bonds:
        if kind and i in atom_of_slot and j in atom_of_slot:
            editable.AddBond(atom_of_slot[i], atom_of_slot[j], BOND_TYPES[kind])
    molecule = editable.GetMol()
    if sanitize:
        try:
            with rdBase.BlockLogs():  # a rejected candidate is an expected outcome, not a log line
                Chem.SanitizeMol(molecule)
        except (Chem.AtomValenceException, Chem.KekulizeException, Chem.AtomKekulizeException, ValueError):
            return None
    return molecule
