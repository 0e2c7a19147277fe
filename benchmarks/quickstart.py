"""Wall time and accuracy of the quickstart, timed as a user runs it: the `gsrl train` command of
`make quickstart`, in a fresh process, into a fresh output folder.

The processed-data cache is warmed first (a user's second run, and every run after `gsrl data report`)
unless --cold; `run.threads` is the config's (null: torch's default, one thread per core). The figure
holds for an otherwise idle machine: other work on the same cores slows it in proportion.

    python benchmarks/quickstart.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gsrl.config import load_config
from gsrl.runtime import load_dataset
from record import provenance, write

CONFIG = "configs/quickstart.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="time the data featurization too")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="write the run under DIR and keep it (default: a temporary folder, removed)")
    args = parser.parse_args()

    config = load_config(CONFIG, [])
    if not args.cold:
        load_dataset(config)
    gsrl = str(Path(sys.executable).parent / "gsrl")
    output = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gsrl-quickstart-"))
    command = [gsrl, "train", "-c", CONFIG, "-o", "run.progress=false", "-o", f"run.output_dir={output}"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall_seconds = time.perf_counter() - started
    results = json.loads((output / config.name / "results.json").read_text())
    if not args.keep:
        shutil.rmtree(output, ignore_errors=True)
    record = {
        "benchmark": "quickstart",
        **provenance(),
        "run_command": f"gsrl train -c {CONFIG} -o run.progress=false",
        "wall_seconds": round(wall_seconds, 1),
        "data_cache": "cold" if args.cold else "warm",
        "run_threads": config.run.threads,
        "note": (f"wall time of the whole command ({'cold' if args.cold else 'warm'} data cache), "
                 f"run.threads {config.run.threads or 'unset (one per core)'}, nothing else running"),
        "results": results,
    }
    print(write(record, f"quickstart-{config.data.dataset}-{config.episode.shots}shot-seed{config.run.seed}"))


if __name__ == "__main__":
    main()
