"""Every meta-learner learns on a tiny task family, and each adaptation rule computes what it claims."""

from __future__ import annotations

import math

import pytest
import torch

from actors.episode_worker import EpisodeWorker
from actors.worker_group import LocalWorkerGroup, sum_gradients
from gsrl.config import ConfigError
from gsrl.data.episodes import EpisodeSampler, EpisodeSpec
from gsrl.meta.episode import clone_buffers, seeded
from gsrl.models.baselines import PrototypeNetwork
from gsrl.runtime import build_model, load_dataset
from learners.meta_learner import MetaLearner

# Each algorithm with the inner-loop settings its comparison config uses.
ALGORITHMS = {
    "gsmeta": (),
    "maml": ("meta.algorithm=maml",),
    "fomaml": ("meta.algorithm=maml", "meta.first_order=true"),
    "reptile": ("meta.algorithm=reptile", "meta.inner_steps=5", "meta.inner_lr=0.05"),
    "protonet": ("meta.algorithm=protonet",),
}


def tiny_family(dataset, config, molecules_per_class: int = 6) -> list[EpisodeSpec]:
    """Six episodes of one property over twelve molecules: every molecule is in two episodes' supports
    and two others' queries, so what one episode's support teaches is tested on another's query."""
    sampler = EpisodeSampler.for_dataset(dataset, config.episode.shots, config.episode.train_queries)
    target = sampler.eligible_properties(sampler.train_properties)[0]
    inactive, active = (ids[:molecules_per_class].tolist() for ids in sampler.class_members[target])
    n = molecules_per_class

    def window(ids: list[int], start: int) -> tuple[int, int]:
        return ids[start % n], ids[(start + 1) % n]

    return [EpisodeSpec(dataset.name, target, window(inactive, e) + window(active, e),
                        window(inactive, e + 2) + window(active, e + 2), seed=100 + e) for e in range(n)]


def meta_step(group: LocalWorkerGroup, learner: MetaLearner, specs: list[EpisodeSpec]) -> float:
    """One meta-iteration on the given episodes; returns their mean query loss before the update."""
    group.broadcast(learner.weights())
    summaries = group.forward(specs)
    contrastive, grad_g = learner.contrastive_gradient(summaries)
    learner.apply(group.backward(grad_g, 1.0 / len(specs)), summaries, contrastive)
    return sum(s.query_loss for s in summaries) / len(summaries)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_each_algorithm_learns_a_tiny_task_family(tiny_config, name):
    config = tiny_config(*ALGORITHMS[name], "meta.outer_lr=5e-3", "meta.contrastive_weight=0")
    dataset = load_dataset(config)
    specs = tiny_family(dataset, config)
    learner = MetaLearner(build_model(dataset, config, seed=0), config)
    group = LocalWorkerGroup([EpisodeWorker(config, dataset=dataset)])
    losses = [meta_step(group, learner, specs) for _ in range(60)]
    final = sum(losses[-5:]) / 5
    assert final < 0.5 * losses[0], [round(v, 3) for v in losses]


def _reptile_setup(tiny_config, *overrides):
    config = tiny_config(*ALGORITHMS["reptile"], *overrides)
    dataset = load_dataset(config)
    worker = EpisodeWorker(config, dataset=dataset)
    worker.set_weights(MetaLearner(build_model(dataset, config, seed=0), config).weights())
    return config, worker, tiny_family(dataset, config)[:3]


def test_reptile_meta_gradient_is_the_mean_step_back_from_the_adapted_weights(tiny_config):
    config, worker, specs = _reptile_setup(tiny_config)
    worker.forward(specs)
    grads = sum_gradients(worker.backward(torch.zeros(len(specs), config.encoder.emb_dim), 1.0 / len(specs)))
    phis = [_adapted(worker, s) for s in specs]
    for name, param in worker.params.items():
        expected = sum(param.detach() - phi[name] for phi in phis) / len(specs)
        torch.testing.assert_close(grads[name], expected, rtol=1e-5, atol=1e-7)
    assert any(float(g.abs().max()) > 0 for g in grads.values())


def _adapted(worker: EpisodeWorker, spec: EpisodeSpec) -> dict[str, torch.Tensor]:
    """phi of one episode, recomputed by the runner's inner loop alone."""
    with seeded(spec.seed, worker.device):
        worker.model.train()
        t = worker.runner.tensors(spec)
        adapted, _ = worker.runner.adapt(worker.params, clone_buffers(worker.buffers), t, t.query, t.query_labels)
    return {k: v.detach() for k, v in adapted.items()}


def test_one_step_reptile_is_inner_lr_times_the_support_gradient(tiny_config):
    """With one inner step, theta - phi = inner_lr * grad of the support loss (Nichol et al. 2018, sec. 5)."""
    config, worker, specs = _reptile_setup(tiny_config, "meta.inner_steps=1", "meta.inner_lr=0.3")
    spec = specs[0]
    worker.forward([spec])
    (grads,) = worker.backward(torch.zeros(1, config.encoder.emb_dim), 1.0)
    with seeded(spec.seed, worker.device):
        worker.model.train()
        t = worker.runner.tensors(spec)
        loss = worker.runner.support_loss_fn(clone_buffers(worker.buffers), t, t.query, t.query_labels)(worker.params)
    names = list(worker.params)
    support_grads = torch.autograd.grad(loss, [worker.params[n] for n in names])
    for name, grad in zip(names, support_grads):
        torch.testing.assert_close(grads[name], 0.3 * grad, rtol=1e-5, atol=1e-7)


def test_prototype_log_odds_are_differences_of_squared_distances(tiny_config):
    network = PrototypeNetwork(tiny_config().encoder)
    assert float(network.metric_scale.detach().exp()) == pytest.approx(1 / 16)  # 1 / embedding width at the start
    with torch.no_grad():
        network.metric_scale.fill_(math.log(0.5))
    support = torch.tensor([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]])
    labels = torch.tensor([[0.0], [0.0], [1.0], [1.0]])  # prototypes (0, 1) inactive, (4, 1) active
    query = torch.tensor([[1.0, 1.0], [4.0, 1.0]])
    out = network.relate(support, query, torch.tensor([0]), labels, None)
    torch.testing.assert_close(out.query_logits, 0.5 * torch.tensor([1.0 - 9.0, 16.0 - 0.0]))
    reordered = network.relate(support[[2, 0, 3, 1]], query, torch.tensor([0]), labels[[2, 0, 3, 1]], None)
    torch.testing.assert_close(reordered.query_logits, out.query_logits)
    torch.testing.assert_close(out.subgraph_embedding, torch.cat([support, query]).mean(dim=0))


def test_classifier_heads_skip_the_queries_in_the_inner_loop(tiny_config, monkeypatch):
    config = tiny_config(*ALGORITHMS["maml"])
    dataset = load_dataset(config)
    worker = EpisodeWorker(config, dataset=dataset)
    worker.set_weights(MetaLearner(build_model(dataset, config, seed=0), config).weights())
    spec = tiny_family(dataset, config)[0]
    batch_sizes = []
    original = type(worker.model).encode
    monkeypatch.setattr(type(worker.model), "encode",
                        lambda self, graphs: batch_sizes.append(graphs.num_graphs) or original(self, graphs))
    worker.forward([spec])
    assert batch_sizes == [len(spec.support), len(spec.support), len(spec.query)]  # inner step, then support + query


def test_unknown_algorithm_and_foreign_parameter_groups_are_rejected(tiny_config):
    with pytest.raises(ConfigError, match="key .meta.algorithm. takes one of gsmeta, maml, protonet, reptile"):
        tiny_config("meta.algorithm=matching")
    config = tiny_config("meta.algorithm=protonet", "meta.adapt=[relation]")
    with pytest.raises(ConfigError, match=r"meta.adapt names \['relation'\].*PrototypeNetwork.*'metric_scale'"):
        EpisodeWorker(config)
