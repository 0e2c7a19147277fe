"""metatrain_speed of two commits, alternated in one run: the ratio a speed change is judged by.

Absolute times on a shared machine drift by tens of percent within an hour, so a before/after
comparison runs `metatrain_speed.py` of the base revision (a temporary git worktree) and of this
checkout in turns, `--rounds` times each, and reports per-round ratios and their median.

    python benchmarks/metatrain_speed_paired.py --base 134e9b8 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from gsrl.data.roots import resolve_data_root
from record import provenance, write

REPO = Path(__file__).resolve().parent.parent
KEYS = ("seconds_per_iteration", "seconds_per_evaluation", "peak_rss_gb_training")


def speed(tree: Path, args: argparse.Namespace, stem: str) -> dict:
    """One metatrain_speed.py run of the code in `tree`; its record."""
    command = [sys.executable, "benchmarks/metatrain_speed.py", "-c", args.config, "--iterations",
               str(args.iterations), "--warmup", "1", "--evaluations", "1", "--name", stem]
    # gsrl imported from that tree, not the installed checkout; both read this checkout's data root
    env = {**os.environ, "PYTHONPATH": str(tree), "GSRL_DATA_ROOT": str(resolve_data_root(None))}
    subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    out = tree / "benchmarks" / "results" / f"{stem}.json"
    record = json.loads(out.read_text())
    out.unlink()
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("-c", "--config", default="configs/gsmeta/sider-10shot.yaml")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="metatrain_speed_paired-sider-10shot-cpu2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base_tree = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=REPO, check=True,
                       capture_output=True)
        try:
            rounds = []
            for index in range(args.rounds):
                after = speed(REPO, args, f"paired-after-{index}")
                before = speed(base_tree, args, f"paired-before-{index}")
                rounds.append({"before": {k: before[k] for k in KEYS}, "after": {k: after[k] for k in KEYS},
                               "before_commit": before["git_commit"], "after_commit": after["git_commit"]})
                print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, check=False)
    ratios = {k: statistics.median(r["after"][k] / r["before"][k] for r in rounds) for k in KEYS}
    record = {"benchmark": "metatrain_speed_paired", **provenance(), "config": args.config, "base": args.base,
              "iterations_per_run": args.iterations, "rounds": rounds, "median_after_over_before": ratios}
    out = write(record, args.name)
    print(json.dumps(ratios, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
