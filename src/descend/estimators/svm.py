r"""Linear support vector classification by gradient descent (hinge and squared hinge)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch.nn.functional as F
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import StrOptions
from torch import Tensor

from descend.estimators.linear import LinearModel
from descend.estimators.targets import ClassifierTargets


class LinearSVC(ClassifierTargets, ClassifierMixin, LinearModel):
    r"""Linear support vector classifier, one-vs-rest for more than two classes.

    With :math:`t_{ik} \in \{-1, +1\}` (+1 when row i has class k; two classes use one
    column, +1 for ``classes_[1]``) and scores :math:`z = X W^\top + b`, the loss is
    :math:`\ell_i = \sum_k \max(0, 1 - t_{ik} z_{ik})` (``loss="hinge"``) or
    :math:`\sum_k \max(0, 1 - t_{ik} z_{ik})^2` (``"squared_hinge"``), and the objective
    the weighted mean loss plus :math:`\alpha R(W)` (see :mod:`descend.estimators.linear`).
    The classes' problems are independent, so minimizing their sum fits each
    one-vs-rest classifier as if alone. ``alpha = 1 / (C n)`` matches scikit-learn's
    ``LinearSVC(C=C)`` on n rows (which also penalizes the intercept; this one does not).

    Defaults (``optimizer="auto"``): the squared hinge is differentiable and piecewise
    quadratic, solved by full-batch Newton-CG (Hessian-vector products; as LIBLINEAR
    does), which ends in a few steps where L-BFGS crawls; the hinge is not differentiable
    and is trained by mini-batch Adam with ``lr=1e-3`` (a subgradient method, stopped when
    the epoch loss stops improving by ``tol``). An L1 term uses
    full-batch proximal gradient (squared hinge, :math:`L = 2\lambda_{\max}(\tilde
    X^\top\tilde X/n)`) or Adam with the proximal step (hinge).

    Args:
        loss: ``"squared_hinge"`` (default) or ``"hinge"``.
        penalty: None, ``"l2"`` (default), ``"l1"`` or ``"elasticnet"``.
        alpha: penalty strength >= 0.
        l1_ratio, fit_intercept, optimizer, lr, batch_size, max_epochs, tol,
        early_stopping, validation_fraction, n_iter_no_change, random_state, device,
        optimizer_params, verbose: as for :class:`~descend.estimators.LinearRegression`.

    Attributes:
        classes_, coef_ ((1, d) or (n_classes, d)), intercept_, n_iter_, t_, loss_,
        loss_curve_, validation_loss_curve_.

    Example:
        >>> from descend.estimators import LinearSVC
        >>> labels = (y[:, 0] > 0).numpy().astype(int)  # two classes
        >>> svm = LinearSVC(alpha=1e-3).fit(X, labels)
        >>> svm.score(X, labels) > 0.9
        True
        >>> margins = svm.decision_function(X[:4])  # positive: class 1
        >>> np.array_equal(svm.predict(X[:4]), (margins > 0).astype(int))
        True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **LinearModel._parameter_constraints,
        "loss": [StrOptions({"hinge", "squared_hinge"})],
    }

    def __init__(
        self,
        *,
        loss: str = "squared_hinge",
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
        self.loss = loss
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

    def _default_method(self, *, partial: bool, l1: float, fitted: dict[str, Any]) -> str:
        if self.loss == "hinge":
            return "adam"
        if not partial and l1 == 0:
            # piecewise quadratic: generalized Newton ends in a few steps where L-BFGS
            # crawls on ill-conditioned data (LIBLINEAR solves this primal by Newton-CG)
            return "newton-cg"
        return super()._default_method(partial=partial, l1=l1, fitted=fitted)

    def _curvature(self, fitted: dict[str, Any]) -> float:
        return 2.0  # the squared hinge's second derivative

    def _encode_targets(self, y: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
        index = self._label_indices(y, fitted["classes_"])
        k = len(fitted["classes_"])
        if k == 2:
            return (2.0 * index - 1.0).reshape(-1, 1)
        signs = -np.ones((len(index), k))
        signs[np.arange(len(index)), index] = 1.0
        return signs

    def _sample_loss(self, fitted: dict[str, Any]) -> Any:
        squared = self.loss == "squared_hinge"

        def hinge(prediction: Tensor, target: Tensor) -> Tensor:
            margin = F.relu(1.0 - target * prediction)
            return (margin.square() if squared else margin).sum(dim=1)

        return hinge

    def _mean_loss(self, fitted: dict[str, Any]) -> Any:
        squared = self.loss == "squared_hinge"

        def hinge_mean(prediction: Tensor, target: Tensor) -> Tensor:
            margin = F.relu(1.0 - target * prediction)
            return (margin.square() if squared else margin).sum() / prediction.shape[0]

        return hinge_mean

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> LinearSVC:
        """One epoch of mini-batch steps from the current weights (online learning).
        ``classes`` (every label) is required on the first call."""
        return self._train(X, y, sample_weight, partial=True, classes=classes)

    def decision_function(self, X: Any) -> np.ndarray:
        """Signed distances (unnormalized): shape (n,) for two classes, else
        (n, n_classes)."""
        return self._scores(self._decision(X))

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest score for each row."""
        return self._labels(self.decision_function(X))
