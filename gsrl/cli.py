"""The `gsrl` command line: train, eval, show-config, data report / download."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from gsrl.config import ConfigError, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def main(verbose: bool) -> None:
    """gsrl: scheduler-driven meta-training (GS-Meta) for few-shot molecular property prediction."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _setup_logging(verbose)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Problems with the user's input (files, data, run directories) end with a one-line message."""
    from gsrl.checkpoint import RunDirectoryExists
    from gsrl.data.roots import DataFileMissing, DataRootNotConfigured
    from gsrl.errors import UnknownName
    from gsrl.rundir import RunDirectoryBusy

    try:
        yield
    except (ConfigError, DataFileMissing, DataRootNotConfigured, RunDirectoryExists, RunDirectoryBusy,
            UnknownName, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc


def config_options(config_help: str, override_example: str, required: bool = False):
    """The -c CONFIG and -o KEY=VALUE options every config-driven command takes."""
    config = click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), required=required,
                          default=None, help=config_help)
    override = click.option("-o", "--override", "overrides", multiple=True, metavar="KEY=VALUE",
                            help=f"Override a config key, e.g. -o {override_example} (repeatable).")
    return lambda command: config(override(command))


def _load(config_path: str | None, overrides: tuple[str, ...], schema: type | None = None):
    """The resolved config; a bad file, key or value ends the command with its one-line message."""
    try:
        return load_config(config_path, overrides, **({"schema": schema} if schema else {}))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _job_config(config_path: str | None, overrides: tuple[str, ...], resume_dir: str | None,
                schema: type | None = None, run_dir: str | None = None):
    """The one resume rule of every job: a new run from -c CONFIG in <run.output_dir>/<name> (or --run-dir), or
    with --resume RUN_DIR the run there, with the config it saved (-o may still change where it runs)."""
    if resume_dir:
        return _load(str(Path(resume_dir) / "config.yaml"), overrides, schema), Path(resume_dir)
    if not config_path:
        raise click.UsageError("give -c CONFIG, or --resume RUN_DIR")
    config = _load(config_path, overrides, schema)
    return config, Path(run_dir) if run_dir else Path(config.run.output_dir) / config.name


def resume_option(what: str = "run"):
    """The --resume RUN_DIR option every job that owns a run directory takes."""
    return click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
                        help=f"Continue the {what} in RUN_DIR from its last checkpoint, with the config it saved.")


def _run_grid(config, run: Callable) -> None:
    """A grid workload (benchmark, sweep, comparison): join or start Ray at `config.ray.address`, run it,
    then print its table and where its results are."""
    from gsrl.cluster import connect

    with _user_errors():
        connect(config.ray.address)
        report = run(config)
    click.echo(report.table_path.read_text())
    click.echo(f"results: {report.results_path}")


@main.command()
@config_options("YAML config (default: configs/quickstart.yaml).", "meta.inner_lr=0.1")
@resume_option()
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory (default: <run.output_dir>/<name>).")
@click.option("--address", default=None, metavar="auto|HOST:PORT",
              help="Run on an existing Ray cluster (implies run.backend=ray); without it, the ray backend "
                   "starts a local cluster in-process.")
def train(config_path: str | None, overrides: tuple[str, ...], resume_dir: str | None, run_dir: str | None,
          address: str | None) -> None:
    """Meta-train GS-Meta; writes config, checkpoints, TensorBoard events and results.json.

    With --resume, -o and --address may change where the run executes (backend, workers, cluster);
    the algorithm's keys must stay as they were for the resumed run to match an uninterrupted one."""
    from gsrl.jobs.train import Trainer

    with _user_errors():
        config, target = _job_config(config_path or str(DEFAULT_CONFIG), overrides, resume_dir, run_dir=run_dir)
        if address:
            config = dataclasses.replace(config, run=dataclasses.replace(config.run, backend="ray"),
                                         ray=dataclasses.replace(config.ray, address=address))
        with Trainer(config, target, resume=bool(resume_dir)) as trainer:
            results = trainer.run()
    if trainer.finished_before:
        click.echo(f"{trainer.run_dir} had already finished its {results['iterations']} meta-iterations; nothing "
                   f"was run (-o run.iterations=N with a larger N continues it). Its results:")
    click.echo(_summary(results, trainer.run_dir))


def _summary(results: dict, run_dir: Path) -> str:
    paper, honest = results["protocols"]["paper"], results["protocols"]["honest"]
    lines = [f"run directory: {run_dir}"]
    if paper["auc_mean"] is not None:
        lines.append(f"paper protocol : ROC-AUC {100 * paper['auc_mean']:.2f} (best periodic, iteration "
                     f"{paper['iteration']})")
    lines.append(f"honest protocol: ROC-AUC {100 * honest['auc_mean']:.2f} ± {100 * honest['auc_std']:.2f} "
                 f"(final model)")
    curve = ", ".join(f"{c['iteration']}: {100 * c['auc_mean']:.1f}" for c in results["curve"])
    lines.append(f"curve (iteration: AUC) {curve}")
    return "\n".join(lines)


@main.command(name="eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--draws", type=click.IntRange(min=1), default=None,
              help="Support draws per property (default: eval.final_draws).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the result, protocol named, as JSON to this file.")
def evaluate(run_dir: str, draws: int | None, json_path: str | None) -> None:
    """Evaluate the last checkpoint of RUN_DIR on the test properties (honest protocol)."""
    from gsrl.checkpoint import atomic_write_json
    from gsrl.jobs.train import FINAL_EVALUATION_INDEX, Trainer
    from gsrl.meta.evaluation import HONEST

    with _user_errors(), Trainer(None, Path(run_dir), resume=True) as trainer:
        restored = trainer.checkpoints.load_latest()
        if restored is None:
            raise click.ClickException(f"{run_dir} has no valid checkpoint")
        trainer.driver.reset(restored[0])
        draws = draws or trainer.config.eval.final_draws
        result = trainer.evaluate(FINAL_EVALUATION_INDEX, draws)
    names = trainer.dataset.property_names
    description = f"model of iteration {result.iteration}; each property's ROC-AUC averaged over {draws} support draws"
    click.echo(f"run directory: {run_dir}")
    click.echo(f"{HONEST} protocol: ROC-AUC {100 * result.mean:.2f} ± {100 * result.std:.2f} ({description})")
    for prop, value in result.property_means.items():
        click.echo(f"  {names[prop]}: {100 * value:.2f}")
    if json_path:
        atomic_write_json(Path(json_path), {"protocol": HONEST, "description": description, "draws": draws,
                                            **result.to_dict(names)})
        click.echo(f"results: {json_path}")


@main.command()
@config_options("YAML pretraining config, e.g. configs/pretrain/attribute_masking.yaml.", "epochs=10")
@resume_option()
def pretrain(config_path: str | None, overrides: tuple[str, ...], resume_dir: str | None) -> None:
    """Pretrain an encoder (Hu et al. strategies) as a data-parallel Ray Train job.

    --resume RUN_DIR continues from the last epoch's checkpoint (-o epochs=N extends the run)."""
    from gsrl.jobs.pretrain import run_pretraining
    from gsrl.pretraining.config import PretrainConfig

    config, target = _job_config(config_path, overrides, resume_dir, PretrainConfig)
    with _user_errors():
        run_directory = run_pretraining(config, target, bool(resume_dir))
    click.echo(f"encoder: {run_directory / 'encoder.pth'}")


@main.command()
@config_options("YAML fine-tuning config, e.g. configs/finetune/hu2020.yaml.", "seeds=[0,1,2]", required=True)
def finetune(config_path: str, overrides: tuple[str, ...]) -> None:
    """Fine-tune encoders on the MoleculeNet benchmark (scaffold split), datasets x seeds as Ray tasks."""
    from gsrl.finetune.config import FinetuneConfig
    from gsrl.jobs.finetune import run_benchmark

    _run_grid(_load(config_path, overrides, FinetuneConfig), run_benchmark)


@main.command()
@config_options("YAML comparison config, e.g. configs/compare/sider-10shot.yaml.", "seeds=[0,1,2]", required=True)
@click.option("--finished-only", is_flag=True,
              help="Start or resume no run: write the table of the runs that have finished so far.")
def compare(config_path: str, overrides: tuple[str, ...], finished_only: bool) -> None:
    """Meta-learning algorithms x seeds as parallel Ray runs; writes table.md and results.json (re-run resumes)."""
    from gsrl.compare.config import CompareConfig
    from gsrl.jobs.compare import run_comparison

    _run_grid(_load(config_path, overrides, CompareConfig),
              lambda config: run_comparison(config, config_path, finished_only))


@main.group(invoke_without_command=True)
@config_options("YAML link-prediction job config, e.g. configs/gae/cora-vgae.yaml.", "model=vgae")
@resume_option("job")
@click.pass_context
def gae(context: click.Context, config_path: str | None, overrides: tuple[str, ...], resume_dir: str | None) -> None:
    """Graph autoencoders: one GAE/VGAE link-prediction job as a Ray task (`gae sweep` runs a grid)."""
    if context.invoked_subcommand is not None:
        return
    if not config_path and not resume_dir:
        raise click.UsageError("give -c CONFIG (or --resume RUN_DIR), or a subcommand")
    from gsrl.gae.link.config import LinkPredictionConfig
    from gsrl.jobs.gae import run_link_job

    config, target = _job_config(config_path, overrides, resume_dir, LinkPredictionConfig)
    with _user_errors():
        result = run_link_job(config, target, bool(resume_dir))
    click.echo(f"run directory: {target}")
    click.echo(f"{result.dataset} {result.model}-{result.conv} seed {result.seed}: test AUC {100 * result.test_auc:.2f}"
               f" AP {100 * result.test_ap:.2f} (epoch {result.best_epoch} of {result.epochs}, best validation AUC)")


@gae.command(name="sweep")
@config_options("YAML sweep config, e.g. configs/gae/sweep.yaml.", "seeds=[0,1,2]", required=True)
def gae_sweep(config_path: str, overrides: tuple[str, ...]) -> None:
    """datasets x models x seeds as parallel Ray tasks; writes table.md and results.json (re-run resumes)."""
    from gsrl.gae.link.config import LinkSweepConfig
    from gsrl.jobs.gae import run_sweep

    _run_grid(_load(config_path, overrides, LinkSweepConfig), run_sweep)


@gae.command(name="select")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for selection.md and selection.json.")
def gae_select(results: tuple[str, ...], out_dir: str) -> None:
    """Pick, per dataset and model, the sweep (results.json) with the best mean validation AUC."""
    from gsrl.gae.link.selection import IncomparableSweeps, write_selection

    payloads = {}
    for path in results:
        payload = json.loads(Path(path).read_text())
        label = payload["config"]["name"]
        if label in payloads:
            raise click.UsageError(f"{path}: another results file also comes from the sweep named {label!r}")
        payloads[label] = payload
    try:
        click.echo(write_selection(payloads, list(results), Path(out_dir)))
    except IncomparableSweeps as error:
        raise click.ClickException(str(error)) from error


@gae.command(name="molecules")
@config_options("YAML molecular VGAE config, e.g. configs/gae/molecules-zinc.yaml.", "epochs=10")
@resume_option()
def gae_molecules(config_path: str | None, overrides: tuple[str, ...], resume_dir: str | None) -> None:
    """Molecular VGAE with a QED head (Ray Train), then generation and latent optimisation; --resume RUN_DIR
    continues from the last epoch (-o epochs=N extends the run)."""
    from gsrl.gae.molecular.config import MolecularVGAEConfig
    from gsrl.jobs.molecular_vgae import run_molecular_vgae
    from gsrl.rundir import RunDirectory

    config, target = _job_config(config_path, overrides, resume_dir, MolecularVGAEConfig)
    with _user_errors():
        run_directory = run_molecular_vgae(config, target, bool(resume_dir))
    results = RunDirectory(run_directory).read_results()
    generation, optimisation = results["generation"], results["latent_optimisation"]
    click.echo(f"run directory: {run_directory}")
    click.echo(f"validity {100 * generation['validity']:.1f}% (raw {100 * generation['validity_raw']:.1f}%), "
               f"uniqueness {100 * generation['uniqueness']:.1f}%, novelty {100 * generation['novelty']:.1f}%")
    click.echo("property head R² (held out): " + ", ".join(
        f"{name} {value:.3f}" for name, value in results["property_head_r2_holdout"].items()))
    click.echo(f"QED of random prior samples {optimisation['qed_random_prior_mean']:.3f}; after latent optimisation:")
    for objective in ("property_head", "decoded_qed_head"):
        if objective in optimisation:
            ascent = optimisation[objective]
            click.echo(f"  on the {objective.replace('_', ' ')} {ascent['qed_optimised_mean']:.3f} "
                       f"({ascent['unique_optimised']} distinct molecules; the same starts moved only to the same "
                       f"norms: {ascent['qed_norm_matched_control_mean']:.3f})")


@main.command(name="show-config")
@config_options("YAML meta-training config.", "run.seed=1")
def show_config(config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Print the fully resolved config (defaults < YAML chain < overrides)."""
    click.echo(_load(config_path, overrides).to_yaml())


@main.group()
def data() -> None:
    """Inspect and fetch datasets."""


@data.command()
@click.argument("dataset", default="sider")
@click.option("--root", type=click.Path(file_okay=False), default=None, help="Data root (default $GSRL_DATA_ROOT).")
def report(dataset: str, root: str | None) -> None:
    """Rows, parsed molecules, invalid SMILES with examples, per-property class counts."""
    from gsrl.data.report import dataset_report, format_report
    from gsrl.runtime import load_dataset

    config = _load(None, (f"data.dataset={dataset}",) + ((f"data.root={root}",) if root else ()))
    with _user_errors():
        click.echo(format_report(dataset_report(load_dataset(config))))


@data.command()
@click.argument("datasets", nargs=-1)
@click.option("--root", type=click.Path(file_okay=False), required=True, help="Where to put the files.")
@click.option("--base-url", default=None, envvar="GSRL_DATA_MIRROR", show_envvar=True,
              help="Mirror serving every file under its remote name (default: the public sources).")
def download(datasets: tuple[str, ...], root: str, base_url: str | None) -> None:
    """Download dataset files, verifying their sha256 checksums."""
    from gsrl.data.download import download_datasets

    for path in download_datasets(list(datasets) or None, root, base_url=base_url):
        click.echo(f"ok {path}")


if __name__ == "__main__":
    main()
