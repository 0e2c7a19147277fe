"""Molecular VGAE: tensors of molecules and back, per-molecule targets, loss terms, decoders, the job end to end."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem

from gsrl.gae.molecular.config import MolecularVGAEConfig
from gsrl.gae.molecular.data import MolecularFeaturizer, collate_molecules
from gsrl.gae.molecular.generation import decode_raw, decode_valence_aware, evaluate_samples
from gsrl.gae.molecular.latent_optimisation import (fit_decoded_property_ensemble, fit_decoded_property_head,
                                                    fitting_codes, optimise_latents, refit_on_ascents)
from gsrl.gae.molecular.model import MolecularVGAE, gaussian_kl, reconstruction_loss, upper_pairs
from gsrl.gae.molecular.molecules import canonical_smiles, to_molecule, to_tensors

VOCABULARY = MolecularVGAEConfig().vocabulary()


@pytest.fixture(scope="module")
def zinc(data_root: Path) -> list[str]:
    with gzip.open(data_root / "zinc" / "zinc250k_jtvae_test.txt.gz", "rt") as handle:
        return handle.read().split()[:300]


def one_hot_logits(atoms: torch.Tensor, bonds_upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits that put all confidence on the given classes (a perfect decoder)."""
    atom_logits = torch.nn.functional.one_hot(atoms.long(), VOCABULARY.size).float() * 20
    bond_logits = torch.nn.functional.one_hot(bonds_upper.long(), 4).float() * 20
    return atom_logits, bond_logits


def test_molecules_survive_tensors_and_both_decoders(zinc: list[str]) -> None:
    featurizer = MolecularFeaturizer(VOCABULARY, 38)
    shard = featurizer(zinc, list(range(1, len(zinc) + 1)), "zinc")
    assert shard.parse.failed == 0 and shard.skipped == 0 and len(shard.tensors["smiles"]) == len(zinc)
    expected = [canonical_smiles(Chem.MolFromSmiles(s)) for s in zinc]
    assert shard.tensors["smiles"] == expected
    atom_logits, bond_logits = one_hot_logits(shard.tensors["atoms"], shard.tensors["bonds"])
    for decoder in (decode_raw, decode_valence_aware):
        assert [canonical_smiles(m) for m in decoder(atom_logits, bond_logits, VOCABULARY)] == expected


def test_featurizer_counts_unparsable_and_unrepresentable_molecules() -> None:
    featurizer = MolecularFeaturizer(VOCABULARY, max_atoms=5)
    shard = featurizer(["CCO", "C1CC", "CCCCCCCC", "[Se]C", "not a smiles"], [1, 2, 3, 4, 5], "toy.smi")
    assert (shard.parse.parsed, shard.parse.failed, shard.skipped) == (3, 2, 2)
    assert shard.parse.failed_examples == [(2, "C1CC"), (5, "not a smiles")]
    assert shard.tensors["smiles"] == ["CCO"] and shard.kept.tolist() == [True, False, False, False, False]
    assert featurizer.version != MolecularFeaturizer(VOCABULARY, max_atoms=6).version


def test_batched_targets_and_edges_stay_within_each_molecule() -> None:
    molecules = [Chem.MolFromSmiles(s) for s in ("c1ccccc1O", "C#N", "CC(=O)[O-]")]
    tensors = [to_tensors(m, VOCABULARY, 10) for m in molecules]
    rows, columns = upper_pairs(10)
    atoms = torch.stack([t.atoms for t in tensors])
    bonds = torch.stack([t.bonds[rows, columns] for t in tensors])
    batch = collate_molecules(atoms, bonds, torch.zeros(3, 3))
    assert torch.equal(batch.batch[batch.edge_index[0]], batch.batch[batch.edge_index[1]])
    assert batch.x.numel() == sum(m.GetNumAtoms() for m in molecules)
    assert batch.slot.tolist() == list(range(7)) + list(range(2)) + list(range(4))  # canonical positions
    assert batch.edge_index.size(1) == 2 * sum(m.GetNumBonds() for m in molecules)
    for b, t in enumerate(tensors):  # the dense target of molecule b is that molecule's own adjacency
        assert torch.equal(batch.bonds[b], t.bonds[rows, columns])
        dense = torch.zeros(10, 10, dtype=torch.long)
        dense[rows, columns] = batch.bonds[b]
        assert torch.equal(dense + dense.t(), t.bonds)
    benzene = tensors[0].bonds  # kekulized: three double and four single bonds (one to the OH oxygen)
    assert (benzene == 2).sum() == 6 and (benzene == 1).sum() == 8


def test_encoder_reads_each_molecule_out_slot_by_slot_whatever_the_batch() -> None:
    molecules = [Chem.MolFromSmiles(s) for s in ("c1ccccc1O", "C#N", "CC(=O)[O-]")]
    rows, columns = upper_pairs(10)
    tensors = [to_tensors(m, VOCABULARY, 10) for m in molecules]
    atoms = torch.stack([t.atoms for t in tensors])
    bonds = torch.stack([t.bonds[rows, columns] for t in tensors])
    torch.manual_seed(0)
    model = MolecularVGAE(VOCABULARY.size, 10, 3, hidden=8, latent=4, decoder_width=8, decoder_heads=2).eval()
    together, _ = model.encode(collate_molecules(atoms, bonds, torch.zeros(3, 3)))
    for b in range(3):  # a molecule's code does not depend on its batch-mates or its place in the batch
        alone, _ = model.encode(collate_molecules(atoms[b:b + 1], bonds[b:b + 1], torch.zeros(1, 3)))
        torch.testing.assert_close(together[b:b + 1], alone)
    # The readout is the final atom states in slot order: slot k of the first molecule moves mu through the
    # weights of slot k alone.
    hidden_states = {}
    model.convs[-1].register_forward_hook(lambda module, args, output: hidden_states.update(h=output))
    model.encode(collate_molecules(atoms[:1], bonds[:1], torch.zeros(1, 3)))
    h = torch.relu(hidden_states["h"])  # 7 atoms of phenol, in slot order
    expected = model.to_mu.bias + model.to_mu.weight.view(4, 10, 8)[:, :7].flatten(1) @ h.flatten()
    torch.testing.assert_close(together[0], expected)


def test_loss_terms_match_hand_computation_on_a_two_atom_molecule() -> None:
    atom_logits = torch.tensor([[[0.0, 1.0, 0.0], [2.0, 0.0, 1.0]]])  # 2 slots, 3 classes
    bond_logits = torch.tensor([[[0.5, 1.5, 0.0, -1.0]]])  # 1 slot pair, 4 classes
    atoms, bonds = torch.tensor([[1, 0]]), torch.tensor([[1]])

    def nll(logits: list[float], target: int) -> float:
        return -logits[target] + math.log(sum(math.exp(v) for v in logits))

    expected = nll([0.0, 1.0, 0.0], 1) + nll([2.0, 0.0, 1.0], 0) + nll([0.5, 1.5, 0.0, -1.0], 1)
    assert reconstruction_loss(atom_logits, bond_logits, atoms, bonds).item() == pytest.approx(expected, rel=1e-6)
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0)]])
    kl = 0.5 * (1.0 + 1.0 - 1.0 - 0.0) + 0.5 * (4.0 + 4.0 - 1.0 - math.log(4.0))  # mu², σ², -1, -log σ²
    assert gaussian_kl(mu, logvar).item() == pytest.approx(kl, rel=1e-6)


@pytest.mark.parametrize("scale", [1.0, 5.0, 25.0])
def test_valence_aware_decoding_always_gives_valid_connected_molecules(scale: float) -> None:
    generator = torch.Generator().manual_seed(int(scale))
    atom_logits = torch.randn(60, 20, VOCABULARY.size, generator=generator) * scale
    bond_logits = torch.randn(60, 190, 4, generator=generator) * scale
    decoded = decode_valence_aware(atom_logits, bond_logits, VOCABULARY)
    assert all(m is not None and m.GetNumAtoms() >= 1 for m in decoded)
    assert all(len(Chem.GetMolFrags(m)) == 1 for m in decoded)
    assert all(Chem.MolFromSmiles(Chem.MolToSmiles(m)) is not None for m in decoded)
    assert sum(m is not None for m in decode_raw(atom_logits, bond_logits, VOCABULARY)) < 60


def test_raw_decoder_rejects_what_rdkit_rejects() -> None:
    assert to_molecule([1, 6], [(0, 1, 2)], VOCABULARY) is None  # F=C: fluorine with two bonds
    atom_logits, bond_logits = one_hot_logits(torch.tensor([[1, 6, 0]]), torch.tensor([[2, 0, 0]]))
    assert decode_raw(atom_logits, bond_logits, VOCABULARY) == [None]
    (fixed,) = decode_valence_aware(atom_logits, bond_logits, VOCABULARY)
    assert canonical_smiles(fixed) == "CF"


def test_generation_report_counts_validity_uniqueness_and_novelty() -> None:
    mols = [Chem.MolFromSmiles(s) for s in ("CCO", "CCO", "CCN", "c1ccccc1")]
    report = evaluate_samples([mols[0], None, None, None], mols + [None], {"CCO"}, np.array([[0.5, 1.0, 2.0]] * 4))
    assert (report.samples, report.validity_raw, report.validity) == (5, 0.2, 0.8)
    assert report.uniqueness == 0.75 and report.novelty == pytest.approx(2 / 3)
    assert report.properties["qed"]["training"]["mean"] == 0.5


def _head_objective(model: MolecularVGAE):
    return lambda z: model.predict_properties(z)[:, 0]


def _tiny_model_and_starts() -> tuple[MolecularVGAE, torch.Tensor]:
    torch.manual_seed(0)
    model = MolecularVGAE(VOCABULARY.size, 6, 3, hidden=8, latent=4, decoder_width=8, decoder_layers=1, decoder_heads=2,
                          property_hidden=8)
    return model, torch.randn(32, 4)


def test_latent_optimisation_raises_the_predicted_property_and_leaves_the_model_alone() -> None:
    model, start = _tiny_model_and_starts()
    optimised = optimise_latents(_head_objective(model), start, steps=50, lr=0.05, prior_weight=0.01)
    with torch.no_grad():
        assert (model.predict_properties(optimised)[:, 0] > model.predict_properties(start)[:, 0]).float().mean() > 0.9
    assert all(p.grad is None for p in model.parameters())


def test_latent_optimisation_keeps_each_code_inside_its_trust_region() -> None:
    model, start = _tiny_model_and_starts()
    free = optimise_latents(_head_objective(model), start, steps=100, lr=0.1, prior_weight=0.0)
    bounded = optimise_latents(_head_objective(model), start, steps=100, lr=0.1, prior_weight=0.0, trust_radius=0.5)
    assert (free - start).norm(dim=1).min() > 0.5  # without the ball the codes would leave it
    assert (bounded - start).norm(dim=1).max() <= 0.5 + 1e-5
    assert (bounded - start).norm(dim=1).min() == pytest.approx(0.5, abs=1e-4)  # the ascent pushes to the boundary
    with torch.no_grad():
        assert (model.predict_properties(bounded)[:, 0] > model.predict_properties(start)[:, 0]).all()


def test_fitting_codes_are_prior_samples_and_displacements_within_the_trust_radius() -> None:
    codes = fitting_codes(1001, 8, 2.0, torch.Generator().manual_seed(0))
    assert codes.shape == (1001, 8)
    prior, displaced = codes[:501], codes[501:]
    assert torch.allclose((displaced - prior[:500]).norm(dim=1).max(), torch.tensor(2.0), atol=0.05)
    assert (displaced - prior[:500]).norm(dim=1).max() <= 2.0 + 1e-5
    assert prior.mean().abs() < 0.1 and (prior.std() - 1).abs() < 0.05
    assert fitting_codes(10, 8, None, torch.Generator().manual_seed(0)).shape == (10, 8)


def test_decoded_property_head_learns_a_known_function_and_its_ascent_climbs_it() -> None:
    generator = torch.Generator().manual_seed(0)
    codes = torch.randn(4000, 4, generator=generator)
    target = torch.tensor([1.0, -1.0, 0.0, 0.0])
    values = torch.sigmoid(codes @ target)  # a bounded score, like QED
    head = fit_decoded_property_head(codes, values, hidden=32, epochs=20, seed=0)
    fresh = torch.randn(500, 4, generator=generator)
    assert (head(fresh) - torch.sigmoid(fresh @ target)).abs().mean() < 0.03
    assert all(not p.requires_grad for p in head.parameters())  # fitted once, then only a function of z
    optimised = optimise_latents(head, fresh, steps=100, lr=0.05, prior_weight=0.0, trust_radius=1.0)
    gained = torch.sigmoid(optimised @ target) - torch.sigmoid(fresh @ target)
    assert (gained > 0).float().mean() > 0.95
    direction = torch.nn.functional.normalize(optimised - fresh, dim=1) @ (target / target.norm())
    assert direction.mean() > 0.7  # the codes moved along the function's gradient (a random direction: 0)


def test_pessimistic_ensemble_predicts_its_members_mean_less_their_spread_which_grows_off_the_data() -> None:
    generator = torch.Generator().manual_seed(0)
    codes = torch.randn(2000, 4, generator=generator)
    values = torch.sigmoid(codes[:, 0] - codes[:, 1])
    ensemble = fit_decoded_property_ensemble(codes, values, members=3, epochs=5, seed=4)
    members = [fit_decoded_property_head(codes, values, epochs=5, seed=4 + k) for k in range(3)]
    near = torch.randn(200, 4, generator=generator)  # codes like the fitted ones
    far = 8 * near
    for where in (near, far):
        stacked = torch.stack([member(where) for member in members])
        assert torch.allclose(ensemble(where), stacked.mean(0) - stacked.std(0))
    spread = [torch.stack([member(where) for member in members]).std(0).mean() for where in (near, far)]
    assert spread[1] > 3 * spread[0]
    single = fit_decoded_property_ensemble(codes, values, members=1, epochs=5, seed=4)
    assert torch.equal(single(near), members[0](near))


def test_refitting_on_labelled_ascent_end_points_corrects_the_heads_overestimate() -> None:
    """A bump at (2, 0); fitted only near the origin, where the score still rises, the head extrapolates the
    rise, and its ascent overshoots the bump. Labelled end points teach it the fall beyond."""
    peak = torch.tensor([2.0, 0.0])

    def score(z: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(z - peak).pow(2).sum(-1) / 2)

    generator = torch.Generator().manual_seed(0)
    codes = 0.5 * torch.randn(2000, 2, generator=generator)
    values = score(codes)
    values[:10] = float("nan")  # codes that decode to nothing are left out of the fit

    def ascend(head: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
        return optimise_latents(head, z, steps=150, lr=0.05, prior_weight=0.0, trust_radius=4.0)

    starts = [0.5 * torch.randn(300, 2, generator=generator) for _ in range(3)]
    head, rounds = refit_on_ascents(codes, values, score, starts, ascend, epochs=20, seed=0)
    assert [r.codes for r in rounds] == [300, 300, 300]
    assert rounds[0].overestimate > 0.3  # the head fitted near the origin promises far more than the bump gives
    assert abs(rounds[-1].overestimate) < 0.5 * rounds[0].overestimate
    assert rounds[-1].value_mean > rounds[0].value_mean
    fresh = 0.5 * torch.randn(300, 2, generator=generator)
    first_head = fit_decoded_property_head(codes, values, epochs=20, seed=0)
    assert score(ascend(head, fresh)).mean() > score(ascend(first_head, fresh)).mean() + 0.1


def test_gsrl_gae_molecules_trains_reports_draws_and_resumes(tmp_path: Path, data_root: Path,
                                                               cache_dir: Path) -> None:
    ray = pytest.importorskip("ray")
    from click.testing import CliRunner
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gsrl.cli import main

    overrides = [f"data.root={data_root}", f"data.cache_dir={cache_dir}", f"run.output_dir={tmp_path}",
                 "corpus.shard_size=150", "corpus.max_shards=2", "corpus.holdout_max_shards=1", "picture_every=1",
                 "samples=40", "check_samples=20", "optimisation.starts=10", "optimisation.steps=5",
                 "optimisation.decoded_head_codes=200", "optimisation.decoded_head_epochs=2",
                 "optimisation.decoded_head_rounds=1", "optimisation.decoded_head_members=2", "run.workers=2",
                 "run.threads=1", "ray.max_failures=0", "hidden=16", "latent=8", "decoder_width=16", "decoder_layers=1"]
    config = Path(__file__).resolve().parent.parent / "configs" / "gae" / "molecules-zinc.yaml"

    run = tmp_path / "vgae-zinc"

    def run_for(epochs: int, *extra: str, resume: bool = False):
        start = ["--resume", str(run)] if resume else ["-c", str(config), *[x for o in overrides for x in ("-o", o)]]
        try:
            return CliRunner().invoke(main, ["gae", "molecules", *start] +
                                      [x for o in [f"epochs={epochs}", *extra] for x in ("-o", o)])
        finally:
            ray.shutdown()

    result = run_for(2)
    assert result.exit_code == 0, result.output + repr(result.exception)
    saved = json.loads((run / "results.json").read_text())
    assert saved["epochs"] == 2 and saved["corpus"]["train"]["molecules"] == 300
    assert saved["generation"]["validity"] == 1.0 and saved["generation"]["samples"] == 40
    assert set(saved["property_head_r2_holdout"]) == {"qed", "logp", "sas"}
    optimisation = saved["latent_optimisation"]
    assert optimisation["valid_random_prior"] == 10 and 1 <= optimisation["unique_random_prior"] <= 10
    for objective in ("property_head", "decoded_qed_head"):
        assert optimisation[objective]["valid_optimised"] == 10
        assert 1 <= optimisation[objective]["unique_optimised"] <= 10
        assert 0 <= optimisation[objective]["qed_norm_matched_control_mean"] <= 1
    assert optimisation["decoded_qed_head"]["fitting_codes"] == 210  # 200 decoded codes, 10 refit end points
    (refit,) = optimisation["decoded_qed_head"]["refit_rounds"]
    assert refit["codes"] == 10 and 0 <= refit["value_mean"] <= 1
    assert 1 <= optimisation["sas_random_prior_mean"] <= 10
    pictures = {p.name for p in (run / "pictures").iterdir()}
    assert {"vgae-prior_samples-0001.png", "vgae-latent_qed-0002.png", "final-optimised-0002.png",
            "final-optimised_decoded_qed_head-0002.png"} <= pictures
    assert "validity 100.0%" in result.output

    refused = run_for(3)  # a new run where one is: refused in one line, nothing written
    assert refused.exit_code == 1 and "already holds a run; use --resume" in refused.output
    resumed = run_for(3, resume=True)  # the saved config with one more epoch continues from the epoch-2 checkpoint
    assert resumed.exit_code == 0, resumed.output + repr(resumed.exception)
    assert json.loads((run / "results.json").read_text())["epochs"] == 3
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("vgae/loss")] == [1, 2, 3]  # rank 0 alone, and epoch 3 only once

    # Workers the embedded cluster has no GPU for: a one-line error naming the keys, not a wait for ever.
    unplaceable = run_for(4, "ray.worker_gpus=1", "run.workers=64", resume=True)
    assert unplaceable.exit_code == 1
    assert "Error: run.workers × ray.worker_cpus/worker_gpus exceed the cluster (" in unplaceable.output
    assert "GPU: needs 64, cluster has" in unplaceable.output
    assert json.loads((run / "results.json").read_text())["epochs"] == 3
