"""The science gallery script in quick mode: Lotka-Volterra's six parameters estimated
through a torch RK4 integrator by ``descend.least_squares`` (LM) and by ``descend.minimize``
(L-BFGS) land within the Gauss-Newton standard errors of the truth and agree with SciPy's
``least_squares`` on ``solve_ivp``."""

from __future__ import annotations


def test_quick_mode_estimates_the_parameters_as_scipy_does(example, capsys):
    figures = example("science/lotka_volterra.py").main(["--quick"])

    # the noise (sigma = 0.5) allows an error of a few standard errors, no more
    assert figures["max_standardized_error"] < 4
    # the same minimum: RK4 (h = 0.1, error O(h^4)) vs RK45 at 1e-9, autodiff vs finite
    # differences, reach the same parameters to well under a standard error
    assert figures["lm_vs_scipy"] < 1e-3
    assert figures["lbfgs_vs_lm"] < 1e-4
    assert abs(figures["lm_cost"] - figures["scipy_cost"]) < 1e-3 * figures["scipy_cost"]
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80
