"""minimize(): the caller's types at the edge, every stopping criterion, divergence, history."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import descend
from descend import Status, minimize

FIRST_ORDER = ["gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "amsgrad"]


def quadratic(x):
    """f = 1/2 (x - c)' D (x - c) with D = diag(1, 10): minimum at c = (1, -2)."""
    c = torch.tensor([1.0, -2.0], dtype=x.dtype)
    d = torch.tensor([1.0, 10.0], dtype=x.dtype)
    return 0.5 * (d * (x - c) ** 2).sum()


def rosen(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


# -- the caller's types at the edge ----------------------------------------------------


@pytest.mark.parametrize("x0", [[0.0, 0.0], (0.0, 0.0), np.zeros(2), np.zeros(2, dtype=np.float32)])
def test_list_tuple_array_come_back_as_float64_numpy(x0):
    res = minimize(quadratic, x0, "gd", lr=0.1, gtol=1e-7, ftol=0)
    assert isinstance(res.x, np.ndarray) and res.x.dtype == np.float64
    np.testing.assert_allclose(res.x, [1.0, -2.0], atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_comes_back_as_tensor_of_same_dtype(dtype):
    x0 = torch.zeros(2, dtype=dtype)
    res = minimize(quadratic, x0, "gd", lr=0.1, gtol=1e-7, ftol=0)
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == dtype
    assert not res.x.requires_grad
    torch.testing.assert_close(res.x, torch.tensor([1.0, -2.0], dtype=dtype), atol=1e-3, rtol=0)
    assert torch.equal(x0, torch.zeros(2, dtype=dtype)), "x0 must not be modified"


def test_matrix_shaped_x0_keeps_its_shape():
    target = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    res = minimize(lambda x: ((x - target) ** 2).sum(), np.zeros((2, 3)), "gd", lr=0.25)
    assert res.x.shape == (2, 3)
    np.testing.assert_allclose(res.x, target.numpy(), atol=1e-5)


def test_gd_on_a_quadratic_matches_the_closed_form_iterates():
    # x_k - c = (1 - lr d)^k (x_0 - c) coordinate-wise
    res = minimize(quadratic, [0.0, 0.0], "gd", lr=0.05, max_iter=7, gtol=0, ftol=0, record=True)
    traj = res.history.as_dict()["x"]
    k = np.arange(8)[:, None]
    expected = np.array([1.0, -2.0]) + (1 - 0.05 * np.array([1.0, 10.0])) ** k * np.array(
        [-1.0, 2.0]
    )
    np.testing.assert_allclose(traj, expected, rtol=1e-12)


@pytest.mark.parametrize("method", FIRST_ORDER)
def test_every_first_order_method_solves_a_quadratic(method):
    lr = {"gd": 0.1, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.5}.get(method, 0.05)
    options = {"weight_decay": 0.0} if method == "adamw" else {}
    res = minimize(
        quadratic, [0.0, 0.0], method, lr=lr, gtol=1e-6, ftol=0, max_iter=20_000, **options
    )
    assert res.converged, res.message
    np.testing.assert_allclose(res.x, [1.0, -2.0], atol=1e-4)
    assert res.method == method


# -- numpy functions with an explicit gradient -------------------------------------------


def test_numpy_fun_with_jac_matches_autodiff():
    def f(x):
        return float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)

    def g(x):
        return np.array(
            [-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)]
        )

    kw = dict(lr=1e-3, max_iter=300, gtol=0, ftol=0)
    a = minimize(f, [-1.2, 1.0], "gd", jac=g, **kw)
    b = minimize(rosen, [-1.2, 1.0], "gd", **kw)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-12)
    c = minimize(lambda x: (f(x), g(x)), [-1.2, 1.0], "gd", jac=True, **kw)
    np.testing.assert_allclose(c.x, b.x, rtol=1e-12)


def test_wrong_jac_shape_is_refused():
    with pytest.raises(ValueError, match="jac returned shape"):
        minimize(lambda x: float(x @ x), [1.0, 2.0], "gd", jac=lambda x: np.zeros(3))


# -- stopping criteria ------------------------------------------------------------------


def test_max_iter():
    res = minimize(rosen, [-1.2, 1.0], "gd", max_iter=5)
    assert res.status == Status.MAX_ITER and res.nit == 5 and not res.converged
    assert "max_iter = 5" in res.message


def test_gtol():
    res = minimize(quadratic, [0.0, 0.0], "gd", lr=0.1, gtol=1e-3, ftol=0)
    assert res.status == Status.GTOL and res.converged
    assert res.grad_norm <= 1e-3
    # the previous iterate had not met it: it stopped at the first point that did
    assert res.history["grad_norm"][-2] > 1e-3


def test_ftol():
    res = minimize(quadratic, [0.0, 0.0], "gd", lr=0.1, gtol=0, ftol=1e-6)
    assert res.status == Status.FTOL
    f = res.history["f"]
    assert abs(f[-2] - f[-1]) <= 1e-6 * max(abs(f[-2]), abs(f[-1]), 1)
    changes = np.abs(np.diff(f[:-1]))
    scale = np.maximum(np.maximum(np.abs(f[:-2]), np.abs(f[1:-1])), 1)
    assert np.all(changes > 1e-6 * scale)


def test_ftol_patience_needs_consecutive_iterations():
    res = minimize(quadratic, [0.0, 0.0], "gd", lr=0.1, gtol=0, ftol=1e-6, patience=3)
    quick = minimize(quadratic, [0.0, 0.0], "gd", lr=0.1, gtol=0, ftol=1e-6, patience=1)
    assert res.status == Status.FTOL and res.nit == quick.nit + 2


def test_xtol():
    res = minimize(quadratic, [0.0, 0.0], "gd", lr=0.1, gtol=0, ftol=0, xtol=1e-4)
    assert res.status == Status.XTOL
    assert res.history["step_norm"][-1] <= 1e-4 * max(np.linalg.norm(res.x), 1)


def test_target():
    res = minimize(quadratic, [0.0, 0.0], "gd", lr=0.1, target=1e-2)
    assert res.status == Status.TARGET and res.fun <= 1e-2
    assert res.history["f"][-2] > 1e-2


def test_max_time():
    res = minimize(rosen, [-1.2, 1.0], "gd", max_time=0.05, gtol=0, ftol=0, max_iter=10**9)
    assert res.status == Status.MAX_TIME
    assert 0.05 <= res.time < 2.0


def test_converged_start_takes_no_step():
    res = minimize(quadratic, [1.0, -2.0], "adam")
    assert res.status == Status.GTOL and res.nit == 0 and res.nfev == 1


# -- divergence: nothing is lost ----------------------------------------------------------


def test_too_large_lr_diverges_keeps_best_and_suggests_a_rate_that_works():
    # L = 10: gd is stable for lr < 0.2
    res = minimize(quadratic, [0.0, 0.0], "gd", lr=0.5)
    assert res.status == Status.DIVERGED and not res.converged
    assert math.isfinite(res.fun) and res.fun == res.history["f"].min()
    assert "learning rate 0.5 is too large; try" in res.message
    suggested = float(re.search(r"try (\d*\.?\d+(?:e-?\d+)?)", res.message).group(1))
    assert 0 < suggested < 0.2
    assert minimize(quadratic, [0.0, 0.0], "gd", lr=suggested).converged


def test_nan_stops_with_best_iterate():
    def cliff(x):  # NaN once x[0] > 2
        return (x[0] - 5) ** 2 + torch.sqrt(2 - x[0]) * 0

    res = minimize(cliff, [0.0], "gd", lr=0.1)
    assert res.status == Status.DIVERGED
    assert "nan" in res.message.lower()
    assert res.x[0] <= 2 and math.isfinite(res.fun)


def test_non_converged_stop_returns_the_best_iterate():
    # momentum overshoots: when the budget ends mid-swing, the best point is returned
    res = minimize(quadratic, [0.0, 0.0], "momentum", lr=0.15, momentum=0.95, max_iter=30)
    assert res.status == Status.MAX_ITER
    assert res.fun == pytest.approx(res.history["f"].min())
    assert res.fun == pytest.approx(quadratic(torch.as_tensor(res.x)).item())


# -- history --------------------------------------------------------------------------------


def test_history_columns_and_counts():
    res = minimize(rosen, [-1.2, 1.0], "adam", max_iter=50, record=True)
    h = res.history.as_dict()
    assert len(res.history) == res.nit + 1 == 51
    for column in ("iteration", "f", "grad_norm", "step_norm", "lr", "time", "nfev", "njev"):
        assert h[column].shape == (51,)
    assert h["x"].shape == (51, 2)
    np.testing.assert_array_equal(h["iteration"], np.arange(51))
    assert np.all(np.diff(h["time"]) >= 0)
    assert h["lr"][1] == descend.METHODS["adam"].defaults["lr"]
    # one evaluation per iteration: the optimizer's call of the closure reuses the loop's
    np.testing.assert_array_equal(h["nfev"], np.arange(1, 52))
    assert res.nfev == res.njev == 51
    np.testing.assert_allclose(h["step_norm"][1:], np.linalg.norm(np.diff(h["x"], axis=0), axis=1))
    np.testing.assert_allclose(h["f"], [rosen(torch.tensor(x)).item() for x in h["x"]])


def test_history_to_pandas():
    pd = pytest.importorskip("pandas")
    res = minimize(rosen, [-1.2, 1.0], "gd", max_iter=10)
    frame = res.history.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 11
    assert frame.index.name == "iteration"


# -- callbacks -------------------------------------------------------------------------------


def test_callback_sees_intermediate_results_and_can_stop():
    seen = []

    def cb(r):
        seen.append((r.nit, r.fun, np.array(r.x)))
        return r.nit >= 4

    res = minimize(rosen, [-1.2, 1.0], "gd", callback=cb)
    assert res.status == Status.CALLBACK and res.nit == 4
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert isinstance(seen[0][2], np.ndarray)
    assert seen[-1][1] == pytest.approx(res.history["f"][4])


def test_callback_stop_iteration_and_class_hooks():
    calls = []

    class Recorder(descend.Callback):
        def on_begin(self, r):
            calls.append(("begin", r.nit))

        def on_step(self, r):
            calls.append(("step", r.nit))
            if r.nit == 2:
                raise StopIteration

        def on_end(self, r):
            calls.append(("end", r.status))

    res = minimize(rosen, [-1.2, 1.0], "gd", callback=[Recorder()])
    assert res.status == Status.CALLBACK
    assert calls == [("begin", 0), ("step", 1), ("step", 2), ("end", Status.CALLBACK)]


# -- bad input ---------------------------------------------------------------------------------


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown method 'sgdd'.*valid methods: .*gd"):
        minimize(rosen, [0.0, 0.0], "sgdd")


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match="does not take option.*momentun.*valid options"):
        minimize(rosen, [0.0, 0.0], "momentum", momentun=0.9)


def test_bad_hyperparameter_named():
    with pytest.raises(ValueError, match="lr must be in"):
        minimize(rosen, [0.0, 0.0], "adam", lr=-1.0)


def test_non_scalar_fun():
    with pytest.raises(ValueError, match="scalar.*shape \\(2,\\)"):
        minimize(lambda x: x**2, [1.0, 2.0], "gd")


@pytest.mark.parametrize("bad", [[float("nan"), 0.0], [0.0, float("inf")]])
def test_non_finite_x0(bad):
    with pytest.raises(ValueError, match="x0 contains NaN or inf"):
        minimize(rosen, bad, "gd")


def test_fun_not_finite_at_x0():
    with pytest.raises(ValueError, match=r"fun\(x0\) is inf"):
        minimize(lambda x: 1 / (x * 0).sum(), [1.0], "gd")


def test_fun_raising_is_reported():
    def broken(x):
        raise KeyError("missing")

    with pytest.raises(ValueError, match="fun raised KeyError at x0"):
        minimize(broken, [1.0], "gd")


def test_fun_returning_a_python_float_without_jac():
    with pytest.raises(TypeError, match="pass jac="):
        minimize(lambda x: 1.0, [1.0], "gd")


def test_non_numeric_x0():
    with pytest.raises(TypeError, match="x0 must be"):
        minimize(rosen, ["a", "b"], "gd")


@given(st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=False))
def test_negative_tolerances_are_refused(value):
    for name in ("gtol", "ftol", "xtol"):
        with pytest.raises(ValueError, match=f"{name} must be in"):
            minimize(quadratic, [0.0, 0.0], "gd", **{name: value})


@given(st.integers(max_value=-1))
def test_negative_max_iter_is_refused(value):
    with pytest.raises(ValueError, match="max_iter must be an integer >= 0"):
        minimize(quadratic, [0.0, 0.0], "gd", max_iter=value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_returns_callers_kind():
    res = minimize(quadratic, [0.0, 0.0], "adam", device="cuda", lr=0.05)
    assert isinstance(res.x, np.ndarray) and res.converged
