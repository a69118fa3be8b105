"""The bundled data sets the estimator tests share (a module of its own, not conftest, so
test files import it by a name no other test folder uses)."""

from __future__ import annotations

from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

LOADERS = {
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
    "wine": load_wine,
    "diabetes": load_diabetes,
}


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
