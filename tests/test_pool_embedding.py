"""Candidate-pool embedding is the eval-mode forward of each candidate without its auxiliary properties,
and does not depend on which candidates are embedded together (or by which worker)."""

import torch

from actors.episode_worker import EpisodeWorker
from gsrl.data.episodes import EpisodeSampler, derive_rng, episode_tensors
from gsrl.runtime import build_model, load_dataset
from learners.meta_learner import MetaLearner


def test_pool_embedding_is_the_eval_forward_of_each_candidate(tiny_config):
    config = tiny_config("scheduler.pool_size=5")
    dataset = load_dataset(config)
    learner = MetaLearner(build_model(dataset, config, seed=0), config)
    with torch.no_grad():  # non-trivial running statistics, so eval-mode BatchNorm matters
        for name, buffer in learner.model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                buffer.uniform_(-0.3, 0.3)
    worker = EpisodeWorker(config, dataset=dataset)
    worker.set_weights(learner.weights())
    sampler = EpisodeSampler.for_dataset(dataset, config.episode.shots, config.episode.train_queries)
    specs = sampler.candidate_pool(5, None, derive_rng(0, 1)).flat_specs()
    embedded = worker.embed(specs)

    model = worker.model.eval()
    expected = []
    with torch.no_grad():
        for spec in specs:
            t = episode_tensors(spec.without_auxiliary(), dataset)
            outputs = model(t.support, t.query, t.properties, t.support_labels, t.query_labels)
            expected.append(outputs.subgraph_embedding)
    torch.testing.assert_close(embedded, torch.stack(expected), rtol=1e-5, atol=1e-6)
    assert embedded.shape == (10, config.encoder.emb_dim)
    halves = torch.cat([worker.embed(specs[:3]), worker.embed(specs[3:])])  # as two workers would split it
    assert torch.equal(embedded, halves)
