"""Are two runs the same computation? Compare their checkpoints at one iteration, tensor by tensor.

Used to show that a Ray run reproduces the one-process run bit for bit (same config, same torch
threads per worker): every tensor of the learner (model, AdamW state), the scheduler policy and its
learner, and the per-iteration losses and rewards.

    python benchmarks/compare_checkpoints.py RUN_A/checkpoints/iter_000020.pt RUN_B/checkpoints/iter_000020.pt \
        --name backend-equivalence-sider-10shot
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from record import provenance, write

from gsrl.checkpoint import load_on_cpu


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts/lists keyed by their path."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in flatten(value, f"{prefix}{key}/").items()}
    if isinstance(tree, (list, tuple)):
        return {k: v for i, value in enumerate(tree) for k, v in flatten(value, f"{prefix}{i}/").items()}
    return {prefix.rstrip("/"): tree}


def compare(first: dict, second: dict) -> dict[str, Any]:
    a, b = flatten(first), flatten(second)
    ignored = [k for k in a if k.startswith("segments/")]  # when and by which process, not what was computed
    keys = sorted((set(a) | set(b)) - set(ignored))
    missing = [k for k in keys if k not in a or k not in b]
    differing, max_abs = [], 0.0
    tensors = 0
    for key in keys:
        if key in missing:
            continue
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            tensors += 1
            if not torch.equal(x, y):
                differing.append(key)
                if x.is_floating_point():
                    max_abs = max(max_abs, float((x.double() - y.double()).abs().max()))
        elif x != y and key.rsplit("/", 1)[-1] != "seconds":  # wall time differs by nature
            differing.append(key)
    return {"leaves_compared": len(keys) - len(missing), "tensors_compared": tensors, "missing": missing,
            "differing": differing, "max_abs_difference": max_abs, "identical": not missing and not differing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--name", default=None, help="write benchmarks/results/<name>.json")
    args = parser.parse_args()
    states = [load_on_cpu(path) for path in (args.first, args.second)]
    result = compare(*states)
    print(json.dumps({k: v for k, v in result.items() if k != "differing"} | {"differing": result["differing"][:20]},
                     indent=2))
    if args.name:
        record = {"benchmark": "compare_checkpoints", **provenance(),
                  "first": str(args.first), "second": str(args.second),
                  "iteration": states[0]["env"]["iteration"], **result}
        print(f"wrote {write(record, args.name)}")


if __name__ == "__main__":
    main()
