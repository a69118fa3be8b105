"""L-BFGS as ``torch.optim.LBFGS`` runs it: many iterations per ``step(closure)``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.lbfgs import LBFGS
from descend.optim.optimizer import StepFailed

#: torch's test for a usable pair: s'y above this
CURVATURE_FLOOR = 1e-10


class TorchLBFGS(LBFGS):
    r"""A drop-in for ``torch.optim.LBFGS``: descend's :class:`LBFGS` with torch's
    defaults and ``step`` semantics.

    One ``step(closure)`` evaluates the closure, then runs up to ``max_iter = 20``
    iterations, each: take in the pair of the last iteration (:math:`s = t d`,
    :math:`y = g - g_{prev}`, kept when :math:`s^\top y > 10^{-10}`, also across calls),
    the direction :math:`d = -H g` (computed in the compact form, see :class:`LBFGS`), stop
    if :math:`g^\top d > -` ``tolerance_change``, step :math:`t` = ``lr`` (the very first
    :math:`\min(1, 1/\|g\|_1)` ``lr``), or search along :math:`d`, and evaluate at the
    new point unless it was the last iteration (the next call evaluates there). It ends
    early after ``max_eval`` evaluations (torch's
    :math:`\lfloor 5\,\text{max\_iter} / 4 \rfloor` when None), when
    :math:`\max_i |g_i| \le` ``tolerance_grad``, or when the step or the change of f is
    below ``tolerance_change``; it returns the loss of the first evaluation. All of this is
    torch's ``step`` (which, unlike this one, goes on iterating on a NaN or infinite f), so
    without a line search the iterates and the evaluation counts are torch's. With
    ``line_search_fn="strong_wolfe"`` the search is descend's (Nocedal & Wright's
    bracketing and zoom), whose trial steps differ from torch's; both end each iteration
    on a strong Wolfe point.

    :class:`LBFGS` itself keeps one iteration per ``step()`` (``max_iter=1``), the form
    ``minimize`` drives, where the descent loop counts and records every iteration.

    Args:
        params: parameters (one group, one dtype and device).
        lr: step length (first trial step of a line search), > 0.
        max_iter: iterations per ``step()``, >= 1.
        max_eval: closure evaluations per ``step()``, >= 1; None: ``max_iter * 5 // 4``.
        tolerance_grad: end ``step()`` when :math:`\max_i |g_i| \le` this, >= 0.
        tolerance_change: end ``step()`` when f or x changes less than this, >= 0.
        history_size: pairs kept, >= 1.
        line_search_fn: None (fixed step), ``"strong_wolfe"`` or ``"backtracking"``.
        c1: sufficient-decrease constant in (0, 1).
        c2: curvature constant in (c1, 1).

    Example:
        Without a line search, the iterates are torch's:

        >>> import copy
        >>> twin = copy.deepcopy(model)
        >>> opt = descend.optim.TorchLBFGS(model.parameters())  # or line_search_fn="strong_wolfe"
        >>> ref = torch.optim.LBFGS(twin.parameters())
        >>> for m, o in ((model, opt), (twin, ref)):
        ...     def closure():
        ...         o.zero_grad(); loss = loss_fn(m(X), y); loss.backward(); return loss
        ...     loss = o.step(closure)  # up to 20 iterations
        >>> all(torch.allclose(p, q) for p, q in zip(model.parameters(), twin.parameters()))
        True
    """

    capabilities = Capabilities(needs_fixed_batch=True, second_order=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
        c1: float = 1e-4,
        c2: float = 0.9,
    ) -> None:
        if max_eval is None and isinstance(max_iter, int):
            max_eval = max_iter * 5 // 4
        super().__init__(
            params,
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
            c1=c1,
            c2=c2,
        )

    @torch.no_grad()
    # torch's stub: a closure returns a float; descend's return the loss tensor
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        """Up to ``max_iter`` iterations, as ``torch.optim.LBFGS.step``; returns the loss at
        the start. ``closure`` clears the gradients, evaluates the loss, calls backward()
        and returns the loss; it is required."""
        if closure is None:
            raise RuntimeError(
                "TorchLBFGS.step needs a closure that clears the gradients, evaluates the "
                "loss, calls backward() and returns the loss"
            )
        group = self.param_groups[0]
        state = self._prepare()
        with torch.enable_grad():
            first = closure()
        loss = _value(first)
        evals = 1
        state["func_evals"] += 1
        g, d = state["g"], state["d"]
        self._flat.gather_grad(out=g)
        if g.abs().max().item() <= group["tolerance_grad"]:
            return first
        tol_change = group["tolerance_change"]
        for n_iter in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            if state["n_iter"] > 1:
                self._take_pair(state, g)
            self._direction(state, g, d)
            state["g_prev"].copy_(g)
            prev_loss = loss
            t = group["lr"]
            if state["n_iter"] == 1:
                t *= min(1.0, 1.0 / g.abs().sum().item())
            state["t"] = t  # as torch: the next pair is t d even when no step follows
            gtd = torch.dot(g, d).item()
            if gtd > -tol_change:
                break
            x0 = self._flat.gather(out=state["x0"])
            if group["line_search_fn"] is None:
                self._flat.assign_axpy(x0, t, d)
                if n_iter != group["max_iter"]:
                    with torch.enable_grad():
                        loss = _value(closure())
                    self._flat.gather_grad(out=g)
                    evals += 1
            else:
                res = self._search(closure, state, x0, loss, gtd, True, group["max_eval"] - evals)
                if res.t == 0:
                    raise StepFailed(
                        "line_search_failed",
                        f"TorchLBFGS: the line search found no lower f: {res.message}",
                    )
                state["t"] = t = res.t
                loss = res.f
                g.copy_(state["g_next"])
                evals += res.nfev
            if (
                n_iter == group["max_iter"]
                or evals >= group["max_eval"]
                or g.abs().max().item() <= group["tolerance_grad"]
                or d.abs().max().item() * t <= tol_change
                or abs(loss - prev_loss) < tol_change
                or not math.isfinite(loss)
            ):
                break
        state["func_evals"] += evals - 1
        return first

    def _take_pair(self, state: dict[str, Any], g: Tensor) -> None:
        """The pair of the last iteration, s = t d and y = g - g_prev, if s'y > 1e-10."""
        t = state["t"]
        sy = t * (torch.dot(g, state["d"]).item() - torch.dot(state["g_prev"], state["d"]).item())
        if sy > CURVATURE_FLOOR:
            self._store(state, state["g_prev"], g, state["d"], t)
        else:
            state["skipped"] += 1


def _value(loss: Tensor | float) -> float:
    return float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
