"""Hu et al. 2020 featurization on hand-checked molecules."""

from __future__ import annotations

import pytest
import torch

from gsrl.data import features
from gsrl.data.featurize import smiles_to_graph


def test_table_sizes_match_pretrained_embeddings() -> None:
    # Shapes of x_embedding1/2 and edge_embedding1/2 in the pretrain-gnns checkpoints.
    assert features.NUM_ATOM_TYPES == 120
    assert features.NUM_CHIRALITY_TAGS == 3
    assert features.NUM_BOND_TYPES == 6
    assert features.NUM_BOND_DIRECTIONS == 3
    assert (features.SELF_LOOP_BOND_TYPE, features.MASK_BOND_TYPE) == (4, 5)
    assert features.MASK_ATOM_TYPE == 119
    assert isinstance(features.FEATURIZER_VERSION, str) and features.FEATURIZER_VERSION


def test_benzene_stays_aromatic() -> None:
    g = smiles_to_graph("c1ccccc1")
    assert g.x.dtype == g.edge_index.dtype == g.edge_attr.dtype == torch.long
    assert g.x.tolist() == [[5, 0]] * 6  # carbon: Z=6 -> 5, no chirality
    assert g.edge_index.shape == (2, 12)
    assert g.edge_attr.tolist() == [[3, 0]] * 12  # aromatic, no direction


def test_each_bond_appears_in_both_directions() -> None:
    g = smiles_to_graph("CCO")
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert g.x[:, 0].tolist() == [5, 5, 7]  # C, C, O


def test_bond_types() -> None:
    assert smiles_to_graph("C=O").edge_attr[:, 0].tolist() == [1, 1]
    assert smiles_to_graph("C#N").edge_attr[:, 0].tolist() == [2, 2]


@pytest.mark.parametrize(("smiles", "tag"), [("C[C@@H](N)O", 1), ("C[C@H](N)O", 2)])
def test_tetrahedral_chirality(smiles: str, tag: int) -> None:
    g = smiles_to_graph(smiles)
    assert g.x[:, 1].tolist() == [0, tag, 0, 0]  # only the stereo centre carries a tag


def test_double_bond_directions() -> None:
    trans = smiles_to_graph("F/C=C/F")
    assert trans.edge_attr.tolist() == [[0, 1], [0, 1], [1, 0], [1, 0], [0, 1], [0, 1]]
    cis = smiles_to_graph("F/C=C\\F")
    assert cis.edge_attr[:, 1].tolist() == [1, 1, 0, 0, 2, 2]


def test_unknown_enum_values_fall_back_instead_of_crashing() -> None:
    dative = smiles_to_graph("[NH3]->[Cu]")  # BondType.DATIVE -> single
    assert dative.edge_attr.tolist() == [[0, 0], [0, 0]]
    assert dative.x[:, 0].tolist() == [6, 28]
    square_planar = smiles_to_graph("C[Pt@SP1](F)(Cl)Br")  # CHI_SQUAREPLANAR -> unspecified
    assert square_planar.x[:, 1].tolist() == [0] * 5
    dummy = smiles_to_graph("*C")  # atomic number 0 -> row 118, never the mask row
    assert dummy.x[:, 0].tolist() == [118, 5]


def test_heavy_element_index() -> None:
    assert smiles_to_graph("[U]").x.tolist() == [[91, 0]]


def test_molecule_without_bonds_has_empty_edges() -> None:
    g = smiles_to_graph("[Na+].[Cl-]")
    assert g.x.tolist() == [[10, 0], [16, 0]]
    assert g.edge_index.shape == (2, 0) and g.edge_attr.shape == (0, 2)
    assert g.edge_index.dtype == g.edge_attr.dtype == torch.long


@pytest.mark.parametrize("smiles", ["not a molecule", "C1CC", "", "[AlH3](O)(O)O"])
def test_unparsable_or_empty_gives_none(smiles: str) -> None:
    assert smiles_to_graph(smiles) is None
