"""The pieces under the monitors: Lanczos, the callback hooks, scheduling, diagnoses."""

from __future__ import annotations

import io

import pytest
import torch

import descend
from descend.monitors import (
    Diagnosis,
    Monitor,
    MonitorGroup,
    Severity,
    format_diagnoses,
    hessian_operator,
    lanczos,
    print_diagnoses,
)
from descend.monitors.curvature import hessian_spectrum
from descend.monitors.diagnosis import round_down


def quadratic(x):
    return 0.5 * (torch.tensor([1.0, 10.0], dtype=x.dtype) * x**2).sum()


# -- Lanczos --------------------------------------------------------------------------------


def test_lanczos_finds_the_extreme_eigenvalues_of_a_large_matrix():
    gen = torch.Generator().manual_seed(0)
    n = 400
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    eigenvalues = torch.linspace(1.0, 100.0, n, dtype=torch.float64)
    eigenvalues[0] = -5.0  # one clearly negative direction
    A = Q @ torch.diag(eigenvalues) @ Q.T
    start = torch.randn(n, generator=gen, dtype=torch.float64)
    spectrum = lanczos(lambda v: A @ v, start, 30)
    assert spectrum.iterations == 30
    assert spectrum.smallest == pytest.approx(-5.0, rel=1e-6)
    assert spectrum.largest == pytest.approx(100.0, rel=1e-3)
    v = spectrum.vectors[:, 0]
    assert abs(float(v @ Q[:, 0])) == pytest.approx(1.0, abs=1e-6)


def test_lanczos_is_exact_when_the_krylov_space_is_full():
    A = torch.diag(torch.tensor([2.0, -1.0, 5.0], dtype=torch.float64))
    spectrum = lanczos(lambda v: A @ v, torch.ones(3, dtype=torch.float64), 10)
    assert spectrum.iterations == 3
    assert torch.allclose(spectrum.values, torch.tensor([-1.0, 2.0, 5.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="start must be a nonzero vector"):
        lanczos(lambda v: v, torch.zeros(3), 2)


def test_hessian_operator_is_exact():
    x = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    operator = hessian_operator(lambda: x[0] ** 2 * x[1] + x[1] ** 3, [x])()
    H = torch.tensor([[2 * -0.2, 2 * 0.3], [2 * 0.3, 6 * -0.2]], dtype=torch.float64)
    v = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(operator(v), H @ v)
    assert x.grad is None  # p.grad is left alone
    spectrum = hessian_spectrum(lambda: x[0] ** 2 * x[1] + x[1] ** 3, [x])
    assert torch.allclose(spectrum.values, torch.linalg.eigvalsh(H))
    assert hessian_spectrum(None, [x]) is None


# -- the callback hooks and the loop ---------------------------------------------------------


class Counter(descend.Callback):
    def __init__(self, want):
        self.want = want
        self.iterations, self.steps = [], []

    def on_iteration(self, nit):
        self.iterations.append(nit)
        return nit in self.want

    def on_step(self, result):
        self.steps.append(result.nit)


def test_loop_builds_results_only_for_the_steps_a_callback_wants():
    counter = Counter(want={3, 7})
    descend.minimize(
        quadratic,
        [1.0, 1.0],
        "gd",
        lr=0.05,
        max_iter=10,
        gtol=0.0,
        ftol=0.0,
        callback=counter,
        monitors=None,
    )
    assert counter.iterations == list(range(1, 11))
    assert counter.steps == [3, 7]


def test_plain_callbacks_still_see_every_step():
    seen = []
    descend.minimize(
        quadratic,
        [1.0, 1.0],
        "gd",
        lr=0.05,
        max_iter=5,
        gtol=0.0,
        ftol=0.0,
        callback=lambda r: seen.append(r.nit),
    )
    assert seen == [1, 2, 3, 4, 5]


class Spy(Monitor):
    kinds = ("spy",)

    def begin(self, result):
        self.watched = []

    def watch(self, nit):
        self.watched.append(nit)
        if nit == 14:
            self.report(Diagnosis("spy", Severity.INFO, nit, "seen"))
        return self.next_multiple(nit)


def test_group_wakes_each_monitor_only_when_it_asked():
    fast, slow = Spy(every=2), Spy(every=7)
    res = descend.minimize(
        quadratic,
        [1.0, 1.0],
        "gd",
        lr=0.05,
        max_iter=20,
        gtol=0.0,
        ftol=0.0,
        monitors=[MonitorGroup([fast, slow])],
    )
    assert fast.watched == [1, 2, 4, 6, 8, 10, 12, 14]  # found at 14: then it rests
    assert slow.watched == [1, 7, 14]
    assert [d.kind for d in res.diagnoses] == ["spy"]  # once, though both found it


def test_monitor_works_in_loops_without_on_iteration():
    spy = Spy(every=5)
    history = descend.History()
    run = descend.OptimizeResult(
        x=None,
        fun=0.0,
        grad_norm=0.0,
        nit=0,
        nfev=0,
        njev=0,
        status=descend.Status.RUNNING,
        message="",
        history=history,
    )
    spy.on_begin(run)
    for nit in range(1, 12):
        run.nit = nit
        assert spy.on_step(run) is None
    assert spy.watched == [1, 5, 10]


def test_group_refuses_what_is_not_a_monitor():
    with pytest.raises(TypeError, match="monitors must be descend.diagnostics.Monitor"):
        MonitorGroup([descend.Callback()])


# -- diagnoses --------------------------------------------------------------------------------


def test_diagnoses_format_most_severe_first():
    items = [
        Diagnosis("plateau", Severity.WARNING, 40, "flat", {"window": 100}, "use momentum"),
        Diagnosis(
            "divergence", Severity.ERROR, 90, "blew up", {"growth": 1e6}, "lower lr", {"lr": 0.01}
        ),
    ]
    text = format_diagnoses(items)
    assert text.splitlines()[0] == "[error] divergence (step 90): blew up"
    assert "    evidence: growth = 1e+06" in text
    assert "    fix: lower lr" in text
    assert text.index("plateau") > text.index("divergence")
    out = io.StringIO()
    print_diagnoses(items, file=out)
    assert out.getvalue() == text + "\n"
    with pytest.raises(TypeError, match="diagnoses must be Diagnosis objects"):
        format_diagnoses(["divergence"])


def test_round_down_gives_the_decimal_as_typed():
    assert round_down(0.0734) == 0.07
    assert round_down(0.1) == 0.1
    assert round_down(6.66e-4) == 0.0006  # not 0.0006000000000000001
    assert repr(round_down(0.498)) == "0.4"
    assert round_down(0.999999) == 0.9
