"""`scheduler`: the policy that picks each meta-batch's episodes, its reward, and how it learns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gsrl.domains import NonNegativeFloat, PositiveFloat, PositiveInt


@dataclass
class SchedulerConfig:
    policy: str = "gsmeta"  # registry name, or "package.module:ClassName" for a user's own policy
    pool_size: PositiveInt = 10  # properties in the candidate pool (capped by the number of training properties)
    pairs: PositiveInt = 5  # B pairs of subgraphs selected per meta-iteration
    reward: str = "contrastive"  # registry name in envs.rewards
    lr: PositiveFloat = 5e-4
    weight_decay: NonNegativeFloat = 5e-5
    grad_clip: PositiveFloat = 1.0
    hidden_dim: PositiveInt = 10
    temperature: PositiveFloat = 1.0
    temperature_step: PositiveInt = 500  # tau = (iteration // temperature_step + 1) * temperature
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments for the policy class
