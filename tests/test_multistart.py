"""Random restarts: batched runs equal single runs, per-run stopping, seeds, minima, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from descend import minimize
from descend.multistart import MultistartResult, multistart
from descend.problems import get_problem
from descend.result import Status

HIMMELBLAU = get_problem("himmelblau")
RASTRIGIN = get_problem("rastrigin")


def _same_runs(a: MultistartResult, b: MultistartResult) -> None:
    np.testing.assert_array_equal(a.x, b.x)
    for ra, rb in zip(a.results, b.results, strict=True):
        np.testing.assert_array_equal(ra.x, rb.x)
        assert (ra.fun, ra.nit, ra.status) == (rb.fun, rb.nit, rb.status)


# ---------------------------------------------------------------------------------------
# what restarts are for


def test_himmelblau_all_four_minima_found_and_clustered() -> None:
    res = multistart(HIMMELBLAU, k=32, method="adam", lr=0.05, gtol=1e-6, seed=1)
    assert res.batched
    found = res.minima()
    assert len(found) == 4
    assert sum(m.count for m in found) == sum(r.converged for r in res.results)
    known = np.array(HIMMELBLAU.minima)
    matched = set()
    for m in found:
        distances = np.linalg.norm(known - m.x, axis=1)
        assert distances.min() < 1e-4, (m.x, known)
        matched.add(int(distances.argmin()))
        assert m.fun < 1e-8
    assert matched == {0, 1, 2, 3}
    assert found == sorted(found, key=lambda m: m.fun)


def test_himmelblau_sequential_line_search_runs_find_only_true_minima() -> None:
    res = multistart(HIMMELBLAU, k=12, method="lbfgs", seed=3)
    assert not res.batched and len(res.results) == 12
    known = np.array(HIMMELBLAU.minima)
    for m in res.minima():
        assert np.linalg.norm(known - m.x, axis=1).min() < 1e-5
    assert len(res.minima()) >= 3


def test_rastrigin_global_minimum_with_64_seeded_starts_reproducibly() -> None:
    """About 1% of the box [-5.12, 5.12]^2 is the global minimum's basin, so 64 uniform
    starts reach it with probability about 1 - 0.99^64 = 0.5; seed 0 is one of those."""
    first = multistart(RASTRIGIN, k=64, method="gd", lr=1e-3, seed=0)
    assert first.best.fun < 1e-8
    assert np.linalg.norm(first.best.x) < 1e-4
    assert len(first.minima()) > 10  # the other starts end in the ripples' minima
    again = multistart(RASTRIGIN, k=64, method="gd", lr=1e-3, seed=0)
    _same_runs(first, again)
    other = multistart(RASTRIGIN, k=64, method="gd", lr=1e-3, seed=1)
    assert not np.array_equal(first.x, other.x)


# ---------------------------------------------------------------------------------------
# batched runs are exactly the single runs


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("gd", {"lr": 5e-3}),
        ("momentum", {"lr": 2e-3}),
        ("nesterov", {"lr": 2e-3}),
        ("adagrad", {"lr": 0.5}),
        ("rmsprop", {"lr": 1e-2}),
        ("adam", {"lr": 0.05}),
        ("amsgrad", {"lr": 0.05}),
    ],
)
def test_each_batched_row_equals_minimize_from_its_start(method: str, options: dict) -> None:
    res = multistart(HIMMELBLAU, k=5, method=method, seed=7, max_iter=400, **options)
    assert res.batched
    for start, run in zip(res.x, res.results, strict=True):
        alone = minimize(HIMMELBLAU.fn, start, method, max_iter=400, **options)
        # a comparison in this run, not a pin: the rows' arithmetic is elementwise, and
        # every gradient norm and f change here stays 0.4% or more from its tolerance,
        # far beyond what rounding differences could bridge
        assert (run.nit, run.status, run.nfev) == (alone.nit, alone.status, alone.nfev)
        np.testing.assert_allclose(run.x, alone.x, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(run.history["f"], alone.history["f"], rtol=1e-12)
        np.testing.assert_allclose(run.history["grad_norm"], alone.history["grad_norm"],
                                   rtol=1e-10, atol=1e-14)  # fmt: skip


def test_runs_stop_on_their_own_and_stay_put() -> None:
    res = multistart(HIMMELBLAU, k=16, method="adam", lr=0.05, gtol=1e-6, seed=2, record=True)
    nits = {r.nit for r in res.results}
    assert len(nits) > 3  # runs end at different iterations
    for run in res.results:
        assert run.status in (Status.GTOL, Status.FTOL)
        trajectory = run.history["x"]
        assert trajectory.shape == (run.nit + 1, 2)
        np.testing.assert_array_equal(trajectory[-1], run.x)


def test_a_diverging_row_ends_alone_and_returns_its_best_point() -> None:
    # gd with lr 0.01 is stable at Himmelblau's minima (Hessian eigenvalues <= 134), but
    # from the corners of [-8, 8]^2, where the gradient is about 2e3, it is thrown out.
    res = multistart(
        HIMMELBLAU, bounds=[(-8.0, 8.0)] * 2, k=24, method="gd", lr=0.01, seed=4,
        max_iter=2000,
    )  # fmt: skip
    diverged = [r for r in res.results if r.status is Status.DIVERGED]
    assert 0 < len(diverged) < 24
    assert sum(r.converged for r in res.results) == 24 - len(diverged)
    for run in diverged:
        f = run.history["f"]
        assert run.fun == np.nanmin(f) and np.isfinite(run.x).all()
        assert not np.isfinite(f[-1]) or f[-1] > 1e6 * run.fun
        assert "learning rate 0.01 is too large" in run.message
        assert "Returned the best iterate" in run.message
    assert res.best.fun < 1e-9


def test_max_iter_leaves_unfinished_rows_marked() -> None:
    res = multistart(HIMMELBLAU, k=6, method="gd", lr=1e-4, max_iter=20, seed=0)
    assert all(r.status is Status.MAX_ITER and r.nit == 20 for r in res.results)
    assert all(len(r.history) == 21 for r in res.results)


def test_plain_function_is_batched_through_vmap() -> None:
    def bowl(x: torch.Tensor) -> torch.Tensor:
        return ((x - torch.tensor([1.0, -2.0, 3.0], dtype=x.dtype)) ** 2).sum()

    res = multistart(bowl, bounds=[(-5, 5)] * 3, k=8, method="adam", lr=0.1, max_iter=3000)
    assert res.batched
    for run in res.results:
        np.testing.assert_allclose(run.x, [1.0, -2.0, 3.0], atol=1e-3)
    alone = minimize(bowl, res.x[3], "adam", lr=0.1, max_iter=3000)
    np.testing.assert_allclose(res.results[3].x, alone.x, rtol=1e-13)


def test_function_that_cannot_batch_runs_sequentially() -> None:
    def host_sync(x: torch.Tensor) -> torch.Tensor:
        if x.sum().item() > 100:  # data-dependent control flow: vmap refuses it
            return x.sum()
        return (x**2).sum()

    res = multistart(host_sync, bounds=[(-1, 1)] * 2, k=3, method="gd", lr=0.1)
    assert not res.batched and all(r.converged for r in res.results)
    with pytest.raises(ValueError, match="cannot be evaluated on a batch"):
        multistart(host_sync, bounds=[(-1, 1)] * 2, k=3, method="gd", batched=True)


def test_vectorized_function_is_used_as_given() -> None:
    calls = []

    def batched_bowl(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return (x**2).sum(-1)

    res = multistart(batched_bowl, bounds=[(-1, 1)] * 2, k=4, method="gd", lr=0.1,
                     vectorized=True, max_iter=5)  # fmt: skip
    assert res.batched and set(calls) == {(2, 2), (4, 2)}  # the probe, then the batch


# ---------------------------------------------------------------------------------------
# starts, seeds, types


def test_uniform_starts_fill_the_box_and_touch_no_global_rng() -> None:
    state = torch.random.get_rng_state()
    res = multistart(HIMMELBLAU, bounds=[(0.0, 1.0), (10.0, 12.0)], k=200, method="gd",
                     max_iter=0, seed=5)  # fmt: skip
    assert torch.equal(torch.random.get_rng_state(), state)
    x = res.x
    assert x.shape == (200, 2) and isinstance(x, np.ndarray)
    assert (x[:, 0] >= 0).all() and (x[:, 0] <= 1).all()
    assert (x[:, 1] >= 10).all() and (x[:, 1] <= 12).all()
    assert abs(x[:, 0].mean() - 0.5) < 0.06 and abs(x[:, 1].mean() - 11) < 0.12


def test_starts_around_x0_include_x0_and_respect_scale_and_bounds() -> None:
    x0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    res = multistart(HIMMELBLAU, x0=x0, scale=[0.1, 10.0], k=400, method="gd", max_iter=0)
    assert isinstance(res.x, torch.Tensor) and torch.equal(res.x[0], x0)
    spread = res.x[1:].std(0)
    assert 0.08 < spread[0] < 0.12 and 8 < spread[1] < 12
    assert isinstance(res.best.x, torch.Tensor)
    clipped = multistart(HIMMELBLAU, x0=[1.0, 2.0], scale=10.0, bounds=[(0, 2), (0, 3)], k=50,
                         method="gd", max_iter=0)  # fmt: skip
    assert (clipped.x >= 0).all() and (clipped.x[:, 0] <= 2).all() and (clipped.x[:, 1] <= 3).all()


def test_generator_seed_advances_and_integer_seed_repeats() -> None:
    gen = torch.Generator().manual_seed(11)
    a = multistart(HIMMELBLAU, k=4, method="gd", max_iter=0, seed=gen)
    b = multistart(HIMMELBLAU, k=4, method="gd", max_iter=0, seed=gen)
    c = multistart(HIMMELBLAU, k=4, method="gd", max_iter=0, seed=11)
    assert not np.array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.x, c.x)


def test_minima_clustering_options() -> None:
    res = multistart(HIMMELBLAU, k=8, method="gd", lr=1e-3, max_iter=30, seed=0)
    assert all(not r.converged for r in res.results)
    assert res.minima() == []
    loose = res.minima(converged_only=False, tol=1e3)
    assert len(loose) == 1 and loose[0].count == 8
    with pytest.raises(ValueError, match=r"tol must be in \(0, inf\), got -1"):
        res.minima(tol=-1)


# ---------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, r"k must be an integer >= 1, got 0"),
        ({"bounds": [(1.0, 0.0), (0, 1)]}, ValueError,
         r"low > high at coordinate 0 \(1 > 0\); need low <= high"),
        ({"bounds": [(0.0, None), (0, 1)]}, ValueError, r"uniform starts need a finite box"),
        ({"bounds": "simplex"}, ValueError, r"uniform starts need a finite box.*give x0"),
        ({"bounds": [1, 2, 3]}, ValueError, r"bounds\[0\] must be a \(low, high\) pair"),
        ({"bounds": [(0, 1)] * 3}, ValueError,
         r"bounds has 3 \(low, high\) pairs but the problem has 2 coordinates"),
        ({"constrained": True, "x0": [0.0, 0.0]}, ValueError, r"constrained=True .* give bounds"),
        ({"x0": [0.0, 0.0], "scale": 0.0}, ValueError, r"scale must be in \(0, inf\), got 0.0"),
        ({"x0": [0.0, 0.0], "scale": [1.0]}, ValueError, r"scale must be a positive number or 2"),
        ({"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
        ({"seed": 1.5}, TypeError, r"seed must be an integer or a torch.Generator"),
        ({"method": "lbfgs", "batched": True}, ValueError, r"batched=True needs an elementwise"),
        ({"method": "nope"}, ValueError, r"unknown method 'nope'"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_by_name(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        multistart(HIMMELBLAU, **{"method": "gd", "max_iter": 0, **kwargs})


def test_plain_function_needs_bounds_or_x0() -> None:
    with pytest.raises(ValueError, match="give bounds"):
        multistart(lambda x: (x**2).sum(), k=2, method="gd")


def test_non_finite_start_is_named() -> None:
    def log_barrier(x: torch.Tensor) -> torch.Tensor:
        return -torch.log(x).sum(-1) + x.sum(-1)

    with pytest.raises(ValueError, match=r"fun is nan at start \d+"):
        multistart(log_barrier, bounds=[(-1.0, 1.0)] * 2, k=16, method="gd", vectorized=True)


# ---------------------------------------------------------------------------------------
# minimize(..., restarts=K)


def test_minimize_with_restarts_returns_the_best_constrained_run_of_multistart() -> None:
    res = minimize(HIMMELBLAU.fn, None, "adam", restarts=16, bounds=HIMMELBLAU.bounds,
                   seed=3, lr=0.05)  # fmt: skip
    runs = multistart(HIMMELBLAU.fn, None, "adam", bounds=HIMMELBLAU.bounds, k=16, seed=3,
                      lr=0.05, constrained=True)  # fmt: skip
    np.testing.assert_array_equal(res.x, runs.best.x)
    assert res.fun == runs.best.fun == min(r.fun for r in runs.results)
    assert res.message.startswith("best of 16 restarts: ")
    around = minimize(HIMMELBLAU.fn, torch.tensor([0.5, 0.5]), restarts=3, seed=0)
    assert isinstance(around.x, torch.Tensor) and around.converged


def test_restarts_with_bounds_keep_every_run_in_the_box() -> None:
    """As SciPy's bounded methods: the box [-5, -3] x [0, 1] holds none of Himmelblau's
    minima, so every run ends on its boundary, at the box's lowest point x = (-3, 1),
    f = 82: a corner where the gradient (-6, -38) points out of the box in both
    coordinates, so the projected gradient vanishes there and nowhere else in the box."""
    box = [(-5.0, -3.0), (0.0, 1.0)]
    for method in ("lbfgs", "adam"):
        runs = multistart(HIMMELBLAU.fn, method=method, bounds=box, k=6, lr=0.05, seed=1,
                          constrained=True, max_iter=3000)  # fmt: skip
        for run in runs.results:
            assert (run.x >= [-5.0, 0.0]).all() and (run.x <= [-3.0, 1.0]).all()
            assert run.converged and abs(run.fun - 82.0) < 1e-6, run.message
        assert runs.batched == (method == "adam")
    free = multistart(HIMMELBLAU.fn, method="lbfgs", bounds=box, k=6, seed=1)
    assert free.best.fun < 1e-9  # the starts alone do not confine the runs


def test_batched_constrained_rows_follow_the_runs_one_by_one() -> None:
    """Batched, each row is projected after every step (a step post-hook) and follows the
    iterates of its own projected run through minimize's feed."""
    box = [(-5.0, -3.0), (0.0, 1.0)]
    options = dict(method="adam", lr=0.05, seed=2, constrained=True, max_iter=60, gtol=0,
                   ftol=0)  # fmt: skip
    rows = multistart(HIMMELBLAU.fn, bounds=box, k=5, batched=True, **options)
    alone = multistart(HIMMELBLAU.fn, bounds=box, k=5, batched=False, **options)
    assert rows.batched and not alone.batched
    for row, run in zip(rows.results, alone.results):
        np.testing.assert_allclose(row.x, run.x, rtol=1e-12)
        assert (row.x >= [-5.0, 0.0]).all() and (row.x <= [-3.0, 1.0]).all()
