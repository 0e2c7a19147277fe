"""The graph features' vocabulary (Hu et al. 2020): table sizes, reserved rows, and the version that
keys processed caches. Kept apart from `featurize`, which needs RDKit, so that a machine without
RDKit can train from a processed cache.
"""

# Bump whenever the produced features change, so that processed caches are rebuilt.
FEATURIZER_VERSION: str = "hu2020-v1"

NUM_ATOM_TYPES = 120
NUM_CHIRALITY_TAGS = 3
NUM_BOND_TYPES = 6
NUM_BOND_DIRECTIONS = 3
SELF_LOOP_BOND_TYPE = 4
MASK_BOND_TYPE = 5
MASK_ATOM_TYPE = 119

# Row used for atoms outside atomic numbers 1..118 (dummy atoms, query atoms).
UNKNOWN_ATOM_TYPE = 118
MAX_ATOMIC_NUMBER = 118
