"""What an update rule is, declared once by the rule and read by every front end.

``minimize``, ``fit``, ``multistart`` and the estimators ask an optimizer what it can do
instead of keeping lists of names: whether K independent problems stacked as rows of one
tensor follow their own iterates (elementwise), whether every evaluation of a step must see
the same batch (line searches, trust regions), whether ``weight_decay`` is the gradient of
an L2 term, whether the rule uses curvature, and whether a proximal step follows the update.

Each ``descend.optim`` class declares ``capabilities = Capabilities(...)``; a wrapper such
as :class:`~descend.optim.ProximalL1` declares it per instance (the inner rule's, with
``proximal=True``). For ``torch.optim``'s classes, which declare nothing, one table below
answers. Subclasses inherit their base's answer; a class that is neither ours nor torch's
gets every flag False, the answer that promises nothing.

Example:
    >>> capabilities(descend.optim.LBFGS).needs_fixed_batch
    True
    >>> capabilities(torch.optim.AdamW(model.parameters())).couples_weight_decay
    False
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch


@dataclass(frozen=True)
class Capabilities:
    """What an update rule does, as the front ends need to know it.

    Attributes:
        elementwise: each coordinate's step depends on that coordinate alone, so K
            independent problems stacked as rows of one tensor follow their own iterates.
        needs_fixed_batch: the step re-evaluates the closure at trial points (line search,
            trust region), so every evaluation of one step must see the same batch.
        couples_weight_decay: ``weight_decay`` adds :math:`\\lambda\\theta` to the
            gradient, the gradient of :math:`\\frac{\\lambda}{2}\\|\\theta\\|^2` (AdamW's
            decoupled decay does not).
        second_order: the rule uses curvature (quasi-Newton, Hessian, Hessian-vector
            products, Fisher).
        proximal: a proximal step follows the update; the stationarity measure is then the
            proximal gradient mapping :math:`\\|x_k - x_{k+1}\\|_2 / \\eta`, not
            :math:`\\|\\nabla f(x_k)\\|_2`.
    """

    elementwise: bool = False
    needs_fixed_batch: bool = False
    couples_weight_decay: bool = False
    second_order: bool = False
    proximal: bool = False


#: the first-order rules of torch.optim: elementwise, weight decay as an L2 gradient
_ELEMENTWISE_COUPLED = Capabilities(elementwise=True, couples_weight_decay=True)

#: torch.optim's classes (they declare nothing themselves)
TORCH_CAPABILITIES: dict[type, Capabilities] = {
    torch.optim.SGD: _ELEMENTWISE_COUPLED,
    torch.optim.Adam: _ELEMENTWISE_COUPLED,
    torch.optim.AdamW: Capabilities(elementwise=True),
    torch.optim.Adagrad: _ELEMENTWISE_COUPLED,
    torch.optim.RMSprop: _ELEMENTWISE_COUPLED,
    torch.optim.Adamax: _ELEMENTWISE_COUPLED,
    torch.optim.NAdam: _ELEMENTWISE_COUPLED,
    torch.optim.RAdam: _ELEMENTWISE_COUPLED,
    torch.optim.Adadelta: _ELEMENTWISE_COUPLED,
    torch.optim.ASGD: _ELEMENTWISE_COUPLED,
    torch.optim.Rprop: Capabilities(elementwise=True),  # no weight_decay
    torch.optim.SparseAdam: Capabilities(elementwise=True),  # no weight_decay
    # the step of a coordinate depends on its tensor's RMS; decoupled decay
    torch.optim.Adafactor: Capabilities(),
    # orthogonalizes whole matrices; decoupled decay
    torch.optim.Muon: Capabilities(),
    torch.optim.LBFGS: Capabilities(needs_fixed_batch=True, second_order=True),
}


def capabilities(optimizer_or_class: Any) -> Capabilities:
    """The :class:`Capabilities` of an optimizer instance or class.

    Read from the ``capabilities`` attribute where the class (or, for wrappers, the
    instance) declares one; otherwise from :data:`TORCH_CAPABILITIES` for ``torch.optim``'s
    classes and their subclasses; otherwise every flag is False. An instance built with
    ``decoupled_weight_decay=True`` (torch's Adam, NAdam and RAdam, descend's NAdam and
    RAdam) does not couple its decay.

    Example:
        >>> capabilities(descend.optim.Adam).elementwise
        True
    """
    is_class = isinstance(optimizer_or_class, type)
    found = getattr(optimizer_or_class, "capabilities", None)
    if not isinstance(found, Capabilities):
        cls = optimizer_or_class if is_class else type(optimizer_or_class)
        mro = cls.__mro__
        found = next((TORCH_CAPABILITIES[c] for c in mro if c in TORCH_CAPABILITIES), None)
    if found is None:
        return Capabilities()
    if not is_class and found.couples_weight_decay:
        groups = getattr(optimizer_or_class, "param_groups", ())
        if any(group.get("decoupled_weight_decay") for group in groups):
            return replace(found, couples_weight_decay=False)
    return found
