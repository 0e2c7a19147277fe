"""Gymnasium environments of gsrl; importing this package registers them.

The registered entry point is the application layer's builder, named as a string so this package
imports no role: `gymnasium.make` resolves it only when an environment is made.
"""

import gymnasium

ENV_ID = "gsrl/TaskScheduler-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="gsrl.jobs.assembly:make_scheduler_env")
