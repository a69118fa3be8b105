r"""The contract every descend estimator shares: parameters, validation, and one
training routine.

An estimator is a torch module, a per-sample loss and a penalty; training is one call of
:func:`descend.train.fit.fit` (the descent loop fed by batches), so every update rule comes
from ``descend.optim`` and none is written here. This module turns scikit-learn's contract
into that call; :mod:`descend.estimators.plan` decides how the fit runs,
:mod:`descend.estimators.targets` handles the targets and :mod:`descend.estimators.arrays`
the arrays:

* **validation at the edge**: ``sklearn.utils.validation.validate_data`` for ``X`` and
  ``y`` (array-likes, pandas frames, feature names), ``_check_sample_weight`` for the
  weights, ``_parameter_constraints`` for the hyperparameters;
* **the objective**: :math:`\frac{\sum_i s_i \ell_i}{\sum_i s_i} + \alpha R(w)` with
  sample weights :math:`s_i` (1 when not given), in scikit-learn's SGD convention
  (:math:`R = \frac12\|w\|_2^2` for ``l2``, :math:`\|w\|_1` for ``l1``,
  :math:`\rho\|w\|_1 + \frac{1-\rho}{2}\|w\|_2^2` for ``elasticnet``, :math:`\rho` =
  ``l1_ratio``); intercepts and biases are never penalized. Weights are rescaled to mean 1,
  so a mini-batch mean of :math:`s_i \ell_i` estimates the weighted mean without bias,
  and a weight of ``k`` is the same as repeating a row ``k`` times. The L1 term is a
  proximal step after each update (:class:`descend.optim.ProximalL1`, which ``fit``
  builds from ``l1``); the L2 term reaches the gradient through fit's penalty or, on
  mini-batches, as the optimizer's coupled weight decay;
* **the method**: ``optimizer="auto"`` picks full-batch L-BFGS for smooth convex models,
  full-batch proximal gradient (``"gd"`` with step :math:`1/L`,
  :func:`descend.optim.step_size.lipschitz_constant`) when an L1 term is present, and
  mini-batch Adam for networks and non-smooth losses; any name of ``descend.METHODS``
  (with the method table's training defaults), an optimizer class, an optimizer instance
  (its class and hyperparameters, rebuilt over the model's parameters) or a factory
  ``params -> optimizer`` works too;
* **stopping**: on the full batch, the gradient norm :math:`\|\nabla F\|_2 \le` ``tol``
  (with an L1 term, the norm of the proximal gradient mapping
  :math:`\|w_k - w_{k+1}\|_2/\eta \le` ``tol``, measured by the descent loop for a proximal
  optimizer); on mini-batches, the epoch loss failing to improve by ``tol`` for
  ``n_iter_no_change`` epochs (with ``early_stopping``, the loss on a held-out
  ``validation_fraction``, and the best weights are kept). Running out of ``max_epochs``
  first, or a line search that finds no lower loss, issues a ``ConvergenceWarning``;
* **atomic fits**: a fit that raises leaves the estimator as it was (no fitted attributes
  after a failed first fit, the previous model after a failed refit);
* **determinism**: ``random_state`` seeds every draw (initialization, order of rows,
  validation split, dropout) through fit's seed; global RNGs are untouched.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from sklearn.base import BaseEstimator, is_classifier
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

from descend.callbacks import Checkpoint
from descend.distributed.objective import (
    ShardedLoss,
    ShardedModule,
    process_group,
    row_share,
    totals,
)
from descend.estimators.arrays import (
    FLOAT_DTYPES,
    as_tensor,
    pack_targets,
    torch_dtype,
    validated,
)
from descend.estimators.plan import (
    OptimizerPlan,
    build_optimizer,
    check_built,
    plan_optimizer,
    resolve_batch_size,
    stopping_rules,
)
from descend.estimators.rank_rows import rows_of_all_ranks
from descend.monitors import OverfittingMonitor
from descend.optim.step_size import lipschitz_constant
from descend.result import Status
from descend.train.checkpoint import load_checkpoint
from descend.train.fit import fit
from descend.validation import check_device

#: an estimator's own class, for methods that return ``self``
Estimator = TypeVar("Estimator", bound="DescendEstimator")


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

    def _penalty(self) -> tuple[float, float]:
        """``(l1, l2)`` strengths of fit's penalty on the weights."""
        return 0.0, 0.0

    def _curvature(self, fitted: dict[str, Any]) -> float:
        """An upper bound of the loss's second derivative in the model's output (for the
        step 1/L of proximal gradient, :func:`~descend.optim.step_size.lipschitz_constant`)."""
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
            >>> from descend.estimators import LinearRegression
            >>> X_test, y_test = X[48:], y[48:, 0]
            >>> reg = LinearRegression().fit(X[:48], y[:48, 0])
            >>> loss = reg.data_loss(X_test, y_test)  # log loss, squared error, hinge, ...
            >>> bool(np.isclose(loss, np.mean((reg.predict(X_test) - y_test.numpy()) ** 2) / 2))
            True
        """
        X = self._check_X(X)
        y = check_array(y, ensure_2d=False, dtype=None)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X and y have {X.shape[0]} and {y.shape[0]} rows; they must match")
        fitted = dict(vars(self))
        if y.ndim == 2 and y.shape[1] == 1 and not fitted.get("_multi_output", False):
            y = y.ravel()
        X, _ = self._encode_features(X, fitted, first=False)
        target = pack_targets(self._encode_targets(y, fitted), np.ones(len(y)), self._torch_dtype_)
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

    def fit(
        self: Estimator,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        validation: Any = None,
        distributed: Any = False,
        checkpoint: Any = None,
        resume: bool = False,
    ) -> Estimator:
        """Train on ``X`` (n, d) and ``y`` from a fresh initialization; returns ``self``.

        ``y`` holds labels (n,) for a classifier, values (n,) or (n, k) for a regressor.
        ``sample_weight`` (n,) >= 0 weighs rows (a weight k counts as k copies);
        ``validation=(X_val, y_val)`` is scored after every epoch
        (``validation_loss_curve_``) and, with ``early_stopping``, decides the stop.

        ``distributed=True`` (or a ``torch.distributed`` process group): ``X, y`` are this
        rank's rows of a data set spread over the ranks, and every rank calls ``fit``
        alike. On the full batch the objective, its gradient and Hessian-vector products
        are summed over the ranks (:mod:`descend.distributed.objective`), so ``lbfgs``,
        ``bfgs``, ``newton-cg`` and ``trust-region`` work too; on mini-batches (the default
        process group only) every rank draws the same global batches from all ranks' rows,
        gathered in rank order, and trains on its share of each with the gradients
        all-reduced (``descend.fit``'s data parallelism). Either way every rank ends with
        the model of one process fitting every row. Pass ``sample_weight`` and
        ``validation`` on every rank or on none (all ranks' held-out rows are scored);
        ``early_stopping``, and batch normalization on mini-batches, are refused.

        ``checkpoint`` (a file path): the training state is saved there after every epoch
        (on rank 0 alone when distributed); with ``resume=True`` a fit continues from that
        file when it exists and ends bit-identical to one never interrupted.

        Example:
            >>> from descend.estimators import LinearRegression
            >>> reg = LinearRegression(random_state=0).fit(X, y[:, 0], checkpoint="run.pt")
            >>> again = LinearRegression(random_state=0)
            >>> again = again.fit(X, y[:, 0], checkpoint="run.pt", resume=True)  # at its end
            >>> bool((again.coef_ == reg.coef_).all())
            True
        """
        return self._train(
            X,
            y,
            sample_weight,
            validation=validation,
            distributed=distributed,
            checkpoint=checkpoint,
            resume=resume,
        )

    def _train(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        partial: bool = False,
        classes: Any = None,
        validation: Any = None,
        distributed: Any = False,
        checkpoint: Any = None,
        resume: bool = False,
    ) -> DescendEstimator:
        self._validate_params()
        sharded, group = process_group(distributed)
        if sharded and resume:  # rank 0 may still be writing the file the ranks will read
            dist.barrier(group=group)
        resume_from = _resume_from(checkpoint, resume)
        if sharded:
            self._check_distributed()
            if is_classifier(self):  # every rank encodes the labels of all ranks alike
                labels: list[Any] = [None] * dist.get_world_size(group)
                dist.all_gather_object(labels, np.unique(np.asarray(y)), group=group)
                classes = np.unique(np.concatenate(labels))
            # every rank scores all held-out rows, with the same weights: the same scores
            validation = rows_of_all_ranks("validation", validation, group, pair=True)
        first = not (partial and self._is_fitted())
        X, y, weights, fitted = self._validated_data(
            X, y, sample_weight, first=first, partial=partial, classes=classes,
            group=group if sharded else False,
        )  # fmt: skip
        dtype = fitted["_torch_dtype_"]
        seed = self._seed(partial)
        rows = X.shape[0]
        if sharded:
            seeds = [seed]  # random_state=None draws on each rank: rank 0's draw for all
            dist.broadcast_object_list(seeds, group=group, group_src=0)
            seed, rows = seeds[0], int(totals([float(rows)], group)[0])
        l1, l2 = self._penalty()
        plan = plan_optimizer(
            self.optimizer,
            method=lambda: self._default_method(partial=partial, l1=l1, fitted=fitted),
            lr=self.lr,
            options=self.optimizer_params or {},
        )
        if l1 > 0 and plan.needs_fixed_batch:
            raise ValueError(
                f"optimizer={plan.label!r} is a line-search method for smooth objectives and "
                "cannot take an L1 penalty (applied by a proximal step); use "
                "optimizer='auto' (proximal gradient), 'gd', 'adam' or another first-order method"
            )
        batch_size = resolve_batch_size(
            self.batch_size,
            plan,
            rows,
            auto_full=(
                self.optimizer == "auto" and l1 > 0 and not partial and self._full_batch_proximal
            ),
            auto_size=self._auto_batch_size,
        )
        # mini-batches over all ranks' rows: fit's data parallelism, on every row
        data_parallel = sharded and batch_size != "full"
        if data_parallel:
            self._check_data_parallel(group)
            X = rows_of_all_ranks("X", X, group)
            y = rows_of_all_ranks("y", y, group)
            weights = rows_of_all_ranks("sample_weight", weights, group)
            sharded = False

        Xt = as_tensor(X, dtype)
        loss = self._loss(fitted, weighted=weights is not None)
        Yt = pack_targets(self._encode_targets(y, fitted), weights, dtype)
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
        lr = None
        if l1 > 0 and batch_size == "full" and self.lr is None:
            X_all, weights_all = Xt, weights
            if sharded:  # every rank the step 1/L of all rows: one step, one model
                X_all = as_tensor(rows_of_all_ranks("X", X, group), dtype)
                weights_all = rows_of_all_ranks("sample_weight", weights, group)
            lr = self._proximal_lr(plan, X_all, weights_all, l2, fitted)
        optimizer, fit_l2 = build_optimizer(plan, module, batch_size=batch_size, l2=l2, lr=lr)
        if plan.capabilities is None:
            batch_size = check_built(optimizer, batch_size, self.batch_size)
        trained: nn.Module = module
        if data_parallel:
            self._check_data_parallel_module(module)
        if sharded:
            trained = ShardedModule(module, group)
            loss = ShardedLoss(loss, row_share(X.shape[0], group), group)
        if not first:
            self._continue_optimizer(optimizer, plan.label, module)

        rules = stopping_rules(
            partial=partial,
            batch_size=batch_size,
            max_epochs=self.max_epochs,
            tol=self.tol,
            early_stopping=self.early_stopping,
            n_iter_no_change=self.n_iter_no_change,
            validation=val,
            validation_fraction=self.validation_fraction,
        )
        device = self._device()
        try:
            result = fit(
                trained,
                loss,
                (Xt, Yt),
                optimizer=optimizer,
                batch_size=batch_size,
                epochs=rules.epochs,
                shuffle=True,
                seed=seed,
                l1=l1,
                l2=fit_l2,
                validation=rules.validation,
                early_stopping=rules.early_stopping,
                # an estimator's fit stays lean: of the health checks only the one that
                # reads epochs, and only with held-out rows to read
                monitors=None if rules.validation is None else [OverfittingMonitor()],
                device=device,
                progress=bool(self.verbose),
                stopping=rules.stopping,
                # the estimator shards by its own distributed= (full batch: ShardedModule;
                # mini-batches: fit's data parallelism), never by fit's detection of a
                # process group
                distributed=data_parallel,
                # fit writes on rank 0 alone when it runs data-parallel; sharded full-batch
                # ranks run fit each on its own, so the others hold a checkpoint that never
                # writes (their callbacks still those of the file rank 0 writes)
                checkpoint=(
                    Checkpoint(checkpoint, every_epochs=None, save_last=False)
                    if checkpoint is not None and sharded and dist.get_rank(group) != 0
                    else checkpoint
                ),
                resume=_rank_state(resume_from, X.shape[0], group) if sharded else resume_from,
            )
        finally:
            module.to("cpu")
        self._warn(
            result,
            partial=partial,
            gradient_test=rules.stopping is not None,
            proximal=l1 > 0,
            dtype=dtype,
        )

        fitted.update(self._run_attributes(result, first=first))
        fitted.update(_module=module.eval(), _optimizer=optimizer, _optimizer_label=plan.label)
        fitted.update(self._fitted_from_module(module, fitted))
        self._commit(fitted)
        return self

    def _run_attributes(self, result: Any, *, first: bool) -> dict[str, Any]:
        """The fitted attributes a run adds (a ``partial_fit`` continues the last ones):
        epochs, steps and evaluations, the final loss and the loss curves."""
        history = result.epoch_history
        curve = [float(v) for v in history["loss"]] if len(history) else []
        val_curve = [float(v) for v in history["val_loss"]] if result.has_validation else None
        if not first:
            curve = list(self.loss_curve_) + curve
            if val_curve is not None and getattr(self, "validation_loss_curve_", None) is not None:
                val_curve = list(self.validation_loss_curve_) + val_curve
        before = (lambda name: 0) if first else (lambda name: getattr(self, name, 0))
        return {
            "_fit_result": result,  # the last run, for run records (descend fit); not pickled
            "n_iter_": before("n_iter_") + result.epoch,
            "loss_": float(result.fun),
            "loss_curve_": curve,
            "validation_loss_curve_": val_curve,
            "t_": before("t_") + result.nit,
            "n_evaluations_": before("n_evaluations_") + result.nfev,
        }

    def _proximal_lr(
        self,
        plan: OptimizerPlan,
        X: Tensor,
        weights: np.ndarray | None,
        l2: float,
        fitted: dict[str, Any],
    ) -> float | None:
        """The method table's step for a known Lipschitz constant (gd: 1/L, ISTA's step),
        for full-batch proximal gradient on a linear model; None: the method's default."""
        method = plan.method
        if method is None or method.lipschitz_lr is None:
            return None
        L = lipschitz_constant(
            X,
            weights=None if weights is None else torch.from_numpy(weights),
            curvature=self._curvature(fitted),
            l2=l2,
            fit_intercept=getattr(self, "fit_intercept", False),
        )
        return method.default_lr(training=True, lipschitz=L)

    def _continue_optimizer(
        self, optimizer: torch.optim.Optimizer, label: str, module: nn.Module
    ) -> None:
        """Carry the optimizer's state (moments, step counts) over ``partial_fit`` calls,
        when the method and the parameters' shapes are those of the last call."""
        previous = getattr(self, "_optimizer", None)
        shapes = [p.shape for p in module.parameters() if p.requires_grad]
        if (
            previous is not None
            and getattr(self, "_optimizer_label", None) == label
            and shapes == [p.shape for p in self._module.parameters() if p.requires_grad]
        ):
            optimizer.load_state_dict(copy.deepcopy(previous.state_dict()))

    def _validated_data(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        *,
        first: bool,
        partial: bool,
        classes: Any,
        group: Any = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
        """``(X, y)`` checked and encoded, the sample weights rescaled to mean 1 (None when
        not given), and the fitted attributes the data defines (nothing is set on ``self``:
        a fit that fails later leaves the estimator as it was). With a process ``group``
        (None: the default one; False: one process), the mean is over all ranks' rows."""
        kwargs = self._validate_X()
        if first:
            # validate on a copy: validate_data records n_features_in_ on its estimator,
            # and nothing may change here until training has succeeded
            scratch = copy.copy(self)
            X, y = validated(scratch, X, y, reset=True, **kwargs, **self._y_args())
            names = getattr(scratch, "feature_names_in_", None)
            fitted: dict[str, Any] = {"n_features_in_": scratch.n_features_in_}
            fitted["feature_names_in_"] = names
        else:
            X, y = validated(self, X, y, reset=False, **kwargs, **self._y_args())
            fitted = {"n_features_in_": self.n_features_in_}
        n = X.shape[0]
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            total = float(weights.sum())
            if group is not False:
                n, total = totals([float(n), total], group)
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
        fitted["_torch_dtype_"] = self._dtype(X) if first else self._torch_dtype_
        return X, y, weights, fitted

    def _y_args(self) -> dict[str, Any]:
        return {}

    def _check_distributed(self) -> None:
        """What a distributed fit cannot do: early stopping holds out a share of each
        rank's own rows, so each rank would stop on its own."""
        if self.early_stopping:
            raise ValueError(
                "distributed=True cannot take early_stopping=True: each rank would hold out "
                "its own rows and stop on its own; fit without it (validation= is scored on "
                "all ranks' held-out rows)"
            )

    def _check_data_parallel(self, group: Any) -> None:
        """Mini-batch distributed fits run fit's data parallelism, over the default group."""
        if group is not None:
            raise ValueError(
                "distributed=<a ProcessGroup> trains on the full batch only (batch_size="
                "'full', or a line-search method such as 'lbfgs'); mini-batches train over "
                "the default process group: pass distributed=True"
            )

    def _check_data_parallel_module(self, module: nn.Module) -> None:
        """Batch normalization would normalize each rank's share of a batch by its own
        statistics, not the batch's: not the one-process model."""
        if any(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in module.modules()):
            raise ValueError(
                "distributed=True with mini-batches cannot train batch normalization (each "
                "rank would normalize its share of a batch by its own statistics); use "
                "batch_norm=False, or batch_size='full'"
            )

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
        return as_tensor(Xv, dtype), pack_targets(target, weights, dtype)

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
        return check_device(self.device if self.device is not None else "cpu")

    def _warn(
        self,
        result: Any,
        *,
        partial: bool,
        gradient_test: bool,
        proximal: bool,
        dtype: torch.dtype,
    ) -> None:
        status = result.status
        name = type(self).__name__
        if status == Status.MAX_ITER and not partial:
            measure = "proximal gradient mapping" if proximal else "gradient norm"
            what = (
                f"the {measure} is {result.grad_norm:.3g} > tol={self.tol:g}"
                if gradient_test
                else f"the loss still improved by more than tol={self.tol:g} within "
                f"n_iter_no_change={self.n_iter_no_change} epochs"
            )
            warnings.warn(
                f"{name} did not converge in max_epochs={self.max_epochs}: {what}; raise "
                "max_epochs or tol, or scale the features",
                ConvergenceWarning,
                stacklevel=4,
            )
        elif status == Status.LINE_SEARCH_FAILED:
            # the loop tests the gradient before each step: a search that then fails
            # started where the gradient norm was above tol
            precision = str(dtype).replace("torch.", "")
            warnings.warn(
                f"{name} stopped short ({status.value}): the gradient norm "
                f"{result.grad_norm:.3g} > tol={self.tol:g} where f stopped decreasing in "
                f"{precision}: {result.message} Loosen tol, or fit float64 data",
                ConvergenceWarning,
                stacklevel=4,
            )
        elif status in (Status.DIVERGED, Status.MAX_TIME):
            warnings.warn(
                f"{name} stopped short ({status.value}): {result.message}",
                ConvergenceWarning,
                stacklevel=4,
            )


def _resume_from(checkpoint: Any, resume: bool) -> str | None:
    """The checkpoint file a fit continues from: ``checkpoint`` when ``resume`` and that
    file exists (every rank reads it), else None (a fresh start)."""
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a file path, got {type(checkpoint).__name__}")
    if not resume:
        return None
    if checkpoint is None:
        raise ValueError("resume=True needs checkpoint= (the file to continue from)")
    return os.fspath(checkpoint) if os.path.isfile(checkpoint) else None


def _rank_state(path: str | None, rows: int, group: Any) -> Any:
    """What a rank of a sharded full-batch fit resumes from: rank 0's checkpoint, which is
    every rank's state (all-reduced values, the same bits) but for the count of the rank's
    own rows, which fit checks against the data it is given."""
    if path is None or dist.get_rank(group) == 0:
        return path
    state = load_checkpoint(path)
    state["config"]["num_rows"] = rows
    return state
