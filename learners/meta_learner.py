"""MetaLearner: owns the meta-parameters, applies the outer update, versions the weights.

The update is the same whichever algorithm produced the meta-gradient (MAML, Reptile, ProtoNet, GS-Meta).
"""

from __future__ import annotations

import logging
import math
import torch
from torch import Tensor

from gsrl.config import Config
from gsrl.meta.losses import nt_xent
from gsrl.meta.messages import EpisodeSummary, OuterStep, Weights
from gsrl.models.episode_network import EpisodeNetwork

log = logging.getLogger(__name__)


class MetaLearner:
    def __init__(self, model: EpisodeNetwork, config: Config):
        self.config = config
        self.restart(model)

    def restart(self, model: EpisodeNetwork) -> None:
        """Begin a new meta-training run from `model`'s weights: fresh AdamW state, version 0."""
        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=self.config.meta.outer_lr,
                                           weight_decay=self.config.meta.weight_decay)
        self.version = 0
        self.skipped_updates = 0

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def weights(self) -> Weights:
        return Weights(self.version, {k: v.detach() for k, v in self.model.named_parameters()},
                       {k: v.detach() for k, v in self.model.named_buffers()})

    def contrastive_gradient(self, summaries: list[EpisodeSummary]) -> tuple[float, Tensor]:
        """lambda * NT-Xent over the pairs (first half of the specs vs second half) and its gradient wrt each g."""
        meta = self.config.meta
        embeddings = torch.stack([s.embedding for s in summaries]).detach().requires_grad_(True)
        pairs = embeddings.shape[0] // 2
        loss = nt_xent(embeddings[:pairs], embeddings[pairs:], meta.contrastive_temperature)
        (grad,) = torch.autograd.grad(meta.contrastive_weight * loss, embeddings)
        return float(loss.detach()), grad

    def apply(self, grads: dict[str, Tensor], summaries: list[EpisodeSummary], contrastive: float) -> OuterStep:
        """One AdamW step with clipped gradients; skipped (and counted) if anything is non-finite."""
        query = sum(s.query_loss for s in summaries) / len(summaries)
        supports = [s.support_loss for s in summaries if s.support_loss is not None]
        support = sum(supports) / len(supports) if supports else float("nan")
        total = query + self.config.meta.contrastive_weight * contrastive
        finite = math.isfinite(total) and all(bool(torch.isfinite(g).all()) for g in grads.values())
        if not finite:
            self.skipped_updates += 1
            log.warning("non-finite loss or gradient at version %d (loss %.4g); update skipped (%d so far)",
                        self.version, total, self.skipped_updates)
            return OuterStep(query, support, contrastive, total, float("nan"), self.lr, False)
        for name, param in self.model.named_parameters():
            param.grad = grads[name].to(param.device)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.meta.grad_clip))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._update_buffers(summaries)
        self.version += 1
        return OuterStep(query, support, contrastive, total, grad_norm, self.lr, True)

    @torch.no_grad()
    def _update_buffers(self, summaries: list[EpisodeSummary]) -> None:
        """Running statistics become the sequential composition of the episodes' proposals."""
        current = {name: buffer.clone() for name, buffer in self.model.named_buffers()}
        composed = compose_running_statistics(self.model, current, [s.proposed_buffers for s in summaries])
        for name, buffer in self.model.named_buffers():
            buffer.copy_(composed[name])

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "version": self.version, "skipped_updates": self.skipped_updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.version = state["version"]
        self.skipped_updates = state["skipped_updates"]

    def close(self) -> None:
        """Nothing to release in the driver process."""


def compose_running_statistics(model: torch.nn.Module, start: dict[str, Tensor],
                               proposals: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Chain per-episode BatchNorm proposals as if the episodes had run one after another.

    An episode whose forwards moved a layer's statistics k times (k = its num_batches_tracked
    increase) from `start` proposed p = (1 - m)^k * start + b, with b depending only on its own
    batches. Starting instead from the previous episode's result r gives (1 - m)^k * r + b.
    """
    result = {name: tensor.clone() for name, tensor in start.items()}
    for name, value in start.items():
        if not name.endswith(("running_mean", "running_var")):
            continue
        prefix = name.rsplit(".", 1)[0]
        momentum = model.get_submodule(prefix).momentum
        counter = f"{prefix}.num_batches_tracked"
        for proposal in proposals:
            steps = int(proposal[counter] - start[counter])
            decay = (1.0 - momentum) ** steps
            result[name] = decay * result[name] + (proposal[name] - decay * value)
    for name in start:
        if name.endswith("num_batches_tracked"):
            result[name] = start[name] + sum(p[name] - start[name] for p in proposals)
    return result
