"""scikit-learn estimators trained by descend: linear models, SVMs, networks, factorization.

Each estimator is a torch module, a loss and a penalty, trained by :func:`descend.fit`
(so every update rule is one of ``descend.optim``'s), behind scikit-learn's API:
``fit``/``partial_fit``/``predict``/``score``, ``get_params``/``set_params``, array-likes
and pandas frames in, NumPy out. See :mod:`descend.estimators.base` for the shared
objective, defaults and stopping rules.

* :class:`LinearRegression`: least squares, ridge, lasso, elastic net (``penalty=``).
* :class:`LogisticRegression`: binary and multinomial.
* :class:`LinearSVC`: hinge and squared hinge, one-vs-rest.
* :class:`MLPClassifier`, :class:`MLPRegressor`: networks with batch norm and dropout.
* :class:`MatrixFactorization`: ratings from user and item ids, ``recommend(user, k)``.

Example:
    >>> from descend.estimators import LogisticRegression
    >>> labels = (y[:, 0] > 0).numpy().astype(int)  # two classes
    >>> X_train, X_test, y_train, y_test = X[:48], X[48:], labels[:48], labels[48:]
    >>> clf = LogisticRegression(optimizer="lbfgs").fit(X_train, y_train)
    >>> clf.score(X_test, y_test) > 0.8  # accuracy on the held-out rows
    True
"""

from descend.extras import require

# scikit-learn is checked before the estimators import it: a missing one is one line
require("sklearn", "estimators", feature="descend.estimators")

from descend.estimators.base import DescendEstimator  # noqa: E402
from descend.estimators.factorization import MatrixFactorization  # noqa: E402
from descend.estimators.linear import LinearRegression  # noqa: E402
from descend.estimators.logistic import LogisticRegression  # noqa: E402
from descend.estimators.mlp import MLPClassifier, MLPRegressor  # noqa: E402
from descend.estimators.svm import LinearSVC  # noqa: E402

ESTIMATORS = (
    LinearRegression,
    LogisticRegression,
    LinearSVC,
    MLPClassifier,
    MLPRegressor,
    MatrixFactorization,
)

__all__ = [
    "ESTIMATORS",
    "DescendEstimator",
    "LinearRegression",
    "LinearSVC",
    "LogisticRegression",
    "MLPClassifier",
    "MLPRegressor",
    "MatrixFactorization",
]
