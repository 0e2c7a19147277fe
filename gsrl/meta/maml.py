"""Functional MAML: adapted parameters are new tensors computed from the meta-parameters.

The meta-parameters themselves are never modified, so one set of weights serves any number of
episodes, and the outer gradient flows through the inner step (second order) unless first-order
is asked for, in which case the inner gradient is treated as a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

Params = dict[str, Tensor]


def sgd_step(loss: Tensor, params: Mapping[str, Tensor], names: Sequence[str], lr: float,
             first_order: bool) -> Params:
    """params - lr * d(loss)/d(params[names]); other entries pass through unchanged."""
    grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=not first_order,
                                allow_unused=True)
    adapted = dict(params)
    for name, grad in zip(names, grads):
        if grad is not None:
            adapted[name] = params[name] - lr * (grad.detach() if first_order else grad)
    return adapted


def adapt(loss_fn: Callable[[Params], Tensor], params: Mapping[str, Tensor], names: Sequence[str], steps: int,
          lr: float, first_order: bool) -> tuple[Params, list[Tensor]]:
    """`steps` inner SGD steps on loss_fn; returns the adapted parameters and each step's loss."""
    current = dict(params)
    losses = []
    for _ in range(steps):
        loss = loss_fn(current)
        losses.append(loss)
        current = sgd_step(loss, current, names, lr, first_order)
    return current, losses
