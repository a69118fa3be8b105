"""Limited-memory BFGS with a strong Wolfe line search."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from descend.constraints import as_constraint
from descend.optim.capabilities import Capabilities
from descend.optim.lbfgs_bounds import BoundedIteration
from descend.optim.line_search_optimizer import LineSearchOptimizer
from descend.optim.linesearch import LINE_SEARCHES, LineSearchResult, check_search_constants
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
        H_k g = \gamma g + W^\top N\, W g,\qquad
        W = \begin{bmatrix} S \\ Y \end{bmatrix},\qquad
        N = \begin{bmatrix} R^{-\top}(D + \gamma Y Y^\top) R^{-1} & -\gamma R^{-\top} \\
        -\gamma R^{-1} & 0 \end{bmatrix},

    where :math:`S, Y` hold the pairs as rows, :math:`R` is the upper triangle of
    :math:`S Y^\top` (:math:`R_{ij} = s_i^\top y_j`, :math:`i \le j` in the order the pairs
    were made) and :math:`D` its diagonal. In exact arithmetic this equals the two-loop
    recursion. The direction costs three kernels whatever ``m`` is (:math:`Wg`, the
    ``2m x 2m`` product with :math:`N`, and :math:`W^\top(\cdot)` fused with
    :math:`-\gamma g`), where the two-loop recursion launches ~6m small ones with a host
    synchronization each in torch. :math:`W` is a preallocated ``(2m, n)`` ring buffer;
    :math:`R^{-1}` is kept in the ring's slot order, which needs no reordering:
    permuting the pairs conjugates :math:`R` by a permutation, and :math:`N` along with it.
    A new pair appends a column to :math:`R^{-1}`
    (:math:`-R^{-1} r / \rho` above :math:`1/\rho`, with :math:`r_i = s_i^\top y`,
    :math:`\rho = s^\top y`) and dropping the oldest pair drops its row and column, both
    exact block formulas for the inverse of a triangular matrix. The new inner products
    :math:`W s, W y` come from the same pass over :math:`W` as the next :math:`W g` (one
    ``(3, n) x (n, 2m)`` product), so an iteration reads the history twice.

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
        bounds: a feasible set (anything :func:`descend.constraints.as_constraint` takes:
            ``(low, high)`` pairs over the flattened parameters, ``"nonnegative"``,
            ``"simplex"``, a ``Box``). The parameters are projected onto it here, and every
            iterate stays in it: on a box by a two-metric projected L-BFGS step (L-BFGS-B's
            matrix on the free variables, a search on the feasible segment or the
            projection arc), on another set by spectral projected gradient; see
            :mod:`descend.optim.lbfgs_bounds`. None: unconstrained.

    Example:
        >>> x = rosenbrock.x0().requires_grad_()  # float64 (-1.2, 1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = rosenbrock(x)
        ...     loss.backward()
        ...     return loss
        >>> opt = descend.optim.LBFGS([x])
        >>> for _ in range(100):
        ...     loss = opt.step(closure)
        >>> bool((x - 1).abs().max() < 1e-6)  # the minimum (1, 1)
        True
    """

    capabilities = Capabilities(needs_fixed_batch=True, second_order=True)

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
        bounds: Any = None,
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
        self._cached_views: _Views | None = None
        constraint = as_constraint(bounds)
        self._bounded = (
            None if constraint is None else BoundedIteration(constraint, self._flat, history_size)
        )
        if constraint is not None:
            self._flat.assign(constraint.project(self._flat.gather()))

    # -- the memory -----------------------------------------------------------------------

    def _init_buffers(self, state: dict[str, Any], n: int) -> None:
        state["skipped"] = 0  # updates skipped for s'y <= eps t |g'd|
        if self._bounded is not None:  # its own memory, in the direct compact form
            self._bounded.init_buffers(state)
            return
        m = self.param_groups[0]["history_size"]
        flat = self._flat
        like: dict[str, Any] = dict(dtype=flat.dtype, device=flat.device)
        state["memory"] = torch.zeros(2 * m, n, **like)  # W: rows s_0..s_{m-1}, y_0..y_{m-1}
        state["probe"] = torch.zeros(3, n, **like)  # g, and the pair not yet in the Gram
        state["gram"] = torch.zeros(2 * m, 2 * m, **like)  # W W', ring order
        state["rinv"] = torch.zeros(m, m, **like)  # R^{-1}, ring order, 0 for empty slots
        state["middle"] = torch.zeros(2 * m, 2 * m, **like)  # N
        state["coef"] = torch.zeros(2 * m, **like)  # N W g
        state["head"] = 0  # slot of the next pair
        state["count"] = 0  # pairs stored
        state["pending"] = False  # a pair is in W[head] but not yet in the Gram, R^-1, N
        state["gamma"] = 1.0

    def _iterate(
        self, closure: Callable[[], Tensor], state: dict[str, Any], f: float, budget: int
    ) -> LineSearchResult:
        if self._bounded is None:
            return super()._iterate(closure, state, f, budget)
        return self._bounded.iterate(closure, state, f, budget, self.param_groups[0])

    def _reset(self, state: dict[str, Any]) -> None:
        for key in ("memory", "gram", "rinv", "middle"):
            state[key].zero_()
        state["head"] = state["count"] = 0
        state["pending"] = False
        state["gamma"] = 1.0

    def _views(self, state: dict[str, Any]) -> _Views:
        views = getattr(self, "_cached_views", None)
        if views is None or views.memory is not state["memory"] or views.rinv is not state["rinv"]:
            views = self._cached_views = _Views(state)
        return views

    def _direction(self, state: dict[str, Any], g: Tensor, d: Tensor) -> bool:
        pending = state["pending"]
        if state["count"] == 0 and not pending:
            torch.neg(g, out=d)
            return False
        v = self._views(state)
        v.probe_g.copy_(g)
        # one pass over the history gives W g and, for a new pair, W s and W y
        if pending:
            torch.mm(v.probe, v.memory_t, out=v.products)
            if not self._absorb(state, v):
                torch.mv(v.memory, v.probe_g, out=v.wg)  # the pair was dropped
        else:
            torch.mv(v.memory, v.probe_g, out=v.wg)
        if state["count"] == 0:
            torch.neg(g, out=d)
            return False
        torch.mv(v.middle, v.wg, out=v.coef)
        torch.addmv(g, v.memory_t, v.coef, beta=-state["gamma"], alpha=-1.0, out=d)
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
        """Store s = t d and y = g_new - g when s'y > eps t |g'd| (L-BFGS-B's rule, eps
        the machine epsilon), else count the update as skipped."""
        t = res.t
        if not t * (res.dphi - dphi0) > self._flat.eps * t * -dphi0:
            state["skipped"] += 1
            return
        self._store(state, g, g_new, d, t)

    def _store(self, state: dict[str, Any], g: Tensor, g_new: Tensor, d: Tensor, t: float) -> None:
        """Put s = t d and y = g_new - g in slot ``head``; the Gram matrix, R^{-1} and N
        take them in at the next direction, from the same pass over W as W g."""
        v = self._views(state)
        j = state["head"]
        if state["count"] == v.m:  # the oldest pair leaves slot j
            v.rinv_rows[j].zero_()
            v.rinv_cols[j].zero_()
            state["count"] -= 1
        torch.mul(d, t, out=v.probe_s)
        torch.sub(g_new, g, out=v.probe_y)
        v.s_rows[j].copy_(v.probe_s)
        v.y_rows[j].copy_(v.probe_y)
        state["pending"] = True

    def _absorb(self, state: dict[str, Any], v: _Views) -> bool:
        """Take the pair in slot ``head`` into the Gram matrix, R^{-1} and N, from
        ``v.cross`` = (s'W', y'W'); False if rounding made it useless (it is dropped)."""
        state["pending"] = False
        m, j = v.m, state["head"]
        slots = v.slots[j]
        v.gram.index_copy_(0, slots, v.cross)
        v.gram.index_copy_(1, slots, v.cross_t)
        s_y, y_y = v.new_pair_products[j].tolist()
        accepted = 0 < s_y < math.inf and 0 < y_y < math.inf
        if not accepted:
            v.s_rows[j].zero_()
            v.y_rows[j].zero_()
            v.gram.index_fill_(0, slots, 0.0)
            v.gram.index_fill_(1, slots, 0.0)
            state["skipped"] += 1
        else:
            # column j of R^{-1}: -R^{-1} r / rho above 1 / rho (row and column j are zero)
            column = torch.addmv(v.units[j], v.rinv, v.y_s, beta=1 / s_y, alpha=-1 / s_y)
            v.rinv_cols[j].copy_(column)
            state["gamma"] = s_y / y_y
            state["head"] = (j + 1) % m
            state["count"] += 1
        gamma = state["gamma"]
        torch.mul(v.yy, gamma, out=v.inner)  # gamma Y Y'
        v.inner_diag.add_(v.sy_diag)  # + D
        torch.mm(v.rinv_t, torch.mm(v.inner, v.rinv), out=v.n11)
        torch.mul(v.rinv_t, -gamma, out=v.n12)
        torch.mul(v.rinv, -gamma, out=v.n21)
        return accepted


class _Views:
    """Views into the L-BFGS state, made once per set of buffers (not per iteration)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.memory, self.gram = state["memory"], state["gram"]
        self.rinv, self.middle = state["rinv"], state["middle"]
        self.probe, self.coef = state["probe"], state["coef"]
        m = self.m = self.rinv.shape[0]
        w, gram, rinv, middle = self.memory, self.gram, self.rinv, self.middle
        self.memory_t = w.T
        self.probe_g, self.probe_s, self.probe_y = self.probe
        self.products = torch.zeros(3, 2 * m, dtype=w.dtype, device=w.device)
        self.wg = self.products[0]  # W g
        self.cross = self.products[1:]  # s'W', y'W'
        self.cross_t = self.cross.T
        self.y_s = self.products[2, :m]  # y . s_i
        self.new_pair_products = [self.products[1:, m + j] for j in range(m)]  # s'y, y'y
        self.s_rows = list(w[:m])
        self.y_rows = list(w[m:])
        self.slots = [torch.tensor([j, m + j], device=w.device) for j in range(m)]
        self.units = list(torch.eye(m, dtype=w.dtype, device=w.device))
        self.rinv_t = rinv.T
        self.rinv_rows = list(rinv)
        self.rinv_cols = list(self.rinv_t)
        self.yy = gram[m:, m:]
        self.sy_diag = gram[:m, m:].diagonal()
        self.inner = torch.empty_like(rinv)
        self.inner_diag = self.inner.diagonal()
        self.n11, self.n12 = middle[:m, :m], middle[:m, m:]
        self.n21 = middle[m:, :m]
