"""The beyond-gradients gallery scripts in quick mode: boosting with stumps as functional
gradient descent on ``descend.optim.SGD`` retraces scikit-learn's GradientBoostingRegressor,
and the race of CMA-ES and a GA against L-BFGS with restarts shows where each wins."""

from __future__ import annotations


def test_boosting_retraces_sklearn_gradient_boosting(example, capsys):
    figures = example("beyond_gradients/gradient_boosting.py").main(["--quick"])

    # the same algorithm: every round's training error agrees to rounding; on the test
    # set a point may fall on the other side of a threshold that scikit-learn stores in
    # float32, so its curve agrees closely, not to rounding
    assert figures["train_curve_gap"] < 1e-9
    assert figures["test_curve_gap"] < 1e-3
    assert figures["train_mse_last"] < 0.6 * figures["train_mse_first"]
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80


def test_gradients_win_where_smooth_and_cannot_move_on_steps(example, capsys):
    figures = example("beyond_gradients/evolution_vs_gradients.py").main(["--quick"])

    # smooth, 30 dimensions: L-BFGS reaches the minimum on fewer evaluations than the
    # derivative-free methods spent without getting near it
    assert figures["rosenbrock_30-d_l-bfgs"] < 1e-6
    for method in ("cma-es", "genetic"):
        assert figures[f"rosenbrock_30-d_{method}"] > 1e-2
        assert (
            figures[f"rosenbrock_30-d_{method}_evaluations"]
            > figures["rosenbrock_30-d_l-bfgs_evaluations"]
        )
    # ten-dimensional Rastrigin: CMA-ES's population sees the bowl under the ripples
    assert figures["rastrigin_10-d_cma-es"] < figures["rastrigin_10-d_l-bfgs"]
    # a staircase: autodiff's gradient is 0, so every L-BFGS run stays on its first step
    # (f is an integer >= 1 there); CMA-ES reaches the bottom step
    assert figures["staircase_10-d_l-bfgs"] >= 1
    assert figures["staircase_10-d_l-bfgs_evaluations"] <= 2 * 8  # one look per start
    assert figures["staircase_10-d_cma-es"] == 0
    assert figures["staircase_10-d_genetic"] < figures["staircase_10-d_l-bfgs"]
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80
