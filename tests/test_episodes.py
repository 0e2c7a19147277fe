"""Episode specs on real SIDER: support/query rules, determinism, candidate pools, tensors, small classes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gsrl.data.datasets import FewShotDataset, load_fewshot_dataset
from gsrl.data.episodes import (
    CandidatePool,
    EpisodeSampler,
    EpisodeSpec,
    derive_rng,
    derive_seed,
    episode_tensors,
)
from gsrl.runtime import load_dataset

K, M, CONTEXT = 10, 16, 16


@pytest.fixture(scope="module")
def sider(data_root: Path, cache_dir: Path) -> FewShotDataset:
    return load_fewshot_dataset("sider", data_root, cache_dir)


@pytest.fixture(scope="module")
def sampler(sider: FewShotDataset) -> EpisodeSampler:
    return EpisodeSampler.for_dataset(sider, shots=K, train_queries=M, eval_context_queries=CONTEXT)


def target_labels(dataset: FewShotDataset, ids, prop: int) -> np.ndarray:
    return dataset.labels[torch.tensor(ids, dtype=torch.long), prop].numpy()


def synthetic(members: dict[int, tuple[int, int]], shots: int = K, train_queries: int = M,
              train: list[int] | None = None) -> EpisodeSampler:
    """A sampler over made-up molecules: property -> (inactive count, active count), ids disjoint per class."""
    class_members = {}
    for prop, (n_neg, n_pos) in members.items():
        class_members[prop] = (np.arange(n_neg, dtype=np.int64), np.arange(n_neg, n_neg + n_pos, dtype=np.int64))
    props = list(members) if train is None else train
    return EpisodeSampler("synthetic", class_members, props, [], shots, train_queries, 4)


def split_by_class(sampler: EpisodeSampler, prop: int, ids) -> tuple[set[int], set[int]]:
    negatives, positives = (set(int(i) for i in m) for m in sampler.class_members[prop])
    ids = set(ids)
    return ids & negatives, ids & positives


# --------------------------------------------------------------------------- spec wire format


def test_spec_msgpack_round_trip() -> None:
    spec = EpisodeSpec("sider", 3, (5, 1, 9), (2, 7), (0, 4, 8), (7,), 123456789)
    restored = EpisodeSpec.from_msgpack(spec.to_msgpack())
    assert restored == spec
    assert isinstance(restored.support, tuple) and isinstance(restored.context, tuple)
    assert hash(restored) == hash(spec)


def test_sampled_specs_round_trip(sampler: EpisodeSampler) -> None:
    rng = derive_rng(0, 1)
    train = sampler.train_spec(0, [1, 2, 3], rng)
    evaluation = sampler.eval_spec(21, list(range(21)), rng)
    for spec in (train, evaluation):
        assert EpisodeSpec.from_msgpack(spec.to_msgpack()) == spec
        assert all(type(v) is int for v in spec.support + spec.query + spec.auxiliary + spec.context)


def test_without_auxiliary_keeps_molecules_and_seed() -> None:
    spec = EpisodeSpec("sider", 3, (5, 1), (2, 7), (0, 4), (7,), 99)
    bare = spec.without_auxiliary()
    assert bare == EpisodeSpec("sider", 3, (5, 1), (2, 7), (), (), 99)


def test_derive_rng_depends_only_on_keys() -> None:
    a = derive_rng(3, 4, 5).integers(0, 2**31, size=5)
    b = derive_rng(3, 4, 5).integers(0, 2**31, size=5)
    c = derive_rng(3, 5, 4).integers(0, 2**31, size=5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    seed = derive_seed(derive_rng(1))
    assert 0 <= seed < 2**31 - 1 and seed == derive_seed(derive_rng(1))


# --------------------------------------------------------------------------- real SIDER episodes


def test_sider_sampler_layout(sampler: EpisodeSampler, sider: FewShotDataset) -> None:
    assert sampler.train_properties == list(range(21))
    assert sampler.test_properties == list(range(21, 27))
    assert sampler.eligible_properties(list(range(27))) == list(range(27))
    for prop in range(27):
        negatives, positives = sampler.class_members[prop]
        assert np.array_equal(negatives, np.flatnonzero(sider.labels[:, prop].numpy() == 0))
        assert np.array_equal(positives, np.flatnonzero(sider.labels[:, prop].numpy() == 1))


@pytest.mark.parametrize("prop", list(range(21)))
def test_train_spec_rules(sampler: EpisodeSampler, sider: FewShotDataset, prop: int) -> None:
    aux = [p for p in range(21) if p != prop]
    spec = sampler.train_spec(prop, aux, derive_rng(7, prop))
    assert spec.dataset == "sider" and spec.target == prop and spec.auxiliary == tuple(aux)
    assert spec.context == ()
    support = target_labels(sider, spec.support, prop)
    assert len(spec.support) == 2 * K == len(set(spec.support))
    assert (support == 1).sum() == K and (support == 0).sum() == K
    query = target_labels(sider, spec.query, prop)
    assert len(spec.query) == M == len(set(spec.query))
    assert not np.isnan(query).any() and set(query.tolist()) == {0.0, 1.0}
    assert not set(spec.support) & set(spec.query)


def test_train_spec_query_is_both_classes_even_for_rare_actives(sampler: EpisodeSampler,
                                                                 sider: FewShotDataset) -> None:
    """Property 2 has 22 actives in 1427 molecules: a random query would often lack one; the rule forbids it."""
    for draw in range(50):
        spec = sampler.train_spec(2, [], derive_rng(11, draw))
        assert set(target_labels(sider, spec.query, 2).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("prop", list(range(21, 27)))
def test_eval_spec_rules(sampler: EpisodeSampler, sider: FewShotDataset, prop: int) -> None:
    spec = sampler.eval_spec(prop, list(range(21)), derive_rng(5, prop))
    support = target_labels(sider, spec.support, prop)
    assert (support == 1).sum() == K and (support == 0).sum() == K
    labelled = set(np.flatnonzero(~torch.isnan(sider.labels[:, prop]).numpy()).tolist())
    assert set(spec.query) == labelled - set(spec.support)
    assert list(spec.query) == sorted(spec.query)
    assert len(spec.query) == len(labelled) - 2 * K
    assert len(spec.context) == CONTEXT == len(set(spec.context))
    assert set(spec.context) <= set(spec.query)
    assert spec.auxiliary == tuple(range(21))


def test_same_seed_same_specs_different_seed_different(sampler: EpisodeSampler) -> None:
    def draw(seed: int):
        rng = derive_rng(seed)
        return (sampler.train_spec(4, [0, 1], rng), sampler.eval_spec(22, [0], rng),
                sampler.candidate_pool(10, None, rng))

    assert draw(1) == draw(1)
    first, second = draw(1), draw(2)
    assert first[0].support != second[0].support and first[0].seed != second[0].seed
    assert first[1].support != second[1].support
    assert first[2] != second[2]


def test_spec_seed_is_drawn_from_the_rng(sampler: EpisodeSampler) -> None:
    a = sampler.train_spec(0, [], derive_rng(1))
    b = sampler.train_spec(0, [], derive_rng(1))
    assert a.seed == b.seed
    rng = derive_rng(1)
    first, second = sampler.train_spec(0, [], rng), sampler.train_spec(0, [], rng)
    assert first.seed != second.seed


# --------------------------------------------------------------------------- candidate pool


def test_candidate_pool_structure(sampler: EpisodeSampler) -> None:
    pool = sampler.candidate_pool(10, None, derive_rng(0, 0, 1))
    assert isinstance(pool, CandidatePool)
    assert len(pool.properties) == 10 == len(set(pool.properties))
    assert set(pool.properties) <= set(range(21))
    assert len(pool.pairs) == 10
    for prop, (a, b) in zip(pool.properties, pool.pairs):
        assert a.target == b.target == prop
        assert a.auxiliary == b.auxiliary == tuple(p for p in range(21) if p != prop)
        assert a.support != b.support  # two independent draws
        assert a.seed != b.seed
    flat = pool.flat_specs()
    assert len(flat) == 20
    assert flat[0::2] == [pair[0] for pair in pool.pairs] and flat[1::2] == [pair[1] for pair in pool.pairs]


def test_candidate_pool_capped_by_training_properties(sampler: EpisodeSampler) -> None:
    pool = sampler.candidate_pool(100, None, derive_rng(3))
    assert sorted(pool.properties) == list(range(21))


def test_candidate_pool_with_sampled_auxiliaries(sampler: EpisodeSampler) -> None:
    pool = sampler.candidate_pool(8, 3, derive_rng(9))
    seen = set()
    for prop, (a, b) in zip(pool.properties, pool.pairs):
        assert a.auxiliary == b.auxiliary
        assert len(a.auxiliary) == 3 == len(set(a.auxiliary))
        assert prop not in a.auxiliary and set(a.auxiliary) <= set(range(21))
        assert list(a.auxiliary) == sorted(a.auxiliary)
        seen.add(a.auxiliary)
    assert len(seen) > 1  # drawn per property, not one fixed set


def test_auxiliary_for(sampler: EpisodeSampler) -> None:
    rng = derive_rng(0)
    assert sampler.auxiliary_for(3, range(6), None, rng) == [0, 1, 2, 4, 5]
    assert sampler.auxiliary_for(3, range(6), 5, rng) == [0, 1, 2, 4, 5]  # count >= candidates: all
    assert sampler.auxiliary_for(3, range(6), 0, rng) == []
    assert sampler.auxiliary_for(25, range(21), None, rng) == list(range(21))  # test target: every train prop


def test_tiny_config_episode_settings(tiny_config) -> None:
    config = tiny_config()
    dataset = load_dataset(config)
    ep = config.episode
    sampler = EpisodeSampler.for_dataset(dataset, ep.shots, ep.train_queries, ep.eval_context_queries)
    pool = sampler.candidate_pool(config.scheduler.pool_size, ep.train_auxiliary, derive_rng(config.run.seed))
    assert len(pool.pairs) == config.scheduler.pool_size == 3
    for spec in pool.flat_specs():
        assert len(spec.support) == 2 * ep.shots == 4
        assert len(spec.query) == ep.train_queries == 4
        assert len(spec.auxiliary) == len(dataset.train_properties) - 1


# --------------------------------------------------------------------------- few labelled molecules


def test_few_inactives_filled_with_actives() -> None:
    sampler = synthetic({0: (3, 50)})
    with pytest.warns(UserWarning, match=r"3 inactive / 50 active.*support uses 2 / 18"):
        spec = sampler.train_spec(0, [], derive_rng(0))
    negatives, positives = split_by_class(sampler, 0, spec.support)
    assert (len(negatives), len(positives)) == (2, 18)
    q_neg, q_pos = split_by_class(sampler, 0, spec.query)
    assert len(q_neg) == 1 and len(q_pos) == M - 1
    assert not set(spec.support) & set(spec.query)


def test_few_actives_filled_with_inactives() -> None:
    sampler = synthetic({0: (50, 3)})
    with pytest.warns(UserWarning, match="support uses 18 / 2"):
        spec = sampler.eval_spec(0, [], derive_rng(0))
    negatives, positives = split_by_class(sampler, 0, spec.support)
    assert (len(negatives), len(positives)) == (18, 2)
    q_neg, q_pos = split_by_class(sampler, 0, spec.query)
    assert (len(q_neg), len(q_pos)) == (32, 1)  # every labelled non-support molecule


def test_both_classes_small() -> None:
    sampler = synthetic({0: (3, 4)})
    with pytest.warns(UserWarning):
        spec = sampler.train_spec(0, [], derive_rng(0))
    negatives, positives = split_by_class(sampler, 0, spec.support)
    assert (len(negatives), len(positives)) == (2, 3)
    q_neg, q_pos = split_by_class(sampler, 0, spec.query)
    assert (len(q_neg), len(q_pos)) == (1, 1)


def test_exactly_two_actives_is_eligible() -> None:
    sampler = synthetic({0: (40, 2)})
    assert sampler.eligible_properties([0]) == [0]
    with pytest.warns(UserWarning):
        spec = sampler.train_spec(0, [], derive_rng(0))
    assert [len(s) for s in split_by_class(sampler, 0, spec.support)] == [19, 1]
    assert [len(s) for s in split_by_class(sampler, 0, spec.query)][1] == 1


def test_small_class_warning_is_given_once_per_property() -> None:
    sampler = synthetic({0: (3, 50), 1: (50, 3)})
    with pytest.warns(UserWarning):
        sampler.train_spec(0, [], derive_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(5):
            sampler.train_spec(0, [], derive_rng(seed))
    with pytest.warns(UserWarning, match="property 1"):
        sampler.train_spec(1, [], derive_rng(0))


def test_enough_molecules_no_warning() -> None:
    sampler = synthetic({0: (11, 11)})  # K + 1 of each class: the full K fits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = sampler.train_spec(0, [], derive_rng(0))
    assert [len(s) for s in split_by_class(sampler, 0, spec.support)] == [K, K]
    assert [len(s) for s in split_by_class(sampler, 0, spec.query)] == [1, 1]


def test_one_shot_minimal_property() -> None:
    sampler = synthetic({0: (2, 2)}, shots=1, train_queries=16)
    spec = sampler.train_spec(0, [], derive_rng(0))
    assert [len(s) for s in split_by_class(sampler, 0, spec.support)] == [1, 1]
    assert [len(s) for s in split_by_class(sampler, 0, spec.query)] == [1, 1]


@pytest.mark.parametrize("counts", [(20, 1), (1, 20), (20, 0), (0, 0)])
def test_property_with_too_few_molecules_is_excluded(counts: tuple[int, int]) -> None:
    sampler = synthetic({0: counts, 1: (30, 30), 2: (30, 30)})
    with pytest.warns(UserWarning, match="property 0 has fewer than two"):
        kept = sampler.eligible_properties([0, 1, 2])
    assert kept == [1, 2]
    assert sampler.eligible_properties([0, 1, 2]) == [1, 2]  # warned once, still excluded
    for seed in range(20):
        pool = sampler.candidate_pool(5, None, derive_rng(seed))  # never crashes
        assert sorted(pool.properties) == [1, 2]
        for a, b in pool.pairs:
            assert a.target != 0 and b.target != 0


# --------------------------------------------------------------------------- tensors


def test_episode_tensors_shapes_and_label_columns(sampler: EpisodeSampler, sider: FewShotDataset) -> None:
    aux = (17, 3, 9)  # deliberately unsorted: columns follow the spec's order
    spec = sampler.train_spec(5, aux, derive_rng(2))
    tensors = episode_tensors(spec, sider)
    columns = [5, 17, 3, 9]
    assert tensors.properties.tolist() == columns
    assert tensors.properties.dtype == torch.long
    assert tensors.support.num_graphs == 2 * K and tensors.query.num_graphs == M
    assert tensors.support_labels.shape == (2 * K, 4) and tensors.query_labels.shape == (M, 4)
    support_ids = torch.tensor(spec.support)
    query_ids = torch.tensor(spec.query)
    assert torch.equal(tensors.support_labels, sider.labels[support_ids][:, columns])
    assert torch.equal(tensors.query_labels, sider.labels[query_ids][:, columns])
    assert torch.equal(tensors.support_labels[:, 0], sider.labels[support_ids, 5])
    assert tensors.context is None and tensors.context_labels is None
    node_counts = torch.bincount(tensors.support.batch, minlength=2 * K)
    assert node_counts.tolist() == [sider.graphs[i].num_nodes for i in spec.support]


def test_episode_tensors_eval_context_and_without_query(sampler: EpisodeSampler, sider: FewShotDataset) -> None:
    spec = sampler.eval_spec(23, [0, 1], derive_rng(4))
    tensors = episode_tensors(spec, sider)
    assert tensors.query.num_graphs == len(spec.query)
    assert tensors.context.num_graphs == CONTEXT
    assert torch.equal(tensors.context_labels, sider.labels[torch.tensor(spec.context)][:, [23, 0, 1]])
    bare = episode_tensors(spec.without_auxiliary(), sider, include_query=False)
    assert bare.query is None and bare.query_labels is None and bare.context is None
    assert bare.properties.tolist() == [23]
    assert bare.support_labels.shape == (2 * K, 1)
    assert torch.equal(bare.support_labels, tensors.support_labels[:, :1])
