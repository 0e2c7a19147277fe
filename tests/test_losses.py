"""GS-Meta's losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from gsrl.meta.losses import binary_cross_entropy, nt_xent


def reference_nt_xent(first: list[list[float]], second: list[list[float]], temperature: float) -> float:
    """NT-Xent by hand: cosine similarity / tau, softmax over the 2B-1 other embeddings, mean over anchors."""
    z = first + second
    z = [[x / math.sqrt(sum(v * v for v in row)) for x in row] for row in z]
    n, pairs = len(z), len(first)
    total = 0.0
    for i in range(n):
        partner = (i + pairs) % n
        logits = {j: sum(a * b for a, b in zip(z[i], z[j])) / temperature for j in range(n) if j != i}
        denominator = sum(math.exp(v) for v in logits.values())
        total += -math.log(math.exp(logits[partner]) / denominator)
    return total / n


def test_nt_xent_closed_form_orthogonal_pairs() -> None:
    """Views e1,e2 | e1,e2 at tau=1: every anchor sees its partner at cos 1 and two others at cos 0."""
    first = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = nt_xent(first, first.clone(), temperature=1.0)
    assert loss.item() == pytest.approx(math.log(1 + 2 / math.e), rel=1e-6)  # = 0.551445
    assert loss.item() == pytest.approx(0.5514447139320511, rel=1e-6)


def test_nt_xent_hand_computed_two_pairs() -> None:
    first = [[1.0, 0.0], [0.0, 2.0]]
    second = [[3.0, 4.0], [-1.0, 1.0]]
    tau = 0.5
    expected = reference_nt_xent(first, second, tau)
    # By hand: z = e1, e2, (0.6, 0.8), (-1, 1)/sqrt2; partners 0<->2, 1<->3; logits = cos / 0.5.
    s = 1 / math.sqrt(2)
    anchor0 = -math.log(math.exp(1.2) / (math.exp(0.0) + math.exp(1.2) + math.exp(-2 * s)))
    anchor1 = -math.log(math.exp(2 * s) / (math.exp(0.0) + math.exp(1.6) + math.exp(2 * s)))
    anchor2 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6) + math.exp(2 * 0.2 * s)))
    anchor3 = -math.log(math.exp(2 * s) / (math.exp(-2 * s) + math.exp(2 * s) + math.exp(2 * 0.2 * s)))
    assert expected == pytest.approx((anchor0 + anchor1 + anchor2 + anchor3) / 4, rel=1e-12)
    loss = nt_xent(torch.tensor(first), torch.tensor(second), temperature=tau)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert loss.item() == pytest.approx(0.6495223, rel=1e-5)


def test_nt_xent_matches_reference_on_random_vectors() -> None:
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    for tau in (0.08, 0.5, 2.0):
        expected = reference_nt_xent(first.tolist(), second.tolist(), tau)
        assert nt_xent(first.double(), second.double(), tau).item() == pytest.approx(expected, rel=1e-9)


def test_nt_xent_is_scale_invariant_per_row() -> None:
    generator = torch.Generator().manual_seed(1)
    first, second = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    scales = torch.tensor([[0.1], [3.0], [7.0], [0.5]])
    assert nt_xent(first * scales, second, 0.2).item() == pytest.approx(nt_xent(first, second, 0.2).item(), rel=1e-5)


def test_nt_xent_symmetric_in_views() -> None:
    generator = torch.Generator().manual_seed(2)
    first, second = torch.randn(6, 8, generator=generator), torch.randn(6, 8, generator=generator)
    assert nt_xent(first, second, 0.08).item() == pytest.approx(nt_xent(second, first, 0.08).item(), rel=1e-6)


def test_nt_xent_aligned_pairs_lower_than_shuffled() -> None:
    generator = torch.Generator().manual_seed(3)
    first = torch.randn(6, 16, generator=generator)
    second = first + 0.05 * torch.randn(6, 16, generator=generator)  # partners nearly identical
    shuffled = second[torch.tensor([1, 2, 3, 4, 5, 0])]
    aligned_loss = nt_xent(first, second, 0.08).item()
    shuffled_loss = nt_xent(first, shuffled, 0.08).item()
    assert aligned_loss < shuffled_loss
    assert aligned_loss < 0.1  # partners at cos ~ 1 dominate at tau = 0.08


def test_nt_xent_single_pair_is_zero() -> None:
    """With one pair, the partner is the anchor's only candidate: probability 1, loss 0."""
    loss = nt_xent(torch.tensor([[1.0, 2.0]]), torch.tensor([[-3.0, 0.5]]), 0.1)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_nt_xent_gradient_flows_to_both_views() -> None:
    generator = torch.Generator().manual_seed(4)
    first = torch.randn(3, 4, generator=generator, requires_grad=True)
    second = torch.randn(3, 4, generator=generator, requires_grad=True)
    nt_xent(first, second, 0.5).backward()
    assert torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0
    assert torch.isfinite(second.grad).all() and second.grad.abs().sum() > 0


def test_binary_cross_entropy_equals_formula() -> None:
    logits = [2.0, -1.0, 0.0, 3.5, -4.0]
    labels = [1.0, 0.0, 1.0, 0.0, 1.0]

    def sigmoid(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    expected = -sum(y * math.log(sigmoid(x)) + (1 - y) * math.log(1 - sigmoid(x))
                    for x, y in zip(logits, labels)) / len(logits)
    value = binary_cross_entropy(torch.tensor(logits), torch.tensor(labels)).item()
    assert value == pytest.approx(expected, rel=1e-6)
    # log(1+e^-2) + log(1+e^-1) + log 2 + log(1+e^3.5) + log(1+e^4), over 5
    assert value == pytest.approx(1.7362474, rel=1e-6)


def test_binary_cross_entropy_accepts_integer_labels_and_keeps_dtype() -> None:
    logits = torch.tensor([[0.3, -0.2], [1.0, 0.0]], dtype=torch.float64)
    int_labels = torch.tensor([[1, 0], [0, 1]])
    float_labels = int_labels.double()
    value = binary_cross_entropy(logits, int_labels)
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(binary_cross_entropy(logits, float_labels).item(), rel=1e-12)
    assert binary_cross_entropy(torch.zeros(3), torch.tensor([0.0, 1.0, 1.0])).item() == pytest.approx(math.log(2))
