"""Losses of GS-Meta: binary cross-entropy for classification, NT-Xent between paired subgraphs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def nt_xent(first: Tensor, second: Tensor, temperature: float) -> Tensor:
    """NT-Xent over B pairs: row i of `first` and row i of `second` are positives, all else negatives.

    Cosine similarities divided by the temperature; each of the 2B embeddings is an anchor whose
    cross-entropy target is its partner; the result is the mean over anchors.
    """
    pairs = first.shape[0]
    z = F.normalize(torch.cat([first, second]), dim=-1)
    similarity = (z @ z.T) / temperature
    self_mask = torch.eye(2 * pairs, dtype=torch.bool, device=z.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    partner = (torch.arange(2 * pairs, device=z.device) + pairs) % (2 * pairs)
    return F.cross_entropy(similarity, partner)


def binary_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
