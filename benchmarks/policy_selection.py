"""What each policy of a comparison selected: per-property selection shares and entropy over the run.

Reads a comparison's finished runs (run folders, or the packed records kept in the repository) and
writes, for each column, the share of meta-batches that selected each training property (mean over
seeds) and the selection entropy over its maximum per tenth of the run, as JSON and as one picture:

    python benchmarks/policy_selection.py configs/compare/sider-10shot-policies.yaml

Output: benchmarks/results/policy-selection-<comparison>.json and docs/figures/policy-selection-<comparison>.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gsrl.compare.config import CompareConfig
from gsrl.config import load_config
from gsrl.jobs.compare import run_directory
from gsrl.jobs.grid import RunPack

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "figures"


def selections(compare_file: Path) -> dict:
    """Column -> the finished runs' selection records, by seed."""
    config = load_config(compare_file, schema=CompareConfig)
    run_config = config.resolved_run_config(compare_file)
    output = ROOT / config.run.output_dir
    pack = RunPack(output / "runs")
    found: dict[str, dict[int, dict]] = {}
    for column in config.algorithms:
        for seed in config.seeds:
            results = pack.results(run_directory(output, config.cell_config(column, seed, run_config)))
            if results is not None and results.get("selection"):
                found.setdefault(column, {})[seed] = results["selection"]
    return {"name": config.name, "columns": list(config.algorithms), "runs": found}


def summarize(found: dict) -> dict:
    """Per column: properties, mean selection share per property, mean relative entropy per tenth."""
    summary = {}
    for column, by_seed in found["runs"].items():
        records = list(by_seed.values())
        shares = np.mean([np.array(r["selected"]) / r["meta_batches"] for r in records], axis=0)
        relative = np.mean([[e / m if e is not None and m else np.nan
                             for e, m in zip(r["entropy_by_tenth"], r["entropy_max_by_tenth"])]
                            for r in records], axis=0)
        summary[column] = {"seeds": sorted(by_seed), "properties": records[0]["properties"],
                           "selection_share": shares.tolist(), "entropy_relative_by_tenth": relative.tolist()}
    return summary


def draw(name: str, columns: list[str], summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in columns if c in summary]
    properties = summary[shown[0]]["properties"]
    shares = np.array([summary[c]["selection_share"] for c in shown])
    figure, (heat, lines) = plt.subplots(1, 2, figsize=(16, 0.45 * len(shown) + 4.5),
                                         gridspec_kw={"width_ratios": [3, 1]})
    image = heat.imshow(shares, cmap="viridis", aspect="auto")
    heat.set_yticks(range(len(shown)), labels=[f"{c} (n={len(summary[c]['seeds'])})" for c in shown])
    heat.set_xticks(range(len(properties)), labels=properties, rotation=90, fontsize=7)
    heat.set_title(f"{name}: share of meta-batches that selected each training property (mean over seeds)",
                   fontsize=9)
    figure.colorbar(image, ax=heat, label="share of meta-batches")
    for column in shown:
        relative = summary[column]["entropy_relative_by_tenth"]
        lines.plot(np.arange(1, len(relative) + 1), relative, marker="o", label=column)
    lines.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    lines.set_xlabel("tenth of the run")
    lines.set_ylabel("entropy / ln(candidate pairs)")
    lines.set_title("how far from uniform each policy picks (1 = uniform)", fontsize=9)
    lines.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("compare_config", type=Path)
    arguments = parser.parse_args()
    found = selections(arguments.compare_config.resolve())
    if not found["runs"]:
        raise SystemExit(f"{arguments.compare_config}: no finished run records its selections yet")
    summary = summarize(found)
    out = ROOT / "benchmarks" / "results" / f"policy-selection-{found['name']}.json"
    out.write_text(json.dumps({"comparison": found["name"], "compare_config": str(arguments.compare_config),
                               "columns": summary}, indent=1))
    figure = FIGURES / f"policy-selection-{found['name']}.png"
    draw(found["name"], found["columns"], summary, figure)
    print(f"{out}\n{figure}")


if __name__ == "__main__":
    main()
