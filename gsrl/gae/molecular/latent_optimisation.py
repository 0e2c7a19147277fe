"""Latent optimisation: gradient ascent on a predicted property, and a predictor fitted to what the decoder makes.

The VGAE's property head learns from the codes of real molecules (posterior means). Generation starts
from prior samples, which lie elsewhere: on ZINC the head predicts QED 0.69 for prior samples whose
decoded molecules have QED 0.20, and its predictions there correlate 0.11 with the decoded QED. The
decoded-property head is fitted instead on codes drawn where the ascent goes (prior samples, and prior
samples displaced within the trust radius), each labelled with the property of the molecule it decodes
to: the very function the optimisation is meant to raise (correlation 0.34 on fresh prior samples).
Fitted on those codes alone it still overrates the codes its own ascent reaches (on MOSES it predicted
QED 1.10 for codes whose molecules had 0.48), so it can be refitted in rounds on the labelled end points
of its ascents, as model-based optimisation does with each batch it queries. An ensemble of such
heads, ascended on its mean less its spread, keeps the ascent where its members agree, that is where
they were fitted (on ZINC with 3 rounds: QED 0.60 against 0.53 for one head).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["PessimisticEnsemble", "RefitRound", "fit_decoded_property_head", "fit_decoded_property_ensemble",
           "fitting_codes", "optimise_latents", "refit_on_ascents"]


def optimise_latents(objective: Callable[[Tensor], Tensor], start: Tensor, steps: int, lr: float,
                     prior_weight: float, trust_radius: float | None = None) -> Tensor:
    """Gradient ascent on ``objective`` (one value per code) from ``start`` (Adam), with a Gaussian-prior
    penalty ``prior_weight · ‖z‖² / 2``; with ``trust_radius`` each code is also projected back, after every
    step, into the ball of that radius around its start.

    Why the ball: unconstrained ascent leaves the region where a predictor was fitted (the property head
    then predicts QED above 1, which no molecule has) and drives every start to the same code, hence one
    molecule.
    """
    z = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        value = objective(z) - prior_weight * 0.5 * z.pow(2).sum(-1)
        (z.grad,) = torch.autograd.grad(-value.sum(), z)  # the predictor's own gradients stay untouched
        optimizer.step()
        if trust_radius is not None:
            with torch.no_grad():
                step = z - start
                shrink = (trust_radius / step.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
                z.copy_(start + step * shrink)
    return z.detach()


def fitting_codes(count: int, latent: int, trust_radius: float | None, generator: torch.Generator) -> Tensor:
    """Codes to fit the decoded-property head on: prior samples and, with a trust radius, as many again
    displaced by up to that radius in a random direction (the ascent ends nearer the origin than most
    prior samples, and the head must be right where it ends)."""
    prior = torch.randn(count - count // 2 if trust_radius else count, latent, generator=generator)
    if not trust_radius:
        return prior
    centres = prior[:count // 2]
    directions = nn.functional.normalize(torch.randn(centres.shape, generator=generator), dim=-1)
    lengths = trust_radius * torch.rand(centres.size(0), 1, generator=generator)
    return torch.cat([prior, centres + directions * lengths])


def fit_decoded_property_head(codes: Tensor, values: Tensor, hidden: int = 256, epochs: int = 60,
                              batch_size: int = 256, lr: float = 1e-3, seed: int = 0) -> nn.Module:
    """An MLP ``latent → 1`` fitted by least squares to ``values`` (the property of each code's decoded
    molecule; NaN, for a code that decodes to no molecule, is left out); call it on codes ``[B, latent]``
    and read ``[B]``."""
    known = ~values.isnan()
    codes, values = codes[known], values[known]
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the initialisation from `seed`, leaving the global stream as it was
        torch.manual_seed(seed)
        head = nn.Sequential(nn.Linear(codes.size(1), hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                             nn.Linear(hidden, 1), nn.Flatten(0))
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(codes.size(0), generator=generator)
        for start in range(0, codes.size(0), batch_size):
            batch = order[start:start + batch_size]
            loss = (head(codes[batch]) - values[batch]).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return head.eval().requires_grad_(False)


class PessimisticEnsemble(nn.Module):
    """Heads fitted to the same data from different initialisations and orders; predicts their mean less
    their standard deviation, a lower estimate that is low wherever the heads disagree (off their data)."""

    def __init__(self, heads: list[nn.Module]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, codes: Tensor) -> Tensor:
        predictions = torch.stack([head(codes) for head in self.heads])
        return predictions.mean(0) - predictions.std(0)


def fit_decoded_property_ensemble(codes: Tensor, values: Tensor, members: int, epochs: int = 60,
                                  seed: int = 0) -> nn.Module:
    """One head (``members == 1``) or a :class:`PessimisticEnsemble` of ``members`` heads, seeds ``seed, seed+1, …``."""
    heads = [fit_decoded_property_head(codes, values, epochs=epochs, seed=seed + k) for k in range(members)]
    return heads[0] if members == 1 else PessimisticEnsemble(heads)


@dataclass
class RefitRound:
    """Where one round's ascent ended, as the head that drove it saw it and as labelled."""

    codes: int  # ascents labelled and added to the fitting set
    value_mean: float  # the label (decoded molecule's property), mean over codes that decode
    predicted_mean: float  # what the head that drove the ascent predicted there

    @property
    def overestimate(self) -> float:
        return self.predicted_mean - self.value_mean


def refit_on_ascents(codes: Tensor, values: Tensor, label: Callable[[Tensor], Tensor], starts: list[Tensor],
                     ascend: Callable[[nn.Module, Tensor], Tensor], members: int = 1, epochs: int = 60,
                     seed: int = 0) -> tuple[nn.Module, list[RefitRound]]:
    """Fit the head (an ensemble of ``members``) on (``codes``, ``values``); then, for each batch in
    ``starts``, ``ascend`` the current head from it, ``label`` the end points (decode them and score the
    molecules), add them to the fitting set and refit. Returns the last head and what each round found."""
    head = fit_decoded_property_ensemble(codes, values, members, epochs, seed)
    rounds = []
    for batch in starts:
        ended = ascend(head, batch)
        labels = label(ended)
        with torch.no_grad():
            predicted = head(ended)
        rounds.append(RefitRound(len(ended), float(labels.nanmean()), float(predicted.mean())))
        codes, values = torch.cat([codes, ended]), torch.cat([values, labels])
        head = fit_decoded_property_ensemble(codes, values, members, epochs, seed)
    return head, rounds
