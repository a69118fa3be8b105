"""Limited-memory BFGS with a strong Wolfe line search."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from descend.optim.linesearch import (
    LINE_SEARCHES,
    LineSearchOptimizer,
    LineSearchResult,
    check_search_constants,
)
from descend.validation import check_choice, check_int, check_non_negative, check_positive


class LBFGS(LineSearchOptimizer):
    r"""L-BFGS: a quasi-Newton direction from the last ``history_size`` steps.

    With the pairs :math:`s_i = x_{i+1} - x_i`, :math:`y_i = g_{i+1} - g_i`
    (:math:`i = k-m, \dots, k-1`), the direction is :math:`d_k = -H_k g_k`, where
    :math:`H_k` is what BFGS updates would build from :math:`H^0_k = \gamma_k I`,
    :math:`\gamma_k = s_{k-1}^\top y_{k-1} / y_{k-1}^\top y_{k-1}` (Nocedal & Wright,
    Numerical Optimization, 2nd ed., Algorithm 7.4 and eq. 7.20). :math:`H_k g_k` is computed
    in the compact form of Byrd, Nocedal & Schnabel (1994), not by the two-loop recursion:

    .. math::
        H_k g = \gamma g + S a - \gamma Y u,\qquad
        u = R^{-1} S^\top g,\qquad
        a = R^{-\top}\big((D + \gamma Y^\top Y) u - \gamma Y^\top g\big),

    where :math:`S, Y` hold the pairs as rows, :math:`R` is the upper triangle of
    :math:`S^\top Y` and :math:`D` its diagonal. In exact arithmetic this equals the two-loop
    recursion; it costs two matrix-vector products with the ``(2m, n)`` history and two
    ``m x m`` triangular solves, a fixed dozen kernels whatever ``m`` is, where the two-loop
    recursion launches ~6m small kernels. The history is a preallocated ring buffer; the
    small matrices :math:`S^\top Y`, :math:`Y^\top Y` are updated by one product per step.

    The step length comes from a strong Wolfe line search (``c2 = 0.9``) trying ``t = lr``
    first; the first iteration, and any after a reset, tries a step of length ``lr``
    (:math:`t_0 =` ``lr`` :math:`/\|g\|_2`, as SciPy's L-BFGS-B does). A pair is stored only
    when :math:`s^\top y > \epsilon\, t\, |g^\top d|` (machine :math:`\epsilon`; the rule of
    L-BFGS-B), which the Wolfe curvature condition guarantees; otherwise the update is
    skipped. When the direction is not a descent direction, or the search along it finds no
    lower f (NaN or inf along the line), the memory is reset and the iteration retried along
    :math:`-g`; if that fails too, :class:`~descend.optim.StepFailed` ends the run at the
    best point.

    **One step() is one iteration** (by default ``max_iter=1``), unlike
    ``torch.optim.LBFGS``, whose ``step`` runs up to ``max_iter=20`` iterations: the descent
    loop of :func:`descend.minimize` gives the iteration budget, and counts, records and
    tests every iteration. Pass ``max_iter=20`` for torch's behaviour; ``tolerance_grad``
    and ``tolerance_change`` then end the inner iterations early, as in torch. Other
    differences from torch: the default line search is ``"strong_wolfe"`` (torch: ``None``),
    ``history_size`` defaults to 10 (torch: 100), and ``max_eval`` defaults to
    ``30 * max_iter`` since every iteration may need a few evaluations.

    Args:
        params: parameters (one group, one dtype and device).
        lr: first trial step of each line search (fixed step without one), > 0.
        max_iter: iterations per ``step()``, >= 1.
        max_eval: closure evaluations per ``step()``, >= 1 (None: 30 per iteration).
        tolerance_grad: end ``step()`` early when :math:`\max_i |g_i| \le` this (0: off).
        tolerance_change: end ``step()`` early when f or x changes less than this (0: off).
        history_size: number of pairs kept, m >= 1.
        line_search_fn: ``"strong_wolfe"``, ``"backtracking"`` (Armijo) or None (fixed step
            ``lr``, the first one scaled by :math:`\min(1, 1/\|g\|_1)` as in torch).
        c1: sufficient-decrease constant in (0, 1).
        c2: curvature constant in (c1, 1).

    Example:
        >>> opt = descend.optim.LBFGS([x])
        >>> for _ in range(100):
        ...     opt.step(closure)  # closure: zero_grad, loss, backward, return loss
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        max_iter: int = 1,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 10,
        line_search_fn: str | None = "strong_wolfe",
        c1: float = 1e-4,
        c2: float = 0.9,
    ) -> None:
        check_positive("lr", lr)
        check_int("max_iter", max_iter, low=1)
        if max_eval is not None:
            check_int("max_eval", max_eval, low=1)
        check_non_negative("tolerance_grad", tolerance_grad)
        check_non_negative("tolerance_change", tolerance_change)
        check_int("history_size", history_size, low=1)
        check_choice("line_search_fn", line_search_fn, (*LINE_SEARCHES, None))
        check_search_constants(c1, c2)
        defaults = dict(
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
        super().__init__(params, defaults)

    # -- the memory -----------------------------------------------------------------------

    def _init_buffers(self, state: dict[str, Any], n: int) -> None:
        m = self.param_groups[0]["history_size"]
        flat = self._flat
        small = dict(dtype=flat.dtype, device=flat.device)
        state["memory"] = torch.zeros(2 * m, n, **small)  # rows: s_0..s_{m-1}, y_0..y_{m-1}
        state["sy"] = torch.zeros(m, m, **small)  # s_i . y_j, ring order
        state["yy"] = torch.zeros(m, m, **small)  # y_i . y_j, ring order
        state["r"] = torch.eye(m, **small)  # triu(S'Y), chronological, eye where unused
        state["m1"] = torch.zeros(m, m, **small)  # D + gamma Y'Y, chronological
        state["head"] = 0  # slot of the next pair
        state["count"] = 0  # pairs stored
        state["gamma"] = 1.0
        state["skipped"] = 0  # updates skipped for s'y <= eps t |g'd|

    def _reset(self, state: dict[str, Any]) -> None:
        for key in ("memory", "sy", "yy", "m1"):
            state[key].zero_()
        state["r"].copy_(torch.eye(state["r"].shape[0], dtype=state["r"].dtype))
        state["head"] = state["count"] = 0
        state["gamma"] = 1.0

    def _direction(self, state: dict[str, Any], g: Tensor, d: Tensor) -> bool:
        count = state["count"]
        if count == 0:
            torch.neg(g, out=d)
            return False
        memory, r, gamma = state["memory"], state["r"], state["gamma"]
        m = r.shape[0]
        oldest = (state["head"] - count) % m
        pq = torch.mv(memory, g).view(2, m)  # S g, Y g
        if oldest:
            pq = pq.roll(-oldest, 1)
        u = torch.linalg.solve_triangular(r, pq[0].unsqueeze(1), upper=True)
        rhs = torch.addmm(pq[1].unsqueeze(1), state["m1"], u, beta=-gamma)
        a = torch.linalg.solve_triangular(r.mT, rhs, upper=False)
        coef = torch.cat((a, u.mul_(-gamma)), dim=1).T  # (2, m): rows for S and Y
        if oldest:
            coef = coef.roll(oldest, 1)
        torch.addmv(g, memory.T, coef.reshape(-1), beta=-gamma, alpha=-1.0, out=d)
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
        eps = self._flat.eps
        if not t * (res.dphi - dphi0) > eps * t * -dphi0:
            state["skipped"] += 1
            return
        memory, sy, yy = state["memory"], state["sy"], state["yy"]
        m = sy.shape[0]
        j = state["head"]
        torch.mul(d, t, out=memory[j])
        torch.sub(g_new, g, out=memory[m + j])
        cross = torch.mm(memory, memory[j::m].T)  # (2m, 2): [S s, S y; Y s, Y y]
        sy[:, j] = cross[:m, 1]
        sy[j, :] = cross[m:, 0]
        yy[:, j] = cross[m:, 1]
        yy[j, :] = cross[m:, 1]
        s_y, y_y = cross[m + j].tolist()
        if not (s_y > 0 and y_y > 0 and s_y < float("inf") and y_y < float("inf")):
            # rounding made the stored pair useless: drop it (its slot becomes the free one)
            memory[j].zero_()
            memory[m + j].zero_()
            sy[:, j] = sy[j, :] = yy[:, j] = yy[j, :] = 0
            state["count"] = min(state["count"], m - 1)
            state["skipped"] += 1
        else:
            state["gamma"] = s_y / y_y
            state["head"] = (j + 1) % m
            state["count"] = min(state["count"] + 1, m)
        self._factor(state)

    def _factor(self, state: dict[str, Any]) -> None:
        """R = triu(S'Y) and M1 = D + gamma Y'Y in chronological order."""
        sy, yy, count = state["sy"], state["yy"], state["count"]
        m = sy.shape[0]
        oldest = (state["head"] - count) % m
        if oldest:
            sy = sy.roll((-oldest, -oldest), (0, 1))
            yy = yy.roll((-oldest, -oldest), (0, 1))
        r, m1 = state["r"], state["m1"]
        torch.triu(sy, out=r)
        if count < m:
            r.diagonal()[count:] = 1.0
        torch.mul(yy, state["gamma"], out=m1)
        m1.diagonal().add_(sy.diagonal())
