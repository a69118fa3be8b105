"""The finance gallery app: the long-only mean-variance portfolio by projected gradient
descent on the simplex, by projected L-BFGS and by a softmax parametrization, each held
against SciPy's SLSQP in the same run, at one risk aversion and along the frontier."""

from __future__ import annotations


def test_quick_portfolios_match_slsqp_and_stay_on_the_simplex(example, tmp_path, capsys):
    figure = tmp_path / "frontier.png"
    figures = example("finance/portfolio.py").main(["--quick", "--plot", str(figure)])
    reference = figures["SLSQP (SciPy)"]
    for name in ("projected GD (descend)", "projected L-BFGS (descend)"):
        ours = figures[name]
        # the projected gradient is below 1e-10 and f is strongly convex: the same optimum
        # as SLSQP's (ftol 1e-15), the same assets held, the same objective to rounding
        assert ours["distance"] <= 1e-6, (name, ours)
        assert abs(ours["gap"]) <= 1e-10, (name, ours)
        assert ours["held"] == reference["held"], (name, ours, reference)
        # every iterate is projected: feasible to rounding, never negative
        assert abs(ours["sum"] - 1) <= 1e-12 and ours["min"] >= 0, (name, ours)
    assert figures["projected L-BFGS (descend)"]["frontier distance"] <= 1e-6, figures
    softmax = figures["softmax + L-BFGS (descend)"]
    # feasible by construction, all weights positive; near the optimum, and never below it
    assert abs(softmax["sum"] - 1) <= 1e-12 and softmax["min"] > 0, softmax
    assert -1e-10 <= softmax["gap"] <= 1e-6 and softmax["distance"] <= 1e-2, softmax
    assert softmax["frontier distance"] <= 1e-3, softmax
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 80
    assert figure.stat().st_size > 0
