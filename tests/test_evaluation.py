"""Evaluation ranks test molecules by their logits, so saturated probabilities cannot tie them."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from gsrl.jobs.train import MetaTrainingDriver
from gsrl.meta.evaluation import evaluation_specs, roc_auc


def test_auc_keeps_the_ranking_of_logits_that_saturate_the_sigmoid(tiny_config, monkeypatch):
    driver = MetaTrainingDriver(tiny_config())
    driver.reset()
    sampler = driver.env.sampler
    specs = evaluation_specs(sampler, sampler.test_properties, None, seed=0, evaluation_index=0, draws=1)[:2]
    plain = driver.workers.evaluate(specs, 256)

    network = type(driver.workers.workers[0].model)
    relate = network.relate

    def confident(self, *args, **kwargs):  # the same ranking (an exact power of two), past float32 sigmoid
        out = relate(self, *args, **kwargs)
        return dataclasses.replace(out, query_logits=2.0**13 * out.query_logits)

    monkeypatch.setattr(network, "relate", confident)
    loud = driver.workers.evaluate(specs, 256)
    driver.close()
    for quiet, saturated in zip(plain, loud):
        probabilities = torch.sigmoid(torch.from_numpy(saturated.scores).float()).numpy()
        assert len(np.unique(probabilities)) < len(np.unique(saturated.scores))  # float32 sigmoid ties them
        assert roc_auc(saturated) == roc_auc_score(quiet.labels, quiet.scores) == roc_auc(quiet)
