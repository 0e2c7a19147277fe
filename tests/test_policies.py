"""Scheduler policies: exact Plackett-Luce log-probabilities, GS-Meta's selector, baselines, the registry."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch

from gsrl.config import ConfigError, SchedulerConfig
from gsrl.scheduling.loss_driven import HardestFirstPolicy, LearningProgressPolicy, ThompsonSamplingPolicy, UCBPolicy
from gsrl.scheduling.policies import (
    OPTIONAL_POLICIES,
    POLICIES,
    Decision,
    Feedback,
    GSMetaPolicy,
    StatelessPolicy,
    UniformPolicy,
    make_policy,
    plackett_luce_sample,
    valid_pairs,
)

DIM = 8


class MyPolicy(StatelessPolicy):
    """A user's own policy, referenced as "tests.test_policies:MyPolicy"."""

    learnable = False

    def __init__(self, config: SchedulerConfig, embedding_dim: int):
        self.config = config
        self.embedding_dim = embedding_dim

    def act(self, observation: dict, rng: np.random.Generator, iteration: int) -> Decision:
        return Decision(valid_pairs(observation)[: self.config.pairs])


def observation(pool: int, valid: int | None = None, properties=None, seed: int = 0, dim: int = DIM) -> dict:
    """An env-style observation: `valid` real pairs first, the rest zero padding with mask 0 and property -1."""
    valid = pool if valid is None else valid
    rng = np.random.default_rng(seed)
    embeddings = np.zeros((2 * pool, dim), dtype=np.float32)
    embeddings[: 2 * valid] = rng.standard_normal((2 * valid, dim)).astype(np.float32)
    mask = np.zeros(2 * pool, dtype=np.int8)
    mask[: 2 * valid] = 1
    props = np.full(pool, -1, dtype=np.int64)
    props[:valid] = np.arange(valid) + 100 if properties is None else properties
    return {"embeddings": embeddings, "mask": mask, "properties": props,
            "progress": np.array([0.25], dtype=np.float32)}


def pl_probability(weights: list[float], draw: tuple[int, ...]) -> float:
    """P(i_1..i_B) = prod_k w_{i_k} / (1 - sum_{j<k} w_{i_j}), by hand."""
    probability, used = 1.0, 0.0
    for index in draw:
        probability *= weights[index] / (1.0 - used)
        used += weights[index]
    return probability


# --------------------------------------------------------------------------- Plackett-Luce


def test_plackett_luce_ordered_draw_probabilities_sum_to_one() -> None:
    weights = [0.1, 0.2, 0.3, 0.4]
    draws = list(itertools.permutations(range(4), 2))
    assert len(draws) == 12
    assert sum(pl_probability(weights, d) for d in draws) == pytest.approx(1.0, abs=1e-12)
    assert sum(pl_probability(weights, d) for d in itertools.permutations(range(4), 4)) == pytest.approx(1.0)


def test_plackett_luce_log_prob_exact_and_frequencies_match() -> None:
    weights_list = [0.1, 0.2, 0.3, 0.4]
    weights = torch.tensor(weights_list, dtype=torch.float64)
    rng = np.random.default_rng(0)
    counts: Counter = Counter()
    log_probs: dict[tuple[int, ...], float] = {}
    n = 20_000
    for _ in range(n):
        picks, log_prob = plackett_luce_sample(weights, 2, rng)
        draw = tuple(int(i) for i in picks)
        assert len(set(draw)) == 2
        counts[draw] += 1
        if draw not in log_probs:
            log_probs[draw] = log_prob.item()
            assert math.exp(log_prob.item()) == pytest.approx(pl_probability(weights_list, draw), rel=1e-9)
    assert set(counts) == set(itertools.permutations(range(4), 2))  # every ordered draw occurs
    assert sum(math.exp(v) for v in log_probs.values()) == pytest.approx(1.0, abs=1e-9)
    for draw, count in counts.items():
        assert count / n == pytest.approx(math.exp(log_probs[draw]), abs=0.01)


def test_plackett_luce_log_prob_is_differentiable() -> None:
    logits = torch.tensor([0.3, -1.0, 0.5, 1.2], dtype=torch.float64, requires_grad=True)
    weights = torch.softmax(logits, dim=0)
    picks, log_prob = plackett_luce_sample(weights, 2, np.random.default_rng(3))
    log_prob.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # The gradient of the same formula written by hand.
    reference_logits = logits.detach().clone().requires_grad_(True)
    w = torch.softmax(reference_logits, dim=0)
    i, j = (int(p) for p in picks)
    (torch.log(w[i]) + torch.log(w[j]) - torch.log(1 - w[i])).backward()
    assert torch.allclose(logits.grad, reference_logits.grad)


def test_plackett_luce_same_rng_same_draw() -> None:
    weights = torch.tensor([0.25, 0.25, 0.25, 0.25])
    a, _ = plackett_luce_sample(weights, 3, np.random.default_rng(5))
    b, _ = plackett_luce_sample(weights, 3, np.random.default_rng(5))
    assert a.tolist() == b.tolist() and a.dtype == np.int64


# --------------------------------------------------------------------------- GS-Meta policy


def gsmeta(pairs: int = 3, **kwargs) -> GSMetaPolicy:
    torch.manual_seed(0)
    return GSMetaPolicy(SchedulerConfig(pairs=pairs, **kwargs), DIM)


def test_gsmeta_temperature_schedule() -> None:
    policy = gsmeta(temperature=1.0, temperature_step=500)
    assert [policy.temperature(i) for i in (0, 499, 500, 999, 1000, 1999)] == [1, 1, 2, 2, 3, 4]
    policy = gsmeta(temperature=0.5, temperature_step=100)
    assert policy.temperature(0) == 0.5 and policy.temperature(250) == 1.5


def test_gsmeta_act_returns_distinct_valid_pairs() -> None:
    policy = gsmeta(pairs=3)
    obs = observation(pool=6, valid=5)
    for seed in range(20):
        decision = policy.act(obs, np.random.default_rng(seed), iteration=0)
        assert len(decision.pairs) == 3 == len(set(decision.pairs.tolist()))
        assert set(decision.pairs.tolist()) <= set(range(5))  # pair 5 is padding
        assert decision.probabilities.shape == (6,)
        assert decision.probabilities[5] == 0.0
        assert decision.probabilities.sum() == pytest.approx(1.0, abs=1e-6)
        assert (decision.probabilities[:5] > 0).all()


def test_gsmeta_log_prob_is_plackett_luce_of_reported_probabilities() -> None:
    policy = gsmeta(pairs=3)
    decision = policy.act(observation(pool=5), np.random.default_rng(1), iteration=0)
    expected = pl_probability(decision.probabilities.tolist(), tuple(decision.pairs.tolist()))
    assert math.exp(decision.log_prob.item()) == pytest.approx(expected, rel=1e-4)
    p = decision.probabilities
    assert decision.entropy == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-5)


def test_gsmeta_pair_weights_are_sums_of_candidate_softmax() -> None:
    policy = gsmeta()
    obs = observation(pool=4, valid=3)
    iteration = 700  # tau = 2
    weights = policy.pair_weights(obs, iteration)
    candidates = torch.as_tensor(obs["embeddings"][:6])
    with torch.no_grad():
        probs = torch.softmax(policy.network(candidates) / 2.0, dim=0)
    assert torch.allclose(weights, probs.reshape(3, 2).sum(dim=1), atol=1e-6)


def test_gsmeta_selector_context_uses_mean_of_other_candidates() -> None:
    policy = gsmeta()
    embeddings = torch.randn(5, DIM, generator=torch.Generator().manual_seed(2))
    net = policy.network
    with torch.no_grad():
        expected = torch.stack([
            net.score(embeddings[i] + net.context(torch.cat([embeddings[:i], embeddings[i + 1:]]).mean(0)))
            for i in range(5)]).squeeze(-1)
        assert torch.allclose(net(embeddings), expected, atol=1e-6)
        assert (net(embeddings).abs() <= 1).all()  # tanh scores


def test_gsmeta_high_temperature_flattens_distribution() -> None:
    policy = gsmeta()
    obs = observation(pool=5)
    early = policy.pair_weights(obs, 0).detach()
    late = policy.pair_weights(obs, 500 * 10_000).detach()
    def entropy(weights: torch.Tensor) -> float:
        return float(-(weights * weights.log()).sum())

    assert entropy(late) > entropy(early)
    assert torch.allclose(late, torch.full((5,), 0.2), atol=1e-3)


def test_gsmeta_log_prob_backward_reaches_selector_parameters() -> None:
    policy = gsmeta(pairs=2)
    decision = policy.act(observation(pool=4), np.random.default_rng(0), iteration=3)
    assert decision.log_prob.requires_grad
    (-decision.log_prob).backward()
    for name, parameter in policy.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for p in policy.parameters()) > 0
    assert policy.learnable


def test_gsmeta_same_rng_same_decision() -> None:
    policy = gsmeta()
    obs = observation(pool=6)
    a = policy.act(obs, np.random.default_rng(4), 0)
    b = policy.act(obs, np.random.default_rng(4), 0)
    assert a.pairs.tolist() == b.pairs.tolist() and a.log_prob.item() == b.log_prob.item()


def test_gsmeta_more_pairs_requested_than_valid() -> None:
    policy = gsmeta(pairs=5)
    decision = policy.act(observation(pool=3), np.random.default_rng(0), iteration=0)
    assert sorted(decision.pairs.tolist()) == [0, 1, 2]


# --------------------------------------------------------------------------- uniform


def test_uniform_distinct_valid_and_roughly_uniform() -> None:
    policy = UniformPolicy(SchedulerConfig(pairs=2), DIM)
    obs = observation(pool=6, valid=5)
    rng = np.random.default_rng(0)
    counts = np.zeros(6)
    n = 5_000
    for _ in range(n):
        decision = policy.act(obs, rng, 0)
        picks = decision.pairs.tolist()
        assert len(picks) == 2 == len(set(picks)) and set(picks) <= set(range(5))
        counts[picks] += 1
    assert counts[5] == 0
    assert np.allclose(counts[:5] / n, 2 / 5, atol=0.03)
    assert decision.log_prob is None
    assert decision.probabilities.tolist() == [0.2] * 5 + [0.0]
    assert decision.entropy == pytest.approx(math.log(5))
    assert not policy.learnable


def test_uniform_caps_at_valid_pairs() -> None:
    policy = UniformPolicy(SchedulerConfig(pairs=5), DIM)
    decision = policy.act(observation(pool=4, valid=3), np.random.default_rng(0), 0)
    assert sorted(decision.pairs.tolist()) == [0, 1, 2]


# --------------------------------------------------------------------------- hardest first


def feedback(losses: dict[int, float]) -> Feedback:
    return Feedback(pool_properties=list(losses), pairs=list(range(len(losses))), reward=0.0, query_losses=losses)


def picked_properties(decision: Decision, obs: dict) -> list[int]:
    return [int(obs["properties"][i]) for i in decision.pairs]


def test_hardest_first_unseen_then_highest_loss() -> None:
    policy = HardestFirstPolicy(SchedulerConfig(pairs=2), DIM)
    obs = observation(pool=5, valid=4, properties=[7, 3, 9, 4])
    rng = np.random.default_rng(0)
    policy.observe(feedback({7: 0.5, 3: 0.9}))
    assert sorted(picked_properties(policy.act(obs, rng, 0), obs)) == [4, 9]  # unseen first
    policy.observe(feedback({9: 0.2, 4: 0.1}))
    decision = policy.act(obs, rng, 1)
    assert picked_properties(decision, obs) == [3, 7]  # highest loss first, in order
    assert decision.probabilities.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert decision.log_prob is None


def test_hardest_first_exponential_moving_average() -> None:
    policy = HardestFirstPolicy(SchedulerConfig(pairs=2), DIM)  # default decay 0.3
    obs = observation(pool=4, properties=[7, 3, 9, 4])
    policy.observe(feedback({7: 0.5, 3: 0.9, 9: 0.2, 4: 0.1}))
    policy.observe(feedback({3: 0.0}))
    assert policy.loss_mean[3] == pytest.approx(0.63)
    assert picked_properties(policy.act(obs, np.random.default_rng(0), 0), obs) == [3, 7]
    policy.observe(feedback({3: 0.0}))
    assert policy.loss_mean[3] == pytest.approx(0.441)
    assert picked_properties(policy.act(obs, np.random.default_rng(0), 0), obs) == [7, 3]
    assert policy.visits == {7: 1, 3: 3, 9: 1, 4: 1} and policy.total_visits == 6


def test_hardest_first_decay_option_and_state_round_trip() -> None:
    policy = HardestFirstPolicy(SchedulerConfig(pairs=1, options={"decay": 1.0}), DIM)
    policy.observe(feedback({1: 0.9}))
    policy.observe(feedback({1: 0.1}))
    assert policy.loss_mean[1] == pytest.approx(0.1)  # decay 1: latest value only
    clone = HardestFirstPolicy(SchedulerConfig(pairs=1), DIM)
    clone.load_state_dict(policy.state_dict())
    assert (clone.loss_mean, clone.visits, clone.total_visits) == (policy.loss_mean, policy.visits, 2)


def test_hardest_first_never_picks_padding() -> None:
    policy = HardestFirstPolicy(SchedulerConfig(pairs=5), DIM)
    obs = observation(pool=6, valid=3)
    decision = policy.act(obs, np.random.default_rng(0), 0)
    assert sorted(decision.pairs.tolist()) == [0, 1, 2]


# --------------------------------------------------------------------------- UCB


def test_ucb_explores_unvisited_first() -> None:
    policy = UCBPolicy(SchedulerConfig(pairs=2), DIM)
    obs = observation(pool=4, properties=[10, 11, 12, 13])
    policy.observe(feedback({10: 5.0, 11: 4.0}))
    assert sorted(picked_properties(policy.act(obs, np.random.default_rng(0), 0), obs)) == [12, 13]


def test_ucb_scores_follow_ucb1() -> None:
    policy = UCBPolicy(SchedulerConfig(pairs=1, options={"exploration": 0.5}), DIM)
    for _ in range(4):
        policy.observe(feedback({1: 0.6}))
    policy.observe(feedback({2: 0.4}))
    scores = policy.scores([1, 2, 3])
    total = math.log(5)
    assert scores[0] == pytest.approx(0.6 + 0.5 * math.sqrt(total / 4))
    assert scores[1] == pytest.approx(0.4 + 0.5 * math.sqrt(total / 1))
    assert scores[2] == math.inf


def test_ucb_balances_equal_losses_and_exploits_without_bonus() -> None:
    policy = UCBPolicy(SchedulerConfig(pairs=1), DIM)
    obs = observation(pool=4, properties=[0, 1, 2, 3])
    rng = np.random.default_rng(0)
    for iteration in range(40):
        (prop,) = picked_properties(policy.act(obs, rng, iteration), obs)
        policy.observe(feedback({prop: 1.0}))
    assert policy.visits == {0: 10, 1: 10, 2: 10, 3: 10}  # equal losses: the bonus equalises visits

    greedy = UCBPolicy(SchedulerConfig(pairs=1, options={"exploration": 0.0}), DIM)
    greedy.observe(feedback({0: 0.1, 1: 0.9, 2: 0.5, 3: 0.3}))
    for iteration in range(5):
        assert picked_properties(greedy.act(obs, rng, iteration), obs) == [1]
        greedy.observe(feedback({1: 0.9}))


# --------------------------------------------------------------------------- learning progress


def test_learning_progress_is_slow_minus_fast_average_and_unseen_get_the_highest() -> None:
    policy = LearningProgressPolicy(SchedulerConfig(pairs=1), DIM)  # fast 0.5, slow 0.1
    policy.observe(feedback({1: 1.0, 2: 1.0}))
    policy.observe(feedback({1: 0.0, 2: 2.0}))  # property 1's loss falls, property 2's rises
    assert policy.fast[1] == pytest.approx(0.5) and policy.slow[1] == pytest.approx(0.9)
    progress = policy.progress([1, 2, 3])
    assert progress.tolist() == pytest.approx([0.4, -0.4, 0.4])  # 3 unseen: the highest progress seen


def test_learning_progress_probabilities_mix_boltzmann_and_uniform() -> None:
    policy = LearningProgressPolicy(SchedulerConfig(pairs=1, options={"epsilon": 0.2, "temperature": 0.5}), DIM)
    policy.observe(feedback({1: 1.0, 2: 1.0, 3: 1.0}))
    policy.observe(feedback({1: 0.0, 2: 1.0, 3: 1.0}))
    progress = np.array([0.4, 0.0, 0.0])
    boltzmann = np.exp((progress - 0.4) / (0.5 * progress.std()))
    expected = 0.8 * boltzmann / boltzmann.sum() + 0.2 / 3
    assert policy.probabilities([1, 2, 3]) == pytest.approx(expected)
    assert policy.probabilities([2, 3]) == pytest.approx([0.5, 0.5])  # no spread in progress: uniform


def test_learning_progress_draws_follow_its_probabilities_and_state_round_trips() -> None:
    policy = LearningProgressPolicy(SchedulerConfig(pairs=1), DIM)
    obs = observation(pool=4, valid=3, properties=[1, 2, 3])
    policy.observe(feedback({1: 1.0, 2: 1.0, 3: 1.0}))
    policy.observe(feedback({1: 0.0, 2: 0.9, 3: 1.0}))
    rng = np.random.default_rng(0)
    decision = policy.act(obs, rng, 0)
    assert decision.probabilities[:3] == pytest.approx(policy.probabilities([1, 2, 3]))
    assert decision.probabilities[3] == 0 and decision.log_prob is None
    assert decision.entropy == pytest.approx(-(decision.probabilities[:3] * np.log(decision.probabilities[:3])).sum())
    counts = Counter(picked_properties(policy.act(obs, rng, i), obs)[0] for i in range(4000))
    for index, prop in enumerate([1, 2, 3]):
        assert counts[prop] / 4000 == pytest.approx(decision.probabilities[index], abs=0.03)
    clone = LearningProgressPolicy(SchedulerConfig(pairs=1), DIM)
    clone.load_state_dict(policy.state_dict())
    assert clone.act(obs, np.random.default_rng(5), 0).pairs.tolist() == policy.act(obs, np.random.default_rng(5),
                                                                                     0).pairs.tolist()


@pytest.mark.parametrize("policy, options, key", [
    ("learning-progress", {"slow": 0.6}, "slow < fast"), ("learning-progress", {"epsilon": 2}, "epsilon"),
    ("learning-progress", {"temperture": 1}, "temperture"), ("learning-progress", {"fast": "high"}, "fast"),
    ("hardest", {"exploration": 1}, "exploration unknown to the 'hardest' policy"), ("hardest", {"decay": 0}, "decay"),
    ("ucb", {"exploraton": 2}, "exploraton"), ("ucb", {"exploration": None}, "exploration")])
def test_loss_driven_policies_reject_unknown_and_bad_options(policy: str, options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        make_policy(SchedulerConfig(policy=policy, options=options), DIM)


# --------------------------------------------------------------------------- Thompson sampling


def test_thompson_posterior_is_the_discounted_normal_update() -> None:
    policy = ThompsonSamplingPolicy(SchedulerConfig(pairs=1, options={"discount": 0.5, "prior_count": 2}), DIM)
    policy.observe(feedback({1: 1.0, 2: 3.0}))
    policy.observe(feedback({1: 2.0}))
    # evidence: property 1 has 0.5 x (1.0) + 2.0 over counts 0.5 + 1; property 2 has 0.5 x 3.0 over 0.5
    weight, first, second = 0.5 * 2 + 1, 0.5 * 4.0 + 2.0, 0.5 * 10.0 + 4.0
    prior_mean = first / weight
    variance = second / weight - prior_mean ** 2
    mean, std = policy.posterior([1, 2, 3])
    assert mean == pytest.approx([(2.5 + 2 * prior_mean) / 3.5, (1.5 + 2 * prior_mean) / 2.5, prior_mean])
    assert std == pytest.approx(np.sqrt(variance / np.array([3.5, 2.5, 2.0])))


def test_thompson_prefers_the_harder_property_and_explores_the_uncertain_one() -> None:
    policy = ThompsonSamplingPolicy(SchedulerConfig(pairs=1, options={"discount": 1.0}), DIM)
    obs = observation(pool=3, properties=[1, 2, 3])
    for _ in range(50):
        policy.observe(feedback({1: 1.0, 2: 0.2}))
        policy.observe(feedback({1: 1.2, 2: 0.4}))
    decision = policy.act(obs, np.random.default_rng(0), 0)
    assert decision.probabilities[0] > 0.2 and decision.probabilities[1] < 0.01  # 1: harder than 2
    assert 0.1 < decision.probabilities[2] < 0.3  # 3: never seen; its wide prior reaches past 1.1 at 17 %
    assert decision.probabilities.sum() == pytest.approx(1.0)
    picks = Counter(picked_properties(policy.act(obs, np.random.default_rng(i), 0), obs)[0]
                    for i in range(300))
    assert picks[2] < 10 and picks[1] > 200 and 25 < picks[3] < 80


def test_thompson_state_round_trip_and_rejects_bad_options() -> None:
    policy = ThompsonSamplingPolicy(SchedulerConfig(pairs=2), DIM)
    policy.observe(feedback({4: 0.3, 5: 0.7}))
    clone = ThompsonSamplingPolicy(SchedulerConfig(pairs=2), DIM)
    clone.load_state_dict(policy.state_dict())
    obs = observation(pool=3, properties=[4, 5, 6])
    assert clone.act(obs, np.random.default_rng(1), 0).pairs.tolist() == policy.act(obs, np.random.default_rng(1),
                                                                                    0).pairs.tolist()
    with pytest.raises(ConfigError, match="discount"):
        make_policy(SchedulerConfig(policy="thompson", options={"discount": 0}), DIM)


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name, cls", [("gsmeta", GSMetaPolicy), ("uniform", UniformPolicy),
                                       ("hardest", HardestFirstPolicy), ("ucb", UCBPolicy),
                                       ("learning-progress", LearningProgressPolicy),
                                       ("thompson", ThompsonSamplingPolicy)])
def test_make_policy_registry_names(name: str, cls: type) -> None:
    config = SchedulerConfig(policy=name)
    policy = make_policy(config, DIM)
    assert type(policy) is cls and POLICIES[name] is cls
    assert policy.config is config


def test_make_policy_registry_gsmeta_uses_embedding_dim() -> None:
    policy = make_policy(SchedulerConfig(policy="gsmeta", hidden_dim=7), 12)
    assert policy.network.context[0].in_features == 12
    assert policy.network.score[0].out_features == 7


def test_make_policy_dotted_path() -> None:
    config = SchedulerConfig(policy="tests.test_policies:MyPolicy", pairs=2)
    policy = make_policy(config, 33)
    assert type(policy) is MyPolicy
    assert policy.config is config and policy.embedding_dim == 33
    assert policy.act(observation(pool=4), np.random.default_rng(0), 0).pairs.tolist() == [0, 1]


def test_make_policy_rejects_unknown_name() -> None:
    with pytest.raises(ValueError) as info:
        make_policy(SchedulerConfig(policy="random-walk"), DIM)
    message = str(info.value)
    assert "random-walk" in message
    assert str(sorted(POLICIES | OPTIONAL_POLICIES)) in message
    for name in ("gsmeta", "uniform", "hardest", "ucb"):
        assert name in message


def test_make_policy_initialises_from_its_seed_alone() -> None:
    """The same seed gives the same selector whatever the process drew before; another seed another."""
    config = SchedulerConfig(policy="gsmeta")
    first = make_policy(config, DIM, seed=3).state_dict()
    torch.rand(1000)  # e.g. an in-process worker initialising its model replica
    again = make_policy(config, DIM, seed=3).state_dict()
    other = make_policy(config, DIM, seed=4).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("name", ["nowhere.module:Policy", "tests.test_policies:Missing"])
def test_a_plugin_policy_that_cannot_be_imported_is_a_one_line_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"scheduler.policy '{name}' cannot be imported"):
        make_policy(SchedulerConfig(policy=name), 8)
