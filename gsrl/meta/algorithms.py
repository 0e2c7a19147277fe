"""Meta-learning algorithms: a network (the head) and an adaptation rule, nothing else.

Episodes, workers, the learner, the scheduler environment, evaluation and logging are shared; an
algorithm only decides which network scores an episode and how the support set adapts it. Its
meta-objective is what the learner's outer optimiser descends:

* gsmeta   GS-Meta's relation network; MAML inner steps (second order unless meta.first_order).
* maml     GIN + MLP head; MAML inner steps (meta.first_order=true gives first-order MAML).
* reptile  GIN + MLP head; meta.inner_steps first-order SGD steps on the support, then the outer
           step moves towards the adapted weights (Nichol et al. 2018). Its meta-gradient is
           theta - phi, obtained as the gradient of 0.5 * ||theta - stopgrad(phi)||^2, so the
           workers' backward pass and the learner's AdamW step serve it unchanged (Nichol et al.
           treat theta - phi as a gradient for Adam in the same way).
* protonet GIN; class prototypes from the support embeddings, no inner loop (meta.inner_steps and
           meta.inner_lr are not used).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor

from gsrl.meta.config import MetaConfig
from gsrl.meta import maml
from gsrl.models.baselines import ClassifierNetwork, PrototypeNetwork
from gsrl.models.episode_network import EpisodeNetwork
from gsrl.models.gsmeta import GSMetaModel

Params = dict[str, Tensor]
LossFn = Callable[[Params], Tensor]


class AdaptationRule(ABC):
    @abstractmethod
    def adapt(self, loss_fn: LossFn, params: Params, names: Sequence[str], meta: MetaConfig,
              differentiable: bool) -> tuple[Params, list[Tensor]]:
        """Task-adapted parameters and each inner step's support loss. differentiable=False: the values
        only, without a second-order graph."""

    def meta_objective(self, params: Params, adapted: Params, query_loss: Tensor) -> Tensor:
        """The per-episode quantity whose gradient with respect to params is the meta-gradient."""
        return query_loss


class GradientAdaptation(AdaptationRule):
    """MAML: meta.inner_steps SGD steps; the outer gradient flows through them unless first order."""

    def adapt(self, loss_fn, params, names, meta, differentiable):
        return maml.adapt(loss_fn, params, names, meta.inner_steps, meta.inner_lr,
                          meta.first_order or not differentiable)


class ReptileAdaptation(AdaptationRule):
    """Reptile: first-order inner SGD; the meta-gradient is the step from the adapted weights back."""

    def adapt(self, loss_fn, params, names, meta, differentiable):
        return maml.adapt(loss_fn, params, names, meta.inner_steps, meta.inner_lr, first_order=True)

    def meta_objective(self, params, adapted, query_loss):
        return 0.5 * sum((params[name] - adapted[name].detach()).pow(2).sum() for name in params)


class NoAdaptation(AdaptationRule):
    """ProtoNet: the support set enters through the prototypes, never through the weights."""

    def adapt(self, loss_fn, params, names, meta, differentiable):
        return dict(params), []


@dataclass(frozen=True)
class Algorithm:
    name: str
    network: type[EpisodeNetwork]
    rule: AdaptationRule


ALGORITHMS = {
    "gsmeta": Algorithm("gsmeta", GSMetaModel, GradientAdaptation()),
    "maml": Algorithm("maml", ClassifierNetwork, GradientAdaptation()),
    "reptile": Algorithm("reptile", ClassifierNetwork, ReptileAdaptation()),
    "protonet": Algorithm("protonet", PrototypeNetwork, NoAdaptation()),
}


def algorithm_named(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"meta.algorithm '{name}' is not one of {sorted(ALGORITHMS)}") from None
