"""Bad input is refused at the boundary, with an error that names the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from descend import least_squares


def line(x):
    return torch.stack([x[0] - 1.0, x[1] - 2.0, x[0] + x[1]])


CASES = [
    # (arguments, error type, what the message names)
    (dict(method="newton"), ValueError, "method"),
    (dict(tr_solver="svd"), ValueError, "tr_solver"),
    (dict(method="lm", tr_solver="lsmr"), ValueError, "tr_solver"),
    (dict(loss="l2"), ValueError, "loss"),
    (dict(loss=3), TypeError, "loss"),
    (dict(method="lm", loss="huber"), ValueError, "loss"),
    (dict(f_scale=0.0), ValueError, "f_scale"),
    (dict(f_scale="1"), TypeError, "f_scale"),
    (dict(ftol=-1.0), ValueError, "ftol"),
    (dict(xtol=math.nan), ValueError, "xtol"),
    (dict(method="lm", gtol=None), ValueError, "gtol"),
    (dict(method="lm", ftol=1e-20), ValueError, "ftol"),
    (dict(ftol=None, xtol=None, gtol=None), ValueError, "ftol"),
    (dict(max_nfev=0), ValueError, "max_nfev"),
    (dict(max_nfev=2.5), TypeError, "max_nfev"),
    (dict(x0=[[1.0, 2.0]]), ValueError, "x0"),
    (dict(x0=[]), ValueError, "x0"),
    (dict(x0=[1.0, math.nan]), ValueError, "x0"),
    (dict(x0=["a", "b"]), TypeError, "x0"),
    (dict(x0=np.array([1.0 + 1j, 2.0])), ValueError, "x0"),
    (dict(bounds=(0.0, 1.0, 2.0)), ValueError, "bounds"),
    (dict(bounds=([0.0, 0.0, 0.0], 5.0)), ValueError, "bounds"),
    (dict(bounds=(1.0, 1.0)), ValueError, "bounds"),
    (dict(bounds=(["a", "b"], 5.0)), TypeError, "bounds"),
    (dict(bounds=(5.0, 10.0)), ValueError, "x0"),
    (dict(method="lm", bounds=(-5.0, 5.0)), ValueError, "bounds"),
    (dict(x_scale="auto"), ValueError, "x_scale"),
    (dict(x_scale=[1.0, -1.0]), ValueError, "x_scale"),
    (dict(x_scale=[1.0, 1.0, 1.0]), ValueError, "x_scale"),
    (dict(tr_solver="lsmr", x_scale="jac"), ValueError, "x_scale"),
    (dict(residuals=3), TypeError, "residuals"),
    (dict(residuals=lambda x: x.detach().numpy() - 1.0), TypeError, "residuals"),
    (dict(residuals=lambda x: x / 0.0), ValueError, "residuals"),
    (dict(residuals=lambda x: x[:1], method="lm"), ValueError, "m=1"),
    (dict(jac=3), TypeError, "jac"),
    (dict(residuals=lambda x: np.append(x, 1.0), jac=lambda x: np.ones((2, 2))), ValueError, "jac"),
    (dict(kwargs=[1]), TypeError, "kwargs"),
]


@pytest.mark.parametrize(
    ("arguments", "error", "named"), CASES, ids=[f"{i}-{sorted(c[0])}" for i, c in enumerate(CASES)]
)
def test_bad_input_names_the_argument(arguments, error, named) -> None:
    call = dict(residuals=line, x0=[0.5, 0.5])
    call.update(arguments)
    with pytest.raises(error, match=named):
        least_squares(call.pop("residuals"), call.pop("x0"), **call)


def test_below_epsilon_tolerances_are_fine_while_one_is_not() -> None:
    res = least_squares(line, [0.5, 0.5], ftol=None, xtol=None, gtol=1e-10)
    assert res.success
