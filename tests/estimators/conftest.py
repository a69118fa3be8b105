"""Shared fixtures: one thread for torch and for scikit-learn's BLAS, and the data splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

LOADERS = {
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
    "wine": load_wine,
    "diabetes": load_diabetes,
}


@pytest.fixture(autouse=True)
def one_thread():
    """Estimator tests are small; one thread (torch and BLAS) avoids stalls on a shared
    2-core box and makes scikit-learn's timings no concern."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def split(name: str, test_size: float = 0.25):
    """A fixed, stratified (classification) train/test split of a bundled data set,
    features standardized on the training rows."""
    X, y = LOADERS[name](return_X_y=True)
    stratify = None if name == "diabetes" else y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=0, stratify=stratify
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


@pytest.fixture(scope="session")
def standardized():
    """``standardized(name)``: all rows of a bundled data set, standardized."""

    def load(name: str):
        X, y = LOADERS[name](return_X_y=True)
        return StandardScaler().fit_transform(X), y

    return load


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
