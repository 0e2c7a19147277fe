"""The MetaLearner in its own Ray actor (e.g. on its own GPU), behind MetaLearner's interface.

`ray.learner: actor` puts the meta-parameters, AdamW state and BatchNorm-buffer rule in one actor;
the driver keeps only this handle, so the environment and trainer code are the same for both
placements. Tensors cross as CPU tensors, whatever device the learner computes on.
"""

from __future__ import annotations

import ray
from torch import Tensor

from gsrl.config import Config
from gsrl.meta.messages import EpisodeSummary, OuterStep, Weights
from gsrl.models.episode_network import EpisodeNetwork
from gsrl.runtime import apply_threads, resolve_device
from learners.meta_learner import MetaLearner


def _to_cpu(tree):
    if isinstance(tree, Tensor):
        return tree.cpu()
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_cpu(v) for v in tree]
    return tree


class MetaLearnerHost:
    """What runs inside the learner actor."""

    def __init__(self, model: EpisodeNetwork, config: Config):
        apply_threads(config)
        self.device = resolve_device(config)
        self.learner = MetaLearner(model.to(self.device), config)

    def restart(self, model: EpisodeNetwork) -> None:
        self.learner.restart(model.to(self.device))

    def weights(self) -> Weights:
        weights = self.learner.weights()
        return Weights(weights.version, _to_cpu(weights.params), _to_cpu(weights.buffers))

    def contrastive_gradient(self, summaries: list[EpisodeSummary]) -> tuple[float, Tensor]:
        return self.learner.contrastive_gradient(summaries)

    def apply(self, grads: dict[str, Tensor], summaries: list[EpisodeSummary], contrastive: float) -> OuterStep:
        return self.learner.apply(grads, summaries, contrastive)

    def state_dict(self) -> dict:
        return _to_cpu(self.learner.state_dict())

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state)


class RemoteMetaLearner:
    """Driver-side handle: every call is a method call on the learner actor."""

    def __init__(self, model: EpisodeNetwork, config: Config):
        settings = config.ray
        self.actor = ray.remote(MetaLearnerHost).options(
            num_cpus=settings.learner_cpus, num_gpus=settings.learner_gpus).remote(model.cpu(), config)
        self.lr = config.meta.outer_lr
        self.version = 0
        self.skipped_updates = 0

    def restart(self, model: EpisodeNetwork) -> None:
        ray.get(self.actor.restart.remote(model.cpu()))
        self.version = 0
        self.skipped_updates = 0

    def weights(self) -> Weights:
        return ray.get(self.actor.weights.remote())

    def contrastive_gradient(self, summaries: list[EpisodeSummary]) -> tuple[float, Tensor]:
        return ray.get(self.actor.contrastive_gradient.remote(summaries))

    def apply(self, grads: dict[str, Tensor], summaries: list[EpisodeSummary], contrastive: float) -> OuterStep:
        step = ray.get(self.actor.apply.remote(grads, summaries, contrastive))
        self.version += int(step.applied)
        self.skipped_updates += int(not step.applied)
        self.lr = step.lr
        return step

    def state_dict(self) -> dict:
        return ray.get(self.actor.state_dict.remote())

    def load_state_dict(self, state: dict) -> None:
        ray.get(self.actor.load_state_dict.remote(state))
        self.version, self.skipped_updates = state["version"], state["skipped_updates"]

    def close(self) -> None:
        ray.kill(self.actor)

