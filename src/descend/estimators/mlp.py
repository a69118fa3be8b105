r"""Multi-layer perceptrons for classification and regression, trained by descend.fit.

The network maps :math:`h_0 = x` through hidden layers
:math:`h_j = \mathrm{dropout}(\phi(\mathrm{BN}(W_j h_{j-1} + b_j)))` (batch normalization
and dropout optional) to the outputs :math:`z = W_L h_{L-1} + b_L`. The objective is the
weighted mean loss plus :math:`\frac{\alpha}{2}\sum_j \|W_j\|_2^2` (scikit-learn's SGD
convention; biases are not penalized, batch-normalization scales are). scikit-learn's
``MLPClassifier`` divides its ``alpha`` by the batch size instead:
``alpha = alpha_sklearn / batch_size`` gives the same penalty per step.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClassifierMixin, MultiOutputMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor, nn

from descend.estimators.arrays import as_tensor
from descend.estimators.base import DescendEstimator
from descend.estimators.targets import CrossEntropyTargets, RegressorTargets
from descend.init import ALIASES, SCHEMES, initialize

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
    "gelu": nn.GELU,
}

#: rows per forward pass when predicting (bounds the activations' memory)
PREDICT_ROWS = 1 << 16


class BatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` that normalizes a batch of one row with the running statistics
    (a batch's own variance is undefined for one row; the last batch of an epoch can
    have one)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


def network(
    n_in: int,
    hidden: tuple[int, ...],
    n_out: int,
    activation: str,
    batch_norm: bool,
    dropout: float,
) -> nn.Sequential:
    """The layers: ``Linear -> [BatchNorm] -> activation -> [Dropout]`` per hidden layer,
    then a ``Linear`` output layer."""
    layers: list[nn.Module] = []
    width = n_in
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if batch_norm:
            layers.append(BatchNorm(size))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class BaseMLP(DescendEstimator):
    """What the two networks share: architecture, initialization, penalty and prediction."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **DescendEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "init": [StrOptions({"auto", *SCHEMES, *ALIASES})],
        "batch_norm": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        *,
        activation: str = "relu",
        init: str = "auto",
        batch_norm: bool = False,
        dropout: float = 0.0,
        alpha: float = 1e-5,
        optimizer: Any = "auto",
        lr: float | None = None,
        batch_size: int | str = "auto",
        max_epochs: int = 200,
        tol: float = 1e-4,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        random_state: Any = None,
        device: str | None = "cpu",
        optimizer_params: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.alpha = alpha
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

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
                raise ValueError(
                    f"hidden_layer_sizes must hold integers >= 1, got {self.hidden_layer_sizes!r}"
                )
        return tuple(int(s) for s in sizes)

    def _default_method(self, *, partial: bool, l1: float, fitted: dict[str, Any]) -> str:
        return "adam"

    def _penalty(self) -> tuple[float, float]:
        return 0.0, float(self.alpha)

    def _build_module(
        self, n_features: int, fitted: dict[str, Any], dtype: torch.dtype, seed: int
    ) -> nn.Module:
        module = network(
            n_features,
            self._hidden(),
            self._n_outputs(fitted),
            self.activation,
            self.batch_norm,
            float(self.dropout),
        ).to(dtype)
        # "auto": Glorot's uniform for every layer, as scikit-learn (He's variance, 2/fan_in,
        # doubles the output layer's scale too and slows the first epochs)
        scheme = "xavier" if self.init == "auto" else self.init
        initialize(module, scheme, seed=seed)
        return module

    def _n_outputs(self, fitted: dict[str, Any]) -> int:
        raise NotImplementedError

    def _fitted_from_module(self, module: nn.Module, fitted: dict[str, Any]) -> dict[str, Any]:
        layers = cast(nn.Sequential, module)  # what _build_module built
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        return {
            "coefs_": [m.weight.detach().numpy().T.copy() for m in linears],
            "intercepts_": [m.bias.detach().numpy().copy() for m in linears],
            "n_layers_": len(linears) + 1,
            "out_activation_": self._out_activation(fitted),
        }

    def _out_activation(self, fitted: dict[str, Any]) -> str:
        raise NotImplementedError

    def _forward(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X`` in evaluation mode (running statistics of batch
        normalization, no dropout), computed in chunks."""
        X = self._check_X(X)
        module = self._module
        dtype = next(module.parameters()).dtype
        Xt = as_tensor(X, dtype)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                parts = [module(chunk) for chunk in Xt.split(PREDICT_ROWS)]
        finally:
            module.train(was_training)
        return torch.cat(parts).numpy().astype(np.float64)


_COMMON_DOC = """
    Args:
        hidden_layer_sizes: widths of the hidden layers (default (100,)), each >= 1.
        activation: ``"relu"`` (default), ``"tanh"``, ``"logistic"``, ``"identity"``,
            ``"gelu"``.
        init: weight initialization (``descend.init``: ``"he"``, ``"xavier"``,
            ``"lecun"``, ``"orthogonal"``, ...); ``"auto"``: Xavier/Glorot uniform, as
            scikit-learn. Biases start at 0.
        batch_norm: batch normalization after each hidden layer's affine map.
        dropout: dropout probability in [0, 1) after each hidden activation.
        alpha: L2 strength >= 0 on the weights: objective = mean loss +
            :math:`\\frac{\\alpha}{2}\\sum\\|W\\|^2`.
        optimizer: ``"auto"`` (mini-batch Adam), a method name of ``descend.METHODS``,
            an optimizer class or instance, or a factory ``params -> optimizer``.
        lr: learning rate > 0 (None: the method's training default in ``descend.METHODS``,
            1e-3 for Adam).
        batch_size: ``"auto"`` (min(200, n)), ``"full"``, or rows per step >= 1.
        max_epochs: passes over the data, >= 1 (default 200).
        tol: least improvement of the epoch loss (or validation loss) that counts, >= 0.
        early_stopping: hold out ``validation_fraction`` of the rows, stop when their
            loss stops improving, and keep the best weights.
        validation_fraction: the held-out share in (0, 1).
        n_iter_no_change: epochs without improvement before stopping (default 10).
        random_state: seeds initialization, order of rows, validation split and dropout.
        device: where to train (``"cpu"``, ``"cuda"``, ...).
        optimizer_params: more options for the optimizer (``{"betas": (0.9, 0.99)}``).
        verbose: show a progress bar on a terminal.
"""


class MLPClassifier(CrossEntropyTargets, ClassifierMixin, BaseMLP):
    __doc__ = (
        r"""A multi-layer perceptron classifier: softmax cross-entropy (sigmoid for two
    classes, one output unit), mini-batch Adam by default.

    Loss per row: :math:`-\log \mathrm{softmax}(z)_{y}` (K > 2 classes) or
    :math:`\log(1 + e^z) - y z` (two classes).
    """
        + _COMMON_DOC
        + r"""
    Attributes:
        classes_: the labels; coefs_, intercepts_: each layer's weights (n_in, n_out) and
        biases; n_iter_: epochs run; t_: steps; loss_, loss_curve_,
        validation_loss_curve_: the training and validation losses per epoch.

    Example:
        >>> from descend.estimators import MLPClassifier
        >>> labels = (y[:, 0] > 0).numpy().astype(int)  # two classes
        >>> X_train, X_test, y_train, y_test = X[:48], X[48:], labels[:48], labels[48:]
        >>> clf = MLPClassifier((16,), batch_norm=True, dropout=0.1, random_state=0)
        >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.8  # held-out accuracy
        True
    """
    )

    def _out_activation(self, fitted: dict[str, Any]) -> str:
        return "logistic" if len(fitted["classes_"]) == 2 else "softmax"

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> MLPClassifier:
        """One epoch on ``X, y`` from the current weights; the optimizer's state carries
        over calls. ``classes`` (every label) is required on the first call."""
        return self._train(X, y, sample_weight, partial=True, classes=classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in ``classes_`` order."""
        return self._probabilities(self._scores(self._forward(X)))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label for each row."""
        return self._labels(self._scores(self._forward(X)))


class MLPRegressor(RegressorTargets, MultiOutputMixin, RegressorMixin, BaseMLP):
    __doc__ = (
        r"""A multi-layer perceptron regressor: squared error, mini-batch Adam by default.

    Loss per row: :math:`\frac{1}{2k}\|y - z\|^2` over the k targets (scikit-learn's
    convention), identity output.
    """
        + _COMMON_DOC
        + r"""
    Attributes:
        coefs_, intercepts_, n_iter_, t_, loss_, loss_curve_, validation_loss_curve_,
        n_outputs_.

    Example:
        >>> from descend.estimators import MLPRegressor
        >>> reg = MLPRegressor((32, 32), activation="tanh", random_state=0).fit(X, y)
        >>> reg.predict(X[:5])
    """
    )

    def _out_activation(self, fitted: dict[str, Any]) -> str:
        return "identity"

    def _sample_loss(self, fitted: dict[str, Any]) -> Any:
        def squared(prediction: Tensor, target: Tensor) -> Tensor:
            return 0.5 * (prediction - target).square().mean(dim=1)

        return squared

    def _mean_loss(self, fitted: dict[str, Any]) -> Any:
        def squared_mean(prediction: Tensor, target: Tensor) -> Tensor:
            return 0.5 * F.mse_loss(prediction, target)

        return squared_mean

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch on ``X, y`` from the current weights; the optimizer's state carries
        over calls."""
        return self._train(X, y, sample_weight, partial=True)

    def predict(self, X: Any) -> np.ndarray:
        """The network's outputs, shape (n,) or (n, k)."""
        z = self._forward(X)
        return z if self._multi_output else z[:, 0]
