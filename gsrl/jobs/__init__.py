"""The application layer: one driver per job, over the roles (envs, actors, learners) and the library.

train (meta-training), compare, pretrain, finetune, gae (link prediction and its sweep) and
molecular_vgae each read a typed config, assemble the roles they need (assembly), and are the only
writers of their run directory; grid runs the grids of compare, finetune and the link sweep.
Nothing below this package imports it (import-linter contracts in pyproject.toml).
"""
