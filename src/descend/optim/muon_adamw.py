"""Muon for a whole network: Muon on the hidden weight matrices, AdamW on the rest, as one
optimizer with one state_dict."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from descend.optim.adam import adam_update
from descend.optim.capabilities import Capabilities
from descend.optim.muon import NS_COEFFICIENTS, check_matrices, check_options, muon_update
from descend.optim.optimizer import Optimizer, check_betas
from descend.validation import check_non_negative, check_positive


def muon_groups(model: nn.Module) -> list[dict[str, Any]]:
    """``model``'s trainable parameters as two groups: ``use_muon=True`` for the hidden
    weight matrices, ``use_muon=False`` for the rest.

    Hidden weight matrices are the 2-D parameters of every module except ``nn.Embedding``
    layers and the last ``nn.Linear`` (the output head), as Muon's authors split a network;
    biases, norms, embeddings, the head and convolution kernels go to AdamW.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    outside = {
        id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()
    }
    if linears:
        outside |= {id(p) for p in linears[-1].parameters()}
    hidden: list[Tensor] = []
    rest: list[Tensor] = []
    for p in model.parameters():
        if p.requires_grad:
            (hidden if p.ndim == 2 and id(p) not in outside else rest).append(p)
    return [{"params": hidden, "use_muon": True}, {"params": rest, "use_muon": False}]


class MuonWithAdamW(Optimizer):
    r"""Muon on the groups marked ``use_muon=True``, AdamW on the others: the split Muon
    is meant to be used with, in one optimizer (one ``step``, one ``state_dict``, one
    scheduler).

    A Muon group steps as :class:`~descend.optim.Muon` (``lr``, ``momentum``,
    ``nesterov``, ``ns_coefficients``, ``ns_steps``, ``adjust_lr_fn``, ``weight_decay``,
    state ``momentum_buffer``); an AdamW group steps as :class:`~descend.optim.AdamW`
    (``lr``, ``betas``, ``eps``, ``weight_decay``, state ``exp_avg``, ``exp_avg_sq``),
    from the ``adamw_*`` arguments unless the group sets its own. Pass
    :func:`muon_groups` of a model to split it the usual way.

    Args:
        params: parameter groups, each with ``use_muon`` (default False); Muon's must hold
            2-D parameters only.
        lr: Muon's learning rate, >= 0.
        momentum: Muon's :math:`\mu \in [0, 1)`.
        nesterov: Muon's look-ahead.
        ns_coefficients: the Newton-Schulz quintic's :math:`(a, b, c)`.
        ns_steps: Newton-Schulz steps, >= 0.
        adjust_lr_fn: Muon's shape factor, None, ``"original"`` or ``"match_rms_adamw"``.
        weight_decay: Muon's decoupled decay, >= 0.
        adamw_lr: AdamW's learning rate, >= 0.
        adamw_betas: AdamW's :math:`(\beta_1, \beta_2)`, each in [0, 1).
        adamw_eps: AdamW's :math:`\epsilon > 0`.
        adamw_weight_decay: AdamW's decoupled decay, >= 0.
        maximize: ascend instead of descend.

    Example:
        >>> opt = descend.optim.MuonWithAdamW(descend.optim.muon_groups(model), lr=0.02)
    """

    capabilities = Capabilities()

    def __init__(
        self,
        params: Any,
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        weight_decay: float = 0.0,
        adamw_lr: float = 3e-4,
        adamw_betas: tuple[float, float] = (0.9, 0.95),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        check_options(lr, weight_decay, momentum, ns_coefficients, 1e-7, ns_steps, adjust_lr_fn)
        check_non_negative("adamw_lr", adamw_lr)
        check_positive("adamw_eps", adamw_eps)
        check_non_negative("adamw_weight_decay", adamw_weight_decay)
        self._muon = dict(
            lr=lr,
            momentum=momentum,
            nesterov=bool(nesterov),
            ns_coefficients=tuple(ns_coefficients),
            eps=1e-7,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
            weight_decay=weight_decay,
        )
        self._adamw = dict(
            lr=adamw_lr,
            betas=check_betas(adamw_betas),
            eps=adamw_eps,
            weight_decay=adamw_weight_decay,
            amsgrad=False,
        )
        super().__init__(params, dict(use_muon=False, maximize=bool(maximize)))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        kind = self._muon if param_group.get("use_muon") else self._adamw
        super().add_param_group({**kind, **param_group})
        if self.param_groups[-1]["use_muon"]:
            check_matrices(self.param_groups[-1]["params"])

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        if group["use_muon"]:
            return ("momentum_buffer",)
        return ("exp_avg", "exp_avg_sq")

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        if group["use_muon"]:
            muon_update(group, lists)
        else:
            adam_update(group, step, lists, decoupled=True)
