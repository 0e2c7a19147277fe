"""Deterministic Bemis–Murcko scaffold split, the one Hu et al. 2020 fine-tune and test with.

Molecules are grouped by the SMILES of their Murcko scaffold (chirality included; every
acyclic molecule shares the empty scaffold). Groups are taken largest first, ties broken by
the larger first molecule index first, and each group goes whole to train while train stays
within 80% of the molecules, else to valid while train + valid stay within 90%, else to test.
So the big, common scaffolds are trained on and the test set holds rare scaffolds, which is
what makes the split harder than a random one, and no scaffold is ever in two parts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rdkit import rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold

from gsrl.data.featurize import parse_smiles

__all__ = ["ScaffoldSplit", "murcko_scaffold", "scaffold_split"]


@dataclass(frozen=True)
class ScaffoldSplit:
    """Molecule indices of the three parts, in the order the scaffold groups were assigned."""

    train: np.ndarray  # int64
    valid: np.ndarray
    test: np.ndarray


def murcko_scaffold(smiles: str, include_chirality: bool = True) -> str:
    """Canonical SMILES of the Murcko scaffold; '' for an acyclic molecule."""
    mol = parse_smiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    with rdBase.BlockLogs():  # silences "not removing hydrogen atom without neighbors"
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality)


def scaffold_split(
    smiles: Sequence[str], frac_train: float = 0.8, frac_valid: float = 0.1, frac_test: float = 0.1
) -> ScaffoldSplit:
    """Split molecules by scaffold into train / valid / test (see the module docstring)."""
    if not math.isclose(frac_train + frac_valid + frac_test, 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must sum to 1, got {frac_train} + {frac_valid} + {frac_test}")
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(smiles):
        groups.setdefault(murcko_scaffold(s), []).append(i)  # indices ascend within a group
    ordered = sorted(groups.values(), key=lambda members: (len(members), members[0]), reverse=True)

    train_cutoff = frac_train * len(smiles)
    valid_cutoff = (frac_train + frac_valid) * len(smiles)
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for members in ordered:
        if len(train) + len(members) <= train_cutoff:
            train.extend(members)
        elif len(train) + len(valid) + len(members) <= valid_cutoff:
            valid.extend(members)
        else:
            test.extend(members)
    return ScaffoldSplit(*(np.array(part, dtype=np.int64) for part in (train, valid, test)))
