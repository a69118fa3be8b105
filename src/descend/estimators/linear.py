r"""Linear models trained by gradient descent: the shared linear core and least squares.

Every linear model here predicts :math:`z = X W^\top + b` and minimizes, over the
weights :math:`W` and the intercept :math:`b` (never penalized),

.. math::
    F(W, b) = \frac{\sum_i s_i\, \ell(z_i, y_i)}{\sum_i s_i} + \alpha R(W),\qquad
    R(W) = \begin{cases}
        \tfrac12 \|W\|_2^2 & \text{penalty="l2"} \\
        \|W\|_1 & \text{penalty="l1"} \\
        \rho \|W\|_1 + \tfrac{1-\rho}{2}\|W\|_2^2 & \text{penalty="elasticnet"}
    \end{cases}

with :math:`\rho` = ``l1_ratio`` (scikit-learn's SGD convention). The L2 part is in
the loss, so every method sees its gradient and curvature; the L1 part is applied by
:func:`descend.fit`'s proximal step (soft-thresholding: exact zeros).
``optimizer="auto"`` solves smooth problems on the full batch (Newton for small least
squares, L-BFGS otherwise), and problems with an L1 term by full-batch proximal gradient
descent (ISTA: method ``"gd"`` with the step :math:`1/L`, :math:`L` the Lipschitz
constant of the smooth part's gradient, computed from the data).
"""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar, cast

import numpy as np
import torch
from sklearn.base import MultiOutputMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor, nn

from descend.estimators.arrays import as_tensor
from descend.estimators.base import DescendEstimator
from descend.estimators.targets import RegressorTargets
from descend.train.regularization import elastic_net

#: LinearRegression's optimizer="auto" solves by Newton up to this many coefficients
NEWTON_MAX_PARAMS = 200


class LinearModel(DescendEstimator):
    """The linear core: ``nn.Linear`` started at zero, penalties, ``coef_``/``intercept_``."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **DescendEstimator._parameter_constraints,
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
    }
    _full_batch_proximal = True

    def _penalty(self) -> tuple[float, float]:
        if self.penalty is None or self.alpha == 0:
            return 0.0, 0.0
        if self.penalty == "l2":
            return 0.0, float(self.alpha)
        if self.penalty == "l1":
            return float(self.alpha), 0.0
        return elastic_net(self.alpha, self.l1_ratio)

    def _default_method(self, *, partial: bool, l1: float, fitted: dict[str, Any]) -> str:
        if partial:
            return "adam"
        return "gd" if l1 > 0 else "lbfgs"

    def _n_outputs(self, fitted: dict[str, Any]) -> int:
        raise NotImplementedError

    def _build_module(
        self, n_features: int, fitted: dict[str, Any], dtype: torch.dtype, seed: int
    ) -> nn.Module:
        # a convex problem: start at zero, the same start every time (no draw needed)
        module = nn.Linear(n_features, self._n_outputs(fitted), bias=self.fit_intercept)
        module = module.to(dtype)
        with torch.no_grad():
            for p in module.parameters():
                p.zero_()
        return module

    def _module_for_update(self, fitted: dict[str, Any], seed: int) -> nn.Module:
        """The module holding the current ``coef_``/``intercept_`` (which a user may set)."""
        coef = np.atleast_2d(np.asarray(self.coef_))
        module = nn.Linear(coef.shape[1], coef.shape[0], bias=self.fit_intercept)
        module = module.to(self._torch_dtype_)
        with torch.no_grad():
            module.weight.copy_(as_tensor(coef, self._torch_dtype_))
            if self.fit_intercept:
                intercept = np.asarray(self.intercept_, dtype=np.float64).reshape(-1)
                module.bias.copy_(as_tensor(intercept, self._torch_dtype_))
        return module

    def _weights(self, module: nn.Module) -> tuple[np.ndarray, np.ndarray]:
        linear = cast(nn.Linear, module)  # what _build_module built
        weight = linear.weight.detach().cpu().numpy().copy()
        if self.fit_intercept:
            bias = linear.bias.detach().cpu().numpy().copy()
        else:
            bias = np.zeros(weight.shape[0], dtype=weight.dtype)
        return weight, bias

    def _fitted_from_module(self, module: nn.Module, fitted: dict[str, Any]) -> dict[str, Any]:
        coef, intercept = self._weights(module)
        return {"coef_": coef, "intercept_": intercept}

    def _decision(self, X: Any) -> np.ndarray:
        X = self._check_X(X)
        coef = np.atleast_2d(self.coef_)
        return X @ coef.T.astype(X.dtype, copy=False) + np.asarray(self.intercept_, X.dtype)


class LinearRegression(RegressorTargets, MultiOutputMixin, RegressorMixin, LinearModel):
    r"""Least squares by gradient descent, with optional ridge, lasso or elastic-net
    penalties.

    Minimizes :math:`\frac{1}{2}\,\frac{\sum_i s_i \|y_i - W x_i - b\|^2}{\sum_i s_i} +
    \alpha R(W)` (see :mod:`descend.estimators.linear` for :math:`R`). With
    ``penalty=None`` (the default) this is ordinary least squares; ``penalty="l2"`` is
    ridge regression (scikit-learn's ``Ridge(alpha=n * alpha)`` on n rows),
    ``"l1"`` the lasso (``Lasso(alpha=alpha)``), ``"elasticnet"`` the elastic net
    (``ElasticNet(alpha=alpha, l1_ratio=l1_ratio)``). Several targets (y of shape
    (n, k)) are fitted at once, each as if alone.

    Defaults (``optimizer="auto"``): Newton's method on the full batch while there are at
    most 200 coefficients (the objective is quadratic: one step solves it, to rounding),
    else full-batch L-BFGS, stopped at :math:`\|\nabla F\|_2 \le` ``tol``. With an L1
    term: full-batch proximal gradient descent (exact zeros), step :math:`1/L`,
    :math:`L = \lambda_{\max}(\tilde X^\top \tilde X / n)`.

    Args:
        penalty: None, ``"l2"``, ``"l1"`` or ``"elasticnet"``.
        alpha: the penalty's strength, >= 0.
        l1_ratio: the elastic net's mixing :math:`\rho \in [0, 1]` (1: lasso, 0: ridge).
        fit_intercept: learn the intercept :math:`b` (else :math:`b = 0`).
        optimizer: ``"auto"``, a method name of ``descend.METHODS`` (``"lbfgs"``,
            ``"newton"``, ``"adam"``, ``"gd"``, ...), a ``torch.optim.Optimizer`` class
            or instance (its class and hyperparameters, rebuilt over this model's
            parameters), or a factory ``params -> optimizer``.
        lr: learning rate > 0 (None: the method's training default in
            ``descend.METHODS``; for proximal gradient :math:`1/L`).
        batch_size: ``"auto"`` (full batch for line-search methods and proximal gradient,
            else min(200, n)), ``"full"``, or rows per step >= 1 (1: stochastic).
        max_epochs: passes over the data (full batch: iterations), >= 1.
        tol: full batch: gradient-norm tolerance; mini-batch: least improvement of the
            epoch loss, >= 0.
        early_stopping: stop when the loss on a held-out ``validation_fraction`` (or on
            ``fit``'s ``validation``) stops improving by ``tol`` for ``n_iter_no_change``
            epochs, and keep the best weights (instead of the gradient test).
        validation_fraction: the held-out share in (0, 1) with ``early_stopping``.
        n_iter_no_change: epochs without improvement before stopping, >= 1.
        random_state: seeds the order of rows and the validation split (None, an int or
            a ``numpy.random.RandomState``).
        device: where to train (``"cpu"``, ``"cuda"``, ...).
        optimizer_params: more options for the optimizer (``{"momentum": 0.9}``).
        verbose: show a progress bar on a terminal.

    Attributes:
        coef_: weights, shape (n_features,) or (n_targets, n_features).
        intercept_: float or shape (n_targets,).
        n_iter_: epochs run (full batch: iterations); ``t_``: optimizer steps;
            ``n_evaluations_``: evaluations of the loss and its gradient (line searches
            evaluate more than once per step).
        loss_: the last epoch's mean training loss (without the penalty).
        loss_curve_: the mean training loss of every epoch.
        validation_loss_curve_: the validation loss of every epoch, or None.
        n_features_in_, feature_names_in_: what scikit-learn records.

    Example:
        >>> from descend.estimators import LinearRegression
        >>> model = LinearRegression(penalty="l1", alpha=0.1).fit(X, y)
        >>> model.coef_  # exact zeros where the lasso drops a feature
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {**LinearModel._parameter_constraints}

    def __init__(
        self,
        *,
        penalty: str | None = None,
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

    def _default_method(self, *, partial: bool, l1: float, fitted: dict[str, Any]) -> str:
        # a quadratic: one Newton step solves it exactly; its dense Hessian is cheap while
        # the coefficients are few
        n_params = (fitted["n_features_in_"] + 1) * fitted["n_outputs_"]
        if not partial and l1 == 0 and n_params <= NEWTON_MAX_PARAMS:
            return "newton"
        return super()._default_method(partial=partial, l1=l1, fitted=fitted)

    def _sample_loss(self, fitted: dict[str, Any]) -> Any:
        def squared(prediction: Tensor, target: Tensor) -> Tensor:
            return 0.5 * (prediction - target).square().sum(dim=1)

        return squared

    def _mean_loss(self, fitted: dict[str, Any]) -> Any:
        def squared_mean(prediction: Tensor, target: Tensor) -> Tensor:
            return 0.5 * (prediction - target).square().sum() / prediction.shape[0]

        return squared_mean

    def _fitted_from_module(self, module: nn.Module, fitted: dict[str, Any]) -> dict[str, Any]:
        coef, intercept = self._weights(module)
        if not fitted["_multi_output"]:
            return {
                "coef_": coef[0],
                "intercept_": float(intercept[0]) if self.fit_intercept else 0.0,
            }
        return {"coef_": coef, "intercept_": intercept}

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearRegression:
        """One epoch of mini-batch steps on ``X, y`` from the current weights (online
        learning; ``optimizer="auto"`` means Adam here, whose state carries over calls)."""
        return self._train(X, y, sample_weight, partial=True)

    def predict(self, X: Any) -> np.ndarray:
        """:math:`X W^\\top + b`, shape (n,) or (n, k)."""
        out = self._decision(X)
        return out if self._multi_output else out[:, 0]
