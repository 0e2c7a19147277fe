"""Gymnasium environments of gsrl; importing this package registers them."""

import gymnasium

ENV_ID = "gsrl/TaskScheduler-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="envs.task_scheduler:TaskSchedulerEnv")
