"""What each policy of a comparison selected: per-property shares, entropy and co-selection over the run.

Reads a comparison's finished runs (run folders, or the packed records kept in the repository) and
writes, for each column, the share of meta-batches that selected each training property (mean over
seeds), the selection entropy over its maximum per tenth of the run, and which properties the policy
selected together beyond what their own frequencies explain (co-selection lift, counts pooled over
seeds, `gsrl.stats.co_selection_lift`), as JSON and as one picture:

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
from gsrl.stats import co_selection_lift

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "figures"
# A pair is listed among a policy's most co-selected only if it was selected together this often (pooled
# over seeds): fewer, and one chance meta-batch moves its lift by a large factor.
MIN_PAIR_COUNT = 5
TOP_PAIRS = 3


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


def pooled_co_selection(records: list[dict]) -> dict:
    """Co-selection counts summed over seeds (every seed has the same training properties, and a
    meta-batch is a meta-batch whichever seed drew it), their lift, its spread over property pairs, and
    the most co-selected pairs."""
    properties = records[0]["properties"]
    if any(r["properties"] != properties for r in records):
        raise ValueError("runs of one column list different training properties")
    counts = np.sum([np.array(r["co_selection"]) for r in records], axis=0)
    lift = co_selection_lift(counts, sum(r["meta_batches"] for r in records))
    upper = np.triu_indices(len(properties), k=1)
    finite = np.isfinite(lift[upper])
    ranked = sorted(((lift[a, b], a, b) for a, b in zip(*upper) if counts[a, b] >= MIN_PAIR_COUNT), reverse=True)
    return {"co_selection_lift": [[None if np.isnan(x) else round(float(x), 4) for x in row] for row in lift],
            "co_selection_lift_std": float(np.std(lift[upper][finite])) if finite.any() else None,
            "most_co_selected": [{"pair": [properties[a], properties[b]], "lift": float(value),
                                  "meta_batches": int(counts[a, b])} for value, a, b in ranked[:TOP_PAIRS]]}


def summarize(found: dict) -> dict:
    """Per column: properties, mean selection share per property, mean relative entropy per tenth, and
    the co-selection lift pooled over the seeds every column has finished (lift's spread shrinks with
    the counts pooled, so columns are compared on the same seeds, hence the same candidate pools)."""
    common = sorted(set.intersection(*(set(by_seed) for by_seed in found["runs"].values())))
    summary = {}
    for column, by_seed in found["runs"].items():
        records = list(by_seed.values())
        shares = np.mean([np.array(r["selected"]) / r["meta_batches"] for r in records], axis=0)
        relative = np.mean([[e / m if e is not None and m else np.nan
                             for e, m in zip(r["entropy_by_tenth"], r["entropy_max_by_tenth"])]
                            for r in records], axis=0)
        summary[column] = {"seeds": sorted(by_seed), "properties": records[0]["properties"],
                           "selection_share": shares.tolist(), "entropy_relative_by_tenth": relative.tolist(),
                           "co_selection_seeds": common,
                           **(pooled_co_selection([by_seed[s] for s in common]) if common else {})}
    return summary


def draw(name: str, columns: list[str], summary: dict, path: Path) -> None:
    """Top: selection shares and relative entropy per column. Bottom: the co-selection lift of the first
    column other than `uniform` and of `uniform` (the chance level, noise included) on one colour scale,
    and every column's lift spread."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    shown = [c for c in columns if c in summary]
    properties = summary[shown[0]]["properties"]
    numbered = [f"{i + 1}. {p}" for i, p in enumerate(properties)]
    shares = np.array([summary[c]["selection_share"] for c in shown])
    figure = plt.figure(figsize=(18, 0.45 * len(shown) + 11))
    grid = figure.add_gridspec(2, 3, height_ratios=[0.45 * len(shown) + 4.5, 6], width_ratios=[1.4, 1.4, 1])
    heat = figure.add_subplot(grid[0, :2])
    image = heat.imshow(shares, cmap="viridis", aspect="auto")
    heat.set_yticks(range(len(shown)), labels=[f"{c} (n={len(summary[c]['seeds'])})" for c in shown])
    heat.set_xticks(range(len(properties)), labels=numbered, rotation=90, fontsize=7)
    heat.set_title(f"{name}: share of meta-batches that selected each training property (mean over seeds)",
                   fontsize=9)
    figure.colorbar(image, ax=heat, label="share of meta-batches")
    lines = figure.add_subplot(grid[0, 2])
    for column in shown:
        relative = summary[column]["entropy_relative_by_tenth"]
        lines.plot(np.arange(1, len(relative) + 1), relative, marker="o", label=column)
    lines.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    lines.set_xlabel("tenth of the run")
    lines.set_ylabel("entropy / ln(candidate pairs)")
    lines.set_title("how far from uniform each policy picks (1 = uniform)", fontsize=9)
    lines.legend(fontsize=7)
    first_policy = next((c for c in shown if c != "uniform"), shown[0])
    lifted = [c for c in dict.fromkeys([first_policy, "uniform"]) if c in shown and summary[c]["co_selection_seeds"]]
    norm = LogNorm(vmin=0.25, vmax=4.0)
    for slot, column in enumerate(lifted):
        axis = figure.add_subplot(grid[1, slot])
        lift = np.array([[np.nan if x is None else x for x in row] for row in summary[column]["co_selection_lift"]])
        image = axis.imshow(np.clip(lift, norm.vmin, norm.vmax), cmap="coolwarm", norm=norm)
        ticks = range(len(properties))
        axis.set_xticks(ticks, labels=[str(i + 1) for i in ticks], fontsize=6)
        axis.set_yticks(ticks, labels=[str(i + 1) for i in ticks], fontsize=6)
        axis.set_title(f"{column}: co-selection lift, pooled over seeds {summary[column]['co_selection_seeds']}\n"
                       "(1 = as often as the two properties' own frequencies predict)", fontsize=9)
        scale = figure.colorbar(image, ax=axis, label="lift (log scale, clipped to 1/4-4)")
        scale.set_ticks([0.25, 0.5, 1.0, 2.0, 4.0], labels=["1/4", "1/2", "1", "2", "4"])
        scale.minorticks_off()
    bars = figure.add_subplot(grid[1, 2])
    spreads = [summary[c].get("co_selection_lift_std") or 0.0 for c in shown]
    bars.barh(range(len(shown)), spreads, color=["tab:orange" if c == "uniform" else "tab:blue" for c in shown])
    bars.set_yticks(range(len(shown)), labels=shown, fontsize=8)
    bars.invert_yaxis()
    bars.set_xlabel("std of co-selection lift over property pairs")
    bars.set_title("pairing beyond chance (uniform: the noise floor)", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
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
