r"""Logistic regression, binary and multinomial, trained by gradient descent."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import ClassifierMixin
from torch import nn

from descend.estimators.linear import LinearModel
from descend.estimators.targets import CrossEntropyTargets


class LogisticRegression(CrossEntropyTargets, ClassifierMixin, LinearModel):
    r"""Logistic regression (binary) and multinomial logistic regression (K > 2 classes).

    Two classes: :math:`p(y = 1 \mid x) = \sigma(w^\top x + b)` with the loss
    :math:`\ell = \log(1 + e^{z}) - y z`, :math:`z = w^\top x + b`. K classes:
    :math:`p(y = k \mid x) = \mathrm{softmax}(W x + b)_k` with the loss
    :math:`\ell = -\log p(y \mid x)`. The objective is the weighted mean loss plus
    :math:`\alpha R(W)` (see :mod:`descend.estimators.linear`), the intercept unpenalized;
    ``penalty="l2"`` with ``alpha = 1 / (C n)`` is scikit-learn's
    ``LogisticRegression(C=C)`` on n rows. The multinomial intercepts are defined up to a
    common shift; ``intercept_`` is reported centered (summing to 0), as every gradient
    method started at 0 keeps it.

    Defaults: full-batch L-BFGS to :math:`\|\nabla F\|_2 \le` ``tol``; ``"newton"``
    (dense Hessian, quadratic convergence) suits a few hundred coefficients. With an L1
    term: full-batch proximal gradient (step :math:`1/L`,
    :math:`L = \lambda_{\max}(\tilde X^\top \tilde X/n)/4` binary, :math:`/2` multinomial).

    Args:
        penalty: None, ``"l2"`` (default), ``"l1"`` or ``"elasticnet"``.
        alpha: penalty strength >= 0 (default 1e-4).
        l1_ratio: elastic-net mixing in [0, 1].
        fit_intercept, optimizer, lr, batch_size, max_epochs, tol, early_stopping,
        validation_fraction, n_iter_no_change, random_state, device, optimizer_params,
        verbose: as for :class:`~descend.estimators.LinearRegression`.

    Attributes:
        classes_: the labels (sorted; any hashable type, strings included).
        coef_: shape (1, n_features) for two classes, else (n_classes, n_features).
        intercept_: shape (1,) or (n_classes,).
        n_iter_, t_, loss_, loss_curve_, validation_loss_curve_: see LinearRegression.

    Example:
        >>> from descend.estimators import LogisticRegression
        >>> from sklearn.linear_model import LogisticRegression as SklearnLogistic
        >>> labels = (y[:, 0] > 0).numpy().astype(int)  # two classes
        >>> clf = LogisticRegression(alpha=1 / (1.0 * len(X)), optimizer="newton").fit(X, labels)
        >>> ref = SklearnLogistic(C=1.0, tol=1e-10).fit(X.numpy(), labels)  # alpha = 1/(C n)
        >>> np.allclose(clf.coef_, ref.coef_, atol=1e-3)
        True
        >>> clf.predict_proba(X[:3]).shape
        (3, 2)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {**LinearModel._parameter_constraints}

    def __init__(
        self,
        *,
        penalty: str | None = "l2",
        alpha: float = 1e-4,
        l1_ratio: float = 0.15,
        fit_intercept: bool = True,
        optimizer: Any = "auto",
        lr: float | None = None,
        batch_size: int | str = "auto",
        max_epochs: int = 1000,
        tol: float = 1e-6,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        random_state: Any = None,
        device: str | None = "cpu",
        optimizer_params: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device
        self.optimizer_params = optimizer_params
        self.verbose = verbose

    def _curvature(self, fitted: dict[str, Any]) -> float:
        # the largest eigenvalue of the loss's Hessian in the logits
        return 0.25 if len(fitted["classes_"]) == 2 else 0.5

    def _fitted_from_module(self, module: nn.Module, fitted: dict[str, Any]) -> dict[str, Any]:
        coef, intercept = self._weights(module)
        if len(fitted["classes_"]) > 2 and self.fit_intercept:
            intercept = intercept - intercept.mean()
        return {"coef_": coef, "intercept_": intercept}

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> LogisticRegression:
        """One epoch of mini-batch steps from the current weights (online learning).
        ``classes`` (every label) is required on the first call."""
        return self._train(X, y, sample_weight, partial=True, classes=classes)

    def decision_function(self, X: Any) -> np.ndarray:
        """The logits :math:`z`: shape (n,) for two classes (the log-odds of
        ``classes_[1]``), else (n, n_classes)."""
        return self._scores(self._decision(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in ``classes_`` order."""
        return self._probabilities(self.decision_function(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label for each row."""
        return self._labels(self.decision_function(X))
