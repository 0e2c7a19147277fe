"""Export the evaluation curve of a (possibly unfinished) run to a result JSON.

Reads the run's resolved config and its newest valid checkpoint (the periodic paper-protocol
evaluations it holds), so the curve of a run still in progress can be recorded honestly with its
config, seed, protocol and commit. Once the run has finished, its results.json protocols (paper
and honest) are recorded beside the curve.

    python benchmarks/export_curve.py RUN_DIR --out benchmarks/results/NAME.json [--until 100]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from gsrl.checkpoint import CheckpointStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--until", type=int, default=None, help="keep evaluations up to this iteration")
    args = parser.parse_args()

    restored = CheckpointStore(args.run_dir / "checkpoints").load_latest()
    if restored is None:
        sys.exit(f"{args.run_dir} has no valid checkpoint")
    state, entry = restored
    metadata = json.loads((args.run_dir / "checkpoints" / "metadata.json").read_text())
    curve = [c for c in state["periodic"] if args.until is None or c["iteration"] <= args.until]
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    record = {
        "protocol": "paper (one support draw per test property at each periodic evaluation)",
        "dataset": config["data"]["dataset"], "shots": config["episode"]["shots"], "seed": config["run"]["seed"],
        "checkpoint_iteration": entry["iteration"],
        "curve": [{"iteration": c["iteration"], "auc_mean": c["auc_mean"], "auc_std": c["auc_std"],
                   "per_property": c["per_property"]} for c in curve],
        "git_commit": metadata.get("git_commit"),
        "segments": state["segments"],  # the processes (commit, backend, workers) that ran the run
        "versions": metadata.get("versions"),
        "command": "gsrl train -c <config> (resolved config below)",
        "config": config,
    }
    finished = args.run_dir / "results.json"
    if finished.exists() and args.until is None:
        record["protocols"] = json.loads(finished.read_text())["protocols"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(json.dumps([(c["iteration"], round(100 * c["auc_mean"], 2)) for c in record["curve"]]))


if __name__ == "__main__":
    main()
