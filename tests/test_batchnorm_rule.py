"""The BatchNorm rule: running statistics end as if the episodes' train-mode forwards had run one
after another in spec order, whichever worker computed which episode."""

import torch

from actors.episode_worker import EpisodeWorker
from actors.worker_group import LocalWorkerGroup
from gsrl.data.episodes import EpisodeSampler, derive_rng
from gsrl.meta.episode import clone_buffers, seeded
from gsrl.runtime import build_model, load_dataset
from learners.meta_learner import MetaLearner, compose_running_statistics


def test_composed_proposals_equal_sequential_episodes(tiny_config):
    config = tiny_config()
    dataset = load_dataset(config)
    learner = MetaLearner(build_model(dataset, config, seed=0), config)
    workers = [EpisodeWorker(config, dataset=dataset) for _ in range(2)]
    group = LocalWorkerGroup(workers)
    group.broadcast(learner.weights())
    sampler = EpisodeSampler.for_dataset(dataset, config.episode.shots, config.episode.train_queries)
    pool = sampler.candidate_pool(3, None, derive_rng(0, 3))
    specs = [pair[0] for pair in pool.pairs] + [pair[1] for pair in pool.pairs]
    start = {k: v.clone() for k, v in learner.model.named_buffers()}
    summaries = group.forward(specs)
    composed = compose_running_statistics(learner.model, start, [s.proposed_buffers for s in summaries])

    runner = workers[0].runner
    running = clone_buffers(start)
    runner.model.train()
    for spec in specs:  # the same episodes, one after another, on one shared copy of the statistics
        with seeded(spec.seed, torch.device("cpu")):
            t = runner.tensors(spec)
            adapted, _ = runner.adapt(workers[0].params, running, t, t.query, t.query_labels, differentiable=False)
            runner.call(adapted, running, t.support, t.query, t.properties, t.support_labels, t.query_labels, False)
    for name, value in running.items():
        torch.testing.assert_close(composed[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(composed["encoder.batch_norms.0.running_mean"], start["encoder.batch_norms.0.running_mean"])

    contrastive, grad_g = learner.contrastive_gradient(summaries)
    learner.apply(group.backward(grad_g, 1.0 / len(specs)), summaries, contrastive)
    for name, buffer in learner.model.named_buffers():
        torch.testing.assert_close(buffer, composed[name], msg=name)
