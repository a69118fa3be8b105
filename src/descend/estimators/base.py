r"""What every descend estimator shares: parameters, validation, and one training routine.

An estimator is a torch module, a per-sample loss and a penalty; training is one call of
:func:`descend.fit` (the descent loop fed by batches), so every update rule comes from
``descend.optim`` and none is written here. This module turns scikit-learn's contract
into that call:

* **validation at the edge**: ``sklearn.utils.validation.validate_data`` for ``X`` and
  ``y`` (array-likes, pandas frames, feature names), ``_check_sample_weight`` for the
  weights, ``_parameter_constraints`` for the hyperparameters;
* **the objective**: :math:`\frac{\sum_i s_i \ell_i}{\sum_i s_i} + \alpha R(w)` with
  sample weights :math:`s_i` (1 when not given), in scikit-learn's SGD convention
  (:math:`R = \frac12\|w\|_2^2` for ``l2``, :math:`\|w\|_1` for ``l1``,
  :math:`\rho\|w\|_1 + \frac{1-\rho}{2}\|w\|_2^2` for ``elasticnet``, :math:`\rho` =
  ``l1_ratio``); intercepts and biases are never penalized. Weights are rescaled to mean 1,
  so a mini-batch mean of :math:`s_i \ell_i` estimates the weighted mean without bias,
  and a weight of ``k`` is the same as repeating a row ``k`` times;
* **the L2 term** reaches the gradient through fit's penalty; on mini-batches with a
  method whose ``weight_decay`` is the same gradient :math:`\alpha w` (gd, momentum,
  nesterov, adagrad, rmsprop, adam, amsgrad) it is given as that weight decay on the
  weights instead (one fused update rather than an autograd term at every step);
* **the method**: ``optimizer="auto"`` picks full-batch L-BFGS for smooth convex models,
  full-batch proximal gradient (``"gd"`` with step :math:`1/L`) when an L1 term is present,
  and mini-batch Adam for networks and non-smooth losses; any name of
  ``descend.METHODS``, an optimizer class, an optimizer instance (its class and
  hyperparameters, rebuilt over the model's parameters) or a factory
  ``params -> optimizer`` works too;
* **stopping**: on the full batch, the gradient norm :math:`\|\nabla F\|_2 \le` ``tol``
  (with an L1 term, the norm of the proximal gradient mapping
  :math:`\|w_k - w_{k+1}\|_2/\eta \le` ``tol``); on mini-batches, the epoch loss failing
  to improve by ``tol`` for ``n_iter_no_change`` epochs (with ``early_stopping``, the
  loss on a held-out ``validation_fraction``, and the best weights are kept). Running out
  of ``max_epochs`` first issues a ``ConvergenceWarning``;
* **atomic fits**: a fit that raises leaves the estimator as it was (no fitted attributes
  after a failed first fit, the previous model after a failed refit);
* **determinism**: ``random_state`` seeds every draw (initialization, order of rows,
  validation split, dropout) through ``descend.fit``'s seed; global RNGs are untouched.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)
from torch import Tensor, nn

import descend
from descend.callbacks import Callback, EarlyStopping
from descend.methods import METHODS, get_method
from descend.result import Status
from descend.stopping import StoppingCriteria

#: dtypes the estimators compute in: float32 input stays float32, anything else is float64
FLOAT_DTYPES = (np.float64, np.float32)

#: methods whose step with an L1 term on the full batch is 1/L by default
PROXIMAL_STEP = ("gd",)

#: methods whose ``weight_decay`` adds lambda * w to the gradient: the gradient of the L2
#: term (lambda / 2) ||w||^2 (AdamW's decoupled decay is another rule)
COUPLED_DECAY = ("gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "amsgrad")

#: how far fit's steps may run when only epochs bound them
_NO_STEP_LIMIT = 2**62


def torch_dtype(dtype: Any) -> torch.dtype:
    """The torch dtype of a NumPy float dtype (float32 or float64)."""
    return torch.float32 if np.dtype(dtype) == np.float32 else torch.float64


def as_tensor(array: np.ndarray, dtype: torch.dtype | None = None) -> Tensor:
    """A CPU tensor sharing memory with ``array`` when it is contiguous and writable."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    tensor = torch.from_numpy(array)
    return tensor if dtype is None else tensor.to(dtype)


@dataclass
class _Plan:
    """How a fit will run: the optimizer's builder and what kind of method it is."""

    label: str
    build: Callable[[list[Tensor]], torch.optim.Optimizer]
    line_search: bool  # needs the same batch on every evaluation: full batch only
    method: str | None  # the descend method name when given by name
    full: bool = False  # batch_size="auto" means the full batch


def _is_line_search(cls: type) -> bool:
    from descend.optim import TrustRegion
    from descend.optim.linesearch import LineSearchOptimizer

    return issubclass(cls, (LineSearchOptimizer, TrustRegion, torch.optim.LBFGS))


def _reject_natural_gradient(cls: type) -> None:
    from descend.optim import NaturalGradient

    if issubclass(cls, NaturalGradient):
        raise ValueError(
            "optimizer=NaturalGradient needs a closure returning per-sample losses, which "
            "descend.fit does not give; use optimizer='newton' (for generalized linear "
            "models the model Fisher is the Hessian) or drive NaturalGradient directly"
        )


class _ProximalStationarity(Callback):
    r"""Stops a full-batch proximal-gradient run when :math:`\|w_k - w_{k+1}\|_2/\eta`
    (the proximal gradient mapping, the gradient norm of the smooth case) is at most
    ``tol``."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, tol: float) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.optimizer = optimizer
        self.tol = tol
        self.previous: list[Tensor] | None = None
        self.stop_reason: str | None = None
        self.mapping = math.inf

    def on_begin(self, result: Any) -> None:
        self.previous = [p.detach().clone() for p in self.params]

    def on_step(self, result: Any) -> bool | None:
        assert self.previous is not None
        with torch.no_grad():
            step = torch.linalg.vector_norm(
                torch.stack(
                    [torch.linalg.vector_norm(p - q) for p, q in zip(self.params, self.previous)]
                )
            )
            for p, q in zip(self.params, self.previous):
                q.copy_(p)
        lr = float(self.optimizer.param_groups[0]["lr"])
        mapping = self.mapping = float(step) / lr
        if mapping <= self.tol:
            self.stop_reason = f"proximal gradient mapping {mapping:.3g} <= tol {self.tol:g}"
            return True
        return None


class _EpochEarlyStopping(EarlyStopping):
    """EarlyStopping that checks at epoch ends only, and says so: fit then builds no
    intermediate result for it after every step."""

    def on_iteration(self, nit: int) -> bool:
        return False


class DescendEstimator(BaseEstimator):
    """Base of descend's estimators (not used directly): the shared parameters and the
    training routine. Subclasses give the module, the loss and the target encoding."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "optimizer": [str, torch.optim.Optimizer, type, callable],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [StrOptions({"auto", "full"}), Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str, torch.device, None],
        "optimizer_params": [dict, None],
        "verbose": ["verbose"],
    }

    #: mini-batch size of batch_size="auto" for first-order methods: min(this, n)
    _auto_batch_size = 200
    #: the lowest dtype the model computes in (MatrixFactorization needs float64 ids)
    _min_dtype: Any = None
    #: optimizer="auto" with an L1 term: full-batch proximal gradient (convex models)
    _full_batch_proximal = False

    # -- what a subclass provides ---------------------------------------------------------

    def _default_method(self, *, partial: bool, l1: float, fitted: dict[str, Any]) -> str:
        """The method of ``optimizer="auto"``."""
        raise NotImplementedError

    def _default_lr(self, method: str | None) -> float | None:
        """The learning rate when ``lr=None`` (None: the method's own default)."""
        return None

    def _penalty(self) -> tuple[float, float]:
        """``(l1, l2)`` strengths of fit's penalty on the weights."""
        return 0.0, 0.0

    def _curvature(self, fitted: dict[str, Any]) -> float:
        """An upper bound of the loss's second derivative in the model's output (for the
        step 1/L of proximal gradient)."""
        return 1.0

    def _validate_targets(
        self,
        y: Any,
        *,
        first: bool,
        classes: Any,
        partial: bool = False,
        weights: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Check ``y``; return the fitted attributes it defines (``classes_``, ...)."""
        raise NotImplementedError

    def _encode_targets(self, y: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
        """The targets as the loss takes them: floats (n, k) or class indices (n,)."""
        raise NotImplementedError

    def _build_module(
        self, n_features: int, fitted: dict[str, Any], dtype: torch.dtype, seed: int
    ) -> nn.Module:
        raise NotImplementedError

    def _sample_loss(self, fitted: dict[str, Any]) -> Callable[[Tensor, Tensor], Tensor]:
        """Per-sample losses ``(prediction, target) -> (n,)``."""
        raise NotImplementedError

    def _mean_loss(self, fitted: dict[str, Any]) -> Callable[[Tensor, Tensor], Tensor] | None:
        """A fused mean loss for unweighted data (None: the mean of the per-sample one)."""
        return None

    def _fitted_from_module(self, module: nn.Module, fitted: dict[str, Any]) -> dict[str, Any]:
        """The public fitted attributes read from the trained module (``coef_``, ...)."""
        return {}

    def _module_for_update(self, fitted: dict[str, Any], seed: int) -> nn.Module:
        """A copy of the fitted module to continue training (``partial_fit``)."""
        return copy.deepcopy(self._module)

    def _encode_features(
        self, X: np.ndarray, fitted: dict[str, Any], *, first: bool
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """``X`` as the module takes it, and fitted attributes that encoding defines."""
        return X, {}

    def _validate_X(self) -> dict[str, Any]:
        """Arguments of ``validate_data`` for ``X``."""
        return {"dtype": list(FLOAT_DTYPES)}

    # -- sklearn plumbing ----------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # the optimizer's state only serves partial_fit in this process; a pickled model
        # continues with a fresh optimizer
        state = super().__getstate__()
        state.pop("_optimizer", None)
        state.pop("_optimizer_label", None)
        state.pop("_fit_result", None)
        return state

    def _is_fitted(self) -> bool:
        return hasattr(self, "_module") and hasattr(self, "n_features_in_")

    def _check_X(self, X: Any) -> np.ndarray:
        """X for prediction, checked against the fit (features, their names, dtype)."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False, **self._validate_X())

    def data_loss(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        r"""The fitted model's data loss on ``(X, y)``: the objective without its penalty,
        :math:`\sum_i s_i \ell_i / \sum_i s_i` (what ``loss_curve_`` records per epoch).

        Example:
            >>> model.data_loss(X_test, y_test)  # log loss, squared error, hinge, ...
        """
        X = self._check_X(X)
        y = check_array(y, ensure_2d=False, dtype=None)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X and y have {X.shape[0]} and {y.shape[0]} rows; they must match")
        fitted = dict(vars(self))
        if y.ndim == 2 and y.shape[1] == 1 and not fitted.get("_multi_output", False):
            y = y.ravel()
        X, _ = self._encode_features(X, fitted, first=False)
        target = _pack(self._encode_targets(y, fitted), np.ones(len(y)), self._torch_dtype_)
        weights = torch.ones(len(y), dtype=torch.float64)
        if sample_weight is not None:
            weights = torch.from_numpy(_check_sample_weight(sample_weight, X, dtype=np.float64))
        module = self._module_for_update(fitted, 0) if hasattr(self, "coef_") else self._module
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                prediction = module(as_tensor(X, self._torch_dtype_))
                losses = self._sample_loss(fitted)(prediction, target[:, :-1]).double()
        finally:
            module.train(was_training)
        return float((losses * weights).sum() / weights.sum())

    # -- the training routine --------------------------------------------------------------

    def _train(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        partial: bool = False,
        classes: Any = None,
        validation: Any = None,
    ) -> DescendEstimator:
        self._validate_params()
        first = not (partial and self._is_fitted())
        kwargs = self._validate_X()
        if first:
            # validate on a copy: validate_data records n_features_in_ on its estimator,
            # and nothing may change here until training has succeeded
            scratch = copy.copy(self)
            X, y = _validated(scratch, X, y, reset=True, **kwargs, **self._y_args())
            names = getattr(scratch, "feature_names_in_", None)
            fitted: dict[str, Any] = {"n_features_in_": scratch.n_features_in_}
            fitted["feature_names_in_"] = names
        else:
            X, y = _validated(self, X, y, reset=False, **kwargs, **self._y_args())
            fitted = {"n_features_in_": self.n_features_in_}
        n = X.shape[0]
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            total = float(weights.sum())
            if not total > 0:
                raise ValueError(
                    "sample_weight sums to 0; at least one sample needs a positive weight"
                )
            weights = weights * (n / total)
        fitted.update(
            self._validate_targets(
                y, first=first, classes=classes, partial=partial, weights=weights
            )
        )

        X, updates = self._encode_features(X, fitted, first=first)
        fitted.update(updates)
        dtype = self._dtype(X) if first else self._torch_dtype_
        fitted["_torch_dtype_"] = dtype
        seed = self._seed(partial)
        l1, l2 = self._penalty()
        plan = self._plan(partial=partial, l1=l1, fitted=fitted)
        batch_size = self._batch_size(plan, n)
        if l1 > 0 and plan.line_search:
            raise ValueError(
                f"optimizer={plan.label!r} is a line-search method for smooth objectives and "
                "cannot take an L1 penalty (applied by a proximal step); use "
                "optimizer='auto' (proximal gradient), 'gd', 'adam' or another first-order method"
            )
        if batch_size is not None and plan.line_search:
            raise ValueError(
                f"optimizer={plan.label!r} searches along a line on one batch and needs "
                f"batch_size='full', got batch_size={batch_size}"
            )

        Xt = as_tensor(X, dtype)
        target = self._encode_targets(y, fitted)
        loss = self._loss(fitted, weighted=weights is not None)
        Yt = _pack(target, weights, dtype)
        val = None
        if validation is not None:
            val = self._validation_data(validation, fitted, dtype, weighted=weights is not None)

        # torch's layers draw their default initialization from the global RNG; building
        # under a fork leaves the caller's random state as it was
        with torch.random.fork_rng(devices=[]):
            if first:
                module = self._build_module(X.shape[1], fitted, dtype, seed)
            else:
                module = self._module_for_update(fitted, seed)
        params = [p for p in module.parameters() if p.requires_grad]
        options_lr = None
        if l1 > 0 and batch_size is None and plan.method in PROXIMAL_STEP and self.lr is None:
            options_lr = 1.0 / self._lipschitz(Xt, weights, l2, fitted)
            plan = self._plan(partial=partial, l1=l1, fitted=fitted, lr=options_lr)
        fit_l2 = l2
        if (
            batch_size is not None
            and l2 > 0
            and plan.method in COUPLED_DECAY
            and "weight_decay" not in (self.optimizer_params or {})
        ):
            # the same L2 gradient as fit's penalty term, added by the optimizer to the
            # weights' gradients: no autograd graph for it at every step
            named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
            groups = [
                {
                    "params": [p for name, p in named if not name.endswith("bias")],
                    "weight_decay": l2,
                },
                {"params": [p for name, p in named if name.endswith("bias")]},
            ]
            optimizer = plan.build([g for g in groups if g["params"]])
            fit_l2 = 0.0
        else:
            optimizer = plan.build(params)
        if plan.method is None and batch_size is not None and _is_line_search(type(optimizer)):
            # a factory's optimizer is known only now: a line search needs the full batch
            if self.batch_size != "auto":
                raise ValueError(
                    f"the optimizer factory built {type(optimizer).__name__}, which searches "
                    f"along a line on one batch and needs batch_size='full', got "
                    f"batch_size={batch_size}"
                )
            batch_size = None
        previous = getattr(self, "_optimizer", None)
        if (
            not first
            and previous is not None
            and getattr(self, "_optimizer_label", None) == plan.label
            and [p.shape for p in params]
            == [p.shape for p in self._module.parameters() if p.requires_grad]
        ):
            # the optimizer's state (moments, step counts) carries over partial_fit calls
            optimizer.load_state_dict(copy.deepcopy(previous.state_dict()))

        callbacks: list[Callback] = []
        early = None
        stopping = None
        validation_arg: Any = val
        if partial:
            epochs = 1
        else:
            epochs = self.max_epochs
            if batch_size is None and not self.early_stopping:
                if l1 > 0:
                    callbacks.append(_ProximalStationarity(module, optimizer, self.tol))
                    stopping = StoppingCriteria(max_iter=_NO_STEP_LIMIT, gtol=0.0, ftol=0.0)
                else:
                    stopping = StoppingCriteria(max_iter=_NO_STEP_LIMIT, gtol=self.tol, ftol=0.0)
            elif self.early_stopping:
                if val is None:
                    validation_arg = float(self.validation_fraction)
                early = _EpochEarlyStopping(
                    monitor="val_loss",
                    patience=self.n_iter_no_change,
                    min_delta=self.tol,
                    restore_best_weights=True,
                )
            else:
                early = _EpochEarlyStopping(
                    monitor="loss",
                    patience=self.n_iter_no_change,
                    min_delta=self.tol,
                    restore_best_weights=False,
                )
        device = self._device()
        try:
            result = descend.fit(
                module,
                loss,
                (Xt, Yt),
                optimizer=optimizer,
                batch_size="full" if batch_size is None else batch_size,
                epochs=epochs,
                shuffle=True,
                seed=seed,
                l1=l1,
                l2=fit_l2,
                validation=validation_arg,
                early_stopping=early,
                callbacks=callbacks,
                monitors=None,  # an estimator's fit stays quiet and lean: no health checks
                device=device,
                progress=bool(self.verbose),
                stopping=stopping,
            )
        finally:
            module.to("cpu")
        if result.status == Status.LINE_SEARCH_FAILED:
            # a line search fails where f stops changing in floating point; that is
            # convergence when the gradient there is within tol
            norm = _gradient_norm(module, loss, Xt, Yt, l2)
            if norm <= self.tol:
                result.status = Status.GTOL
            else:
                result.message = (
                    f"the gradient norm {norm:.3g} > tol={self.tol:g} where f stopped "
                    f"decreasing in {str(dtype).replace('torch.', '')}: {result.message} "
                    "Loosen tol, or fit float64 data"
                )
        proximal = next((c for c in callbacks if isinstance(c, _ProximalStationarity)), None)
        self._warn(result, partial=partial, batch_size=batch_size, proximal=proximal)

        history = result.epoch_history
        curve = [float(v) for v in history["loss"]] if len(history) else []
        val_curve = [float(v) for v in history["val_loss"]] if result.has_validation else None
        if not first:
            curve = list(self.loss_curve_) + curve
            if val_curve is not None and getattr(self, "validation_loss_curve_", None) is not None:
                val_curve = list(self.validation_loss_curve_) + val_curve
        fitted.update(
            _module=module.eval(),
            _optimizer=optimizer,
            _optimizer_label=plan.label,
            _fit_result=result,  # the last run, for run records (descend fit); not pickled
            n_iter_=(self.n_iter_ + result.epoch) if not first else result.epoch,
            loss_=float(result.fun),
            loss_curve_=curve,
            validation_loss_curve_=val_curve,
            t_=(getattr(self, "t_", 0) if not first else 0) + result.nit,
            n_evaluations_=(getattr(self, "n_evaluations_", 0) if not first else 0) + result.nfev,
        )
        fitted.update(self._fitted_from_module(module, fitted))
        self._commit(fitted)
        return self

    def _y_args(self) -> dict[str, Any]:
        return {}

    def _commit(self, fitted: dict[str, Any]) -> None:
        """Set every fitted attribute at once, after training succeeded."""
        for name, value in fitted.items():
            if value is None and name == "feature_names_in_":
                if hasattr(self, name):
                    delattr(self, name)
                continue
            setattr(self, name, value)

    def _loss(
        self, fitted: dict[str, Any], *, weighted: bool
    ) -> Callable[[Tensor, Tensor], Tensor]:
        per_sample = self._sample_loss(fitted)
        if weighted:

            def weighted_mean(prediction: Tensor, target: Tensor) -> Tensor:
                return (per_sample(prediction, target[:, :-1]) * target[:, -1]).mean()

            return weighted_mean
        fused = self._mean_loss(fitted)
        if fused is not None:
            return fused

        def mean(prediction: Tensor, target: Tensor) -> Tensor:
            return per_sample(prediction, target).mean()

        return mean

    def _validation_data(
        self, validation: Any, fitted: dict[str, Any], dtype: torch.dtype, *, weighted: bool
    ) -> tuple[Tensor, Tensor]:
        """Held-out ``(X_val, y_val)``, checked like the training data and encoded alike."""
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise ValueError(
                f"validation must be a pair (X_val, y_val), got {type(validation).__name__}"
            )
        Xv = check_array(validation[0], **self._validate_X())
        if Xv.shape[1] != fitted["n_features_in_"]:
            raise ValueError(
                f"validation X has {Xv.shape[1]} features, but the training X has "
                f"{fitted['n_features_in_']}"
            )
        yv = check_array(validation[1], ensure_2d=False, dtype=None)
        if yv.shape[0] != Xv.shape[0]:
            raise ValueError(
                f"validation X and y have {Xv.shape[0]} and {yv.shape[0]} rows; they must match"
            )
        if yv.ndim == 2 and yv.shape[1] == 1 and not fitted.get("_multi_output", False):
            yv = yv.ravel()
        target = self._encode_targets(yv, fitted)
        weights = np.ones(len(yv)) if weighted else None
        return as_tensor(Xv, dtype), _pack(target, weights, dtype)

    def _dtype(self, X: np.ndarray) -> torch.dtype:
        dtype = torch_dtype(X.dtype)
        if self._min_dtype is not None and dtype == torch.float32:
            return self._min_dtype
        return dtype

    def _seed(self, partial: bool) -> int:
        rng = check_random_state(self.random_state)
        base = int(rng.randint(np.iinfo(np.int32).max))
        if partial and isinstance(self.random_state, Integral):
            # a fixed random_state gives each partial_fit call its own, reproducible draws
            calls = getattr(self, "t_", 0)
            return int(np.random.SeedSequence([base, calls]).generate_state(1)[0])
        return base

    def _device(self) -> torch.device:
        try:
            device = torch.device(self.device if self.device is not None else "cpu")
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device={self.device!r} is not a torch device: {exc}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available here")
        return device

    def _plan(
        self, *, partial: bool, l1: float, fitted: dict[str, Any], lr: float | None = None
    ) -> _Plan:
        spec = self.optimizer
        options = dict(self.optimizer_params or {})
        rate = self.lr if self.lr is not None else lr
        if isinstance(spec, str):
            name = (
                self._default_method(partial=partial, l1=l1, fitted=fitted)
                if spec == "auto"
                else spec
            )
            try:
                method = get_method(name)
            except ValueError:
                raise ValueError(
                    f"optimizer={spec!r} is not a descend method; valid: 'auto', "
                    f"{', '.join(repr(m) for m in METHODS)}, an optimizer class or instance, "
                    "or a factory params -> optimizer"
                ) from None
            if rate is None:
                rate = self._default_lr(method.name)
            if rate is not None:
                options["lr"] = rate
            full = method.second_order or (
                spec == "auto" and l1 > 0 and not partial and self._full_batch_proximal
            )
            return _Plan(
                method.name,
                lambda params: method.build(params, options),
                method.second_order,
                method.name,
                full,
            )
        if isinstance(spec, torch.optim.Optimizer) or (
            isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer)
        ):
            cls = spec if isinstance(spec, type) else type(spec)
            _reject_natural_gradient(cls)
            kwargs: dict[str, Any] = {}
            if not isinstance(spec, type):
                accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
                kwargs = {k: v for k, v in spec.defaults.items() if k in accepted}
            if rate is not None:
                kwargs["lr"] = rate
            kwargs.update(options)
            line_search = _is_line_search(cls)
            return _Plan(
                cls.__name__, lambda params: cls(params, **kwargs), line_search, None, line_search
            )
        if callable(spec):

            def build(params: list[Tensor]) -> torch.optim.Optimizer:
                opt = spec(params)
                if not isinstance(opt, torch.optim.Optimizer):
                    raise TypeError(
                        "optimizer factory must return a torch.optim.Optimizer, got "
                        f"{type(opt).__name__}"
                    )
                _reject_natural_gradient(type(opt))
                return opt

            name = getattr(spec, "__name__", type(spec).__name__)
            return _Plan(name, build, False, None)
        raise TypeError(
            f"optimizer must be 'auto', a method name, an optimizer class or instance, or a "
            f"factory params -> optimizer; got {type(spec).__name__}"
        )

    def _batch_size(self, plan: _Plan, n: int) -> int | None:
        """None for the full batch, else the number of rows per step."""
        size = self.batch_size
        if size == "full":
            return None
        if size == "auto":
            return None if plan.full else min(self._auto_batch_size, n)
        return None if int(size) >= n and plan.line_search else int(size)

    def _lipschitz(
        self, X: Tensor, weights: np.ndarray | None, l2: float, fitted: dict[str, Any]
    ) -> float:
        r"""An upper bound :math:`L` of the smooth part's gradient Lipschitz constant:
        :math:`c\,\lambda_{\max}(\tilde X^\top S \tilde X / n) + \lambda_2`, with
        :math:`\tilde X` = X with a column of ones for the intercept, :math:`S` the weights,
        :math:`c` the loss's curvature bound; by power iteration (exact for small d)."""
        with torch.no_grad():
            Xd = X.to(torch.float64)
            n = Xd.shape[0]
            if getattr(self, "fit_intercept", False):
                Xd = torch.cat([Xd, torch.ones(n, 1, dtype=torch.float64)], dim=1)
            if weights is not None:
                Xd = Xd * torch.from_numpy(np.sqrt(weights)).reshape(-1, 1)
            d = Xd.shape[1]
            if d <= 512:
                gram = Xd.T @ Xd / n
                top = float(torch.linalg.eigvalsh(gram)[-1])
            else:
                v = torch.ones(d, dtype=torch.float64) / math.sqrt(d)
                top = 0.0
                for _ in range(50):
                    w = Xd.T @ (Xd @ v) / n
                    top = float(torch.linalg.vector_norm(w))
                    if top == 0:
                        break
                    v = w / top
                top *= 1.1  # power iteration approaches from below
        return max(self._curvature(fitted) * top + l2, 1e-12)

    def _warn(
        self,
        result: Any,
        *,
        partial: bool,
        batch_size: int | None,
        proximal: _ProximalStationarity | None,
    ) -> None:
        status = result.status
        name = type(self).__name__
        if status == Status.MAX_ITER and not partial:
            what = (
                f"the proximal gradient mapping is {proximal.mapping:.3g} > tol={self.tol:g}"
                if proximal is not None
                else f"the gradient norm is {result.grad_norm:.3g} > tol={self.tol:g}"
                if batch_size is None
                else f"the loss still improved by more than tol={self.tol:g} within "
                f"n_iter_no_change={self.n_iter_no_change} epochs"
            )
            warnings.warn(
                f"{name} did not converge in max_epochs={self.max_epochs}: {what}; raise "
                "max_epochs or tol, or scale the features",
                ConvergenceWarning,
                stacklevel=4,
            )
        elif status in (Status.DIVERGED, Status.LINE_SEARCH_FAILED, Status.MAX_TIME):
            warnings.warn(
                f"{name} stopped short ({status.value}): {result.message}",
                ConvergenceWarning,
                stacklevel=4,
            )


def _validated(estimator: Any, X: Any, y: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``validate_data`` for (X, y), with a plain message for text targets of a regressor."""
    name = type(estimator).__name__
    try:
        X, y = validate_data(estimator, X, y, **kwargs)
    except ValueError as exc:
        if kwargs.get("y_numeric") and "could not convert string to float" in str(exc):
            raise ValueError(
                f"y must be numeric for {name}, a regressor; got text ({exc})"
            ) from None
        raise
    if kwargs.get("y_numeric") and np.asarray(y).dtype.kind not in "biuf":
        raise ValueError(f"y must be numeric for {name}, a regressor; got dtype {y.dtype}")
    return X, y


def _gradient_norm(
    module: nn.Module, loss: Callable[[Tensor, Tensor], Tensor], X: Tensor, Y: Tensor, l2: float
) -> float:
    r""":math:`\|\nabla F\|_2` of the full-batch objective (mean loss and L2 term)."""
    params = [p for p in module.parameters() if p.requires_grad]
    with torch.enable_grad():
        value = loss(module(X), Y)
        if l2:
            weights = [p for n, p in module.named_parameters() if not n.endswith("bias")]
            value = value + 0.5 * l2 * sum((w * w).sum() for w in weights)
        grads = torch.autograd.grad(value, params)
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))


def _pack(target: np.ndarray, weights: np.ndarray | None, dtype: torch.dtype) -> Tensor:
    """The target tensor fit sees: the encoded targets, and the weights as a last column."""
    if weights is None:
        if target.dtype.kind in "iu":
            return torch.from_numpy(np.ascontiguousarray(target, dtype=np.int64))
        return as_tensor(np.asarray(target), dtype)
    columns = target.reshape(len(target), -1).astype(np.float64)
    return as_tensor(np.column_stack([columns, weights]), dtype)


class ClassifierTargets:
    """Label handling of the classifiers: ``classes_`` (sorted, any labels, strings
    included), the ``classes`` argument of ``partial_fit``, labels to indices, and scores
    to labels (one output for two classes, one per class otherwise)."""

    def _y_args(self) -> dict[str, Any]:
        return {}

    def _n_outputs(self, fitted: dict[str, Any]) -> int:
        k = len(fitted["classes_"])
        return 1 if k == 2 else k

    @staticmethod
    def _scores(z: np.ndarray) -> np.ndarray:
        """The outputs (n, k) as scores: shape (n,) for one output (two classes), else (n, k)."""
        return z[:, 0] if z.shape[1] == 1 else z

    def _labels(self, scores: np.ndarray) -> np.ndarray:
        """The label of each row's largest score; scores (n,): ``classes_[1]`` where > 0."""
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]  # type: ignore[attr-defined]

    def _validate_targets(
        self,
        y: Any,
        *,
        first: bool,
        classes: Any,
        partial: bool = False,
        weights: np.ndarray | None = None,
    ) -> dict[str, Any]:
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y)
        name = type(self).__name__
        if not first:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} differs from the classes of the "
                    f"first partial_fit call, {self.classes_.tolist()}"
                )
            return {"classes_": self.classes_}
        if classes is None and partial:
            raise ValueError(
                f"classes must be passed on the first call to {name}.partial_fit "
                "(every label the model will see)"
            )
        found = np.unique(np.asarray(y))
        classes_ = found if classes is None else np.unique(np.asarray(classes))
        if classes is not None:
            unknown = np.setdiff1d(found, classes_)
            if unknown.size:
                raise ValueError(
                    f"y has labels {unknown.tolist()} that are not in classes={classes_.tolist()}"
                )
        if classes_.size < 2:
            raise ValueError(
                f"{name} needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes_.tolist()[0]!r}"
            )
        return {"classes_": classes_}

    @staticmethod
    def _label_indices(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Each label's index in ``classes``; unknown labels raise a ValueError."""
        y = np.asarray(y).reshape(-1)
        index = np.searchsorted(classes, y)
        index = np.clip(index, 0, len(classes) - 1)
        bad = classes[index] != y
        if np.any(bad):
            raise ValueError(
                f"y has labels {np.unique(y[bad]).tolist()[:10]} unseen in fit; known "
                f"classes: {classes.tolist()}"
            )
        return index.astype(np.int64)


class CrossEntropyTargets(ClassifierTargets):
    """The classifiers of the cross-entropy loss: two classes have one output and the
    logistic loss (sigmoid), K > 2 classes K outputs and the softmax cross-entropy."""

    def _encode_targets(self, y: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
        index = self._label_indices(y, fitted["classes_"])
        if len(fitted["classes_"]) == 2:
            return index.astype(np.float64).reshape(-1, 1)
        return index

    def _sample_loss(self, fitted: dict[str, Any]) -> Callable[[Tensor, Tensor], Tensor]:
        if len(fitted["classes_"]) == 2:

            def logistic(prediction: Tensor, target: Tensor) -> Tensor:
                return F.binary_cross_entropy_with_logits(
                    prediction, target, reduction="none"
                ).reshape(-1)

            return logistic

        def multinomial(prediction: Tensor, target: Tensor) -> Tensor:
            return F.cross_entropy(prediction, target.reshape(-1).long(), reduction="none")

        return multinomial

    def _mean_loss(self, fitted: dict[str, Any]) -> Callable[[Tensor, Tensor], Tensor]:
        if len(fitted["classes_"]) == 2:
            return F.binary_cross_entropy_with_logits
        return F.cross_entropy

    @staticmethod
    def _probabilities(scores: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes) from the scores of :meth:`_scores`."""
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The log of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))  # type: ignore[attr-defined]


class RegressorTargets:
    """Target handling of the regressors: numeric y of shape (n,) or (n, k)."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.target_tags.multi_output = True
        return tags

    def _y_args(self) -> dict[str, Any]:
        return {"y_numeric": True, "multi_output": True}

    def _validate_targets(
        self,
        y: Any,
        *,
        first: bool,
        classes: Any,
        partial: bool = False,
        weights: np.ndarray | None = None,
    ) -> dict[str, Any]:
        y = np.asarray(y)
        k = 1 if y.ndim == 1 else y.shape[1]
        if first:
            return {"_multi_output": y.ndim == 2, "n_outputs_": k}
        if (y.ndim == 2) != self._multi_output or k != self.n_outputs_:
            raise ValueError(
                f"y has shape {y.shape}, but this model was fitted to {self.n_outputs_} "
                f"target(s) given as {'2-D' if self._multi_output else '1-D'} y"
            )
        return {"_multi_output": self._multi_output, "n_outputs_": k}

    def _encode_targets(self, y: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise ValueError(f"y must be numeric for a regressor, got dtype {y.dtype}")
        y = y.reshape(len(y), -1).astype(np.float64)
        if y.shape[1] != fitted["n_outputs_"]:
            raise ValueError(
                f"y has {y.shape[1]} target column(s), the model {fitted['n_outputs_']}"
            )
        if not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinity")
        return y

    def _n_outputs(self, fitted: dict[str, Any]) -> int:
        return fitted["n_outputs_"]
