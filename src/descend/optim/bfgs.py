"""BFGS with a dense inverse-Hessian approximation and a strong Wolfe line search."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.line_search_optimizer import LineSearchOptimizer
from descend.optim.linesearch import LineSearchResult, check_search_constants
from descend.validation import check_int, check_positive


class BFGS(LineSearchOptimizer):
    r"""BFGS: :math:`d_k = -H_k g_k` with a dense inverse-Hessian approximation :math:`H_k`.

    After an accepted step :math:`s = x_{k+1} - x_k`, :math:`y = g_{k+1} - g_k`,
    :math:`\rho = 1/(y^\top s)` (Nocedal & Wright, Numerical Optimization, 2nd ed., eq. 6.17):

    .. math::
        H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top) + \rho s s^\top
                = H_k + s w^\top + w s^\top,\quad
        w = -\rho H_k y + \tfrac12(\rho^2\, y^\top H_k y + \rho)\, s,

    two rank-one updates in place. :math:`H_0 = I`, rescaled to
    :math:`(y^\top s / y^\top y)\, I` just before the first update (N&W eq. 6.20). The
    update is **skipped** (not Powell-damped: damping serves the Hessian form
    :math:`B_k`, and skipping keeps :math:`H_k` positive definite just as well) when
    :math:`s^\top y \le \epsilon\, t\, |g_k^\top d_k|` with :math:`\epsilon` the machine
    epsilon, which a strong Wolfe step never triggers.

    The step length comes from a strong Wolfe line search (``c1 = 1e-4``, ``c2 = 0.9``)
    trying ``t = lr`` first; the first iteration tries a step of length ``lr``
    (:math:`t_0 = \text{lr}/\|g_0\|_2`). Failures fall back to steepest descent and then
    raise :class:`~descend.optim.StepFailed`, as described in
    :class:`~descend.optim.line_search_optimizer.LineSearchOptimizer`. Memory is
    :math:`n^2` numbers, time :math:`O(n^2)` per iteration: for large ``n`` use
    :class:`~descend.optim.LBFGS`.

    Args:
        params: parameters (one group, one dtype and device).
        lr: first trial step of each line search, > 0.
        c1: sufficient-decrease constant in (0, 1).
        c2: curvature constant in (c1, 1).
        max_eval: closure evaluations per ``step()`` (the line search budget), >= 1.
        memory_mb: budget for the dense :math:`n \times n` inverse Hessian, in MiB (> 0);
            a larger problem is refused at construction, naming L-BFGS.

    Example:
        >>> x = rosenbrock.x0().requires_grad_()  # float64 (-1.2, 1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = rosenbrock(x)
        ...     loss.backward()
        ...     return loss
        >>> opt = descend.optim.BFGS([x])
        >>> for _ in range(50):
        ...     loss = opt.step(closure)
        >>> bool((x - 1).abs().max() < 1e-6)  # the minimum (1, 1)
        True
    """

    capabilities = Capabilities(needs_fixed_batch=True, second_order=True)

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        c1: float = 1e-4,
        c2: float = 0.9,
        max_eval: int = 30,
        memory_mb: float = 1024.0,
    ) -> None:
        check_positive("lr", lr)
        check_search_constants(c1, c2)
        check_int("max_eval", max_eval, low=1)
        check_positive("memory_mb", memory_mb)
        super().__init__(
            params, dict(lr=lr, c1=c1, c2=c2, max_eval=max_eval, memory_mb=memory_mb)
        )
        n = sum(p.numel() for g in self.param_groups for p in g["params"])
        dtype = self.param_groups[0]["params"][0].dtype
        need = n * n * dtype.itemsize
        if need > memory_mb * 2**20:
            raise ValueError(
                f"BFGS keeps a dense {n} x {n} inverse-Hessian approximation "
                f"({need / 2**20:,.0f} MiB in {str(dtype).removeprefix('torch.')}), more than "
                f"memory_mb={memory_mb:g}; use method 'lbfgs' (descend.optim.LBFGS), which keeps "
                "10 pairs of vectors (O(n) memory), or raise memory_mb"
            )

    def _init_buffers(self, state: dict[str, Any], n: int) -> None:
        flat = self._flat
        state["inverse_hessian"] = torch.eye(n, dtype=flat.dtype, device=flat.device)
        state["hy"] = flat.empty()
        state["s"] = flat.empty()
        state["y"] = flat.empty()
        state["updates"] = 0
        state["skipped"] = 0

    def _reset(self, state: dict[str, Any]) -> None:
        h = state["inverse_hessian"]
        h.zero_()
        h.diagonal().fill_(1.0)
        state["updates"] = 0

    def _direction(self, state: dict[str, Any], g: Tensor, d: Tensor) -> bool:
        if state["updates"] == 0:
            torch.neg(g, out=d)
            return False
        torch.mv(state["inverse_hessian"], g, out=d)
        d.neg_()
        return True

    def _accept(
        self,
        state: dict[str, Any],
        g: Tensor,
        g_new: Tensor,
        d: Tensor,
        dphi0: float,
        res: LineSearchResult,
    ) -> None:
        t = res.t
        if not t * (res.dphi - dphi0) > self._flat.eps * t * -dphi0:
            state["skipped"] += 1
            return
        h, hy, s, y = state["inverse_hessian"], state["hy"], state["s"], state["y"]
        torch.mul(d, t, out=s)
        torch.sub(g_new, g, out=y)
        ys, yy = (torch.dot(y, s), torch.dot(y, y))
        if state["updates"] == 0:
            ys_f, yy_f = ys.item(), yy.item()
            if not (ys_f > 0 and yy_f > 0):
                state["skipped"] += 1
                return
            h.zero_()
            h.diagonal().fill_(ys_f / yy_f)
        torch.mv(h, y, out=hy)
        ys_f, yhy = ys.item(), torch.dot(y, hy).item()
        if not (ys_f > 0 and yhy > 0 and yhy < float("inf")):
            state["skipped"] += 1
            return
        rho = 1.0 / ys_f
        w = hy.mul_(-rho).add_(s, alpha=0.5 * (rho * rho * yhy + rho))
        h.addr_(s, w)
        h.addr_(w, s)
        state["updates"] += 1
