"""gradcheck: autodiff and hand-written gradients, and HVPs, against central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from descend.diagnostics import GradcheckReport, gradcheck


def rosenbrock(x):
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def test_correct_autodiff_gradient_passes_tightly():
    report = gradcheck(rosenbrock, [-1.2, 1.0, 0.5, 2.0])
    assert isinstance(report, GradcheckReport)
    assert report.passed
    assert report.f == pytest.approx(
        float(rosenbrock(torch.tensor([-1.2, 1.0, 0.5, 2.0], dtype=torch.float64)))
    )
    (block,) = report.blocks
    assert block.name == "x" and block.checked == block.total == 4
    assert block.max_rel_error < 1e-7  # central differences in float64 at h = eps^(1/3)
    assert len(report.directions) == 3 and all(d.passed for d in report.directions)
    assert len(report.hvp) == 3 and report.hvp_passed
    report.assert_passed()


def test_wrong_hand_written_gradient_is_caught_at_its_coordinate():
    def f(x):
        return float(np.sum(x**3) + x[0] * x[2])

    def jac(x):
        g = 3 * x**2
        g[0] += x[2]
        g[2] += x[0]
        g[1] *= 1.001  # the bug: 0.1 % off in one coordinate
        return g

    report = gradcheck(f, np.array([1.0, 2.0, 3.0]), jac=jac)
    assert not report.passed
    (block,) = report.blocks
    assert block.failures == 1
    worst = block.worst[0]
    assert worst.index == (1,) and not worst.passed
    assert worst.autodiff == pytest.approx(12.012)
    assert worst.finite_difference == pytest.approx(12.0, rel=1e-8)
    assert worst.rel_error == pytest.approx(1e-3, rel=1e-2)
    assert report.hvp == () and "jac= was given without hessp=" in report.hvp_skipped
    text = str(report)
    assert text.startswith("gradcheck FAILED")
    assert "x[1]: autodiff 12.012, finite difference 12" in text
    with pytest.raises(AssertionError, match="gradient check failed"):
        report.assert_passed()


def test_correct_hand_written_gradient_and_hessp_pass():
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    report = gradcheck(
        lambda x: 0.5 * x @ A @ x,
        np.array([0.3, -0.7]),
        jac=lambda x: A @ x,
        hessp=lambda x, v: A @ v,
    )
    assert report.passed and len(report.hvp) == 3


def test_second_derivative_bug_is_caught_by_the_hvp_check():
    class Square(torch.autograd.Function):
        """x^2 with a backward that autograd cannot differentiate again correctly."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 2 * x.detach()  # the detach hides the second derivative

    report = gradcheck(lambda x: (Square.apply(x) * x.sum()).sum(), torch.tensor([1.0, 2.0]))
    assert report.gradient_passed  # first derivatives are right
    assert not report.hvp_passed and not report.passed
    assert "second derivatives disagree" in str(report)


def test_blocks_of_a_module_and_coordinate_sampling():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 20), nn.Tanh(), nn.Linear(20, 1))
    X, y = torch.randn(32, 6), torch.randn(32, 1)  # float32: raised to float64 inside
    report = gradcheck(lambda m: nn.functional.mse_loss(m(X), y), net, max_coords=15)
    assert report.passed
    assert [b.name for b in report.blocks] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [(b.checked, b.total) for b in report.blocks] == [(15, 120), (15, 20), (15, 20), (1, 1)]
    assert net[0].weight.dtype == torch.float32  # the caller's module is untouched


def test_a_broken_layer_fails_alone():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([0.5, -1.5]))
            self.b = nn.Parameter(torch.tensor([0.1]))

        def forward(self, x):
            # the gradient of w is scaled by 2 (w is used as 2w forward, w backward)
            w = self.w + (self.w - self.w.detach())
            return (x * w).sum(-1) + self.b

    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    report = gradcheck(lambda m: (m(x) ** 2).mean(), Scaled())
    by_name = {b.name: b for b in report.blocks}
    assert by_name["b"].passed
    assert not by_name["w"].passed
    assert "FAILED at 2 coordinate(s)" in str(report)


def test_tuple_and_dict_inputs():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([[0.5], [-1.0]])
    report = gradcheck(lambda u, v: (u @ v).squeeze() ** 2 + (u**3).sum(), (a, b))
    assert report.passed and [bl.name for bl in report.blocks] == ["x[0]", "x[1]"]
    report = gradcheck(lambda u, v: (u * v).sum() ** 2, {"u": a, "v": a + 1})
    assert report.passed and [bl.name for bl in report.blocks] == ["u", "v"]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match=r"rtol must be in \[0, inf\), got -1"):
        gradcheck(rosenbrock, [1.0, 1.0], rtol=-1)
    with pytest.raises(ValueError, match="max_coords must be an integer >= 1, got 0"):
        gradcheck(rosenbrock, [1.0, 1.0], max_coords=0)
    with pytest.raises(ValueError, match="fun must return a scalar"):
        gradcheck(lambda x: x * 2, [1.0, 1.0])
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        gradcheck(rosenbrock, [float("nan"), 1.0])
    with pytest.raises(ValueError, match="jac= checks a single block"):
        gradcheck(lambda u, v: (u * v).sum(), (torch.ones(2), torch.ones(2)), jac=lambda x: x)
    with pytest.raises(TypeError, match="fun must return a scalar tensor for autodiff"):
        gradcheck(lambda x: 1.0, [1.0])
