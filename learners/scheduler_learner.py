"""SchedulerLearner: REINFORCE with a running-mean baseline for scheduler policies that have parameters."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gsrl.scheduling.config import SchedulerConfig


@dataclass
class PolicyStep:
    reward: float
    baseline: float
    advantage: float
    policy_loss: float


class SchedulerLearner:
    def __init__(self, policy, config: SchedulerConfig):
        self.policy = policy
        self.config = config
        params = list(policy.parameters()) if hasattr(policy, "parameters") else []
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay) if params else None
        self.baseline = 0.0
        self.count = 0

    def update(self, log_prob: Tensor | None, reward: float) -> PolicyStep:
        """loss = -log p(selected set) * (R - b); b is the mean of all earlier rewards."""
        baseline = self.baseline
        advantage = reward - baseline
        loss_value = 0.0
        if self.optimizer is not None and log_prob is not None:
            loss = -log_prob * advantage
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.grad_clip)
            self.optimizer.step()
            loss_value = float(loss.detach())
        self.count += 1
        self.baseline += (reward - self.baseline) / self.count
        return PolicyStep(reward, baseline, advantage, loss_value)

    def state_dict(self) -> dict:
        return {"optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
                "baseline": self.baseline, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        if self.optimizer is not None and state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.baseline, self.count = state["baseline"], state["count"]
