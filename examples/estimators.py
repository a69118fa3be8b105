"""descend's scikit-learn estimators next to scikit-learn's own, on its bundled data.

Each estimator is trained by descend.fit (any descend method: lbfgs, newton, adam, ...)
behind the usual fit / predict / score, so it drops into pipelines and grid searches.

Run: .venv/bin/python examples/estimators.py
"""

from __future__ import annotations

import warnings

import numpy as np
import sklearn.linear_model
import sklearn.neural_network
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from descend.estimators import LinearRegression, LogisticRegression, MLPClassifier


def split(loader):
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def main() -> None:
    # 1. logistic regression: the same penalty as scikit-learn's C=1 is alpha = 1 / (C n)
    X_train, X_test, y_train, y_test = split(load_breast_cancer)
    n = len(X_train)
    ours = make_pipeline(StandardScaler(), LogisticRegression(alpha=1 / n, optimizer="newton"))
    theirs = make_pipeline(
        StandardScaler(), sklearn.linear_model.LogisticRegression(C=1.0, tol=1e-10)
    )
    for name, model in (("descend newton", ours), ("sklearn lbfgs", theirs)):
        accuracy = model.fit(X_train, y_train).score(X_test, y_test)
        print(f"breast cancer, logistic regression, {name:15s} test accuracy {accuracy:.4f}")
    gap = np.abs(ours[-1].coef_ - theirs[-1].coef_).max()
    print(f"  largest coefficient difference: {gap:.1e}")

    # 2. lasso: exact zeros from fit's proximal step
    X_train, X_test, y_train, y_test = split(load_diabetes)
    lasso = make_pipeline(StandardScaler(), LinearRegression(penalty="l1", alpha=1.0))
    lasso.fit(X_train, y_train)
    coef = lasso[-1].coef_
    print(
        f"diabetes, lasso (alpha=1): R^2 {lasso.score(X_test, y_test):.3f}, "
        f"{np.sum(coef == 0)} of {coef.size} coefficients exactly 0"
    )

    # 3. a grid search over the optimizer itself
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LinearRegression(penalty="l2", alpha=1e-3)),
        {"linearregression__optimizer": ["newton", "lbfgs", "adam"]},
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # adam's 1000 epochs
        search.fit(X_train, y_train)
    print(f"diabetes, best optimizer by 3-fold CV: {search.best_params_}")

    # 4. a network with batch normalization and dropout, early stopping on held-out rows
    X_train, X_test, y_train, y_test = split(load_digits)
    net = make_pipeline(
        StandardScaler(),
        MLPClassifier((128, 64), batch_norm=True, dropout=0.1, early_stopping=True, random_state=0),
    )
    net.fit(X_train, y_train)
    mlp = net[-1]
    reference = make_pipeline(
        StandardScaler(), sklearn.neural_network.MLPClassifier((128, 64), random_state=0)
    ).fit(X_train, y_train)
    print(
        f"digits, MLP 64-128-64-10: descend {net.score(X_test, y_test):.4f} after "
        f"{mlp.n_iter_} epochs (best validation loss {min(mlp.validation_loss_curve_):.4f}), "
        f"sklearn {reference.score(X_test, y_test):.4f}"
    )


if __name__ == "__main__":
    main()
