"""Episodes: subgraphs of the molecule–property graph around one target property.

An `EpisodeSpec` names every molecule and property of an episode plus a seed for its dropout
randomness, so the spec alone determines the computation: any worker can run it, a crashed
worker's specs can be re-run elsewhere, and a resumed run reproduces the same numbers.

Support rule for properties with few labelled molecules of a class (documented, warned once):
each class keeps at least one labelled molecule out of the support for the query set, so a
class with c <= K members contributes c - 1 molecules and the other class fills the support up
to 2K where it can. A property with fewer than two labelled molecules of either class cannot
form an episode and is excluded (`eligible_properties`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import IntEnum

import numpy as np
import torch
from torch_geometric.data import Batch

from gsrl import wire

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeSpec:
    """Everything that determines one episode; crosses process boundaries as msgpack."""

    dataset: str
    target: int
    support: tuple[int, ...]
    query: tuple[int, ...]
    auxiliary: tuple[int, ...] = ()
    context: tuple[int, ...] = ()  # unlabelled queries present during the test-time inner step
    seed: int = 0

    def to_msgpack(self) -> bytes:
        return wire.pack(asdict(self))

    @classmethod
    def from_msgpack(cls, payload: bytes) -> EpisodeSpec:
        fields = wire.unpack(payload)
        for key in ("support", "query", "auxiliary", "context"):
            fields[key] = tuple(fields[key])
        return cls(**fields)

    def __reduce__(self):
        """Pickle-based transports (Ray's object store) carry a spec as its msgpack bytes."""
        return (EpisodeSpec.from_msgpack, (self.to_msgpack(),))

    def without_auxiliary(self) -> EpisodeSpec:
        """The candidate-pool view of an episode: the target property only."""
        return EpisodeSpec(self.dataset, self.target, self.support, self.query, (), (), self.seed)


@dataclass(frozen=True)
class CandidatePool:
    """pool_size properties, each with two independently drawn episodes (a pair)."""

    properties: tuple[int, ...]
    pairs: tuple[tuple[EpisodeSpec, EpisodeSpec], ...]

    def flat_specs(self) -> list[EpisodeSpec]:
        return [spec for pair in self.pairs for spec in pair]


class RngStream(IntEnum):
    """Stream ids of `derive_rng`: every random draw of a run is keyed by its seed, its place in the run and
    its stream, so draws of different kinds never share a generator and a resumed run draws the same."""

    CANDIDATE_POOL = 1  # keys (seed, iteration, CANDIDATE_POOL): the scheduler's candidate pool
    POLICY = 2  # keys (seed, iteration, POLICY): the scheduler policy's action
    EVALUATION = 7_919  # keys (seed, EVALUATION, evaluation index, property, draw): evaluation support draws


def derive_rng(*keys: int) -> np.random.Generator:
    """A generator fixed by integer keys (run seed, iteration, slot...), independent of call order."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def derive_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


@dataclass
class EpisodeSampler:
    """Draws EpisodeSpecs for one few-shot dataset following GS-Meta's rules."""

    dataset_name: str
    class_members: dict[int, tuple[np.ndarray, np.ndarray]]  # property -> (inactive ids, active ids)
    train_properties: list[int]
    test_properties: list[int]
    shots: int
    train_queries: int
    eval_context_queries: int = 16
    _warned: set[int] = field(default_factory=set)

    @classmethod
    def for_dataset(cls, dataset, shots: int, train_queries: int, eval_context_queries: int = 16) -> EpisodeSampler:
        props = list(dataset.train_properties) + list(dataset.test_properties)
        members = {p: dataset.class_members(p) for p in props}
        return cls(dataset.name, members, list(dataset.train_properties), list(dataset.test_properties),
                   shots, train_queries, eval_context_queries)

    def eligible(self, prop: int) -> bool:
        negatives, positives = self.class_members[prop]
        return len(negatives) >= 2 and len(positives) >= 2

    def eligible_properties(self, props: Sequence[int]) -> list[int]:
        kept = [p for p in props if self.eligible(p)]
        for p in sorted(set(props) - set(kept)):
            if p not in self._warned:
                self._warned.add(p)
                warnings.warn(f"{self.dataset_name}: property {p} has fewer than two labelled molecules of a "
                              "class and is excluded from episodes", stacklevel=2)
        return kept

    def _support_counts(self, prop: int) -> tuple[int, int]:
        """Negatives and positives in the support, after the few-labelled-molecules rule."""
        n_neg, n_pos = (len(m) for m in self.class_members[prop])
        k = self.shots
        take_neg, take_pos = min(k, n_neg - 1), min(k, n_pos - 1)
        if take_neg < k or take_pos < k:
            spare_neg, spare_pos = n_neg - 1 - take_neg, n_pos - 1 - take_pos
            deficit_neg, deficit_pos = k - take_neg, k - take_pos
            take_pos += min(deficit_neg, spare_pos)
            take_neg += min(deficit_pos, spare_neg)
            if prop not in self._warned:
                self._warned.add(prop)
                warnings.warn(f"{self.dataset_name}: property {prop} has {n_neg} inactive / {n_pos} active "
                              f"labelled molecules; support uses {take_neg} / {take_pos} (K={k})", stacklevel=3)
        return take_neg, take_pos

    def _support(self, prop: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(support ids, remaining inactive ids, remaining active ids)."""
        negatives, positives = self.class_members[prop]
        take_neg, take_pos = self._support_counts(prop)
        neg_perm, pos_perm = rng.permutation(negatives), rng.permutation(positives)
        support = np.concatenate([neg_perm[:take_neg], pos_perm[:take_pos]])
        return support, neg_perm[take_neg:], pos_perm[take_pos:]

    def train_spec(self, prop: int, auxiliary: Sequence[int], rng: np.random.Generator) -> EpisodeSpec:
        """Support of 2K, M training queries with at least one molecule of each class."""
        support, rest_neg, rest_pos = self._support(prop, rng)
        first = [rest_neg[0], rest_pos[0]]
        remainder = np.concatenate([rest_neg[1:], rest_pos[1:]])
        extra = rng.choice(remainder, size=min(self.train_queries - 2, len(remainder)), replace=False)
        query = np.concatenate([first, extra]).astype(np.int64)
        return EpisodeSpec(self.dataset_name, int(prop), _ids(support), _ids(query), tuple(int(a) for a in auxiliary),
                           (), derive_seed(rng))

    def eval_spec(self, prop: int, auxiliary: Sequence[int], rng: np.random.Generator) -> EpisodeSpec:
        """Support of 2K; query = every other labelled molecule; context = a few of those for the inner step."""
        support, rest_neg, rest_pos = self._support(prop, rng)
        query = np.sort(np.concatenate([rest_neg, rest_pos]))
        context = rng.choice(query, size=min(self.eval_context_queries, len(query)), replace=False)
        return EpisodeSpec(self.dataset_name, int(prop), _ids(support), _ids(query), tuple(int(a) for a in auxiliary),
                           _ids(context), derive_seed(rng))

    def auxiliary_for(self, prop: int, pool: Sequence[int], count: int | None, rng: np.random.Generator) -> list[int]:
        """Auxiliary properties: all of `pool` except the target, or `count` of them drawn at random."""
        candidates = [p for p in pool if p != prop]
        if count is None or count >= len(candidates):
            return candidates
        return sorted(int(p) for p in rng.choice(candidates, size=count, replace=False))

    def candidate_pool(self, pool_size: int, auxiliary_count: int | None, rng: np.random.Generator) -> CandidatePool:
        """GS-Meta's candidate pool: distinct training properties, two episodes each (same auxiliaries)."""
        eligible = self.eligible_properties(self.train_properties)
        chosen = rng.choice(eligible, size=min(pool_size, len(eligible)), replace=False)
        pairs = []
        for prop in chosen:
            aux = self.auxiliary_for(int(prop), self.train_properties, auxiliary_count, rng)
            pairs.append((self.train_spec(int(prop), aux, rng), self.train_spec(int(prop), aux, rng)))
        return CandidatePool(tuple(int(p) for p in chosen), tuple(pairs))


def _ids(values: np.ndarray | Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


@dataclass
class EpisodeTensors:
    """An episode's graphs and labels, ready for the model. Label columns: [target, auxiliaries...]."""

    support: Batch
    query: Batch
    properties: torch.Tensor  # [T] property ids, target first
    support_labels: torch.Tensor  # [n_s, T]
    query_labels: torch.Tensor  # [n_q, T]
    context: Batch | None = None
    context_labels: torch.Tensor | None = None


def episode_tensors(spec: EpisodeSpec, dataset, device: torch.device | str = "cpu",
                    include_query: bool = True) -> EpisodeTensors:
    """Collate the molecules of `spec` and slice their labels to the episode's property columns."""
    properties = torch.tensor((spec.target,) + spec.auxiliary, dtype=torch.long)

    def part(ids: Sequence[int]) -> tuple[Batch, torch.Tensor]:
        rows = dataset.labels[torch.tensor(ids, dtype=torch.long)][:, properties]
        return dataset.graphs.collate_ids(ids).to(device), rows.to(device)

    support, support_labels = part(spec.support)
    query, query_labels = part(spec.query) if include_query else (None, None)
    context, context_labels = part(spec.context) if spec.context else (None, None)
    return EpisodeTensors(support, query, properties.to(device), support_labels, query_labels, context,
                          context_labels)
