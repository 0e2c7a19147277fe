"""What a molecular VGAE makes, and how good it is: prior samples, their scores and pictures, the property
head on held-out molecules, and latent optimisation of QED.

``epoch_pictures`` is what rank 0 of the training job (learners.molecular_vgae_loop) draws every picture
epoch; ``generation_report`` is the final report of a trained model that gsrl.jobs.molecular_vgae writes to
``results.json``: validity (raw and valence-aware), uniqueness, novelty, property distributions against the
training set's, the property head's R² on held-out molecules, and QED after latent optimisation (ascent on
the property head, and on a head fitted to the QED of decoded prior samples) against the random prior
samples it started from, each with the norm-matched control.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import QED
from sklearn.metrics import r2_score

from gsrl.gae.molecular.config import MolecularVGAEConfig, OptimisationConfig
from gsrl.gae.molecular.data import PROPERTIES, MolecularCorpus, collate_molecules, molecular_properties
from gsrl.gae.molecular.generation import decode_raw, decode_valence_aware, evaluate_samples
from gsrl.gae.molecular.latent_optimisation import fitting_codes, optimise_latents, refit_on_ascents
from gsrl.gae.molecular.model import MolecularVGAE
from gsrl.gae.molecular.molecules import AtomVocabulary, canonical_smiles
from gsrl.gae.molecular.pictures import latent_projection, molecule_grid, publish

__all__ = ["build_model", "epoch_pictures", "generation_report", "sample_molecules"]

DECODE_CHUNK = 500


def build_model(cfg: MolecularVGAEConfig) -> MolecularVGAE:
    """The untrained model the config describes (what the training job trains and the report loads)."""
    return MolecularVGAE(cfg.vocabulary().size, cfg.max_atoms, len(PROPERTIES), cfg.hidden, cfg.latent,
                         cfg.encoder_layers, cfg.decoder_width, cfg.decoder_layers, cfg.decoder_heads,
                         cfg.decoder_pair_width, cfg.property_hidden)


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


def epoch_pictures(model: MolecularVGAE, cfg: MolecularVGAEConfig, holdout: MolecularCorpus,
                   training_smiles: set[str], training_properties: np.ndarray, epoch: int, board,
                   run_directory: Path) -> dict[str, float]:
    """Rank 0, every picture epoch: score prior samples, draw a grid of them and the latent space."""
    model.eval()
    generator = torch.Generator().manual_seed(cfg.seed)  # the same prior samples every time: comparable grids
    z = torch.randn(cfg.check_samples, cfg.latent, generator=generator)
    raw, decoded = sample_molecules(model, cfg.vocabulary(), z)
    report = evaluate_samples(raw, decoded, training_smiles, training_properties)
    shown = [m for m in decoded[:16] if m is not None]
    legends = [f"QED {_qed(m):.2f}" for m in shown]
    pictures = run_directory / "pictures"
    publish(molecule_grid(shown, legends), "vgae/prior_samples", epoch, board, pictures)
    view = holdout.subset(range(min(2000, len(holdout))))
    publish(latent_projection(_latent_codes(model, view), view.properties[:, 0].numpy(),
                              f"held-out molecules, epoch {epoch}"), "vgae/latent_qed", epoch, board, pictures)
    model.train()
    return {"validity_raw": report.validity_raw, "validity": report.validity, "uniqueness": report.uniqueness,
            "novelty": report.novelty}


def generation_report(cfg: MolecularVGAEConfig, model: MolecularVGAE, training: MolecularCorpus,
                      holdout: MolecularCorpus, board, run_directory: Path) -> dict[str, Any]:
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
    publish(molecule_grid(shown, [f"QED {_qed(m):.2f}" for m in shown]), "final/prior_samples", step, board, pictures)
    for name, (_, molecules, qed_after) in ascents.items():
        best = [i for i in qed_after.argsort(descending=True).tolist() if molecules[i] is not None][:16]
        tag = "final/optimised" if name == "property_head" else f"final/optimised_{name}"
        publish(molecule_grid([molecules[i] for i in best], [f"QED {qed_after[i]:.2f}" for i in best]), tag, step,
                board, pictures)
    publish(latent_projection(codes_holdout, holdout.properties[:, 0].numpy(), "held-out molecules"),
            "final/latent_qed", step, board, pictures)
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
