"""Check a gradient (and Hessian-vector products) against central finite differences."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descend.notebook import badge, section, table
from descend.validation import check_int, check_non_negative

_EPS64 = float(torch.finfo(torch.float64).eps)
#: central differences balance truncation (h^2 f''') and round-off (eps f / h) at h ~ eps^(1/3)
_STEP = _EPS64 ** (1.0 / 3.0)


@dataclass(frozen=True)
class CoordinateError:
    """One checked coordinate: the two derivatives and how far apart they are."""

    index: tuple[int, ...]
    autodiff: float
    finite_difference: float
    abs_error: float
    rel_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.abs_error <= self.tolerance


@dataclass(frozen=True)
class BlockCheck:
    """The verdict for one block of coordinates (a tensor, or a module's parameter).

    Attributes:
        name: the block's name (``"x"``, ``"x[1]"``, ``"0.weight"``).
        shape: its shape.
        checked, total: coordinates compared, coordinates in the block.
        max_abs_error, max_rel_error: over the checked coordinates.
        worst: the checked coordinates furthest outside (or closest to) their tolerance.
        failures: how many checked coordinates are outside their tolerance.
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    total: int
    max_abs_error: float
    max_rel_error: float
    worst: tuple[CoordinateError, ...]
    failures: int

    @property
    def passed(self) -> bool:
        return self.failures == 0


@dataclass(frozen=True)
class DirectionCheck:
    """A derivative along a direction: autodiff against finite differences.

    For the gradient the values are scalars (:math:`g\\cdot d`); for Hessian-vector
    products, norms, and the error is :math:`\\|Hv - \\widehat{Hv}\\|`.
    """

    autodiff: float
    finite_difference: float
    abs_error: float
    rel_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.abs_error <= self.tolerance


@dataclass(frozen=True)
class GradcheckReport:
    """What :func:`gradcheck` found.

    Attributes:
        f: the function's value at x.
        blocks: one :class:`BlockCheck` per block of coordinates.
        directions: the gradient along random unit directions (every coordinate at once).
        hvp: Hessian-vector products along random directions (empty if not checked).
        hvp_skipped: why the HVP check did not run ("" if it ran).
        rtol, hvp_rtol: the relative tolerances used.
    """

    f: float
    blocks: tuple[BlockCheck, ...]
    directions: tuple[DirectionCheck, ...]
    hvp: tuple[DirectionCheck, ...] = ()
    hvp_skipped: str = ""
    rtol: float = 0.0
    hvp_rtol: float = 0.0
    _extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def gradient_passed(self) -> bool:
        return all(b.passed for b in self.blocks) and all(d.passed for d in self.directions)

    @property
    def hvp_passed(self) -> bool:
        return all(d.passed for d in self.hvp)

    @property
    def passed(self) -> bool:
        """True when every coordinate, direction and HVP agrees within tolerance."""
        return self.gradient_passed and self.hvp_passed

    @property
    def max_abs_error(self) -> float:
        return max((b.max_abs_error for b in self.blocks), default=0.0)

    @property
    def max_rel_error(self) -> float:
        return max((b.max_rel_error for b in self.blocks), default=0.0)

    def assert_passed(self) -> None:
        """Raise AssertionError with this report's text unless every check passed."""
        if not self.passed:
            raise AssertionError("gradient check failed\n" + str(self))

    def _repr_html_(self) -> str:
        """A notebook's view: the verdict as a badge, one row per block of coordinates,
        then the checks along random directions and of Hessian-vector products."""
        rows: list[tuple[Any, ...]] = [
            (
                b.name,
                _shape(b.shape),
                f"{b.checked}/{b.total}",
                b.max_abs_error,
                b.max_rel_error,
                "ok" if b.passed else f"FAILED at {b.failures} coordinate(s)",
            )
            for b in self.blocks
        ]
        for label, checks in (("random directions", self.directions), ("Hessian-vector", self.hvp)):
            if checks:
                rows.append(
                    (
                        label,
                        "",
                        f"{len(checks)} direction(s)",
                        max(d.abs_error for d in checks),
                        max(d.rel_error for d in checks),
                        "ok" if all(d.passed for d in checks) else "FAILED",
                    )
                )
        header = ("block", "shape", "checked", "max abs err", "max rel err", "verdict")
        return section(
            f"gradcheck at f = {self.f:.10g} (rtol {self.rtol:g})",
            badge("passed" if self.passed else "failed", "ok" if self.passed else "fail"),
            table(rows, header=header),
        )

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"gradcheck {verdict}: f = {self.f:.10g}, central differences with h_i = "
            f"eps^(1/3) max(|x_i|, 1), rtol = {self.rtol:g}",
            f"  {'block':<20} {'shape':<14} {'checked':>9} {'max abs err':>12} "
            f"{'max rel err':>12}  verdict",
        ]
        for b in self.blocks:
            checked = f"{b.checked}/{b.total}"
            lines.append(
                f"  {b.name:<20} {_shape(b.shape):<14} {checked:>9} {b.max_abs_error:>12.3e} "
                f"{b.max_rel_error:>12.3e}  "
                + ("ok" if b.passed else f"FAILED at {b.failures} coordinate(s)")
            )
            if not b.passed:
                for c in b.worst:
                    if not c.passed:
                        lines.append(
                            f"      {b.name}{list(c.index)}: autodiff {c.autodiff:.8g}, "
                            f"finite difference {c.finite_difference:.8g} "
                            f"(abs err {c.abs_error:.2e} > tol {c.tolerance:.2e})"
                        )
        if self.directions:
            worst = max(self.directions, key=lambda d: d.abs_error / max(d.tolerance, 1e-300))
            ok = all(d.passed for d in self.directions)
            lines.append(
                f"  along {len(self.directions)} random direction(s): max rel err "
                f"{max(d.rel_error for d in self.directions):.3e}  "
                + (
                    "ok"
                    if ok
                    else f"FAILED (g.d {worst.autodiff:.8g} vs {worst.finite_difference:.8g})"
                )
            )
        if self.hvp:
            ok = self.hvp_passed
            lines.append(
                f"  Hessian-vector products along {len(self.hvp)} direction(s): max rel err "
                f"{max(d.rel_error for d in self.hvp):.3e} (rtol {self.hvp_rtol:g})  "
                + (
                    "ok"
                    if ok
                    else "FAILED: second derivatives disagree with differences of the gradient"
                )
            )
        elif self.hvp_skipped:
            lines.append(f"  Hessian-vector products: not checked ({self.hvp_skipped})")
        return "\n".join(lines)


def gradcheck(
    fun: Callable[..., Any],
    x: Any,
    *,
    jac: Callable[..., Any] | None = None,
    hessp: Callable[..., Any] | None = None,
    rtol: float = 1e-5,
    hvp_rtol: float = 1e-4,
    atol: float = 0.0,
    max_coords: int = 200,
    directions: int = 3,
    hvp: bool = True,
    worst: int = 5,
    seed: int = 0,
) -> GradcheckReport:
    r"""Compare the gradient of ``fun`` at ``x`` with central finite differences.

    For each coordinate i (all of them, or ``max_coords`` drawn at random per block)

    .. math::
        \hat g_i = \frac{f(x + h_i e_i) - f(x - h_i e_i)}{2 h_i}, \qquad
        h_i = \epsilon^{1/3} \max(|x_i|, 1)

    in float64 (:math:`\epsilon^{1/3} \approx 6\cdot10^{-6}` balances the
    :math:`O(h^2)` truncation error against the :math:`O(\epsilon f/h)` round-off). A
    coordinate passes when :math:`|g_i - \hat g_i| \le` atol + rtol
    :math:`\max(|g_i|, |\hat g_i|)` + the round-off bound
    :math:`100\,\epsilon \max(|f(x \pm h_i e_i)|)/h_i`. The same test runs along
    ``directions`` random unit directions d (:math:`g\cdot d`, every coordinate at once),
    and, unless ``hvp=False``, Hessian-vector products :math:`Hv` (double backward, or
    ``hessp``) are compared with :math:`(\nabla f(x + hv) - \nabla f(x - hv))/(2h)`
    within ``hvp_rtol``. Nothing of the caller's is modified: x (or the module) is
    copied to float64 first.

    Args:
        fun: the function: ``fun(x) -> scalar`` for one tensor or array; ``fun(*xs)`` for
            a list or tuple of tensors; ``fun(**xs)`` for a dict of tensors;
            ``fun(module) -> scalar`` for a ``torch.nn.Module`` (blocks are its
            parameters; the module is a float64 copy, and float inputs to it are raised
            to float64). ``fun`` must work on float64 tensors.
        x: the point (a tensor, NumPy array, list of numbers, list/tuple/dict of tensors,
            or a module).
        jac: check this gradient ``jac(x) -> array`` instead of autodiff's (one block
            only; ``fun`` and ``jac`` then get x as the kind it was given, e.g. NumPy).
        hessp: check ``hessp(x, v) -> H v`` (with ``jac``; autodiff's otherwise).
        rtol: relative tolerance of the gradient, >= 0.
        hvp_rtol: relative tolerance of Hessian-vector products, >= 0.
        atol: absolute tolerance added to every test, >= 0.
        max_coords: coordinates checked per block at most, an integer >= 1.
        directions: random directions for the directional and HVP checks, >= 0.
        hvp: also check Hessian-vector products.
        worst: coordinates listed per block in the report, an integer >= 1.
        seed: seed of the coordinate sample and the directions.

    Returns:
        :class:`GradcheckReport`: ``report.passed``, per-block verdicts, a readable
        ``str(report)``; ``report.assert_passed()`` raises with the report's text.

    Example:
        >>> report = gradcheck(lambda x: (x**4).sum(), torch.tensor([1.0, -2.0]))
        >>> report.passed, report.max_rel_error < 1e-8
        (True, True)
    """
    rtol = check_non_negative("rtol", rtol)
    hvp_rtol = check_non_negative("hvp_rtol", hvp_rtol)
    atol = check_non_negative("atol", atol)
    max_coords = check_int("max_coords", max_coords, low=1)
    directions = check_int("directions", directions, low=0)
    worst = check_int("worst", worst, low=1)
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    problem = _Problem(fun, x, jac, hessp)
    generator = torch.Generator().manual_seed(int(seed))

    f0 = problem.value()
    grads = problem.gradient()
    blocks = []
    for b, (name, leaf) in enumerate(zip(problem.names, problem.leaves)):
        blocks.append(
            _check_block(problem, b, name, leaf, grads[b], rtol, atol, max_coords, worst, generator)
        )

    dir_checks = []
    hvp_checks = []
    hvp_skipped = ""
    for _ in range(directions):
        d = [
            torch.randn(leaf.shape, generator=generator, dtype=torch.float64).to(leaf.device)
            for leaf in problem.leaves
        ]
        norm = math.sqrt(sum(float((t * t).sum()) for t in d))
        d = [t / norm for t in d]
        dir_checks.append(_check_direction(problem, grads, d, rtol, atol))
        if hvp:
            if not problem.has_hvp:
                hvp_skipped = problem.no_hvp_reason
            else:
                hvp_checks.append(_check_hvp(problem, d, hvp_rtol, atol))
    if hvp and directions == 0:
        hvp_skipped = "directions=0"
    if not hvp:
        hvp_skipped = "hvp=False"
    return GradcheckReport(
        f=f0,
        blocks=tuple(blocks),
        directions=tuple(dir_checks),
        hvp=tuple(hvp_checks),
        hvp_skipped=hvp_skipped,
        rtol=rtol,
        hvp_rtol=hvp_rtol,
    )


# -- the function under test, in float64 ---------------------------------------------------


class _Problem:
    """``fun`` over float64 leaves we own: values, gradients and HVPs at the current leaves."""

    def __init__(self, fun: Callable[..., Any], x: Any, jac: Any, hessp: Any) -> None:
        self.fun, self.jac, self.hessp = fun, jac, hessp
        self.module: nn.Module | None = None
        self.kind = "tensor"
        if isinstance(x, nn.Module):
            self.module = copy.deepcopy(x).to(torch.float64)
            # float32 inputs the caller's closure feeds in are raised to float64 as well
            self.module.register_forward_pre_hook(_inputs_to_float64)
            named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
            if not named:
                raise ValueError("x is a module without parameters that require grad")
            self.names = [n for n, _ in named]
            self.leaves: list[Tensor] = [p for _, p in named]
            self.kind = "module"
        elif isinstance(x, Mapping):
            self.names = [str(k) for k in x]
            self.leaves = [_leaf(v, f"x[{k!r}]") for k, v in x.items()]
            self.kind = "dict"
        elif isinstance(x, (list, tuple)) and x and all(isinstance(t, Tensor) for t in x):
            self.names = [f"x[{i}]" for i in range(len(x))]
            self.leaves = [_leaf(t, f"x[{i}]") for i, t in enumerate(x)]
            self.kind = "tensors"
        else:
            self.names = ["x"]
            self.leaves = [_leaf(x, "x")]
            self.kind = "tensor" if isinstance(x, Tensor) else "numpy"
        if any(leaf.numel() == 0 for leaf in self.leaves):
            raise ValueError("x has an empty block; every block needs at least one coordinate")
        if jac is not None and len(self.leaves) != 1:
            raise ValueError(
                f"jac= checks a single block, but x has {len(self.leaves)} blocks; "
                "leave jac out to check autodiff's gradient"
            )
        if jac is not None and not callable(jac):
            raise TypeError(f"jac must be callable, got {type(jac).__name__}")
        if hessp is not None and not callable(hessp):
            raise TypeError(f"hessp must be callable, got {type(hessp).__name__}")
        self.keys: list[Any] = list(x) if self.kind == "dict" else []  # fun's keywords

    # -- calling fun ---------------------------------------------------------------------

    def _outside(self, t: Tensor) -> Any:
        return t.detach().numpy().copy() if self.kind == "numpy" else t

    def _call(self) -> Any:
        if self.kind == "module":
            return self.fun(self.module)
        if self.kind == "dict":
            return self.fun(**dict(zip(self.keys, self.leaves)))
        if self.kind == "tensors":
            return self.fun(*self.leaves)
        if self.jac is not None:
            return self.fun(self._outside(self.leaves[0]))
        return self.fun(self.leaves[0])

    def value(self) -> float:
        with torch.no_grad():
            out = self._call()
        return _scalar(out)

    def gradient(self) -> list[Tensor]:
        if self.jac is not None:
            g = _float64_like(self.jac(self._outside(self.leaves[0])), self.leaves[0])
            if g.numel() != self.leaves[0].numel():
                raise ValueError(
                    f"jac returned {g.numel()} values, but x has {self.leaves[0].numel()}"
                )
            return [g.reshape(self.leaves[0].shape)]
        with torch.enable_grad():
            out = self._call()
            loss = _scalar_tensor(out)
            grads = torch.autograd.grad(loss, self.leaves, allow_unused=True)
        return [
            torch.zeros_like(p) if g is None else g.detach() for p, g in zip(self.leaves, grads)
        ]

    @property
    def has_hvp(self) -> bool:
        return self.jac is None or self.hessp is not None

    @property
    def no_hvp_reason(self) -> str:
        return "jac= was given without hessp="

    def hvp(self, v: list[Tensor]) -> list[Tensor]:
        if self.hessp is not None:
            outside = self._outside(v[0]) if self.kind == "numpy" else v[0]
            hv = self.hessp(self._outside(self.leaves[0]), outside)
            hv = _float64_like(hv, self.leaves[0])
            return [hv.reshape(self.leaves[0].shape)]
        with torch.enable_grad():
            loss = _scalar_tensor(self._call())
            grads = torch.autograd.grad(loss, self.leaves, create_graph=True, allow_unused=True)
            live = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]
            if not live:
                return [torch.zeros_like(p) for p in self.leaves]
            out = torch.autograd.grad(
                [g for _, g in live],
                self.leaves,
                grad_outputs=[v[i] for i, _ in live],
                allow_unused=True,
            )
        return [torch.zeros_like(p) if h is None else h.detach() for p, h in zip(self.leaves, out)]

    # -- moving the leaves -----------------------------------------------------------------

    def shift(self, deltas: Sequence[Tensor | None]) -> None:
        with torch.no_grad():
            for leaf, d in zip(self.leaves, deltas):
                if d is not None:
                    leaf.add_(d)


def _float64_like(value: Any, like: Tensor) -> Tensor:
    """A user function's array or tensor as float64 on ``like``'s device."""
    if isinstance(value, Tensor):
        return value.detach().to(like.device, torch.float64)
    return torch.as_tensor(np.asarray(value, dtype=np.float64), device=like.device)


def _inputs_to_float64(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        a.to(torch.float64) if isinstance(a, Tensor) and a.is_floating_point() else a for a in args
    )


def _leaf(value: Any, name: str) -> Tensor:
    try:
        if isinstance(value, Tensor):
            t = value.detach().to(torch.float64).clone()  # on the caller's device
        else:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64)).clone()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numbers (a tensor, array or list), got {value!r}") from exc
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf; check the gradient at a finite point")
    return t.requires_grad_(True)


def _scalar_tensor(out: Any) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(
            f"fun must return a scalar tensor for autodiff, got {type(out).__name__}; "
            "pass jac= to check a hand-written gradient of a NumPy function"
        )
    if out.numel() != 1:
        raise ValueError(f"fun must return a scalar, got shape {tuple(out.shape)}")
    return out.reshape(())


def _scalar(out: Any) -> float:
    if isinstance(out, Tensor):
        if out.numel() != 1:
            raise ValueError(f"fun must return a scalar, got shape {tuple(out.shape)}")
        return float(out.detach().reshape(()))
    array = np.asarray(out, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"fun must return a scalar, got shape {array.shape}")
    return float(array.reshape(()))


# -- the checks ----------------------------------------------------------------------------


def _central(problem: _Problem, b: int, flat_index: int, x_i: float) -> tuple[float, float, float]:
    """(f(x + h e_i), f(x - h e_i), h) for coordinate ``flat_index`` of block ``b``."""
    h = _STEP * max(abs(x_i), 1.0)
    h = (x_i + h) - x_i  # a step the float64 grid represents exactly
    leaf = problem.leaves[b].view(-1)
    with torch.no_grad():
        leaf[flat_index] = x_i + h
    f_plus = problem.value()
    with torch.no_grad():
        leaf[flat_index] = x_i - h
    f_minus = problem.value()
    with torch.no_grad():
        leaf[flat_index] = x_i
    return f_plus, f_minus, h


def _check_block(
    problem: _Problem,
    b: int,
    name: str,
    leaf: Tensor,
    grad: Tensor,
    rtol: float,
    atol: float,
    max_coords: int,
    worst: int,
    generator: torch.Generator,
) -> BlockCheck:
    n = leaf.numel()
    if n <= max_coords:
        indices = list(range(n))
    else:
        indices = sorted(torch.randperm(n, generator=generator)[:max_coords].tolist())
    values = leaf.detach().reshape(-1).tolist()
    g_flat = grad.reshape(-1).tolist()
    errors = []
    for i in indices:
        f_plus, f_minus, h = _central(problem, b, i, values[i])
        fd = (f_plus - f_minus) / (2.0 * h)
        ad = g_flat[i]
        err = abs(ad - fd)
        roundoff = 100.0 * _EPS64 * max(abs(f_plus), abs(f_minus)) / h
        tol = atol + rtol * max(abs(ad), abs(fd)) + roundoff
        rel = err / max(abs(ad), abs(fd), roundoff, 1e-300)
        index = tuple(int(k) for k in np.unravel_index(i, tuple(leaf.shape))) if leaf.dim() else ()
        errors.append(CoordinateError(index, ad, fd, err, rel, tol))
    ranked = sorted(errors, key=lambda e: e.abs_error / max(e.tolerance, 1e-300), reverse=True)
    return BlockCheck(
        name=name,
        shape=tuple(leaf.shape),
        checked=len(errors),
        total=n,
        max_abs_error=max(e.abs_error for e in errors),
        max_rel_error=max(e.rel_error for e in errors),
        worst=tuple(ranked[:worst]),
        failures=sum(not e.passed for e in errors),
    )


def _direction_step(problem: _Problem) -> float:
    scale = max((float(leaf.detach().abs().max()) for leaf in problem.leaves), default=1.0)
    return _STEP * max(scale, 1.0)


def _check_direction(
    problem: _Problem, grads: list[Tensor], d: list[Tensor], rtol: float, atol: float
) -> DirectionCheck:
    h = _direction_step(problem)
    ad = sum(float((g * t).sum()) for g, t in zip(grads, d))
    problem.shift([h * t for t in d])
    f_plus = problem.value()
    problem.shift([-2 * h * t for t in d])
    f_minus = problem.value()
    problem.shift([h * t for t in d])
    fd = (f_plus - f_minus) / (2 * h)
    err = abs(ad - fd)
    roundoff = 100.0 * _EPS64 * max(abs(f_plus), abs(f_minus)) / h
    tol = atol + rtol * max(abs(ad), abs(fd)) + roundoff
    return DirectionCheck(ad, fd, err, err / max(abs(ad), abs(fd), roundoff, 1e-300), tol)


def _check_hvp(problem: _Problem, v: list[Tensor], rtol: float, atol: float) -> DirectionCheck:
    h = _direction_step(problem)
    hv = problem.hvp(v)
    problem.shift([h * t for t in v])
    g_plus = problem.gradient()
    problem.shift([-2 * h * t for t in v])
    g_minus = problem.gradient()
    problem.shift([h * t for t in v])
    fd = [(a - b) / (2 * h) for a, b in zip(g_plus, g_minus)]
    diff = math.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(hv, fd)))
    n_ad = math.sqrt(sum(float((a * a).sum()) for a in hv))
    n_fd = math.sqrt(sum(float((b * b).sum()) for b in fd))
    g_scale = math.sqrt(sum(float((a * a).sum()) for a in g_plus))
    roundoff = 100.0 * _EPS64 * max(g_scale, 1e-300) / h
    tol = atol + rtol * max(n_ad, n_fd) + roundoff
    return DirectionCheck(n_ad, n_fd, diff, diff / max(n_ad, n_fd, roundoff, 1e-300), tol)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
