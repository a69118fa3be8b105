r"""The L1 proximal step as an optimizer wrapper: proximal gradient descent (ISTA).

For an objective :math:`F(w) = f(w) + \lambda_1\|w\|_1` with :math:`f` smooth, the L1 term
is not differentiable at 0 and a (sub)gradient step never lands exactly on a zero. The
proximal gradient step splits the two parts:

.. math::
    w_{k+1} = \operatorname{prox}_{\eta\lambda_1\|\cdot\|_1}\big(w_k - \eta\nabla f(w_k)\big),
    \qquad
    \operatorname{prox}_{\tau\|\cdot\|_1}(v) = \operatorname{sign}(v)\max(|v| - \tau, 0),

a gradient step on :math:`f`, then the proximal map of the L1 term: soft thresholding,
which sets every coordinate within :math:`\tau = \eta\lambda_1` of zero exactly to zero
(ISTA; Beck & Teboulle, SIAM J. Imaging Sci. 2009). With :math:`\eta \le 1/L`, :math:`L`
the Lipschitz constant of :math:`\nabla f` (:func:`~descend.optim.step_size.lipschitz_constant`),
:math:`F` decreases at every step and :math:`F(w_k) - F^\star \le L\|w_0 - w^\star\|^2/(2k)`.

:class:`ProximalL1` applies the proximal map after any first-order rule's step, with each
parameter group's current ``lr`` as :math:`\eta` (so every torch scheduler works): with
:class:`~descend.optim.SGD` it is ISTA on the full batch and proximal stochastic gradient
on mini-batches; with momentum or adaptive rules it is that rule's step followed by the
same map.

**Stationarity.** :math:`w^\star` minimizes :math:`F` exactly when
:math:`w^\star = \operatorname{prox}(w^\star - \eta\nabla f(w^\star))`, so the *proximal
gradient mapping*

.. math:: G_\eta(w_k) = (w_k - w_{k+1}) / \eta

is zero exactly at minimizers, and is :math:`\nabla f(w_k)` when :math:`\lambda_1 = 0`. Its
norm (:func:`proximal_gradient_mapping`) replaces the gradient norm in the stopping test
of a proximal run: ``capabilities(optimizer).proximal`` says so.

Example:
    >>> inner = descend.optim.SGD(model.parameters(), lr=0.1)
    >>> opt = ProximalL1(inner, l1=1.2, params=[model.weight])  # the bias is not penalized
    >>> for _ in range(200):
    ...     opt.zero_grad(); loss_fn(model(X), y).backward(); opt.step()
    >>> (model.weight == 0).tolist()  # y's smallest coefficient (0.5) is exactly zero
    [[False, False, True]]

    At the minimizer, :math:`\nabla f = -\lambda_1 \operatorname{sign}(w)` on the other two:

    >>> opt.zero_grad(); loss_fn(model(X), y).backward()
    >>> w, g = model.weight[0, :2], model.weight.grad[0, :2]
    >>> torch.allclose(g, -1.2 * w.sign(), atol=1e-4)
    True
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities, capabilities
from descend.validation import check_non_negative

#: the hook registries torch.optim.Optimizer's own methods read (register_*_hook, step)
_HOOK_REGISTRIES = (
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks",
    "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)


@torch.no_grad()
def soft_threshold_(params: list[Tensor], threshold: float | Tensor) -> None:
    r"""In place, :math:`w \leftarrow \operatorname{sign}(w)\max(|w| - \tau, 0)` for every
    tensor of ``params``, computed as :math:`w - \operatorname{clamp}(w, -\tau, \tau)`
    (exact zeros within :math:`\tau`; no Python loop over elements, no host sync).

    Args:
        params: the tensors to shrink.
        threshold: :math:`\tau \ge 0`, a float or a 0-d tensor (an ``lr`` kept as a tensor).
    """
    if not params:
        return
    if isinstance(threshold, Tensor):
        for p in params:
            tau = threshold.to(device=p.device, dtype=p.dtype)
            p.sub_(p.clamp(-tau, tau))
        return
    if threshold == 0:
        return
    clamped = torch._foreach_clamp_min(params, -threshold)
    torch._foreach_clamp_max_(clamped, threshold)
    torch._foreach_sub_(params, clamped)


class ProximalL1(torch.optim.Optimizer):
    r"""An optimizer followed by the L1 proximal step (soft thresholding by ``lr * l1``).

    ``step(closure)`` runs the inner optimizer's step, then, in each parameter group,
    :math:`w \leftarrow \operatorname{sign}(w)\max(|w| - \eta_g\lambda_g, 0)` with the
    group's current ``lr`` :math:`\eta_g` and strength :math:`\lambda_g` (the group's own
    ``"l1"`` entry where it has one, else ``l1``). See the module docstring for the math.

    The wrapper is the inner optimizer to everyone else: ``param_groups``, ``state`` and
    ``defaults`` are the inner's own objects (a scheduler that sets ``lr`` on the wrapper
    sets it on the inner), ``state_dict()`` is the inner's and ``load_state_dict`` takes
    either one's, and ``zero_grad``/``add_param_group`` go to the inner. Its
    :func:`~descend.optim.capabilities` are the inner's with ``proximal=True``.

    Args:
        optimizer: the inner rule, a ``torch.optim.Optimizer`` whose step does not
            re-evaluate the closure at trial points (a line search or trust region
            measures the smooth objective only and cannot take the L1 term).
        l1: the strength :math:`\lambda_1 \ge 0` of :math:`\lambda_1\|w\|_1`.
        params: the tensors to penalize (None: every parameter of the groups); biases are
            usually left out. A group with ``"l1": 0`` is skipped as well.

    Example:
        >>> opt = ProximalL1(descend.optim.SGD(model.parameters(), lr=0.1), l1=1e-3)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = loss_fn(model(X), y)
        ...     loss.backward()
        ...     return loss
        >>> w = model.weight.detach().clone()
        >>> loss = opt.step(closure)  # the SGD step, then soft thresholding by 0.1 * 1e-3
        >>> v = w - 0.1 * model.weight.grad
        >>> torch.allclose(model.weight, v.sign() * (v.abs() - 0.1 * 1e-3).clamp(min=0))
        True
    """

    capabilities = Capabilities(proximal=True)

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        l1: float,
        params: Iterable[Tensor] | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if isinstance(optimizer, ProximalL1):
            raise ValueError("optimizer is already a ProximalL1; give its inner optimizer")
        inner = capabilities(optimizer)
        if inner.needs_fixed_batch:
            raise ValueError(
                f"{type(optimizer).__name__} searches along a line or in a trust region on "
                "the smooth objective and cannot take an L1 penalty (applied by a proximal "
                "step); use a first-order rule (SGD, Adam, ...)"
            )
        self.optimizer = optimizer
        self.l1 = check_non_negative("l1", l1)
        self.penalized: list[Tensor] | None = None
        if params is not None:
            self.penalized = list(params)
            known = {id(p) for group in optimizer.param_groups for p in group["params"]}
            if any(id(p) not in known for p in self.penalized):
                raise ValueError(
                    "params holds tensors that the optimizer does not update; give a subset "
                    "of its parameters"
                )
        self.capabilities = replace(inner, proximal=True)
        # torch.optim.Optimizer.__init__ would build groups and state of its own; the
        # wrapper's are the inner optimizer's, so only the hook registries are set up
        for name in _HOOK_REGISTRIES:
            setattr(self, name, OrderedDict())
        self._patch_step_function()

    # -- the inner optimizer's groups, state and defaults are the wrapper's ----------------

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"ProximalL1({self.optimizer!r}, l1={self.l1:g})"

    def state_dict(self) -> dict[str, Any]:
        """The inner optimizer's state dict (the wrapper holds no state of its own)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of the inner optimizer (or of this wrapper: the same)."""
        self.optimizer.load_state_dict(state_dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)

    # -- the step ---------------------------------------------------------------------------

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """The inner optimizer's step, then the proximal step; returns the inner's loss."""
        loss = self.optimizer.step() if closure is None else self.optimizer.step(closure)
        self.prox()
        return loss

    @torch.no_grad()
    def prox(self) -> None:
        r"""Soft-threshold the penalized parameters of each group by
        :math:`\eta_g\lambda_g` (the group's ``lr`` and L1 strength)."""
        only = None if self.penalized is None else {id(p) for p in self.penalized}
        for group in self.param_groups:
            strength = group.get("l1", self.l1)
            if not strength:
                continue
            params = [p for p in group["params"] if only is None or id(p) in only]
            soft_threshold_(params, group["lr"] * strength)


@torch.no_grad()
def proximal_gradient_mapping(
    optimizer: torch.optim.Optimizer, previous: list[list[Tensor]]
) -> Tensor:
    r""":math:`\|G\|_2` with :math:`G_g = (w_k - w_{k+1})_g/\eta_g` over the parameter groups:
    the norm of the proximal gradient mapping, the stationarity measure of a proximal step
    (the gradient norm when nothing was thresholded and the step was plain gradient descent).

    Args:
        optimizer: the optimizer that just stepped; its parameters are :math:`w_{k+1}`.
        previous: :math:`w_k`, one list of tensors per parameter group, in its order.

    Returns:
        A 0-d tensor (no host synchronization).

    Example:
        With nothing thresholded it is the gradient norm:

        >>> opt = ProximalL1(descend.optim.SGD(model.parameters(), lr=0.1), l1=0.0)
        >>> loss_fn(model(X), y).backward()
        >>> before = [[p.detach().clone() for p in g["params"]] for g in opt.param_groups]
        >>> opt.step(); mapping = proximal_gradient_mapping(opt, before)
        >>> grad = torch.cat([p.grad.flatten() for p in model.parameters()])
        >>> torch.allclose(mapping, grad.norm())
        True
    """
    squares = []
    for group, old in zip(optimizer.param_groups, previous):
        if not group["params"]:
            continue
        moved = torch._foreach_sub(old, [p.detach() for p in group["params"]])
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(moved)))
        squares.append((norm / group["lr"]).square())
    if not squares:
        return torch.zeros(())
    return torch.stack(squares).sum().sqrt()
