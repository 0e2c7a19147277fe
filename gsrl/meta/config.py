"""The meta-learner's config section, kept free of the experiment schema so the algorithms depend on nothing above."""

from __future__ import annotations

from dataclasses import dataclass, field

from gsrl.domains import NonNegativeFloat, NonNegativeInt, PositiveFloat


@dataclass
class MetaConfig:
    algorithm: str = "gsmeta"  # gsmeta | maml | reptile | protonet (gsrl.meta.algorithms)
    inner_steps: NonNegativeInt = 1
    inner_lr: NonNegativeFloat = 0.5
    first_order: bool = False
    # Parameter groups the inner loop adapts: all | encoder | relation | classifier | property_embeddings.
    adapt: list[str] = field(default_factory=lambda: ["all"])
    outer_lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 5e-5
    grad_clip: PositiveFloat = 1.0
    contrastive_weight: NonNegativeFloat = 0.05  # ablation "w/o CL" sets 0
    contrastive_temperature: PositiveFloat = 0.08
    # Keep each episode's autograd graph between phase 1 and phase 2 (fast), or recompute the
    # episodes one at a time in phase 2 (same gradient, about one episode's graph in memory, slower).
    retain_episode_graphs: bool = True
