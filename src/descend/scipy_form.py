r"""SciPy's call form of ``minimize``, translated onto descend's methods and stopping rules.

``descend.minimize(fun, x0, "BFGS", args=(a,), tol=1e-8, options={"maxiter": 500})``
runs descend's ``bfgs`` and stops it by SciPy's rules for BFGS. SciPy's rules come with
SciPy's spelling of the name: ``"BFGS"``, ``"CG"`` and ``"Newton-CG"`` are SciPy's,
``"bfgs"``, ``"cg"`` and ``"newton-cg"`` descend's own (with descend's documented
defaults); ``"L-BFGS-B"``, ``"trust-ncg"`` and ``"trust-exact"``, which descend does not
otherwise have, are SciPy's in any case.

=============  ==============  ==========================================================
SciPy          descend         stopping (SciPy's defaults)
=============  ==============  ==========================================================
BFGS           bfgs            :math:`\|g\|_\infty \le` gtol (1e-5), nothing else;
                               maxiter 200 n
L-BFGS-B       lbfgs           :math:`(f_k - f_{k+1})/\max(|f_k|, |f_{k+1}|, 1) \le` ftol
                               (2.2e-9) or :math:`\|P(x - g) - x\|_\infty \le` gtol
                               (1e-5; the projected gradient, :math:`\|g\|_\infty`
                               without bounds); maxiter 15000, maxfun 15000 evaluations;
                               ``bounds=`` keeps x in the box (descend's projected
                               quasi-Newton, :mod:`descend.optim.lbfgs_bounds`)
CG             cg              :math:`\|g\|_\infty \le` gtol (1e-5); maxiter 200 n
Newton-CG      newton-cg       :math:`\tfrac1n \sum_i |s_i| \le` xtol (1e-5) (SciPy:
                               :math:`\|s\|_1 \le n \cdot` xtol), no gradient test;
                               maxiter 200 n
trust-ncg      trust-region    :math:`\|g\|_2 \le` gtol (1e-4); maxiter 200 n
trust-exact    trust-region    as trust-ncg; Steihaug-Toint CG solves the subproblem to
               (cg_rtol        a relative residual of 1e-10, so every step inside the
               1e-10)          region is the exact Newton step (SciPy: Moré-Sorensen;
                               the two differ only in steps on the region's boundary)
=============  ==============  ==========================================================

``tol`` sets what SciPy's ``minimize`` sets with it: ``gtol`` for BFGS, CG, trust-ncg
and trust-exact, ``ftol`` and ``gtol`` for L-BFGS-B, ``xtol`` for Newton-CG; an option
given in ``options`` wins over ``tol``. With descend's own method names ``tol`` is ``gtol``.

SciPy's options, by name (each method takes those SciPy's same method takes):

====================  =====================================================================
SciPy option          descend
====================  =====================================================================
maxiter               ``max_iter``
gtol                  ``gtol`` (on the norm ``norm``: ``inf``, SciPy's default, or 2)
norm                  the norm of the gtol test (``2`` or ``numpy.inf``; no other order)
ftol                  ``ftol`` (L-BFGS-B's relative reduction; patience 1)
xtol                  ``xtol`` (Newton-CG: mean absolute step)
xrtol                 ``xtol`` with descend's relative rule
                      :math:`\|s\|_2 \le` xtol :math:`\max(\|x\|_2, 1)` (SciPy's BFGS:
                      :math:`\|s\|_2 \le` xrtol (xrtol + :math:`\|x\|_2`))
maxfun                ``max_fev``: a budget of evaluations of f (status ``max_iter``)
maxcor                L-BFGS's ``history_size``
maxls                 the optimizer's ``max_eval`` (evaluations per line search)
c1, c2                the line search's ``c1``, ``c2``
initial_trust_radius  TrustRegion's ``initial_radius``
max_trust_radius      TrustRegion's ``max_radius``
eta                   TrustRegion's ``eta``
disp                  print SciPy's summary (message, f, iterations, evaluations) at the end
return_all            ``record=True``: every iterate in ``res.history["x"]``
====================  =====================================================================

``eps``, ``finite_diff_rel_step``, ``workers``, ``hess_inv0``, ``iprint`` and
``subproblem_maxiter`` are refused with the reason (descend differentiates by autodiff or
calls ``jac``; it never takes finite differences); any other name is refused with the
nearest valid one.

Example:
    >>> call = translate("BFGS", None, {"gtol": 1e-8}, {}, {}, n=2)
    >>> call.method, call.stopping["gtol"], call.stopping["gtol_norm"]
    ('bfgs', 1e-08, inf)
"""

from __future__ import annotations

import contextlib
import inspect
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descend.callbacks import Callback, as_callbacks
from descend.methods import METHODS, get_method
from descend.optim import BFGS
from descend.validation import check_int, check_non_negative, check_positive, nearest

#: descend's default gradient tolerance (``gtol=None`` in ``minimize``)
DEFAULT_GTOL = 1e-5

#: the stopping keywords of ``minimize`` (``StoppingCriteria``'s fields) that a caller may
#: give directly; ``None`` means "not given"
STOPPING_KEYWORDS = (
    "max_iter",
    "gtol",
    "ftol",
    "xtol",
    "patience",
    "max_time",
    "target",
    "divergence_factor",
)

_SCIPY_DIFF = (
    "descend differentiates fun by autodiff, or calls jac=; it takes no finite differences"
)

#: SciPy options descend knows and refuses, with the reason
_REFUSED = {
    "eps": _SCIPY_DIFF + ", so it has no step eps: drop it",
    "finite_diff_rel_step": _SCIPY_DIFF + ": drop finite_diff_rel_step",
    "workers": _SCIPY_DIFF + ", which is what SciPy's workers parallelize: drop workers",
    "hess_inv0": "descend's BFGS starts from the identity, rescaled after the first step "
    "(Nocedal & Wright eq. 6.20); drop hess_inv0",
    "iprint": "iprint is deprecated in SciPy; use disp=True",
    "subproblem_maxiter": "descend's trust-exact solves its subproblem by conjugate "
    "gradients; bound them with the optimizer option max_cg_iter= instead",
}

#: SciPy keywords of ``scipy.optimize.minimize`` itself that ``descend.minimize`` lacks
_SCIPY_KEYWORDS = {
    "hess": "descend computes Hessian(-vector) products of fun by autodiff; drop hess=",
    "hessp": "descend computes Hessian-vector products of fun by autodiff; drop hessp=",
    "constraints": "descend.minimize takes bounds= (boxes, the simplex; docs/bounds.md) but "
    "no general constraints",
}


@dataclass(frozen=True)
class ScipyMethod:
    """One of SciPy's methods as descend runs it.

    Attributes:
        name: SciPy's spelling.
        descend: descend's method (a name in ``descend.methods.METHODS``).
        options: the option names SciPy's method takes.
        tol: the options ``tol`` sets (as ``scipy.optimize.minimize`` does).
        gtol, gtol_norm, ftol, xtol, xtol_rule: SciPy's stopping rule for the method,
            in ``StoppingCriteria``'s terms (0: the test is off).
        max_iter: SciPy's iteration budget; ``None``: 200 times the number of variables.
        max_fev: SciPy's budget of function evaluations (``maxfun``), if it has one.
        fixed: optimizer options that make descend's method this one.
    """

    name: str
    descend: str
    options: tuple[str, ...]
    tol: tuple[str, ...]
    gtol: float = 1e-5
    gtol_norm: float = math.inf
    ftol: float = 0.0
    xtol: float = 0.0
    xtol_rule: str = "relative"
    max_iter: int | None = None
    max_fev: int | None = None
    fixed: dict[str, Any] = field(default_factory=dict)


_COMMON = ("maxiter", "disp", "return_all")
_FD = ("eps", "finite_diff_rel_step", "workers")
_TRUST = ("initial_trust_radius", "max_trust_radius", "eta", "gtol", *_COMMON)

#: SciPy's methods descend runs, by SciPy's spelling (options as in SciPy 1.17)
SCIPY_METHODS: dict[str, ScipyMethod] = {
    m.name: m
    for m in (
        ScipyMethod(
            "BFGS",
            "bfgs",
            ("gtol", "norm", "xrtol", "c1", "c2", "hess_inv0", *_COMMON, *_FD),
            tol=("gtol",),
        ),
        ScipyMethod(
            "L-BFGS-B",
            "lbfgs",
            ("ftol", "gtol", "maxfun", "maxcor", "maxls", "maxiter", "disp", "iprint", *_FD),
            tol=("ftol", "gtol"),
            ftol=2.2204460492503131e-09,
            max_iter=15_000,
            max_fev=15_000,
            fixed={"history_size": 10},
        ),
        ScipyMethod("CG", "cg", ("gtol", "norm", "c1", "c2", *_COMMON, *_FD), tol=("gtol",)),
        ScipyMethod(
            "Newton-CG",
            "newton-cg",
            ("xtol", "c1", "c2", *_COMMON, "eps", "workers"),
            tol=("xtol",),
            gtol=0.0,
            xtol=1e-5,
            xtol_rule="mean_abs",
        ),
        ScipyMethod(
            "trust-ncg",
            "trust-region",
            (*_TRUST, "workers"),
            tol=("gtol",),
            gtol=1e-4,
            gtol_norm=2.0,
        ),
        ScipyMethod(
            "trust-exact",
            "trust-region",
            (*_TRUST, "subproblem_maxiter"),
            tol=("gtol",),
            gtol=1e-4,
            gtol_norm=2.0,
            fixed={"cg_rtol": 1e-10},
        ),
    )
}

#: SciPy option -> (where it goes, descend's name): "stopping" (StoppingCriteria),
#: "optimizer" (the optimizer's options) or "run" (minimize's own)
_OPTION_TARGETS = {
    "maxiter": ("stopping", "max_iter"),
    "gtol": ("stopping", "gtol"),
    "norm": ("stopping", "gtol_norm"),
    "ftol": ("stopping", "ftol"),
    "xtol": ("stopping", "xtol"),
    "xrtol": ("stopping", "xtol"),
    "maxfun": ("stopping", "max_fev"),
    "maxcor": ("optimizer", "history_size"),
    "maxls": ("optimizer", "max_eval"),
    "c1": ("optimizer", "c1"),
    "c2": ("optimizer", "c2"),
    "initial_trust_radius": ("optimizer", "initial_radius"),
    "max_trust_radius": ("optimizer", "max_radius"),
    "eta": ("optimizer", "eta"),
    "disp": ("run", "disp"),
    "return_all": ("run", "record"),
}


@dataclass(frozen=True)
class Call:
    """A ``minimize`` call translated into descend's terms.

    Attributes:
        method: descend's method name.
        stopping: keyword arguments of ``StoppingCriteria`` (every field, resolved).
        options: the optimizer's options.
        scipy: the method was named as SciPy names it, and stops by SciPy's rules.
        record: keep every iterate (SciPy's ``return_all``).
        disp: print SciPy's summary at the end (SciPy's ``disp``).
    """

    method: str
    stopping: dict[str, Any]
    options: dict[str, Any]
    scipy: bool = False
    record: bool = False
    disp: bool = False


def scipy_method(method: Any) -> ScipyMethod | None:
    """SciPy's method ``method`` names, or None when it is one of descend's names.

    ``"BFGS"``, ``"CG"``, ``"Newton-CG"`` only as SciPy spells them (lower case they are
    descend's); ``"L-BFGS-B"``, ``"trust-ncg"``, ``"trust-exact"`` in any case.
    """
    if not isinstance(method, str):
        return None
    if method in SCIPY_METHODS:
        return SCIPY_METHODS[method]
    for name, spec in SCIPY_METHODS.items():
        if name.lower() == method.lower() and name.lower() not in METHODS:
            return spec
    return None


def translate(
    method: Any,
    tol: float | None,
    options: dict[str, Any] | None,
    given: dict[str, Any],
    extra: dict[str, Any],
    n: int,
    keywords: Iterable[str] = STOPPING_KEYWORDS,
) -> Call:
    """Translate ``minimize``'s arguments into descend's method, stopping rule and options.

    Args:
        method: descend's method name, or SciPy's (see the module's table).
        tol: SciPy's ``tol``, or None.
        options: SciPy's ``options`` dict (SciPy's option names for a SciPy method; for
            descend's names, ``minimize``'s own stopping keywords and optimizer options).
        given: ``minimize``'s stopping keywords (:data:`STOPPING_KEYWORDS`) as the caller
            gave them, ``None`` where not given.
        extra: the remaining keyword arguments, for the optimizer.
        n: the number of variables (SciPy's budgets are 200 n iterations).
        keywords: every keyword ``minimize`` takes, for "did you mean" suggestions.

    Rules with descend's names: ``gtol`` defaults to 1e-5 (``tol`` when given), and a
    caller who gives ``gtol`` (or ``tol``) but not ``ftol`` gets no ftol test; the other
    tolerances keep the method's defaults.
    """
    if not isinstance(method, str):
        hint = (
            "; SciPy's extra arguments for fun go in args=(...), method is the third argument here"
            if isinstance(method, tuple)
            else ""
        )
        raise TypeError(
            f"method must be a method name, got {type(method).__name__} {method!r}{hint}; "
            f"valid names: {', '.join([*METHODS, *SCIPY_METHODS])}"
        )
    if options is None:
        options = {}
    elif not isinstance(options, dict):
        raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
    if tol is not None:
        tol = check_non_negative("tol", tol)
    given = dict(given)
    keywords = tuple(keywords)
    for name in sorted(set(extra) & set(_SCIPY_KEYWORDS)):
        raise TypeError(f"{name}= is SciPy's; {_SCIPY_KEYWORDS[name]}")
    scipy = scipy_method(method)
    if scipy is None:
        try:
            spec = get_method(method)
        except ValueError:
            raise ValueError(_unknown_method(method)) from None
        merged = _merge(given, options, "options")
        extra = {**extra, **{k: v for k, v in merged.items() if k not in STOPPING_KEYWORDS}}
        given = {k: v for k, v in merged.items() if k in STOPPING_KEYWORDS}
        _check_optimizer_options(spec, extra, keywords)
        return Call(spec.name, _descend_stopping(spec, given, tol), dict(extra))
    return _translate_scipy(scipy, tol, options, given, extra, n, keywords)


def _descend_stopping(spec: Any, given: dict[str, Any], tol: float | None) -> dict[str, Any]:
    gtol, ftol = given.get("gtol"), given.get("ftol")
    if gtol is None and tol is not None:
        gtol = tol
    if ftol is None:
        # a caller who asks for a gradient tolerance means to stop there, not at the
        # first flat iteration (MGH Meyer: ftol stops BFGS at f = 1.1e5, f* = 88)
        ftol = spec.ftol if gtol is None else 0.0
    return _stopping(
        given,
        max_iter=spec.max_iter,
        gtol=DEFAULT_GTOL if gtol is None else gtol,
        ftol=ftol,
        xtol=0.0,
        patience=spec.patience,
    )


def _translate_scipy(
    scipy: ScipyMethod,
    tol: float | None,
    options: dict[str, Any],
    given: dict[str, Any],
    extra: dict[str, Any],
    n: int,
    keywords: tuple[str, ...],
) -> Call:
    stopping: dict[str, Any] = {}
    optimizer: dict[str, Any] = dict(scipy.fixed)
    from_options: set[str] = set()
    run = {"disp": False, "record": False}
    for name, value in options.items():
        if name in _REFUSED and name in scipy.options:
            raise ValueError(f"option {name!r} of {scipy.name}: {_REFUSED[name]}")
        if name not in scipy.options:
            raise ValueError(_unknown_option(scipy, name))
        where, key = _OPTION_TARGETS[name]
        value = _check_option(scipy, name, value)
        if where == "stopping":
            stopping[key] = value
        elif where == "optimizer":
            optimizer[key] = value
            from_options.add(key)
        else:
            run[key] = bool(value)
    for key, value in given.items():
        if value is None or key not in ("max_iter", "gtol", "ftol", "xtol"):
            continue
        if key in stopping:
            names = [o for o, (w, k) in _OPTION_TARGETS.items() if k == key and o in options]
            raise ValueError(
                f"{key} is given twice: as {key}={value!r} and as options[{names[0]!r}]; give one"
            )
        stopping[key] = value
    if tol is not None:  # as scipy.optimize.minimize: an option given wins over tol
        for name in scipy.tol:
            stopping.setdefault(_OPTION_TARGETS[name][1], tol)
    spec = get_method(scipy.descend)
    for key in sorted(set(extra) & from_options):
        raise ValueError(f"{key} is given twice: as {key}= and through options; give one")
    optimizer.update(extra)
    _check_optimizer_options(spec, optimizer, keywords, scipy)
    resolved = _stopping(
        given,
        max_iter=200 * n if scipy.max_iter is None else scipy.max_iter,
        gtol=scipy.gtol,
        ftol=scipy.ftol,
        xtol=scipy.xtol,
        patience=1,
        gtol_norm=scipy.gtol_norm,
        xtol_rule=scipy.xtol_rule,
        max_fev=scipy.max_fev,
    )
    resolved.update(stopping)
    return Call(spec.name, resolved, optimizer, True, run["record"], run["disp"])


def _stopping(given: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    """Every field of ``StoppingCriteria``: what the caller gave, else ``defaults``."""
    out = {
        "max_iter": None,
        "gtol": DEFAULT_GTOL,
        "ftol": 0.0,
        "xtol": 0.0,
        "max_time": None,
        "target": None,
        "patience": 1,
        "divergence_factor": 1e6,
        "gtol_norm": 2.0,
        "xtol_rule": "relative",
        "max_fev": None,
    }
    out.update(defaults)
    for key, value in given.items():
        if value is not None and key in out:
            out[key] = value
    if "divergence_factor" in given and given["divergence_factor"] is None:
        out["divergence_factor"] = 1e6
    return out


def _merge(given: dict[str, Any], options: dict[str, Any], where: str) -> dict[str, Any]:
    """``given`` with ``options`` added; a name given both ways is an error."""
    out = dict(given)
    for key, value in options.items():
        if out.get(key) is not None:
            raise ValueError(f"{key} is given twice: as {key}= and in {where}; give one")
        out[key] = value
    return out


def _check_option(scipy: ScipyMethod, name: str, value: Any) -> Any:
    label = f"options[{name!r}]"
    if name in ("maxiter", "maxfun", "maxcor", "maxls"):
        with contextlib.suppress(TypeError):
            value = operator.index(value)
        return check_int(label, value, low=0 if name in ("maxiter", "maxfun") else 1)
    if name == "norm":
        try:
            order = float(value)
        except (TypeError, ValueError):
            order = math.nan
        if order not in (2.0, math.inf):
            raise ValueError(
                f"{label} must be 2 or numpy.inf (the norm of the gradient that gtol "
                f"bounds), got {value!r}; descend's gtol test has no other order"
            )
        return order
    if name in ("gtol", "ftol", "xtol", "xrtol"):
        return check_non_negative(label, value)
    if name in ("initial_trust_radius", "max_trust_radius"):
        return check_positive(label, value)
    return value


def _check_optimizer_options(
    spec: Any, options: dict[str, Any], keywords: tuple[str, ...], scipy: ScipyMethod | None = None
) -> None:
    """Every key of ``options`` must be an option of ``spec``'s optimizer; a ValueError
    names the nearest valid keyword or option for each one that is not."""
    valid = spec.options() - set(spec.fixed)
    unknown = sorted(set(options) - valid)
    if not unknown:
        return
    misplaced = [name for name in unknown if name in keywords]
    if misplaced:
        raise ValueError(
            f"{', '.join(misplaced)}: keyword(s) of minimize, not options; pass them "
            "directly (minimize(..., name=value))"
        )
    candidates = sorted({*keywords, *valid, *(scipy.options if scipy else ())})
    named = []
    for name in unknown:
        close = nearest(name, candidates)
        near = [close] if close else []
        if name in spec.fixed:
            named.append(f"{name} ({spec.name} fixes {name}={spec.fixed[name]!r})")
        elif scipy is not None and name in scipy.options:
            named.append(f"{name} (SciPy's option: pass options={{{name!r}: ...}})")
        elif near and scipy is not None and near[0] in set(scipy.options) - valid:
            named.append(f"{name} (did you mean options={{{near[0]!r}: ...}}?)")
        elif near:
            named.append(f"{name} (did you mean {near[0]}?)")
        else:
            named.append(name)
    raise ValueError(
        f"method {spec.name!r} does not take option(s) {', '.join(named)}; valid options: "
        f"{', '.join(sorted(valid)) or 'none'}; minimize's keywords: {', '.join(keywords)}"
    )


def _unknown_option(scipy: ScipyMethod, name: str) -> str:
    valid = sorted(o for o in scipy.options if o not in _REFUSED)
    near = nearest(name, valid)
    hint = f"did you mean {near}? " if near else ""
    return (
        f"unknown option {name!r} for method {scipy.name!r}; {hint}"
        f"{scipy.name}'s options: {', '.join(valid)}"
    )


def _unknown_method(method: str) -> str:
    names = [*METHODS, *SCIPY_METHODS]
    near = nearest(method, names)
    hint = f"did you mean {near!r}? " if near else ""
    return f"unknown method {method!r}; {hint}valid methods: {', '.join(names)}"


# -- arguments, callbacks and the result ----------------------------------------------------


def bind_args(fun: Callable[..., Any], jac: Any, args: Any) -> tuple[Callable[..., Any], Any]:
    """``fun`` and ``jac`` with SciPy's extra arguments bound: ``fun(x) = fun(x, *args)``.

    ``args`` that is not a tuple is one argument, as in SciPy.
    """
    if not isinstance(args, tuple):
        args = (args,)
    if not args:
        return fun, jac
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")

    def fun_with_args(x: Any) -> Any:
        return fun(x, *args)

    fun_with_args.__name__ = getattr(fun, "__name__", "fun")
    if not callable(jac) or isinstance(jac, bool):
        return fun_with_args, jac

    def jac_with_args(x: Any) -> Any:
        return jac(x, *args)

    return fun_with_args, jac_with_args


class ScipyCallback(Callback):
    """SciPy's callback contract: ``callback(intermediate_result)`` when its one parameter
    is named ``intermediate_result``, else ``callback(xk)`` with a copy of x; raising
    ``StopIteration`` stops the run, a return value does not (as in SciPy)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        try:
            names = set(inspect.signature(fn).parameters)
        except (TypeError, ValueError):  # builtins without a signature
            names = set()
        self.new_style = names == {"intermediate_result"}

    def on_step(self, result: Any) -> bool | None:
        if self.new_style:
            self.fn(intermediate_result=result)
        else:
            x = result.x
            self.fn(x.clone() if isinstance(x, Tensor) else np.copy(x))
        return None

    def __repr__(self) -> str:
        return f"ScipyCallback({getattr(self.fn, '__name__', self.fn)!r})"


class Display(Callback):
    """SciPy's ``disp``: print how the run ended, f and the counts."""

    def on_end(self, result: Any) -> None:
        head = "Optimization terminated successfully." if result.converged else "Warning: "
        if not result.converged:
            head += result.message
        print(head)
        if result.converged:
            print(f"         {result.message}")
        print(f"         Current function value: {result.fun:.6f}")
        print(f"         Iterations: {result.nit}")
        print(f"         Function evaluations: {result.nfev}")
        print(f"         Gradient evaluations: {result.njev}")


def scipy_callbacks(callback: Any, call: Call) -> Any:
    """``callback`` as ``minimize`` runs it: in SciPy's form under SciPy's contract
    (:class:`ScipyCallback`), with :class:`Display` added for ``disp``."""
    if not call.scipy:
        return callback
    if callable(callback) and not isinstance(callback, Callback):
        callback = ScipyCallback(callback)
    if call.disp:
        callback = [*as_callbacks(callback), Display()]
    return callback


def inverse_hessian(optimizer: torch.optim.Optimizer) -> Tensor | None:
    """The inverse-Hessian approximation :math:`H_k` of a BFGS optimizer (a copy, n x n over
    the flattened parameters), or None for an optimizer that keeps none.

    Before its first step a BFGS optimizer's :math:`H` is the identity, as SciPy's.

    Example:
        >>> x = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        >>> inverse_hessian(descend.optim.BFGS([x]))  # before the first step
        tensor([[1., 0.],
                [0., 1.]], dtype=torch.float64)

        SciPy's call form returns it as ``res.hess_inv``; on a quadratic it nears
        :math:`A^{-1}`:

        >>> A = torch.diag(torch.tensor([1.0, 10.0], dtype=torch.float64))
        >>> res = descend.minimize(lambda x: 0.5 * x @ A @ x, [1.0, 1.0], method="BFGS")
        >>> np.allclose(res.hess_inv, np.diag([1.0, 0.1]), atol=1e-2)
        True
    """
    if not isinstance(optimizer, BFGS):
        return None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for p in params:
        h = optimizer.state.get(p, {}).get("inverse_hessian")
        if isinstance(h, Tensor):
            return h.detach().clone()
    n = sum(p.numel() for p in params)
    first = params[0]
    return torch.eye(n, dtype=first.dtype, device=first.device)
