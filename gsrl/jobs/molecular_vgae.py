"""The molecular VGAE as a data-parallel Ray Train job, then its generation report.

The driver featurizes the training and held-out corpora (Ray tasks, sharded cache) and starts the
job: each rank trains on its own shards with DDP; after every epoch rank 0 logs ``vgae/...`` scalars
and checkpoints, and every ``picture_every`` epochs it also scores a few hundred prior samples and
publishes a grid of generated molecules and the latent space of held-out molecules coloured by QED.
Running the same job again resumes from the last epoch. Finally a Ray task loads the trained model
and writes ``results.json``: validity (raw and valence-aware), uniqueness, novelty, property
distributions against the training set's, the property head's R² on held-out molecules, and QED
after latent optimisation (ascent on the property head, and on a head fitted to the QED of decoded
prior samples) against the random prior samples it started from.
"""

from __future__ import annotations

import dataclasses
import json
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import ray
import torch
from rdkit import Chem
from rdkit.Chem import QED
from sklearn.metrics import r2_score

from actors.corpus_featurizer import build_corpus
from gsrl.checkpoint import atomic_write_json, cpu_state_dict, git_commit, load_on_cpu
from gsrl.config import config_from_dict
from gsrl.data.corpora import CorpusCache, CorpusManifest, manifest_from_dict
from gsrl.data.datasets import resolve_data_root
from gsrl.gae.generation import decode_raw, decode_valence_aware, evaluate_samples
from gsrl.gae.latent_optimisation import fitting_codes, optimise_latents, refit_on_ascents
from gsrl.gae.molecular_config import MolecularVGAEConfig, OptimisationConfig
from gsrl.gae.molecular_data import PROPERTIES, MolecularCorpus, MolecularFeaturizer, collate_molecules, \
    load_molecular_shards, molecular_properties
from gsrl.gae.molecular_model import MolecularVGAE
from gsrl.gae.molecules import AtomVocabulary, canonical_smiles
from gsrl.gae.pictures import latent_projection, molecule_grid, publish
from gsrl.runtime import resolve_cache_dir
from learners.data_parallel import (connect_for, copy_outputs, end_epoch, fit, rank_shards, resume_and_wrap,
                                    start_worker, steps_per_epoch, tensorboard)

__all__ = ["build_model", "generation_report", "run_molecular_vgae"]

STATE_FILE = "state.pt"
MODEL_FILE = "model.pt"
METADATA_FILE = "metadata.json"
RESULTS_FILE = "results.json"
DECODE_CHUNK = 500


def build_model(cfg: MolecularVGAEConfig) -> MolecularVGAE:
    return MolecularVGAE(cfg.vocabulary().size, cfg.max_atoms, len(PROPERTIES), cfg.hidden, cfg.latent,
                         cfg.encoder_layers, cfg.decoder_width, cfg.decoder_layers, cfg.decoder_heads,
                         cfg.decoder_pair_width, cfg.property_hidden)


def _corpus(directory: str, manifest: CorpusManifest, indices: list[int] | None = None) -> MolecularCorpus:
    return load_molecular_shards(Path(directory), indices if indices is not None else range(len(manifest.shards)))


@torch.no_grad()
def sample_molecules(model: MolecularVGAE, vocabulary: AtomVocabulary, z: torch.Tensor, raw: bool = True):
    """(raw, valence-aware) decodings of the codes, in chunks."""
    raws, decoded = [], []
    device = next(model.parameters()).device
    for start in range(0, z.size(0), DECODE_CHUNK):
        atom_logits, bond_logits = (t.cpu() for t in model.decode(z[start:start + DECODE_CHUNK].to(device)))
        if raw:
            raws += decode_raw(atom_logits, bond_logits, vocabulary)
        decoded += decode_valence_aware(atom_logits, bond_logits, vocabulary)
    return raws, decoded


@torch.no_grad()
def _latent_codes(model: MolecularVGAE, corpus: MolecularCorpus, batch_size: int = 512) -> torch.Tensor:
    codes = []
    device = next(model.parameters()).device
    for start in range(0, len(corpus), batch_size):
        part = corpus.subset(range(start, min(start + batch_size, len(corpus))))
        codes.append(model.encode(collate_molecules(part.atoms, part.bonds, part.properties).to(device))[0].cpu())
    return torch.cat(codes)


def _pictures(model: MolecularVGAE, cfg: MolecularVGAEConfig, holdout: MolecularCorpus, training_smiles: set[str],
              training_properties: np.ndarray, epoch: int, writer, run_directory: Path) -> dict[str, float]:
    """Rank 0, every picture epoch: score prior samples, draw a grid of them and the latent space."""
    model.eval()
    generator = torch.Generator().manual_seed(cfg.seed)  # the same prior samples every time: comparable grids
    z = torch.randn(cfg.check_samples, cfg.latent, generator=generator)
    raw, decoded = sample_molecules(model, cfg.vocabulary(), z)
    report = evaluate_samples(raw, decoded, training_smiles, training_properties)
    shown = [m for m in decoded[:16] if m is not None]
    legends = [f"QED {_qed(m):.2f}" for m in shown]
    pictures = run_directory / "pictures"
    publish(molecule_grid(shown, legends), "vgae/prior_samples", epoch, writer, pictures)
    view = holdout.subset(range(min(2000, len(holdout))))
    publish(latent_projection(_latent_codes(model, view), view.properties[:, 0].numpy(),
                              f"held-out molecules, epoch {epoch}"), "vgae/latent_qed", epoch, writer, pictures)
    model.train()
    return {"validity_raw": report.validity_raw, "validity": report.validity, "uniqueness": report.uniqueness,
            "novelty": report.novelty}


def _train_loop(loop_config: dict[str, Any]) -> None:
    cfg = config_from_dict(loop_config["config"], "molecular VGAE job", schema=MolecularVGAEConfig)
    manifest = manifest_from_dict(loop_config["manifest"])
    rank, world = start_worker(cfg.threads, cfg.seed)
    model = build_model(cfg)
    model.property_mean.copy_(torch.tensor(loop_config["property_mean"]))
    model.property_std.copy_(torch.tensor(loop_config["property_std"]))
    parallel, optimizer, device, start_epoch = resume_and_wrap(model, partial(torch.optim.Adam, lr=cfg.lr),
                                                               STATE_FILE, "model")
    corpus = _corpus(loop_config["cache_directory"], manifest, rank_shards(len(manifest.shards), rank, world))
    steps = steps_per_epoch(manifest, world, cfg.batch_size)
    writer = holdout = training_smiles = training_properties = None
    run_directory = Path(loop_config["run_directory"])
    if rank == 0:
        writer = tensorboard(str(run_directory))
        holdout = _corpus(loop_config["holdout_directory"], manifest_from_dict(loop_config["holdout_manifest"]))
        everything = _corpus(loop_config["cache_directory"], manifest)
        training_smiles, training_properties = set(everything.smiles), everything.properties.numpy()
    for epoch in range(start_epoch, cfg.epochs):
        started = time.perf_counter()
        kl_weight = cfg.kl_weight * min(1.0, (epoch + 1) / cfg.kl_warmup_epochs) if cfg.kl_warmup_epochs else \
            cfg.kl_weight
        order = torch.from_numpy(np.random.default_rng([cfg.seed, epoch, rank]).permutation(len(corpus)))
        parallel.train()
        totals: dict[str, float] = {}
        for step in range(steps):
            ids = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            batch = collate_molecules(corpus.atoms[ids], corpus.bonds[ids], corpus.properties[ids]).to(device)
            terms = parallel(batch, kl_weight, cfg.property_weight)
            if not torch.isfinite(terms.loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, step {step}: {terms.scalars()}")
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            optimizer.step()
            for key, value in terms.scalars().items():
                totals[key] = totals.get(key, 0.0) + value / steps
        totals["molecules_per_s"] = steps * cfg.batch_size * world / (time.perf_counter() - started)
        totals["kl_weight"] = kl_weight
        if rank == 0 and ((epoch + 1) % cfg.picture_every == 0 or epoch + 1 == cfg.epochs):
            totals.update(_pictures(model, cfg, holdout, training_smiles, training_properties, epoch + 1, writer,
                                    run_directory))

        def write_files(directory: Path, epoch: int = epoch + 1) -> None:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
                       directory / STATE_FILE)
            torch.save(cpu_state_dict(model), directory / MODEL_FILE)
            metadata = {**loop_config["metadata"], "epochs": epoch}
            (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2))

        end_epoch(epoch + 1, totals, rank, writer, "vgae", write_files)
    if writer is not None:
        writer.close()


def _prepare(cfg: MolecularVGAEConfig) -> dict[str, Any]:
    """Featurize both corpora (Ray tasks) and describe them for the workers."""
    data_root = resolve_data_root(cfg.data_root)
    featurizer = MolecularFeaturizer(cfg.vocabulary(), cfg.max_atoms)
    caches, manifests = {}, {}
    for role, path, max_shards in (("train", cfg.corpus.path, cfg.corpus.max_shards),
                                   ("holdout", cfg.corpus.holdout_path, cfg.corpus.holdout_max_shards)):
        source = Path(path) if Path(path).is_absolute() else data_root / path
        caches[role] = CorpusCache(source, resolve_cache_dir(cfg.cache_dir), cfg.corpus.shard_size, cfg.corpus.column,
                                   featurizer=featurizer)
        manifests[role] = build_corpus(caches[role], cfg.corpus.featurize_tasks, max_shards)
    training = _corpus(str(caches["train"].directory), manifests["train"])
    metadata = {
        "corpus": {role: {"source": m.source, "sha256": m.source_sha256, "rows": m.rows,
                          "molecules": m.parsed - m.skipped, "failed_smiles": m.failed,
                          "skipped_unrepresentable": m.skipped, "shards": len(m.shards)}
                   for role, m in manifests.items()},
        "featurizer_version": featurizer.version, "atom_tokens": cfg.atom_tokens, "max_atoms": cfg.max_atoms,
        "properties": list(PROPERTIES), "git_commit": git_commit(),  # the driver's: workers may start later
    }
    return {"config": dataclasses.asdict(cfg), "manifest": dataclasses.asdict(manifests["train"]),
            "holdout_manifest": dataclasses.asdict(manifests["holdout"]),
            "cache_directory": str(caches["train"].directory), "holdout_directory": str(caches["holdout"].directory),
            "property_mean": training.properties.mean(dim=0).tolist(),
            "property_std": training.properties.std(dim=0).tolist(), "metadata": metadata}


def generation_report(cfg: MolecularVGAEConfig, model: MolecularVGAE, training: MolecularCorpus,
                      holdout: MolecularCorpus, writer, run_directory: Path) -> dict[str, Any]:
    """The final numbers (and pictures) of a trained model."""
    model.eval()
    vocabulary = cfg.vocabulary()
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    training_smiles, training_properties = set(training.smiles), training.properties.numpy()
    started = time.perf_counter()
    raw, decoded = sample_molecules(model, vocabulary, torch.randn(cfg.samples, cfg.latent, generator=generator))
    report = evaluate_samples(raw, decoded, training_smiles, training_properties)
    decode_seconds = time.perf_counter() - started

    with torch.no_grad():
        codes_holdout = _latent_codes(model, holdout)
        predicted = model.predict_properties(codes_holdout).numpy()
    r2 = {name: float(r2_score(holdout.properties[:, k].numpy(), predicted[:, k])) for k, name in enumerate(PROPERTIES)}

    settings = cfg.optimisation
    start = torch.randn(settings.starts, cfg.latent, generator=generator)
    before = sample_molecules(model, vocabulary, start, raw=False)[1]
    qed_before = _qed_of(before)
    objectives = {"property_head": lambda z: model.predict_properties(z)[:, 0]}
    fitting: dict[str, float] = {}
    if settings.decoded_head_codes:
        started = time.perf_counter()

        def decoded_qed(z: torch.Tensor) -> torch.Tensor:
            return _qed_of(sample_molecules(model, vocabulary, z, raw=False)[1])

        codes = fitting_codes(settings.decoded_head_codes, cfg.latent, settings.trust_radius, generator)
        round_starts = [torch.randn(settings.starts, cfg.latent, generator=generator)
                        for _ in range(settings.decoded_head_rounds)]
        objectives["decoded_qed_head"], rounds = refit_on_ascents(
            codes, decoded_qed(codes), decoded_qed, round_starts, partial(_optimise, settings=settings),
            settings.decoded_head_members, settings.decoded_head_epochs, cfg.seed)
        fitting = {"fitting_codes": len(codes) + sum(r.codes for r in rounds),
                   "refit_rounds": [{**dataclasses.asdict(r), "overestimate": r.overestimate} for r in rounds],
                   "fit_seconds": time.perf_counter() - started}
    ascents = {name: _ascent(model, vocabulary, objective, start, qed_before, settings)
               for name, objective in objectives.items()}
    if fitting:
        ascents["decoded_qed_head"][0].update(fitting)

    pictures = run_directory / "pictures"
    step = cfg.epochs
    shown = [m for m in decoded if m is not None][:16]
    publish(molecule_grid(shown, [f"QED {_qed(m):.2f}" for m in shown]), "final/prior_samples", step, writer, pictures)
    for name, (_, molecules, qed_after) in ascents.items():
        best = [i for i in qed_after.argsort(descending=True).tolist() if molecules[i] is not None][:16]
        tag = "final/optimised" if name == "property_head" else f"final/optimised_{name}"
        publish(molecule_grid([molecules[i] for i in best], [f"QED {qed_after[i]:.2f}" for i in best]), tag, step,
                writer, pictures)
    publish(latent_projection(codes_holdout, holdout.properties[:, 0].numpy(), "held-out molecules"),
            "final/latent_qed", step, writer, pictures)
    return {
        "generation": {**{k: v for k, v in dataclasses.asdict(report).items() if k != "unique_smiles"},
                       "example_smiles": report.unique_smiles[:50], "decode_and_score_seconds": decode_seconds},
        "property_head_r2_holdout": r2,
        "holdout_molecules": len(holdout),
        "latent_optimisation": {
            **dataclasses.asdict(settings),
            "qed_random_prior_mean": float(qed_before.nanmean()),
            "valid_random_prior": int((~qed_before.isnan()).sum()),
            "unique_random_prior": len({canonical_smiles(m) for m in before if m is not None}),
            "sas_random_prior_mean": _mean_sas(before),
            "mean_norm_random_prior": float(start.norm(dim=-1).mean()),
            **{name: summary for name, (summary, _, _) in ascents.items()},
        },
    }


def _qed(molecule: Chem.Mol | None) -> float:
    return QED.qed(molecule) if molecule is not None else float("nan")  # alone: SAS costs more than QED


def _qed_of(molecules: list[Chem.Mol | None]) -> torch.Tensor:
    return torch.tensor([_qed(m) for m in molecules])


def _optimise(objective: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor,
              settings: OptimisationConfig) -> torch.Tensor:
    """The configured ascent (steps, learning rate, prior term, trust radius) from ``start``."""
    return optimise_latents(objective, start, settings.steps, settings.lr, settings.prior_weight,
                            settings.trust_radius)


def _mean_sas(molecules: list[Chem.Mol | None]) -> float:
    return float(np.mean([molecular_properties(m)[PROPERTIES.index("sas")] for m in molecules if m is not None]))


def _ascent(model: MolecularVGAE, vocabulary: AtomVocabulary, objective: Callable[[torch.Tensor], torch.Tensor],
            start: torch.Tensor, qed_before: torch.Tensor, settings: OptimisationConfig
            ) -> tuple[dict[str, Any], list[Chem.Mol | None], torch.Tensor]:
    """Ascend ``objective`` from the starts, decode, and compare with the starts and with the norm-matched
    control: (the summary, the decoded molecules, their QED)."""
    optimised = _optimise(objective, start, settings)
    # The control without the objective: each start moved only radially, to its optimised code's norm. The
    # prior term alone pulls codes inwards, and codes nearer the origin decode to different molecules.
    norm_matched = start * (optimised.norm(dim=-1, keepdim=True) / start.norm(dim=-1, keepdim=True))
    after, control = (sample_molecules(model, vocabulary, z, raw=False)[1] for z in (optimised, norm_matched))
    qed_after, qed_control = _qed_of(after), _qed_of(control)
    with torch.no_grad():
        predicted_before, predicted_after = objective(start), objective(optimised)
    tracked = ~qed_before.isnan()
    summary = {
        "qed_optimised_mean": float(qed_after.nanmean()), "valid_optimised": int((~qed_after.isnan()).sum()),
        "qed_norm_matched_control_mean": float(qed_control.nanmean()),
        "mean_norm_optimised": float(optimised.norm(dim=-1).mean()),
        # The objective's view of the same codes: a gap to the decoded QED shows where it is off.
        "predicted_qed_random_prior_mean": float(predicted_before.mean()),
        "predicted_qed_optimised_mean": float(predicted_after.mean()),
        "prediction_correlation_random_prior": float(np.corrcoef(predicted_before[tracked].numpy(),
                                                                 qed_before[tracked].numpy())[0, 1]),
        # QED rewards some motifs that chemists avoid; synthetic accessibility (1 easy … 10 hard) shows that.
        "sas_optimised_mean": _mean_sas(after),
        "qed_optimised_top10": sorted(qed_after[~qed_after.isnan()].tolist(), reverse=True)[:10],
        # Codes pushed to an objective's optimum may all decode to one molecule: say how many differ.
        "unique_optimised": len({canonical_smiles(m) for m in after if m is not None}),
    }
    return summary, after, qed_after


@ray.remote
def _report_task(loop_config: dict[str, Any], run_directory: str) -> dict[str, Any]:
    cfg = config_from_dict(loop_config["config"], "molecular VGAE job", schema=MolecularVGAEConfig)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model = build_model(cfg)
    model.load_state_dict(load_on_cpu(Path(run_directory) / MODEL_FILE))
    training = _corpus(loop_config["cache_directory"], manifest_from_dict(loop_config["manifest"]))
    holdout = _corpus(loop_config["holdout_directory"], manifest_from_dict(loop_config["holdout_manifest"]))
    writer = tensorboard(run_directory)
    try:
        return generation_report(cfg, model, training, holdout, writer, Path(run_directory))
    finally:
        writer.close()


def run_molecular_vgae(cfg: MolecularVGAEConfig) -> Path:
    """Featurize, train (resuming a previous run of the same name), report; returns the run directory."""
    connect_for(cfg)
    loop_config = _prepare(cfg)
    run_directory = (Path(cfg.output_dir) / cfg.name).resolve()
    run_directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = fit(_train_loop, {**loop_config, "run_directory": str(run_directory)}, run_directory, cfg)
    train_seconds = time.perf_counter() - started
    copy_outputs(result, run_directory, (MODEL_FILE, METADATA_FILE))
    report = ray.get(_report_task.options(num_cpus=cfg.cpus_per_worker, num_gpus=0).remote(
        loop_config, str(run_directory)))
    metadata = json.loads((run_directory / METADATA_FILE).read_text())
    atomic_write_json(run_directory / RESULTS_FILE, {
        # metadata's git_commit is the training's; a resumed job may report with newer code.
        "config": dataclasses.asdict(cfg), **metadata, "report_git_commit": git_commit(),
        "train_seconds_this_process": train_seconds,
        "final_epoch_metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
        **report,
    })
    return run_directory
