"""The method names ``minimize``, ``fit``, the estimators and the CLI accept: recipes over
``descend.optim`` classes, and the one home of their default learning rates.

What a rule *is* (elementwise, needs a fixed batch, couples weight decay, second order) is
declared by its class: ``descend.optim.capabilities(method.optimizer)``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
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
        train_defaults: the same for ``fit`` and the estimators on a data set, where the
            usual values differ (Adam's 1e-3); ``None``: as ``defaults``.
        lipschitz_lr: where the gradient's Lipschitz constant :math:`L` is known (a linear
            model's smooth part), the default ``lr`` is this over :math:`L`: 1 for plain
            gradient descent (the step of ISTA); None: no such rule.
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
    lipschitz_lr: float | None = None

    def options(self) -> set[str]:
        """Option names the optimizer accepts (besides ``params``)."""
        sig = inspect.signature(self.optimizer.__init__)
        return {n for n in sig.parameters if n not in ("self", "params")}

    def default_options(self, *, training: bool = False) -> dict[str, Any]:
        """The options a user did not give: ``train_defaults`` for ``fit`` and the
        estimators (``training=True``), else ``defaults`` (for ``minimize``)."""
        if training and self.train_defaults is not None:
            return self.train_defaults
        return self.defaults

    def default_lr(self, *, training: bool = False, lipschitz: float | None = None) -> float | None:
        """The learning rate a run starts from when the user gives none.

        ``training``: for ``fit`` and the estimators rather than ``minimize``.
        ``lipschitz``: the gradient's Lipschitz constant :math:`L` where it is known; a
        method with ``lipschitz_lr`` then defaults to ``lipschitz_lr / L``. Otherwise the
        table's rate, or the optimizer class's own default; None for a method without a
        learning rate (``trust-region``).
        """
        if lipschitz is not None and self.lipschitz_lr is not None:
            return self.lipschitz_lr / lipschitz
        options = self.default_options(training=training)
        if "lr" in options:
            return float(options["lr"])
        lr = inspect.signature(self.optimizer.__init__).parameters.get("lr")
        return None if lr is None else float(lr.default)

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
        kwargs = {**self.default_options(training=training), **options, **self.fixed}
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


def _first_order(
    name: str, cls: Any, summary: str, defaults: dict[str, Any], train: dict[str, Any], **kw: Any
) -> None:
    """A fixed-step rule: ``defaults`` for ``minimize``, ``train`` for ``fit``."""
    register(Method(name, cls, summary, defaults=defaults, train_defaults=train, **kw))


def _line_search(name: str, cls: Any, summary: str, max_iter: int, **kw: Any) -> None:
    """A method whose every step is a sufficient decrease: SciPy's ftol, patience 1."""
    register(
        Method(
            name,
            cls,
            summary,
            max_iter=max_iter,
            patience=1,
            ftol=2.2e-9,
            **kw,
        )
    )


# -- fixed-step first-order rules: minimize's defaults are tuned on the standard problems
# (descend.problems); fit's are the values practitioners start a network with
_first_order(
    "gd",
    optim.SGD,
    "gradient descent, fixed learning rate",
    {"lr": 1e-3},
    {"lr": 1e-2},
    patience=1,
    lipschitz_lr=1.0,
)
_first_order(
    "momentum",
    optim.SGD,
    "heavy-ball momentum (Polyak)",
    {"lr": 1e-3, "momentum": 0.9},
    {"lr": 1e-2, "momentum": 0.9},
)
_first_order(
    "nesterov",
    optim.SGD,
    "Nesterov accelerated gradient",
    {"lr": 1e-3, "momentum": 0.9},
    {"lr": 1e-2, "momentum": 0.9},
    fixed={"nesterov": True},
)
_first_order(
    "adagrad",
    optim.Adagrad,
    "AdaGrad: steps shrink with summed squared gradients",
    {"lr": 0.5},
    {"lr": 1e-2},
)
_first_order(
    "rmsprop",
    optim.RMSprop,
    "RMSprop: steps over a running RMS of the gradient",
    {"lr": 1e-3},
    {"lr": 1e-3},
)
_first_order("adam", optim.Adam, "Adam: adaptive moments", {"lr": 3e-2}, {"lr": 1e-3})
_first_order(
    "adamw",
    optim.AdamW,
    "AdamW: Adam with decoupled weight decay",
    {"lr": 3e-2, "weight_decay": 1e-2},
    {"lr": 1e-3, "weight_decay": 1e-2},
)
_first_order(
    "amsgrad",
    optim.Adam,
    "AMSGrad: Adam with the maximum of past second moments",
    {"lr": 3e-2},
    {"lr": 1e-3},
    fixed={"amsgrad": True},
)
# the rest of torch.optim's elementwise rules: minimize's rates from a grid run on
# rosenbrock, himmelblau, booth and beale; fit's are torch's defaults
_first_order(
    "nadam",
    optim.NAdam,
    "NAdam: Adam with Nesterov momentum",
    {"lr": 3e-2},
    {"lr": 2e-3},
)
_first_order(
    "radam",
    optim.RAdam,
    "RAdam: Adam with a rectified adaptive rate (momentum SGD while it warms up)",
    {"lr": 3e-2},
    {"lr": 1e-3},
)
_first_order(
    "adamax",
    optim.Adamax,
    "Adamax: Adam over the infinity norm of past gradients",
    {"lr": 0.1},
    {"lr": 2e-3},
)
_first_order(
    "adadelta",
    optim.Adadelta,
    "Adadelta: steps as the RMS of past steps over the RMS of past gradients",
    {"lr": 10.0},
    {"lr": 1.0},
)
_first_order(
    "rprop",
    optim.Rprop,
    "Rprop: per-coordinate step sizes adapted by gradient signs (full batch)",
    {"lr": 1e-2},
    {"lr": 1e-2},
)
_first_order(
    "asgd",
    optim.ASGD,
    "ASGD: SGD with a decaying rate; the Polyak-Ruppert average is in its state (ax)",
    {"lr": 1e-3},
    {"lr": 1e-2},
)
_first_order(
    "adafactor",
    optim.Adafactor,
    "Adafactor: factored second moment, relative step size, clipped update",
    {"lr": 0.1},
    {"lr": 1e-2},
)
# beyond torch.optim: the same grid for minimize; fit's are the authors' defaults
_first_order(
    "lion",
    optim.Lion,
    "Lion: sign of interpolated momentum, the same step size in every coordinate",
    {"lr": 1e-2},
    {"lr": 1e-4},
)
_first_order(
    "adopt",
    optim.ADOPT,
    "ADOPT: Adam normalizing by past second moments only, with clipping",
    {"lr": 0.1},
    {"lr": 1e-3},
)
_first_order(
    "yogi",
    optim.Yogi,
    "Yogi: Adam with an additive second-moment update that cannot forget large gradients",
    {"lr": 0.1},
    {"lr": 1e-2},
)
# layer-wise trust ratios for large batches: the step is a fraction of each tensor's norm,
# so minimize's rates make it 1% of the norm; fit's are the papers' (LARS at lr 1 with
# trust coefficient 1e-3, LAMB's 1e-3)
_first_order(
    "lars",
    optim.LARS,
    "LARS: momentum SGD with a layer-wise trust ratio (large batches)",
    {"lr": 1.0},
    {"lr": 1.0},
)
_first_order(
    "lamb",
    optim.LAMB,
    "LAMB: Adam with a layer-wise trust ratio (large batches)",
    {"lr": 1e-2},
    {"lr": 1e-3},
)
_first_order(
    "schedule-free-sgd",
    optim.ScheduleFreeSGD,
    "Schedule-Free SGD: interpolation and averaging instead of momentum and a schedule",
    {"lr": 3e-3},
    {"lr": 1.0},
)
_first_order(
    "schedule-free-adamw",
    optim.ScheduleFreeAdamW,
    "Schedule-Free AdamW: Adam's direction with schedule-free averaging",
    {"lr": 0.1},
    {"lr": 2.5e-3},
)
_first_order(
    "prodigy",
    optim.Prodigy,
    "Prodigy: Adam with its step size estimated on the fly (lr stays 1)",
    {"lr": 1.0},
    {"lr": 1.0},
)

# -- quasi-Newton and conjugate gradient: one iteration per step, a strong Wolfe line search.
# max_iter as SciPy's L-BFGS-B (15000); BFGS and CG: SciPy uses 200 n, we fix a number.
_line_search(
    "lbfgs",
    optim.LBFGS,
    "L-BFGS: limited-memory quasi-Newton (m = 10), strong Wolfe line search",
    15_000,
    fixed={"max_iter": 1},
    defaults={"history_size": 10, "tolerance_grad": 0.0, "tolerance_change": 0.0},
)
_line_search(
    "bfgs", optim.BFGS, "BFGS: dense inverse-Hessian quasi-Newton, strong Wolfe line search", 2_000
)
_line_search(
    "cg",
    optim.ConjugateGradient,
    "nonlinear conjugate gradient (PR+), strong Wolfe line search (c2 = 0.1)",
    10_000,
)

# -- Newton and trust region: exact Hessian-vector products from the objective. SciPy's
# Newton-CG and trust-ncg default to 200 n iterations; these converge in tens: 1000.
_line_search(
    "newton",
    optim.Newton,
    "Newton: dense Hessian, modified Cholesky, strong Wolfe line search",
    1_000,
    fixed={"mode": "exact"},
)
_line_search(
    "newton-cg",
    optim.Newton,
    "Newton-CG: truncated CG on Hessian-vector products, strong Wolfe line search",
    1_000,
    fixed={"mode": "cg"},
)
_line_search(
    "trust-region",
    optim.TrustRegion,
    "trust-region Newton-CG (Steihaug-Toint) on Hessian-vector products",
    1_000,
)
