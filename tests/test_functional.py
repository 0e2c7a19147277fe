"""gsrl.models.functional.dropout equals F.dropout (values and gradients) and keeps a one-byte mask."""

import torch
import torch.nn.functional as F

from gsrl.models.functional import dropout


def saved_dtypes(function, *args):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        out = function(*args)
    return out, saved


def test_dropout_draws_the_same_mask_and_scale_as_f_dropout_and_keeps_only_uint8():
    x = torch.randn(40, 30, requires_grad=True)
    with torch.no_grad():
        x[0, 0], x[0, 1], x[1, 0] = float("nan"), float("inf"), float("-inf")
    torch.manual_seed(3)
    expected = F.dropout(x, 0.25, training=True)
    torch.manual_seed(3)
    out, saved = saved_dtypes(dropout, x, 0.25, True)
    assert torch.equal(out.isnan(), expected.isnan())
    assert torch.equal(out.nan_to_num(), expected.nan_to_num())
    assert saved == [torch.uint8]
    assert (out == 0).any() and (out != 0).any()


def test_dropout_gradients_match_to_second_order():
    x = torch.randn(20, 10, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(20, 10, dtype=torch.float64, requires_grad=True)
    grads = []
    for function in (lambda t: F.dropout(t, 0.3, training=True), lambda t: dropout(t, 0.3, True)):
        torch.manual_seed(5)
        (grad,) = torch.autograd.grad(function(x * x), x, grad_out, create_graph=True)
        (second,) = torch.autograd.grad(grad.sum(), x)
        grads.append((grad, second))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_dropout_is_the_identity_in_eval_mode_and_at_p_zero():
    x = torch.randn(5, 4)
    assert dropout(x, 0.5, False) is x and dropout(x, 0.0, True) is x
