"""The default health monitors in ``minimize``: each fires on its purpose-built case and
stays silent on a healthy run of the same problem."""

from __future__ import annotations

import math

import pytest
import torch

import descend
from descend import History, OptimizeResult
from descend.monitors import (
    Diagnosis,
    DivergenceMonitor,
    GradientNoiseMonitor,
    MonitorGroup,
    OscillationMonitor,
    SaddleMonitor,
    Severity,
    default_monitors,
    format_diagnoses,
    print_diagnoses,
)

try:
    from descend.problems import get_problem

    SADDLE = get_problem("saddle").fn
except (ImportError, ValueError):  # pragma: no cover - depends on descend.problems

    def SADDLE(x):
        return x[..., 0] ** 2 - x[..., 1] ** 2 + 0.25 * x[..., 1] ** 4


CURVATURES = torch.tensor([1.0, 10.0], dtype=torch.float64)  # L = 10


def quadratic(x):
    """f = (x1^2 + 10 x2^2)/2: L = 10, so gradient descent is stable for lr < 0.2."""
    return 0.5 * (CURVATURES * x**2).sum()


def rosenbrock(x):
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def kinds(result):
    return [d.kind for d in result.diagnoses]


# -- divergence and oscillation: a quadratic with lr above 2/L ---------------------------


def test_lr_above_two_over_l_reports_divergence_and_oscillation():
    res = descend.minimize(quadratic, [1.0, 1.0], "gd", lr=0.25)  # lr L = 2.5
    assert res.status == descend.Status.DIVERGED
    assert set(kinds(res)) == {"divergence", "oscillation"}
    div = next(d for d in res.diagnoses if d.kind == "divergence")
    assert div.severity == Severity.ERROR
    # the error grows |1 - lr L| = 1.5x per step; the stable rate 1/L = 0.1 is suggested
    assert div.evidence["growth_per_step"] == pytest.approx(1.5, rel=0.05)
    assert 0.05 <= div.suggested["lr"] <= 0.1
    osc = next(d for d in res.diagnoses if d.kind == "oscillation")
    assert osc.evidence["mean_cos"] < -0.99
    assert osc.evidence["step_ratio"] == pytest.approx(1.5, rel=0.05)
    assert osc.suggested["lr"] <= 0.1


def test_stable_oscillation_is_reported_with_the_damping_rate():
    # lr L = 1.8: the sharp coordinate flips sign every step, shrinking only 0.8x
    res = descend.minimize(quadratic, [0.0, 1.0], "gd", lr=0.18)
    assert kinds(res) == ["oscillation"]
    osc = res.diagnoses[0]
    assert osc.severity == Severity.WARNING
    assert osc.evidence["step_ratio"] == pytest.approx(0.8, rel=0.01)
    assert osc.suggested["lr"] == pytest.approx(0.1, rel=0.01)  # lr / (1 + q) = 1/L


def test_healthy_quadratic_run_is_silent():
    res = descend.minimize(quadratic, [1.0, 1.0], "gd", lr=0.05)  # lr L = 0.5
    assert res.converged
    assert res.diagnoses == []


def test_divergence_of_the_gradient_alone():
    # f stays flat while the gradient norm grows 10x per row: a blow-up of the gradient
    history = History()
    rows = [(k, 1.0 + 1e-3 * k, 2.0 * 10.0**k, 0.1, 0.01, 0.0, k, k) for k in range(6)]
    history.append(rows[0])
    run = OptimizeResult(
        x=None,
        fun=1.0,
        grad_norm=2.0,
        nit=0,
        nfev=0,
        njev=0,
        status=descend.Status.RUNNING,
        message="",
        history=history,
    )
    monitor = DivergenceMonitor(every=1)
    monitor.on_begin(run)
    for row in rows[1:]:
        history.append(row)
        monitor.on_iteration(row[0])
    monitor.on_end(run)
    assert kinds(run) == ["divergence"]
    d = run.diagnoses[0]
    assert "the gradient norm blew up" in d.message
    # reported at the first row past grad_growth (1e3 x the start) after 3 rises: row 4
    assert d.step == 4
    assert d.evidence["grad_norm_now"] == 2e4
    assert d.evidence["growth"] == pytest.approx(1e4)


# -- a learning rate too small: Rosenbrock at lr 1e-7 -------------------------------------


def test_rosenbrock_with_tiny_lr_reports_lr_too_small():
    res = descend.minimize(rosenbrock, [-1.2, 1.0], "gd", lr=1e-7, max_iter=400)
    assert kinds(res) == ["lr_too_small"]
    d = res.diagnoses[0]
    assert d.evidence["decrease_ratio"] == pytest.approx(1.0, abs=1e-3)
    # the sharpest curvature at the start is ~1.3e3, so 1/lambda_max ~ 7e-4 is safe
    assert 2e-4 <= d.suggested["lr"] <= 1.5e-3
    assert "lr_range_test" in d.suggestion


def test_rosenbrock_with_good_lr_is_silent():
    # the valley floor is flat along the steps, but lr * lambda_max ~ 1: no room to grow
    res = descend.minimize(rosenbrock, [-1.2, 1.0], "gd", lr=1e-3, max_iter=3000)
    assert res.diagnoses == []


@pytest.mark.parametrize(("method", "lr"), [("adam", 1e-2), ("momentum", 1e-4)])
def test_rosenbrock_with_adaptive_and_momentum_methods_is_silent(method, lr):
    res = descend.minimize(rosenbrock, [-1.2, 1.0], method, lr=lr, max_iter=3000)
    assert res.diagnoses == []


def test_suggested_lr_trains_faster():
    slow = descend.minimize(rosenbrock, [-1.2, 1.0], "gd", lr=1e-7, max_iter=400)
    lr = slow.diagnoses[0].suggested["lr"]
    fast = descend.minimize(rosenbrock, [-1.2, 1.0], "gd", lr=lr, max_iter=400)
    assert fast.fun < 0.5 * slow.fun


# -- saddle points and plateaus: f = x^2 - y^2 + y^4/4 ---------------------------------------


def test_saddle_reached_from_the_ridge_is_reported():
    res = descend.minimize(SADDLE, [1.0, 0.0], "gd", lr=0.1)
    # the gradient vanished, at a saddle: the status says so, not "converged"
    assert res.status == "saddle" and not res.converged and res.grad_norm <= 1e-5
    assert kinds(res) == ["saddle"]
    d = res.diagnoses[0]
    assert d.severity == Severity.ERROR
    assert d.evidence["lambda_min"] == pytest.approx(-2.0, rel=1e-6)
    assert d.evidence["lambda_max"] == pytest.approx(2.0, rel=1e-6)
    # the escape direction is the y axis, where the curvature is -2
    monitor = SaddleMonitor()
    descend.minimize(SADDLE, [1.0, 0.0], "gd", lr=0.1, monitors=[monitor])
    direction = monitor.direction.abs()
    assert direction[1] == pytest.approx(1.0, abs=1e-6)
    assert direction[0] == pytest.approx(0.0, abs=1e-6)


def test_saddle_problem_from_a_generic_start_is_silent():
    res = descend.minimize(SADDLE, [1.0, 0.5], "gd", lr=0.1)
    assert res.converged
    assert abs(res.x[1]) == pytest.approx(math.sqrt(2.0), rel=1e-4)
    assert res.diagnoses == []


def test_lingering_near_the_saddle_is_reported_as_a_plateau():
    # from 1e-6 off the ridge the run crawls past the saddle for ~300 steps, then escapes
    res = descend.minimize(SADDLE, [1.0, 1e-6], "gd", lr=0.01, max_iter=3000)
    assert "plateau" in kinds(res)
    d = next(d for d in res.diagnoses if d.kind == "plateau")
    assert d.evidence["lambda_min"] < 0
    assert d.evidence["relative_drop"] < 1e-3
    assert 1e-8 < d.evidence["grad_norm"] / d.evidence["grad_norm_peak"] < 1e-2


def test_convex_valley_crawl_is_not_a_plateau():
    # slow progress along Rosenbrock's valley floor: flat-looking, but positive definite
    res = descend.minimize(rosenbrock, [-1.2, 1.0], "momentum", lr=1e-4, max_iter=3000)
    assert "plateau" not in kinds(res)


# -- gradient noise: an objective that samples its own mini-batch --------------------------


def test_minibatch_objective_reports_gradient_noise():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(2000, 3, generator=gen, dtype=torch.float64)
    w_true = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    y = X @ w_true + torch.randn(2000, generator=gen, dtype=torch.float64)
    draw = torch.Generator().manual_seed(1)

    def minibatch_loss(w):
        idx = torch.randint(0, 2000, (4,), generator=draw)
        return ((X[idx] @ w - y[idx]) ** 2).mean()

    res = descend.minimize(
        minibatch_loss, [0.0, 0.0, 0.0], "gd", lr=0.01, max_iter=500, ftol=0.0, gtol=0.0
    )
    assert "gradient_noise" in kinds(res)
    d = next(d for d in res.diagnoses if d.kind == "gradient_noise")
    assert d.suggested["batch_size_multiplier"] > 1


def test_deterministic_objective_switches_the_noise_monitor_off():
    monitors = default_monitors()
    noise = next(m for m in monitors if m.kinds == ("gradient_noise",))
    res = descend.minimize(
        rosenbrock, [-1.2, 1.0], "adam", lr=1e-2, max_iter=300, monitors=monitors
    )
    assert "gradient_noise" not in kinds(res)
    # successive gradients of a deterministic run point the same way: no sampling at all
    assert noise.screens >= 1 and noise.estimates == []
    # forced to sample, two identical gradients switch it off
    noise = GradientNoiseMonitor(screen=1.0)
    descend.minimize(rosenbrock, [-1.2, 1.0], "adam", lr=1e-2, max_iter=300, monitors=[noise])
    assert noise.active is False and noise.estimates == []


# -- the machinery: once per kind, switching off, printing -------------------------------


def test_each_kind_is_reported_once_per_run():
    twice = [DivergenceMonitor(), DivergenceMonitor(every=3), OscillationMonitor()]
    res = descend.minimize(quadratic, [1.0, 1.0], "gd", lr=0.25, monitors=twice)
    assert sorted(kinds(res)) == ["divergence", "oscillation"]
    assert all(isinstance(d, Diagnosis) for d in res.diagnoses)


def test_monitors_switch_off():
    assert descend.minimize(quadratic, [1.0, 1.0], "gd", lr=0.25, monitors=None).diagnoses == []
    res = descend.minimize(
        quadratic, [1.0, 1.0], "gd", lr=0.25, monitors=default_monitors(off=["oscillation"])
    )
    assert kinds(res) == ["divergence"]
    res = descend.minimize(
        quadratic,
        [1.0, 1.0],
        "gd",
        lr=0.25,
        monitors=[MonitorGroup(default_monitors(off=("divergence",)))],
    )
    assert kinds(res) == ["oscillation"]


def test_unknown_monitor_name_is_refused():
    with pytest.raises(ValueError, match="unknown monitor 'oscilation'.*oscillation"):
        default_monitors(off=["oscilation"])
    with pytest.raises(ValueError, match="monitors must be 'default'"):
        descend.minimize(quadratic, [1.0, 1.0], monitors="all")


def test_monitor_arguments_are_checked():
    with pytest.raises(ValueError, match=r"cos_threshold must be in \[-1, 0\), got 0.5"):
        OscillationMonitor(cos_threshold=0.5)
    with pytest.raises(ValueError, match="every must be an integer >= 3"):
        OscillationMonitor(every=2)
    with pytest.raises(ValueError, match=r"grad_tol must be in \(0, 1\)"):
        SaddleMonitor(grad_tol=2.0)


def test_user_callbacks_see_the_diagnoses_at_the_end():
    seen = []

    class Watcher(descend.Callback):
        def on_end(self, result):
            seen.extend(d.kind for d in result.diagnoses)

    descend.minimize(quadratic, [1.0, 1.0], "gd", lr=0.25, callback=Watcher())
    assert sorted(seen) == ["divergence", "oscillation"]


def test_diagnoses_print_plainly(capsys):
    res = descend.minimize(quadratic, [1.0, 1.0], "gd", lr=0.25)
    print_diagnoses(res)
    out = capsys.readouterr().out
    assert out.startswith("[error] ")  # errors first
    assert "[error] divergence (step 18): " in out
    assert "fix: lower the learning rate from 0.25 to about" in out
    assert "evidence: " in out and "growth_per_step = 1.5" in out
    assert format_diagnoses([]) == "no problems found"
    assert "diagnoses: divergence, oscillation" in repr(res)


def test_monitors_do_not_change_the_run():
    on = descend.minimize(rosenbrock, [-1.2, 1.0], "adam", lr=1e-2, max_iter=500)
    off = descend.minimize(rosenbrock, [-1.2, 1.0], "adam", lr=1e-2, max_iter=500, monitors=None)
    assert on.nit == off.nit and on.nfev == off.nfev and on.nhev == off.nhev
    assert (on.x == off.x).all()


def test_one_learning_rate_recommendation_per_run():
    """rmsprop on Rosenbrock oscillates across the valley and creeps along it: the run
    recommends the lower rate once, and the slow finding points at the conditioning."""
    from descend.problems import get_problem as problem

    res = descend.minimize(problem("rosenbrock").fn, [-1.2, 1.0], "rmsprop")
    rates = [d.suggested["lr"] for d in res.diagnoses if "lr" in d.suggested]
    lr = 1e-3
    assert rates and all(r < lr for r in rates)
    slow = [d for d in res.diagnoses if d.kind == "lr_too_small"]
    assert all("badly conditioned" in d.suggestion for d in slow)
    for d in res.diagnoses:  # evidence is numbers a reader can trust: no sentinels
        assert all(abs(v) < 1e300 for v in d.evidence.values()), d.evidence
