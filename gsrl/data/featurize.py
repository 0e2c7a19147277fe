"""Molecule -> graph featurization of Hu et al. 2020, "Strategies for Pre-training GNNs".

The pretrained encoders of that paper (and GS-Meta, which builds on them) index two
embedding tables per atom and two per bond, so the features are small integer indices:

* atom ``x[:, 0]``: atomic number - 1 (0..117), row 118 for anything outside 1..118,
  row 119 is reserved for the attribute-masking token;
* atom ``x[:, 1]``: chirality tag (0 unspecified, 1 tetrahedral CW, 2 tetrahedral CCW);
* bond ``edge_attr[:, 0]``: bond type (0 single, 1 double, 2 triple, 3 aromatic), rows 4
  and 5 of the table are the self-loop and mask types that models add themselves;
* bond ``edge_attr[:, 1]``: bond direction (0 none, 1 end-up-right, 2 end-down-right).

Unknown RDKit enum values must never crash featurization. The rule is: a value the
tables have no row for falls back to index 0 of its table (chirality "unspecified",
bond type "single", direction "none"), except the atom type, which goes to the
dedicated row 118 (e.g. the dummy atom ``*``, atomic number 0). Examples of such
values: ``CHI_OTHER``, ``CHI_SQUAREPLANAR``, ``BondType.DATIVE``, ``BondDir.BEGINWEDGE``.

Aromatic bonds stay aromatic: molecules are never kekulized, as in the original code.
"""

from __future__ import annotations

import numpy as np
import torch
from rdkit import Chem, rdBase
from torch_geometric.data import Data

from gsrl.data.features import MAX_ATOMIC_NUMBER, UNKNOWN_ATOM_TYPE

_CHIRALITY_INDEX: dict[Chem.ChiralType, int] = {
    Chem.ChiralType.CHI_UNSPECIFIED: 0,
    Chem.ChiralType.CHI_TETRAHEDRAL_CW: 1,
    Chem.ChiralType.CHI_TETRAHEDRAL_CCW: 2,
}
_BOND_TYPE_INDEX: dict[Chem.BondType, int] = {
    Chem.BondType.SINGLE: 0,
    Chem.BondType.DOUBLE: 1,
    Chem.BondType.TRIPLE: 2,
    Chem.BondType.AROMATIC: 3,
}
_BOND_DIR_INDEX: dict[Chem.BondDir, int] = {
    Chem.BondDir.NONE: 0,
    Chem.BondDir.ENDUPRIGHT: 1,
    Chem.BondDir.ENDDOWNRIGHT: 2,
}


def atom_type_index(atomic_number: int) -> int:
    """Row of the atom-type table for an atomic number (118 when outside 1..118)."""
    if 1 <= atomic_number <= MAX_ATOMIC_NUMBER:
        return atomic_number - 1
    return UNKNOWN_ATOM_TYPE


def parse_smiles(smiles: str) -> Chem.Mol | None:
    """Parse with default sanitization; None (and no RDKit log noise) when it fails."""
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles)


def mol_to_arrays(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature arrays ``(x [n, 2], edge_index [2, 2m], edge_attr [2m, 2])`` as int64.

    Each bond appears twice, as (i -> j) directly followed by (j -> i), so a
    message-passing layer sees it from both ends.
    """
    # Index-based access: RDKit's Python atom/bond sequence wrappers are ~3x slower.
    atoms = (mol.GetAtomWithIdx(i) for i in range(mol.GetNumAtoms()))
    x = np.array(
        [(atom_type_index(a.GetAtomicNum()), _CHIRALITY_INDEX.get(a.GetChiralTag(), 0)) for a in atoms],
        dtype=np.int64,
    ).reshape(-1, 2)
    bonds = [
        (
            bond.GetBeginAtomIdx(),
            bond.GetEndAtomIdx(),
            _BOND_TYPE_INDEX.get(bond.GetBondType(), 0),
            _BOND_DIR_INDEX.get(bond.GetBondDir(), 0),
        )
        for bond in (mol.GetBondWithIdx(i) for i in range(mol.GetNumBonds()))
    ]
    table = np.array(bonds, dtype=np.int64).reshape(-1, 4)
    forward = table[:, [0, 1]]
    backward = table[:, [1, 0]]
    # Interleave the two directions: row 2k is bond k forward, row 2k+1 backward.
    edge_index = np.stack([forward, backward], axis=1).reshape(-1, 2).T
    edge_attr = np.repeat(table[:, 2:], 2, axis=0)
    return x, np.ascontiguousarray(edge_index), edge_attr


def smiles_to_graph(smiles: str) -> Data | None:
    """Featurize one SMILES; None when RDKit cannot parse it or it has no atoms."""
    mol = parse_smiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    x, edge_index, edge_attr = mol_to_arrays(mol)
    return Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(edge_index),
        edge_attr=torch.from_numpy(edge_attr),
    )
