"""Build docs/results.md from the committed result files under benchmarks/results/.

    python benchmarks/results_md.py           # write docs/results.md
    python benchmarks/results_md.py --check   # exit 1 when docs/results.md is stale

Only grid-level files are read (a comparison's or a sweep's results.json, the selection's
selection.json), never the per-run folders of a grid. The output depends on the result files (and,
for the command lines, on the configs that carry the results' names) alone: no clock, no git, and
every list is in a fixed order, so the same inputs always give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = ROOT / "configs"
SHIPPED = ROOT / "gsrl" / "models" / "pretrained" / "gin_attribute_masking_moses.json"
OUT = ROOT / "docs" / "results.md"
COMMAND = "python benchmarks/results_md.py"


# ----------------------------------------------------------------------------- formatting


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}"


def _pm(mean: float, std: float, digits: int = 1, scale: float = 100.0) -> str:
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def _num(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _duration(seconds: float) -> str:
    """7 min 22 s under an hour, 2 h 30 min above."""
    if seconds >= 3600:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A markdown table; align holds one character per column, 'l' or 'r' (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _machine(record: dict) -> str:
    m = record.get("machine") or {}
    parts = []
    if m.get("cuda"):
        parts.append(m["cuda"])
    if m.get("cpu_count"):
        parts.append(f"{m['cpu_count']} cores" + (f" ({m['cpu_model']})" if m.get("cpu_model") else ""))
    if m.get("torch_threads"):
        parts.append(f"torch threads: {m['torch_threads']}")
    return ", ".join(parts) if parts else "not recorded"


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _source(*paths: Path) -> str:
    return "File: " + ", ".join(f"`{_rel(p)}`" for p in paths) + "."


# Config keys that moved into the shared data / run / ray sections of every job's config: commands recorded with
# the earlier flat keys are shown with today's, so that they run as printed.
_MOVED_KEYS = {"data_root": "data.root", "cache_dir": "data.cache_dir", "output_dir": "run.output_dir",
               "device": "run.device", "threads": "run.threads", "workers": "run.workers", "address": "ray.address",
               "num_cpus": "ray.worker_cpus", "num_gpus": "ray.worker_gpus", "cpus_per_worker": "ray.worker_cpus",
               "gpus_per_worker": "ray.worker_gpus", "max_failures": "ray.max_failures"}


def _current_keys(command: str) -> str:
    if command.split()[:2] == ["gsrl", "train"]:  # meta-training's keys were sectioned from the start
        return command
    return re.sub(r"(-o\s+[\"']?)(\w+)=", lambda m: m.group(1) + _MOVED_KEYS.get(m.group(2), m.group(2)) + "=",
                  command)


def _code(command: str) -> str:
    return f"Command: `{_current_keys(command)}`."


# ----------------------------------------------------------------------------- configs


def _config_named(folder: Path, name: str) -> Path | None:
    """The YAML file under folder whose own `name:` is name (first in sorted order)."""
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if data.get("name") == name:
            return path
    return None


def _config_key(path: Path, key: str):
    """A top-level key of a config, following its `base:` chain."""
    seen = set()
    while path is not None and path not in seen:
        seen.add(path)
        data = yaml.safe_load(path.read_text()) or {}
        if key in data:
            return data[key]
        path = path.parent / data["base"] if data.get("base") else None
    return None


def _command_for(subcommand: str, folder: Path, name: str, seeds: list[int] | None = None) -> str:
    path = _config_named(folder, name)
    if path is None:
        return f"{subcommand} -c <the config named {name}>"
    command = f"{subcommand} -c {_rel(path)}"
    if seeds is not None and _config_key(path, "seeds") not in (None, seeds):
        command += ' -o "seeds=[' + ",".join(str(s) for s in seeds) + ']"'
    return command


# ----------------------------------------------------------------------------- sections


def _quickstart() -> list[str]:
    path = RESULTS / "quickstart-sider-10shot-seed0.json"
    d = _load(path)
    r = d["results"]
    paper, honest = r["protocols"]["paper"], r["protocols"]["honest"]
    first = r["curve"][0]
    draws = r["config"]["eval"]["final_draws"]
    rows = [
        ["wall time of the command", _duration(d["wall_seconds"])],
        [f"paper protocol, iteration {first['iteration']}", _pct(first["auc_mean"])],
        [f"paper protocol, best (iteration {paper['iteration']})", _pct(paper["auc_mean"])],
        [f"honest protocol, iteration {honest['iteration']} ({draws} draws)",
         _pm(honest["auc_mean"], honest["auc_std"])],
    ]
    return [
        "## Quickstart",
        "",
        (f"{r['dataset'].upper()} {r['shots']}-shot, seed {r['seed']}, {r['iterations']} meta-iterations, "
         f"policy `{r['policy']}`; machine: {_machine(d)}. {_sentence(d['note'])}"),
        "",
        *_table(["measure", "value"], rows),
        "",
        _code(d["command"]) + " " + _source(path),
    ]


def _full_runs() -> list[str]:
    paths = sorted(RESULTS.glob("full-*.json"))
    runs = [(p, _load(p)) for p in paths]
    rows = []
    for path, d in runs:
        paper, honest = d["protocols"]["paper"], d["protocols"]["honest"]
        segments = d.get("segments") or []
        backends = sorted({f"{s['backend']} × {s['workers']}" for s in segments})
        walls = [s["wall_seconds"] for s in segments if "wall_seconds" in s]
        wall = _duration(sum(walls)) if walls and len(walls) == len(segments) else "—"
        rows.append([
            f"`{path.name}`",
            f"{d['dataset']} {d['shots']}-shot",
            str(d["seed"]),
            str(d["config"]["run"]["iterations"]),
            ", ".join(backends) or "—",
            _pct(paper["auc_mean"], 2),
            str(paper["iteration"]),
            _pm(honest["auc_mean"], honest["auc_std"], 2),
            str(d["config"]["eval"]["final_draws"]),
            str(len(segments)),
            wall,
        ])
    lines = [
        "## GS-Meta, full protocol",
        "",
        ("Published settings (`configs/gsmeta/*.yaml`), from scratch. Paper protocol: best of the periodic "
         "one-draw evaluations; honest protocol: final model, ROC-AUC averaged over the support draws. "
         "A run may span several segments (resumed from its last checkpoint); the wall time is the sum "
         "of the segments' meta-training time where every segment recorded it."),
        "",
        *_table(["file", "setting", "seed", "iterations", "backend × workers", "paper", "at iteration",
                 "honest", "draws", "segments", "wall time"], rows, "llrrlrrrrrr"),
        "",
    ]
    for path, d in runs:
        walls = [(s["start_iteration"], s["wall_seconds"]) for s in d.get("segments") or [] if "wall_seconds" in s]
        if len(walls) > 1:
            parts = ", ".join(f"from iteration {start}: {_duration(w)}" for start, w in walls)
            lines += [f"Segments of `{path.name}`: {parts}.", ""]
    iterations = sorted({c["iteration"] for _, d in runs for c in d["curve"]})
    curve_rows = []
    for it in iterations:
        row = [str(it)]
        for _, d in runs:
            point = next((c for c in d["curve"] if c["iteration"] == it), None)
            row.append(_pct(point["auc_mean"]) if point else "—")
        curve_rows.append(row)
    commands = []
    for _, d in runs:
        run = d["config"]["run"]
        path = _config_named(CONFIGS / "gsmeta", d["config"]["name"])
        config = _rel(path) if path else f"<the config named {d['config']['name']}>"
        commands.append(f"`gsrl train -c {config} -o run.backend={run['backend']} -o run.workers={run['workers']} "
                        f"-o run.threads={run['threads']}`")
    lines += [
        "Paper-protocol curve (mean test ROC-AUC of one support draw per property):",
        "",
        *_table(["iteration", *[f"{d['dataset']} {d['shots']}-shot" for _, d in runs]], curve_rows),
        "",
        "Commands: " + "; ".join(commands) + "; each curve exported with "
        "`python benchmarks/export_curve.py RUN_DIR --out FILE`. " + _source(*paths),
    ]
    return lines


def _early_curves() -> list[str]:
    paths = sorted(RESULTS.glob("early-curve-*.json"))
    groups = [("spec order (current rule)", [p for p in paths if "-bnseq-" in p.name]),
              ("mean of proposals (earlier rule)", [p for p in paths if "-bnseq-" not in p.name])]
    rows = []
    for label, group in groups:
        at_100 = []
        for path in group:
            d = _load(path)
            points = {c["iteration"]: c["auc_mean"] for c in d["curve"]}
            rows.append([f"`{path.name}`", label, str(d["seed"]), _pct(points.get(50)), _pct(points.get(100))])
            if 100 in points:
                at_100.append(points[100])
        if len(at_100) > 1:
            rows.append(["mean over seeds", label, "", "", _pct(sum(at_100) / len(at_100))])
    full = RESULTS / "full-sider-10shot-seed0-ray2.json"
    if full.exists():
        d = _load(full)
        points = {c["iteration"]: c["auc_mean"] for c in d["curve"]}
        rows.append([f"`{full.name}`", "spec order, current code", str(d["seed"]),
                     _pct(points.get(50)), _pct(points.get(100))])
    return [
        "## GS-Meta, SIDER 10-shot: the first 100 meta-iterations",
        "",
        ("Published settings, paper protocol (one support draw per property). The `early-curve-*` files were "
         "exported from earlier versions of the code and differ in the BatchNorm running-statistics rule; the "
         "last row is the full-protocol run of the current code "
         "(see [meta-training](meta-training.md#choices-where-the-code-differs-from-the-published-code))."),
        "",
        *_table(["file", "BatchNorm rule", "seed", "iteration 50", "iteration 100"], rows, "lllrr"),
    ]


def _encoder(cfg: dict) -> str:
    e = cfg["encoder"]
    text = f"{e['conv'].upper()} {e['num_layers']} × {e['emb_dim']}"
    return text + (f", from `{e['pretrained']}`" if e.get("pretrained") else ", from scratch")


def _algorithm(cfg: dict) -> str:
    m = cfg["meta"]
    text = m.get("algorithm", "gsmeta")
    if m.get("first_order") and text == "maml":
        text += " (first order)"
    return text


def _auc(summary: dict) -> str:
    if summary.get("seeds", 0) > 1:
        return _pm(summary["mean"], summary["std"], 2)
    return _pct(summary["mean"], 2)


def _task_cpus(cfg: dict) -> float | None:
    """CPUs per run: `num_cpus` in older comparison files, `ray.worker_cpus` in newer ones."""
    if "num_cpus" in cfg:
        return cfg["num_cpus"]
    return (cfg.get("ray") or {}).get("worker_cpus")


def _comparison(path: Path) -> list[str]:
    d = _load(path)
    cfg = d["config"]
    columns, cells = d["summary"]["columns"], d["summary"]["cells"]
    first = d["column_configs"][columns[0]]
    dataset, shots = first["data"]["dataset"], first["episode"]["shots"]
    seeds = cfg["seeds"]
    rows = []
    for col in columns:
        cell, ccfg = cells[col], d["column_configs"][col]
        published = cell.get("published")
        rows.append([
            f"`{col}`",
            _algorithm(ccfg),
            _encoder(ccfg),
            _auc(cell["paper"]),
            _auc(cell["honest"]),
            f"{published[0]:.2f} ({published[1]})" if published else "—",
            _num(cell["wall_seconds"] / 60),
            _num(cell["meta_iterations_per_s"], 3),
        ])
    lines = [
        f"### `{cfg['name']}`",
        "",
        f"{dataset} {shots}-shot; {'seeds' if len(seeds) > 1 else 'seed'} {', '.join(str(s) for s in seeds)}; "
        f"{first['run']['iterations']} meta-iterations, evaluation every {first['eval']['every']}; "
        f"{_num(_task_cpus(cfg), 0)} CPU per run; " + _progress(d) + (" ROC-AUC mean ± std over seeds."
                                                                        if len(seeds) > 1 else ""),
        "",
        *_table(["column", "algorithm", "encoder", "paper", "honest", "published", "wall min / run",
                 "meta-it/s"], rows, "lllrrrrr"),
        "",
    ]
    reference = d["summary"].get("reference")
    if reference is not None:
        lines += [f"Paired by seed with `{reference}` (ROC-AUC points, mean [95 % t interval], n pairs); the policy's "
                  "selection entropy over its maximum in the first and last tenth of the run (1 = uniform):", "",
                  *_table(["column", "paper Δ", "honest Δ", "entropy, first tenth", "entropy, last tenth",
                           "most selected (runs, share)"], [_paired_row(col, cells[col])
                                                            for col in columns], "lrrrrl"), "",
                  _separated(reference, cells, columns), ""]
        unrecorded = [f"`{col}`" for col in columns if cells[col].get("most_selected") is None]
        if unrecorded:
            whose = "its" if len(unrecorded) == 1 else "their"
            lines += [f"No selections for {', '.join(unrecorded)}: {whose} runs were recorded before runs kept what "
                      "their policy selected.", ""]
    if len(columns) == 2:
        a, b = columns
        runs = {(r["column"], r["seed"]): r for r in d["runs"]}
        seed_rows = []
        for seed in seeds:
            ra, rb = runs.get((a, seed)), runs.get((b, seed))
            if ra is None or rb is None:
                continue
            seed_rows.append([str(seed), _pct(ra["honest_auc"], 2), _pct(rb["honest_auc"], 2),
                              f"{100 * (rb['honest_auc'] - ra['honest_auc']):+.2f}"])
        lines += ["Honest protocol per seed:", "",
                  *_table(["seed", f"`{a}`", f"`{b}`", f"`{b}` − `{a}`"], seed_rows), ""]
    if d.get("failures"):
        lines += [f"Failed runs: {len(d['failures'])}.", ""]
    command = _command_for("gsrl compare", CONFIGS / "compare", cfg["name"], seeds)
    lines += [_code(command) + " " + _source(path, path.parent / "table.md")]
    selections = _co_selection(cfg["name"], columns)
    return lines + (["", *selections] if selections else [])


def _co_selection(name: str, columns: list[str]) -> list[str]:
    """The policy-selection summary of a comparison, where `benchmarks/policy_selection.py` wrote one."""
    path = RESULTS / f"policy-selection-{name}.json"
    if not path.exists():
        return []
    summary = _load(path)["columns"]
    shown = [c for c in columns if summary.get(c, {}).get("co_selection_lift_std") is not None]
    if not shown:
        return []
    seeds = ", ".join(str(s) for s in summary[shown[0]]["co_selection_seeds"])
    rows = []
    for column in shown:
        top = summary[column]["most_co_selected"]
        pair = "—" if not top else f"{top[0]['pair'][0]} + {top[0]['pair'][1]} ({top[0]['lift']:.2f}, " \
                                   f"{top[0]['meta_batches']})"
        rows.append([f"`{column}`", _num(summary[column]["co_selection_lift_std"], 3), pair])
    figure = ROOT / "docs" / "figures" / f"policy-selection-{name}.png"
    return [f"Co-selection, counts pooled over seeds {seeds}: lift is how often two training properties were "
            "selected in one meta-batch over what their own frequencies predict (1 = chance); its spread over "
            "property pairs measures pairing beyond chance, and `uniform`'s is the chance level with its noise. The "
            "columns of one seed draw from the same candidate pools, so a pair that shared many pools stands out in "
            "several columns alike:",
            "", *_table(["column", "lift std over pairs", "most co-selected pair (lift, meta-batches)"], rows, "lrl"),
            "", f"![Selections of {name}](figures/{figure.name})", "",
            f"Command: `python benchmarks/policy_selection.py {_rel(_config_named(CONFIGS / 'compare', name))}`. "
            + _source(path, figure)]


def _progress(d: dict) -> str:
    """How complete the comparison is, and what wrote its file."""
    unfinished = len(d.get("unfinished", []))
    if d.get("finished_only"):
        text = "written from the finished runs (`--finished-only`)"
    else:
        text = f"wall time of the invocation that wrote the file {_duration(d['wall_seconds'])}"
    if unfinished:
        text += (f"; {len(d['runs'])} of {len(d['runs']) + unfinished + len(d.get('failures', []))} runs have "
                 f"finished (the same command runs the rest, resuming any that stopped)")
    return text + "."


def _separated(reference: str, cells: dict, columns: list[str]) -> str:
    """The columns whose paired 95 % interval excludes zero, under each protocol: the plain verdict."""
    verdicts = []
    for protocol, label in (("paper", "paper protocol"), ("honest", "honest protocol")):
        found = []
        for column in columns:
            interval = cells[column]["versus_reference"][protocol]["ci"]
            if column != reference and interval is not None and (interval[0] > 0 or interval[1] < 0):
                found.append(f"`{column}` {'above' if interval[0] > 0 else 'below'}")
        verdicts.append(f"{label}: {', '.join(found) if found else 'none'}")
    return (f"Columns whose 95 % interval excludes zero, above or below `{reference}` (one test per column, "
            "uncorrected for their number): " + "; ".join(verdicts) + ".")


def _paired_row(column: str, cell: dict) -> list[str]:
    def difference(paired: dict) -> str:
        if paired["mean"] is None:
            return "—"
        interval = "" if paired["ci"] is None else " [{:+.2f}, {:+.2f}]".format(*(100 * b for b in paired["ci"]))
        return f"{100 * paired['mean']:+.2f}{interval} ({paired['pairs']})"

    top = cell.get("most_selected")
    versus = cell["versus_reference"]
    return [f"`{column}`", difference(versus["paper"]), difference(versus["honest"]),
            _num(cell.get("entropy_first"), 3), _num(cell.get("entropy_last"), 3),
            "—" if top is None else f"{top['property']} ({top['runs']}, {100 * top['share']:.0f} %)"]


def _comparisons() -> list[str]:
    lines = [
        "## Meta-learning comparisons (`gsrl compare`)",
        "",
        ("Shortened schedule; each (column, seed) is its own meta-training run in a Ray task. Published: the "
         "figure the file records for the method (pretrained encoders; its source is named in `table.md`). "
         "Wall time per run includes evaluations; meta-it/s counts meta-iterations alone."),
    ]
    for path in sorted(RESULTS.glob("compare/*/results.json")):
        if path.parent.name == "runs":
            continue
        lines += ["", *_comparison(path)]
    return lines


def _width(sweep: dict) -> str:
    job = sweep["config"]["job"]
    return f"{job['hidden_channels']} → {job['latent_channels']}"


def _link_prediction() -> list[str]:
    loaded = [(p, _load(p)) for p in sorted(RESULTS.glob("gae-sweep*/results.json"))]
    loaded.sort(key=lambda item: (item[1]["config"]["job"]["hidden_channels"], item[0].parent.name))
    sweeps = {p.parent.name: (p, d) for p, d in loaded}
    lines = ["## Link prediction (GAE / VGAE)", ""]
    base_path, base = sweeps["gae-sweep"]
    s = base["summary"]
    rows = []
    for ds in s["datasets"]:
        for col in s["columns"]:
            cell = s["cells"][ds][col]
            paper = cell.get("published_auc_ap") or [None, None]
            rows.append([ds, col, _pm(cell["test_auc"]["mean"], cell["test_auc"]["std"]),
                         _pm(cell["test_ap"]["mean"], cell["test_ap"]["std"]),
                         _num(paper[0]), _num(paper[1]), _num(cell["epochs_per_s"]),
                         ", ".join(cell["devices"])])
    seeds = base["config"]["seeds"]
    lines += [
        f"### Encoder width {_width(base)} (`{base['config']['name']}`)",
        "",
        (f"{s['metric']}, mean ± std over {len(seeds)} seeds; {base['config']['job']['epochs']} epochs. "
         "Paper: the published AUC / AP where the file records one."),
        "",
        *_table(["dataset", "model", "test AUC", "test AP", "paper AUC", "paper AP", "epochs/s", "device"],
                rows, "llrrrrrl"),
        "",
        _code(_command_for("gsrl gae sweep", CONFIGS / "gae", base["config"]["name"])) + " "
        + _source(base_path, base_path.parent / "table.md"),
        "",
    ]

    sel_path = RESULTS / "gae-selection" / "selection.json"
    sel = _load(sel_path)
    rows = []
    for ds, cells in sel["cells"].items():
        for col, cell in cells.items():
            if len(cell["candidates"]) < 2:
                continue
            for label in sel["labels"]:
                cand = cell["candidates"].get(label)
                if cand is None:
                    continue
                chosen = label == cell["selected"]
                paper = cell.get("published_auc_ap") if chosen else None
                rows.append([ds, col, _width(sweeps[label][1]), "yes" if chosen else "",
                             _pm(cand["val_auc"]["mean"], cand["val_auc"]["std"]),
                             _pm(cand["test_auc"]["mean"], cand["test_auc"]["std"]),
                             _pm(cand["test_ap"]["mean"], cand["test_ap"]["std"]),
                             f"{paper[0]:.1f} / {paper[1]:.1f}" if paper else ""])
    files = " ".join(sel["results_files"])
    lines += [
        "### Encoder width chosen on validation (`gsrl gae select`)",
        "",
        (f"Rule: {sel['rule']}. Cells with a single candidate (GraphSAGE, the Amazon graphs) keep the "
         f"{_width(base)} sweep and are left out here."),
        "",
        *_table(["dataset", "model", "width", "chosen", "validation AUC", "test AUC", "test AP", "paper AUC / AP"],
                rows, "llllrrrr"),
        "",
        f"Command: `gsrl gae select {files} --out {_rel(sel_path.parent)}`. " + _source(sel_path),
        "",
    ]

    rows = []
    for _, sweep in sweeps.values():
        c = sweep["config"]
        rows.append([f"`{_command_for('gsrl gae sweep', CONFIGS / 'gae', c['name'])}`", _width(sweep),
                     ", ".join(c["datasets"]), ", ".join(f"{m['model']}-{m['conv']}" for m in c["models"]),
                     str(len(c["seeds"])), str(sweep["jobs_run"]), str(sweep["jobs_read_back"])])
    lines += [
        "### The sweeps",
        "",
        ("Jobs run and jobs read back by the invocation that wrote each `results.json` (a sweep run again "
         "reads its finished jobs back)."),
        "",
        *_table(["command", "width", "datasets", "models", "seeds", "jobs run", "read back"], rows, "lllllrr"),
        "",
        _source(*[p for p, _ in sweeps.values()]),
    ]
    return lines


def _molecular_vgae() -> list[str]:
    paths = [RESULTS / "vgae-zinc" / "results.json", RESULTS / "vgae-moses" / "results.json"]
    runs = [_load(p) for p in paths]
    names = [r["config"]["name"] for r in runs]

    def row(label: str, get, fmt=lambda x: _num(x, 3)) -> list[str]:
        return [label, *[fmt(get(r)) for r in runs]]

    def lo(r: dict) -> dict:
        return r["latent_optimisation"]

    def gen(r: dict) -> dict:
        return r["generation"]

    rows = [
        row("training molecules", lambda r: r["corpus"]["train"]["molecules"], lambda x: f"{x:,}"),
        row("held-out molecules", lambda r: r["holdout_molecules"], lambda x: f"{x:,}"),
        row("max atoms", lambda r: r["max_atoms"], str),
        row("epochs", lambda r: r["epochs"], str),
        row("training molecules/s, last epoch", lambda r: r["final_epoch_metrics"]["molecules_per_s"], _num),
        row("generated samples", lambda r: gen(r)["samples"], lambda x: f"{x:,}"),
        row("validity, raw argmax", lambda r: gen(r)["validity_raw"]),
        row("validity, valence-aware", lambda r: gen(r)["validity"]),
        row("uniqueness", lambda r: gen(r)["uniqueness"]),
        row("novelty", lambda r: gen(r)["novelty"]),
    ]
    for prop in runs[0]["properties"]:
        rows.append(row(f"{prop.upper() if prop != 'logp' else 'logP'} W1 to the training set",
                        lambda r, p=prop: gen(r)["properties"][p]["wasserstein"]))
    for prop in runs[0]["properties"]:
        rows.append(row(f"property head R², {prop.upper() if prop != 'logp' else 'logP'} (held out)",
                        lambda r, p=prop: r["property_head_r2_holdout"][p]))
    opt_rows = [
        row("starts (prior samples)", lambda r: lo(r)["starts"], lambda x: f"{x:,}"),
        row("trust radius", lambda r: lo(r)["trust_radius"], _num),
        row("QED of the starts", lambda r: lo(r)["qed_random_prior_mean"]),
    ]
    for head, label in (("property_head", "property head"), ("decoded_qed_head", "decoded-QED head")):
        opt_rows += [
            row(f"{label}: QED after ascent", lambda r, h=head: lo(r)[h]["qed_optimised_mean"]),
            row(f"{label}: QED of the norm-matched control",
                lambda r, h=head: lo(r)[h]["qed_norm_matched_control_mean"]),
            row(f"{label}: unique optimised molecules", lambda r, h=head: lo(r)[h]["unique_optimised"],
                lambda x: f"{x:,}"),
        ]
    rounds = max(len(lo(r)["decoded_qed_head"].get("refit_rounds") or []) for r in runs)
    round_rows = []
    for i in range(rounds):
        cells = [str(i + 1)]
        for r in runs:
            rr = (lo(r)["decoded_qed_head"].get("refit_rounds") or [])
            cells += [_num(rr[i]["value_mean"], 3), _num(rr[i]["predicted_mean"], 3)] if i < len(rr) else ["—", "—"]
        round_rows.append(cells)
    commands = "; ".join(f"`{_command_for('gsrl gae molecules', CONFIGS / 'gae', n)}`" for n in names)
    members = ", ".join(f"{n} {lo(r)['decoded_head_members']} members" for n, r in zip(names, runs, strict=True))
    return [
        "## Molecular VGAE",
        "",
        ("Generation from prior samples, then latent optimisation of QED. Validity, uniqueness and novelty "
         "are fractions of the samples; W1 is the Wasserstein-1 distance between the property's distribution "
         "over the generated molecules and over the training set."),
        "",
        *_table(["measure", *[f"`{n}`" for n in names]], rows),
        "",
        ("Latent optimisation (mean QED of the decoded molecules; the control moves the same starts radially "
         f"to the optimised codes' norms, with no objective). Decoded-QED head ensemble: {members}."),
        "",
        *_table(["measure", *[f"`{n}`" for n in names]], opt_rows),
        "",
        ("Refit rounds of the decoded-QED head: mean QED of the molecules the round's ascent decodes to, "
         "against the head's own prediction for them."),
        "",
        *_table(["round", *[f"`{n}` {k}" for n in names for k in ("QED", "predicted")]], round_rows),
        "",
        f"Commands: {commands}. " + _source(*paths),
    ]


def _pretraining() -> list[str]:
    enc = _load(SHIPPED)
    t = enc["trained"]
    e = enc["encoder"]
    rows = [
        ["strategy", enc["strategy"]],
        ["encoder", f"{e['conv'].upper()} {e['num_layers']} × {e['emb_dim']}, {e['pooling']} pooling"],
        ["corpus", f"`{enc['corpus']['source']}`"],
        ["molecules", f"{enc['corpus']['molecules']:,}"],
        ["unparsable SMILES", str(enc["corpus"]["failed_smiles"])],
        ["epochs", str(t["epochs_completed"])],
        ["Ray Train workers", str(enc["optimizer"]["workers"])],
        ["batch size", str(enc["optimizer"]["batch_size"])],
        ["masked-atom accuracy, last epoch", f"{_pct(t['final_epoch']['masked_atom_accuracy'])} %"],
        ["loss, last epoch", _num(t["final_epoch"]["loss"], 3)],
        ["molecules/s", _num(t["final_epoch"]["molecules_per_s"], 0)],
        ["wall time", t["wall_time"]],
    ]
    lines = [
        "## Pretraining and fine-tuning",
        "",
        "### The shipped encoder",
        "",
        *_table(["measure", "value"], rows, "ll"),
        "",
        _code(enc["command"]) + " " + _source(SHIPPED),
        "",
    ]
    ft_path = RESULTS / "finetune-check-epoch1-seed0.json"
    ft = _load(ft_path)
    encoders = sorted({name for res in ft["results"].values() for name in res})
    rows = []
    for ds, res in ft["results"].items():
        rows.append([ds, *[_pct(res[n]["test_auc"]) if n in res else "—" for n in encoders],
                     *[_num(res[n]["seconds_per_epoch"]) if n in res else "—" for n in encoders]])
    lines += [
        "### Fine-tuning check of the shipped encoder",
        "",
        (f"{ft['label'][0].upper() + ft['label'][1:]}. Protocol: {ft['protocol']}. `gin` is the same GIN "
         "without pretraining."),
        "",
        *_table(["dataset", *[f"test ROC-AUC `{n}`" for n in encoders], *[f"s/epoch `{n}`" for n in encoders]],
                rows),
        "",
        _code(ft["command"]) + " " + _source(ft_path),
    ]
    return lines


def _speed() -> list[str]:
    lines = ["## Meta-training speed and memory", ""]
    paths = sorted(RESULTS.glob("metatrain_speed-*.json"), key=lambda p: (len(_load(p)["overrides"]), p.name))
    rows = []
    for path in paths:
        d = _load(path)
        b = d["breakdown_mean_s"]
        rows.append([f"`{path.name}`", f"`{d['config']}`", ", ".join(f"`{o}`" for o in d["overrides"]) or "—",
                     _num(d["seconds_per_iteration"]), _num(b["pool_s"]), _num(b["adapt_s"]), _num(b["learn_s"]),
                     _num(d["peak_rss_gb_training"])])
    lines += [
        ("Published settings; seconds per meta-iteration, mean of the measured iterations: pool embedding, "
         "adaptation and query (phase 1), outer update (contrastive term, phase 2 and the optimizer step). "
         "Absolute times on this shared machine drift by tens of percent between runs; compare commits "
         "with the paired runs below."),
        "",
        *_table(["file", "config", "overrides", "s / iteration", "pool", "adaptation", "outer update",
                 "peak RSS GB"], rows, "lllrrrrr"),
        "",
    ]
    for path in paths:
        d = _load(path)
        for ev in d["evaluations"]:
            lines += [(f"One evaluation ({ev['query_molecules']:,} query molecules): "
                       f"{_num(ev['seconds'])} s (`{path.name}`)."), ""]
    lines += [f"Machine: {_machine(_load(paths[0]))}. Commands: "
              + "; ".join(f"`{_load(p)['command']}`" for p in paths) + ".", ""]

    fl_path = RESULTS / "metatrain_flops-sider-10shot-cpu2.json"
    fl = _load(fl_path)
    ph = fl["gflop_by_phase"]
    rows = [["pool", _num(ph["pool"])], ["adaptation + query (phase 1)", _num(ph["phase1_adapt_and_query"])],
            ["meta-gradient backward (phase 2)", _num(ph["phase2_meta_gradient"])],
            ["total", _num(fl["gflop_per_iteration"])]]
    lines += [
        "### Arithmetic per meta-iteration",
        "",
        *_table(["phase", "GFLOP of matrix products"], rows),
        "",
        f"One-thread GEMM rate {_num(fl['gemm_gflops_per_thread'])} GFLOP/s; on {fl['cores']} cores at that rate "
        f"the same arithmetic needs at least {_num(fl['floor_seconds_per_iteration'])} s per meta-iteration. "
        + _code(fl["command"]) + " " + _source(fl_path),
        "",
    ]

    th_path = RESULTS / "metatrain_throughput-cpu2.json"
    th = _load(th_path)
    local = th["variants"]["local"]["seconds_per_iteration"]
    rows = []
    for name, v in th["variants"].items():
        b = v["breakdown_mean_s"]
        rows.append([f"`{name}`", v["backend"], str(v["workers"]), str(v["threads_per_worker"]),
                     _num(v["seconds_per_iteration"]), _num(v["iterations_per_s"], 3),
                     _num(v["seconds_per_iteration"] / local, 2), _num(b["workers/busy_s_max"])])
    lines += [
        "### Backends",
        "",
        "Same setting; time ratio against the local backend; busiest worker: its busy seconds per iteration.",
        "",
        *_table(["variant", "backend", "workers", "threads / worker", "s / iteration", "iterations/s",
                 "time / local", "busiest worker s"], rows, "lllrrrrr"),
        "",
        "Ratios: " + ", ".join(f"{name} {_num(value, 2)}" for name, value in th["ratios"].items())
        + f". Machine: {_machine(th)}. " + _code(th["command"]) + " " + _source(th_path),
        "",
    ]

    pr_path = RESULTS / "metatrain_speed_paired-sider-10shot-cpu2.json"
    pr = _load(pr_path)
    rows = [[str(i), _num(r["before"][k]), _num(r["after"][k])] for i, r in enumerate(pr["rounds"])
            for k in ("seconds_per_iteration",)]
    ratios = pr["median_after_over_before"]
    lines += [
        "### Before and after, alternated in one run",
        "",
        f"`{pr['base']}` against `{pr['rounds'][0]['after_commit'][:7]}`, SIDER 10-shot, runs alternated "
        f"(`benchmarks/metatrain_speed_paired.py`): median after / before: seconds per iteration "
        f"{_num(ratios['seconds_per_iteration'], 2)}, seconds per evaluation "
        f"{_num(ratios['seconds_per_evaluation'], 2)}, peak RSS {_num(ratios['peak_rss_gb_training'], 2)}.",
        "",
        *_table(["round", "s / iteration before", "s / iteration after"], rows, "lrr"),
        "",
        _code(pr["command"]) + " " + _source(pr_path),
        "",
    ]

    pf_path = RESULTS / "metatrain_profile-sider-10shot-cpu2.json"
    pf = _load(pf_path)
    lines += [
        "### Where the time goes",
        "",
        "Self CPU time of one meta-iteration by operator family (torch.profiler): "
        + ", ".join(f"{name} {_num(100 * share)} %" for name, share in pf["families"].items())
        + "; largest operators: "
        + ", ".join(f"`{o['operator']}` {_num(100 * o['share'])} %" for o in pf["operators"][:6])
        + ". " + _code(pf["command"]) + " " + _source(pf_path),
        "",
    ]

    eq_path = RESULTS / "backend-equivalence-sider-10shot.json"
    eq = _load(eq_path)
    rows = [["iteration", str(eq["iteration"])], ["tensors compared", str(eq["tensors_compared"])],
            ["leaves compared (tensors and logged values)", str(eq["leaves_compared"])],
            ["missing", str(len(eq["missing"]))], ["differing", str(len(eq["differing"]))],
            ["max abs difference", repr(eq["max_abs_difference"])],
            ["identical", "yes" if eq["identical"] else "no"]]
    lines += [
        "### Ray against one process",
        "",
        ("The checkpoints of a Ray run with 2 workers and of the one-process run, SIDER 10-shot published "
         "settings, at the same iteration (`benchmarks/compare_checkpoints.py`)."),
        "",
        *_table(["measure", "value"], rows),
        "",
        _source(eq_path),
    ]
    return lines


def _throughput() -> list[str]:
    fz_path = RESULTS / "featurize_throughput-moses-cpu2.json"
    fz = _load(fz_path)
    rows = [[str(v["tasks"]), f"{v['parsed']:,}", str(v["failed"]), _num(v["seconds"]), _num(v["molecules_per_s"], 0),
             _num(fz["speedup_over_first"][k], 2)] for k, v in fz["variants"].items()]
    lines = [
        "## Data-parallel throughput",
        "",
        "### Corpus featurization (Ray tasks)",
        "",
        f"First {fz['molecules']:,} molecules of `{Path(fz['corpus']).name}`, shards of {fz['shard_size']:,}.",
        "",
        *_table(["tasks", "parsed", "failed", "seconds", "molecules/s", "speed-up"], rows),
        "",
        f"Machine: {_machine(fz)}. " + _code(fz["command"]) + " " + _source(fz_path),
        "",
    ]
    pt_path = RESULTS / "pretrain_throughput-moses-cpu2.json"
    pt = _load(pt_path)
    rows = [[str(v["workers"]), _num(v["molecules_per_s"], 0), _num(pt["speedup_over_first"][k], 2)]
            for k, v in pt["variants"].items()]
    lines += [
        "### Pretraining (Ray Train)",
        "",
        f"`{pt['config']}`, {pt['shards']} corpus shards.",
        "",
        *_table(["workers", "molecules/s", "speed-up"], rows),
        "",
        f"Machine: {_machine(pt)}. " + _code(pt["command"]) + " " + _source(pt_path),
        "",
    ]
    gae_paths = sorted(RESULTS.glob("gae_throughput-*.json"))
    gaes = [(p, _load(p)) for p in gae_paths]
    link_files = [(p, g) for p, g in gaes if "links" in g["parts"]]
    jobs = list(dict.fromkeys(j for _, g in link_files for j in g["parts"]["links"]))
    rows = []
    for job in jobs:
        first = next(g["parts"]["links"][job] for _, g in link_files if job in g["parts"]["links"])
        rows.append([job, first["loss"], *[_num(g["parts"]["links"][job]["epochs_per_s"]) if job in g["parts"]["links"]
                                            else "—" for _, g in link_files]])
    lines += [
        "### Graph autoencoders",
        "",
        "Link-prediction training epochs per second.",
        "",
        *_table(["job", "loss", *[f"`{p.name}`" for p, _ in link_files]], rows, "ll" + "r" * len(link_files)),
        "",
    ]
    lines += [f"`{p.name}`: {_machine(g)}; `{g['command']}`." for p, g in link_files]
    lines.append("")
    for p, g in gaes:
        sweep = g["parts"].get("sweep")
        if sweep:
            rows = [[str(v["cpus"]), str(v["jobs"]), _num(v["wall_s"])]
                    for v in sweep.values() if isinstance(v, dict)]
            lines += [f"Link sweep on 1 and 2 Ray CPUs (`{p.name}`; speed-up {_num(sweep['speedup_2_over_1'], 2)}×):",
                      "", *_table(["Ray CPUs", "jobs", "wall s"], rows), ""]
        mol = g["parts"].get("molecules")
        if mol:
            rows = [[str(v["workers"]), _num(v["molecules_per_s"], 0)] for v in mol.values() if isinstance(v, dict)]
            lines += [(f"Molecular VGAE training with 1 and 2 Ray Train workers (`{p.name}`; speed-up "
                       f"{_num(mol['speedup_2_over_1'], 2)}×):"), "", *_table(["workers", "molecules/s"], rows), ""]
    lines.append(_source(*gae_paths))
    return lines


def render() -> str:
    """The full text of docs/results.md."""
    sections = [
        [
            f"<!-- Generated by `{COMMAND}` from the result files under benchmarks/results/; do not edit. -->",
            "# Measured results",
            "",
            (f"Generated by `{COMMAND}` from the committed result files; `{COMMAND} --check` tells whether this "
             "page is current. Every number below is read from the file named under its table. ROC-AUC and "
             "AUC / AP figures are percentages; ± is one standard deviation over seeds (over support draws "
             "for a single run's honest protocol). The evaluation protocols are described in "
             "[meta-training](meta-training.md#evaluation-protocols)."),
        ],
        _quickstart(),
        _full_runs(),
        _early_curves(),
        _comparisons(),
        _pretraining(),
        _link_prediction(),
        _molecular_vgae(),
        _speed(),
        _throughput(),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/results.md is not current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{_rel(OUT)} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {_rel(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
