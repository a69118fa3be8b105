"""The method names ``minimize`` and the CLI accept: recipes over ``descend.optim`` classes."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from descend import optim


@dataclass(frozen=True)
class Method:
    """A named recipe: an optimizer class, the options that define the method, and defaults.

    Attributes:
        name: what users type (``"nesterov"``).
        optimizer: the ``descend.optim`` class that owns the update rule.
        fixed: options that make the method what it is (``nesterov=True``); a user
            cannot override them.
        defaults: options a user may override (``lr``), documented per method, tuned for
            ``minimize`` on functions of a vector.
        train_defaults: the same for ``fit`` on a data set, where the usual values differ
            (Adam's 1e-3); ``None``: as ``defaults``.
        summary: one line for tables and ``--help``.
        max_iter: default iteration budget.
        patience: default consecutive iterations ftol/xtol must hold.
        ftol: default relative-change tolerance: SciPy's 2.2e-9 suits line-search methods,
            whose every step is a sufficient decrease; fixed-step first-order methods make
            small steps by design, so they default to 1e-12 and let gtol decide.
    """

    name: str
    optimizer: type[torch.optim.Optimizer]
    summary: str
    fixed: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    train_defaults: dict[str, Any] | None = None
    max_iter: int = 10_000
    patience: int = 10
    ftol: float = 1e-12
    second_order: bool = False

    def options(self) -> set[str]:
        """Option names the optimizer accepts (besides ``params``)."""
        sig = inspect.signature(self.optimizer.__init__)
        return {n for n in sig.parameters if n not in ("self", "params")}

    def build(
        self, params: list[torch.Tensor], options: dict[str, Any], *, training: bool = False
    ) -> torch.optim.Optimizer:
        """The optimizer for ``params``; unknown or fixed options give a clear ValueError.

        ``training``: start from ``train_defaults`` (for ``fit``) rather than ``defaults``.
        """
        valid = self.options() - set(self.fixed)
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(
                f"method {self.name!r} does not take option(s) {', '.join(unknown)}; "
                f"valid options: {', '.join(sorted(valid))}"
            )
        base = self.train_defaults if training and self.train_defaults is not None else None
        kwargs = {**(self.defaults if base is None else base), **options, **self.fixed}
        return self.optimizer(params, **kwargs)


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the table (a later registration of the same name replaces it)."""
    METHODS[method.name] = method
    return method


def get_method(name: Any) -> Method:
    """The method called ``name``; a ValueError lists the valid names otherwise."""
    key = name.lower().replace("_", "-") if isinstance(name, str) else name
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[key]


def _first_order(name: str, cls: Callable[..., Any], summary: str, **kw: Any) -> None:
    register(Method(name=name, optimizer=cls, summary=summary, **kw))  # type: ignore[arg-type]


_first_order(
    "gd", optim.SGD, "gradient descent, fixed learning rate", defaults={"lr": 1e-3}, patience=1
)
_first_order(
    "momentum", optim.SGD, "heavy-ball momentum (Polyak)", defaults={"lr": 1e-3, "momentum": 0.9}
)
_first_order(
    "nesterov",
    optim.SGD,
    "Nesterov accelerated gradient",
    fixed={"nesterov": True},
    defaults={"lr": 1e-3, "momentum": 0.9},
)
_first_order(
    "adagrad",
    optim.Adagrad,
    "AdaGrad: steps shrink with summed squared gradients",
    defaults={"lr": 0.5},
)
_first_order(
    "rmsprop",
    optim.RMSprop,
    "RMSprop: steps over a running RMS of the gradient",
    defaults={"lr": 1e-3},
)
_first_order("adam", optim.Adam, "Adam: adaptive moments", defaults={"lr": 3e-2})
_first_order(
    "adamw",
    optim.AdamW,
    "AdamW: Adam with decoupled weight decay",
    defaults={"lr": 3e-2, "weight_decay": 1e-2},
)
_first_order(
    "amsgrad",
    optim.Adam,
    "AMSGrad: Adam with the maximum of past second moments",
    fixed={"amsgrad": True},
    defaults={"lr": 3e-2},
)


# -- quasi-Newton and conjugate gradient: one iteration per step, a strong Wolfe line search --
# max_iter as SciPy's L-BFGS-B (15000); BFGS and CG: SciPy uses 200 n, we fix a number.
register(
    Method(
        name="lbfgs",
        optimizer=optim.LBFGS,
        summary="L-BFGS: limited-memory quasi-Newton (m = 10), strong Wolfe line search",
        fixed={"max_iter": 1},
        defaults={"history_size": 10, "tolerance_grad": 0.0, "tolerance_change": 0.0},
        max_iter=15_000,
        patience=1,
        ftol=2.2e-9,
        second_order=True,
    )
)
register(
    Method(
        name="bfgs",
        optimizer=optim.BFGS,
        summary="BFGS: dense inverse-Hessian quasi-Newton, strong Wolfe line search",
        max_iter=2_000,
        patience=1,
        ftol=2.2e-9,
        second_order=True,
    )
)
register(
    Method(
        name="cg",
        optimizer=optim.ConjugateGradient,
        summary="nonlinear conjugate gradient (PR+), strong Wolfe line search (c2 = 0.1)",
        max_iter=10_000,
        patience=1,
        ftol=2.2e-9,
        second_order=True,
    )
)


# -- Newton and trust region: exact Hessian-vector products from the objective ---------------
# SciPy's Newton-CG and trust-ncg default to 200 n iterations; these converge in tens, so a
# fixed budget of 1000.
register(
    Method(
        name="newton",
        optimizer=optim.Newton,
        summary="Newton: dense Hessian, modified Cholesky, strong Wolfe line search",
        fixed={"mode": "exact"},
        max_iter=1_000,
        patience=1,
        ftol=2.2e-9,
        second_order=True,
    )
)
register(
    Method(
        name="newton-cg",
        optimizer=optim.Newton,
        summary="Newton-CG: truncated CG on Hessian-vector products, strong Wolfe line search",
        fixed={"mode": "cg"},
        max_iter=1_000,
        patience=1,
        ftol=2.2e-9,
        second_order=True,
    )
)
register(
    Method(
        name="trust-region",
        optimizer=optim.TrustRegion,
        summary="trust-region Newton-CG (Steihaug-Toint) on Hessian-vector products",
        max_iter=1_000,
        patience=1,
        ftol=2.2e-9,
        second_order=True,
    )
)


#: fit's defaults for the fixed-step methods: the values practitioners start a network with
for _name, _train in {
    "gd": {"lr": 1e-2},
    "momentum": {"lr": 1e-2, "momentum": 0.9},
    "nesterov": {"lr": 1e-2, "momentum": 0.9},
    "adagrad": {"lr": 1e-2},
    "rmsprop": {"lr": 1e-3},
    "adam": {"lr": 1e-3},
    "adamw": {"lr": 1e-3, "weight_decay": 1e-2},
    "amsgrad": {"lr": 1e-3},
}.items():
    METHODS[_name] = replace(METHODS[_name], train_defaults=_train)
