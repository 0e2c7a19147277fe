"""Rewards for the scheduler: functions of one meta-iteration's outcome, chosen by name in the config."""

from __future__ import annotations

from collections.abc import Callable

from gsrl.meta.messages import EpisodeSummary, OuterStep

Reward = Callable[[OuterStep, list[EpisodeSummary]], float]


def contrastive(outer: OuterStep, summaries: list[EpisodeSummary]) -> float:
    """GS-Meta's reward: the NT-Xent value of the selected batch (harder to tell apart scores higher)."""
    return outer.contrastive_loss


def query_loss(outer: OuterStep, summaries: list[EpisodeSummary]) -> float:
    """Mean query loss of the selected episodes: favours batches the model still gets wrong."""
    return outer.query_loss


REWARDS: dict[str, Reward] = {"contrastive": contrastive, "query_loss": query_loss}


def make_reward(name: str) -> Reward:
    if name not in REWARDS:
        raise ValueError(f"scheduler.reward '{name}' is unknown; choose from {sorted(REWARDS)}")
    return REWARDS[name]
