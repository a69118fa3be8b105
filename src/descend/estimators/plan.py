r"""How an estimator's fit will run: the optimizer, the batch size, the penalties and the
stopping rules, decided from the estimator's parameters and what the rule declares about
itself (:func:`descend.optim.capabilities`); no rule is listed here by name.

* **the optimizer** (:func:`plan_optimizer`): a method name of ``descend.METHODS`` (its
  training defaults from the method table), an optimizer class, an instance (its class and
  hyperparameters, rebuilt over the model's parameters) or a factory ``params ->
  optimizer`` (known only once built: :func:`check_built`);
* **the batch size** (:func:`resolve_batch_size`): ``"full"`` or rows per step; a rule
  that re-evaluates its closure at trial points (``needs_fixed_batch``) runs on the full
  batch only;
* **the L2 term** (:func:`build_optimizer`): on mini-batches, a rule whose
  ``weight_decay`` is the gradient :math:`\lambda w` of :math:`\frac\lambda2\|w\|^2`
  (``couples_weight_decay``) takes it as that weight decay on the weights (one fused update
  rather than an autograd term at every step); otherwise ``fit``'s penalty adds it;
* **stopping** (:func:`stopping_rules`): the gradient norm on the full batch (the proximal
  gradient mapping when an L1 term is present, which the descent loop measures for a
  proximal optimizer), the epoch loss or a held-out loss on mini-batches.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from descend.callbacks import EarlyStopping
from descend.engine.stopping import StoppingCriteria
from descend.methods import METHODS, Method, get_method
from descend.optim import Capabilities, NaturalGradient, capabilities

#: how far fit's steps may run when only epochs bound them
NO_STEP_LIMIT = 2**62


@dataclass(frozen=True)
class OptimizerPlan:
    """The optimizer a fit will build, and what is known of it before it is built.

    Attributes:
        label: the method name, or the class or factory name.
        make: ``(params or groups, options) -> optimizer``.
        options: the hyperparameters to build with (the user's; a method's defaults are
            added by the method table).
        capabilities: the rule's, or None for a factory (known once built).
        method: the method of the table, when given by name.
        user_decay: the user gave a ``weight_decay`` of their own (0 included: fit's
            penalty term then adds the L2 gradient).
    """

    label: str
    make: Callable[[list[Any], dict[str, Any]], torch.optim.Optimizer]
    options: dict[str, Any] = field(default_factory=dict)
    capabilities: Capabilities | None = None
    method: Method | None = None
    user_decay: bool = False

    def build(self, params: list[Any], lr: float | None = None) -> torch.optim.Optimizer:
        """The optimizer over ``params`` (tensors or groups); ``lr`` overrides the plan's."""
        options = self.options if lr is None else {**self.options, "lr": lr}
        return self.make(params, options)

    @property
    def needs_fixed_batch(self) -> bool:
        return self.capabilities is not None and self.capabilities.needs_fixed_batch


def plan_optimizer(
    spec: Any, *, method: Callable[[], str], lr: float | None, options: dict[str, Any]
) -> OptimizerPlan:
    """The plan for the estimator's ``optimizer`` parameter.

    Args:
        spec: ``"auto"``, a method name, an optimizer class or instance, or a factory.
        method: the method name of ``"auto"`` (called only then).
        lr: the user's learning rate (None: the method's or class's default).
        options: the user's ``optimizer_params``.
    """
    options = dict(options)
    if lr is not None:
        options["lr"] = lr
    decay = "weight_decay" in options
    if isinstance(spec, str):
        name = method() if spec == "auto" else spec
        try:
            found = get_method(name)
        except ValueError:
            raise ValueError(
                f"optimizer={spec!r} is not a descend method; valid: 'auto', "
                f"{', '.join(repr(m) for m in METHODS)}, an optimizer class or instance, "
                "or a factory params -> optimizer"
            ) from None
        return OptimizerPlan(
            found.name,
            lambda params, opts: found.build(params, opts, training=True),
            options,
            capabilities(found.optimizer),
            found,
            decay,
        )
    if isinstance(spec, torch.optim.Optimizer) or (
        isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer)
    ):
        cls = spec if isinstance(spec, type) else type(spec)
        reject_natural_gradient(cls)
        kwargs: dict[str, Any] = {}
        if not isinstance(spec, type):
            accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
            kwargs = {k: v for k, v in spec.defaults.items() if k in accepted}
        kwargs.update(options)
        return OptimizerPlan(
            cls.__name__,
            lambda params, opts: cls(params, **opts),
            kwargs,
            capabilities(cls),
            None,
            "weight_decay" in kwargs,
        )
    if callable(spec):

        def make(params: list[Any], opts: dict[str, Any]) -> torch.optim.Optimizer:
            opt = spec(params)
            if not isinstance(opt, torch.optim.Optimizer):
                raise TypeError(
                    "optimizer factory must return a torch.optim.Optimizer, got "
                    f"{type(opt).__name__}"
                )
            reject_natural_gradient(type(opt))
            return opt

        return OptimizerPlan(getattr(spec, "__name__", type(spec).__name__), make)
    raise TypeError(
        f"optimizer must be 'auto', a method name, an optimizer class or instance, or a "
        f"factory params -> optimizer; got {type(spec).__name__}"
    )


def reject_natural_gradient(cls: type) -> None:
    """NaturalGradient's closure returns per-sample losses, which fit does not give."""
    if issubclass(cls, NaturalGradient):
        raise ValueError(
            "optimizer=NaturalGradient needs a closure returning per-sample losses, which "
            "descend.fit does not give; use optimizer='newton' (for generalized linear "
            "models the model Fisher is the Hessian) or drive NaturalGradient directly"
        )


def resolve_batch_size(
    requested: int | str, plan: OptimizerPlan, n: int, *, auto_full: bool, auto_size: int
) -> int | str:
    """``"full"`` or the rows per step, for ``batch_size=requested`` on ``n`` rows.

    ``"auto"`` is the full batch for a rule that needs a fixed batch or when ``auto_full``
    (proximal gradient on a convex model), else ``min(auto_size, n)``. A rule that needs a
    fixed batch refuses fewer than ``n`` rows.
    """
    if requested == "full":
        return "full"
    if requested == "auto":
        return "full" if plan.needs_fixed_batch or auto_full else min(auto_size, n)
    size = int(requested)
    if plan.needs_fixed_batch:
        if size >= n:
            return "full"
        raise ValueError(
            f"optimizer={plan.label!r} searches along a line on one batch and needs "
            f"batch_size='full', got batch_size={size}"
        )
    return size


def check_built(
    optimizer: torch.optim.Optimizer, batch_size: int | str, requested: int | str
) -> int | str:
    """The batch size for a factory's optimizer, known only now: the full batch for a rule
    that needs a fixed batch (an error if the user asked for mini-batches)."""
    if batch_size == "full" or not capabilities(optimizer).needs_fixed_batch:
        return batch_size
    if requested != "auto":
        raise ValueError(
            f"the optimizer factory built {type(optimizer).__name__}, which searches along a "
            f"line on one batch and needs batch_size='full', got batch_size={batch_size}"
        )
    return "full"


def build_optimizer(
    plan: OptimizerPlan,
    module: nn.Module,
    *,
    batch_size: int | str,
    l2: float,
    lr: float | None = None,
) -> tuple[torch.optim.Optimizer, float]:
    """The optimizer over the module's trainable parameters, and the L2 strength left for
    ``fit``'s penalty term: 0 when the rule took it as coupled weight decay on the weights
    (mini-batches only; biases are never penalized)."""
    named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    coupled = plan.capabilities is not None and plan.capabilities.couples_weight_decay
    if batch_size != "full" and l2 > 0 and coupled and not plan.user_decay:
        # the same L2 gradient as fit's penalty term, added by the optimizer to the
        # weights' gradients: no autograd graph for it at every step
        groups: list[dict[str, Any]] = [
            {"params": [p for name, p in named if not name.endswith("bias")], "weight_decay": l2},
            {"params": [p for name, p in named if name.endswith("bias")]},
        ]
        return plan.build([g for g in groups if g["params"]], lr), 0.0
    params: list[Tensor] = [p for _, p in named]
    return plan.build(params, lr), l2


class EpochEarlyStopping(EarlyStopping):
    """EarlyStopping that checks at epoch ends only, and says so: fit then builds no
    intermediate result for it after every step."""

    def on_iteration(self, nit: int) -> bool:
        return False


@dataclass(frozen=True)
class StoppingRules:
    """What ends a fit: ``epochs``, fit's ``stopping`` criteria, an early-stopping
    callback, and the ``validation`` argument of fit (data, or a fraction to hold out)."""

    epochs: int
    stopping: StoppingCriteria | None
    early_stopping: EarlyStopping | None
    validation: Any


def stopping_rules(
    *,
    partial: bool,
    batch_size: int | str,
    max_epochs: int,
    tol: float,
    early_stopping: bool,
    n_iter_no_change: int,
    validation: Any,
    validation_fraction: float,
) -> StoppingRules:
    """The stopping rules of scikit-learn's contract, as fit's arguments.

    * ``partial_fit``: one epoch.
    * full batch: the gradient norm at most ``tol`` (for a proximal optimizer the descent
      loop measures the proximal gradient mapping instead), within ``max_epochs``.
    * mini-batches: the epoch loss (with ``early_stopping``, the loss on held-out data,
      keeping the best weights) failing to improve by ``tol`` for ``n_iter_no_change``
      epochs.
    """
    if partial:
        return StoppingRules(1, None, None, validation)
    if batch_size == "full" and not early_stopping:
        stopping = StoppingCriteria(max_iter=NO_STEP_LIMIT, gtol=tol, ftol=0.0)
        return StoppingRules(max_epochs, stopping, None, validation)
    if early_stopping:
        early = EpochEarlyStopping(
            monitor="val_loss",
            patience=n_iter_no_change,
            min_delta=tol,
            restore_best_weights=True,
        )
        held_out = float(validation_fraction) if validation is None else validation
        return StoppingRules(max_epochs, None, early, held_out)
    early = EpochEarlyStopping(
        monitor="loss", patience=n_iter_no_change, min_delta=tol, restore_best_weights=False
    )
    return StoppingRules(max_epochs, None, early, validation)
