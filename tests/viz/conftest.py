from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="package")
def booth_runs():
    """Three short recorded runs on booth (2-D), one of them diverged."""
    import descend
    from descend.problems import get_problem

    problem = get_problem("booth")
    start = [-4.0, 6.0]
    runs = {
        "gd": descend.minimize(problem, start, "gd", lr=0.02, max_iter=40, record=True),
        "adam": descend.minimize(problem, start, "adam", lr=0.3, max_iter=40, record=True),
        "fast": descend.minimize(problem, start, "gd", lr=0.5, max_iter=40, record=True),
    }
    assert runs["fast"].status.value == "diverged"
    return problem, runs
