"""Functional MAML: exact inner step, untouched meta-parameters, and a meta-gradient that matches
finite differences of the full objective (query BCE + lambda * NT-Xent), in float64, for GS-Meta and
for the MAML and ProtoNet baselines."""

import pytest
import torch

from actors.episode_worker import EpisodeWorker
from actors.worker_group import LocalWorkerGroup
from gsrl.data.episodes import EpisodeSampler, derive_rng
from gsrl.meta import maml
from gsrl.meta.losses import nt_xent
from gsrl.runtime import build_model, load_dataset
from learners.meta_learner import MetaLearner


def test_one_inner_step_equals_manual_sgd():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}
    x, y = torch.randn(5, 3), torch.randn(5, 1)

    def loss_fn(p):
        return ((x @ p["weight"].T + p["bias"] - y) ** 2).mean()

    adapted, losses = maml.adapt(loss_fn, params, ["weight", "bias"], steps=1, lr=0.3, first_order=False)
    loss = loss_fn(params)
    grad_w, grad_b = torch.autograd.grad(loss, [params["weight"], params["bias"]])
    assert torch.allclose(adapted["weight"], params["weight"] - 0.3 * grad_w)
    assert torch.allclose(adapted["bias"], params["bias"] - 0.3 * grad_b)
    assert torch.allclose(losses[0], loss)


def test_only_named_parameters_adapt_and_first_order_drops_hessian():
    params = {"a": torch.tensor([1.0, 2.0], requires_grad=True), "b": torch.tensor(3.0, requires_grad=True)}

    def loss_fn(p):
        return (p["a"] ** 3).sum() * p["b"]

    second, _ = maml.adapt(loss_fn, params, ["a"], steps=1, lr=0.1, first_order=False)
    first, _ = maml.adapt(loss_fn, params, ["a"], steps=1, lr=0.1, first_order=True)
    assert second["b"] is params["b"]
    (g_second,) = torch.autograd.grad(second["a"].sum(), params["a"])
    (g_first,) = torch.autograd.grad(first["a"].sum(), params["a"])
    # d/da (a - 0.1 * 3 b a^2) = 1 - 0.6 b a ; first order keeps only the identity
    assert torch.allclose(g_second, 1 - 0.6 * 3.0 * params["a"].detach())
    assert torch.allclose(g_first, torch.ones(2))


@pytest.fixture(params=["gsmeta", "maml", "protonet"])
def tiny_setup(request, tiny_config):
    # top_k above the node count keeps every molecule–molecule edge: the learned edge weights are
    # still differentiated, but no top-k membership can flip inside the finite-difference step.
    config = tiny_config("relation.top_k=16", f"meta.algorithm={request.param}")
    dataset = load_dataset(config)
    model = build_model(dataset, config, seed=0).double()
    sampler = EpisodeSampler.for_dataset(dataset, config.episode.shots, config.episode.train_queries)
    pool = sampler.candidate_pool(2, None, derive_rng(0, 0))
    specs = [pool.pairs[0][0], pool.pairs[1][0], pool.pairs[0][1], pool.pairs[1][1]]
    return config, dataset, model, specs


def _objective(worker, learner_model, specs, config):
    """Full meta-objective for the current worker weights, recomputed from scratch."""
    episodes = [worker.runner.train_episode(worker.params, worker.buffers, s) for s in specs]
    query = sum(e.query_loss for e in episodes) / len(episodes)
    g = torch.stack([e.embedding for e in episodes])
    half = len(specs) // 2
    return query + config.meta.contrastive_weight * nt_xent(g[:half], g[half:], config.meta.contrastive_temperature)


@pytest.fixture
def smooth_activations(monkeypatch):
    """With ReLU the inner-loop gradient jumps at every kink, so the MAML objective itself is only
    piecewise smooth and finite differences straddling a kink are meaningless. The check therefore
    swaps in smooth activations; everything else (dropout, BatchNorm, learned edges) stays as is."""
    import torch.nn.functional as F

    monkeypatch.setattr(F, "relu", lambda x, inplace=False: F.softplus(x, beta=4.0))
    monkeypatch.setattr(F, "leaky_relu", lambda x, negative_slope=0.01, inplace=False:
                        negative_slope * x + (1 - negative_slope) * F.softplus(x, beta=4.0))


def test_meta_gradient_matches_finite_differences(tiny_setup, smooth_activations):
    config, dataset, model, specs = tiny_setup
    learner = MetaLearner(model, config)
    worker = EpisodeWorker(config, dataset=dataset)
    worker.model.double()
    group = LocalWorkerGroup([worker])
    group.broadcast(learner.weights())
    meta_params = {k: v.detach().clone() for k, v in worker.params.items()}

    summaries = group.forward(specs)
    _, grad_g = learner.contrastive_gradient(summaries)
    grads = group.backward(grad_g, 1.0 / len(specs))
    assert all(torch.equal(worker.params[k].detach(), meta_params[k]) for k in meta_params)  # untouched

    torch.manual_seed(1)
    direction = {k: torch.randn_like(v) for k, v in meta_params.items()}
    analytic = sum((grads[k] * direction[k]).sum() for k in grads)
    eps = 1e-6
    values = []
    for sign in (1, -1):
        worker.params = {k: (meta_params[k] + sign * eps * direction[k]).requires_grad_(True) for k in meta_params}
        values.append(float(_objective(worker, model, specs, config).detach()))
    numeric = (values[0] - values[1]) / (2 * eps)
    assert abs(float(analytic) - numeric) <= 1e-5 * max(1.0, abs(numeric)), (float(analytic), numeric)


def test_recomputing_episodes_gives_the_retained_graph_gradient(tiny_config):
    """meta.retain_episode_graphs=false trades time for memory, never the result."""
    results = []
    for retain in ("true", "false"):
        config = tiny_config(f"meta.retain_episode_graphs={retain}")
        dataset = load_dataset(config)
        learner = MetaLearner(build_model(dataset, config, seed=0), config)
        group = LocalWorkerGroup([EpisodeWorker(config, dataset=dataset)])
        group.broadcast(learner.weights())
        sampler = EpisodeSampler.for_dataset(dataset, config.episode.shots, config.episode.train_queries)
        pool = sampler.candidate_pool(3, None, derive_rng(0, 0))
        specs = [pair[0] for pair in pool.pairs] + [pair[1] for pair in pool.pairs]
        summaries = group.forward(specs)
        _, grad_g = learner.contrastive_gradient(summaries)
        results.append((summaries, group.backward(grad_g, 1.0 / len(specs))))
    (kept, grads_kept), (recomputed, grads_recomputed) = results
    for a, b in zip(kept, recomputed):
        assert torch.equal(a.embedding, b.embedding) and a.query_loss == b.query_loss
    for name in grads_kept:
        torch.testing.assert_close(grads_kept[name], grads_recomputed[name], rtol=1e-5, atol=1e-7)


def test_two_workers_give_the_one_worker_meta_gradient(tiny_config):
    """Sharding episodes over workers (the contrastive term couples them) changes nothing, bit for bit:
    per-episode gradients are summed in spec order whoever computed them."""
    config = tiny_config()
    dataset = load_dataset(config)
    sampler = EpisodeSampler.for_dataset(dataset, config.episode.shots, config.episode.train_queries)
    pool = sampler.candidate_pool(3, None, derive_rng(0, 2))
    specs = [pair[0] for pair in pool.pairs] + [pair[1] for pair in pool.pairs]
    outcomes = []
    for workers in (1, 2):
        learner = MetaLearner(build_model(dataset, config, seed=0), config)
        group = LocalWorkerGroup([EpisodeWorker(config, dataset=dataset) for _ in range(workers)])
        group.broadcast(learner.weights())
        summaries = group.forward(specs)
        contrastive, grad_g = learner.contrastive_gradient(summaries)
        grads = group.backward(grad_g, 1.0 / len(specs))
        step = learner.apply(grads, summaries, contrastive)
        outcomes.append((summaries, grads, step, {k: v.clone() for k, v in learner.model.state_dict().items()}))
    (s1, g1, step1, m1), (s2, g2, step2, m2) = outcomes
    assert [a.query_loss for a in s1] == [b.query_loss for b in s2]
    assert step1.contrastive_loss == step2.contrastive_loss
    assert all(torch.equal(g1[name], g2[name]) for name in g1)
    assert all(torch.equal(m1[name], m2[name]) for name in m1)
