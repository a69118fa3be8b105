"""Shared fixtures: one thread for torch and for scikit-learn's BLAS, and the data splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from estimator_data import LOADERS
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_thread():
    """Estimator tests are small; one thread (torch and BLAS) avoids stalls on a shared
    2-core box and makes scikit-learn's timings no concern."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def standardized():
    """``standardized(name)``: all rows of a bundled data set, standardized."""

    def load(name: str):
        X, y = LOADERS[name](return_X_y=True)
        return StandardScaler().fit_transform(X), y

    return load


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
