"""Featurizing a corpus with Ray tasks: one task per missing shard, at most `parallelism` at a time."""

from __future__ import annotations

import logging

import numpy as np
import ray

from gsrl.data.corpora import CorpusCache, CorpusManifest, ShardReport, featurize_shard

log = logging.getLogger(__name__)


@ray.remote(num_cpus=1)
def _featurize_shard_task(cache: CorpusCache, index: int, smiles: list[str], start: int,
                          labels: np.ndarray | None) -> ShardReport:
    return featurize_shard(cache, index, smiles, start, labels)


def build_corpus(cache: CorpusCache, parallelism: int, max_shards: int | None = None) -> CorpusManifest:
    """Featurize every shard (or the first `max_shards`) not already complete on disk, then write the
    manifest of those shards (Ray must be up)."""
    smiles, labels = cache.read()
    plan = cache.plan(len(smiles))[:max_shards]
    reports = [r for r in (cache.finished_report(index) for index, _, _ in plan) if r is not None]
    done = {r.index for r in reports}
    todo = [(index, start, stop) for index, start, stop in plan if index not in done]
    log.info("%s: %d shards cached, %d to featurize", cache.source, len(done), len(todo))
    cache.directory.mkdir(parents=True, exist_ok=True)
    pending: list[ray.ObjectRef] = []
    for index, start, stop in todo:
        if len(pending) >= parallelism:  # bound the SMILES and graphs in flight
            ready, pending = ray.wait(pending, num_returns=1)
            reports.extend(ray.get(ready))
        rows = None if labels is None else labels[start:stop]
        pending.append(_featurize_shard_task.remote(cache, index, smiles[start:stop], start, rows))
    reports.extend(ray.get(pending))
    manifest = cache.manifest(reports)
    if manifest.failed:
        log.warning("%s: %d of %d SMILES could not be parsed and are skipped (first: %s)", cache.source,
                    manifest.failed, manifest.rows, manifest.failed_examples()[:3])
    return manifest
