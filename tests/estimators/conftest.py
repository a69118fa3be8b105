"""Shared fixtures: one thread for scikit-learn's BLAS (torch's is set for every test in
tests/conftest.py), and the data splits."""

from __future__ import annotations

import numpy as np
import pytest
from estimator_data import LOADERS
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Estimator tests are small; one BLAS thread avoids stalls on a shared 2-core box and
    makes scikit-learn's timings no concern."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def standardized():
    """``standardized(name)``: all rows of a bundled data set, standardized."""

    def load(name: str):
        X, y = LOADERS[name](return_X_y=True)
        return StandardScaler().fit_transform(X), y

    return load


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
