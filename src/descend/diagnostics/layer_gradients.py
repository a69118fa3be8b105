"""Vanishing and exploding gradients across the layers of a network."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from descend.diagnostics.diagnosis import Diagnosis, Severity
from descend.diagnostics.monitor import Monitor
from descend.validation import check_int, check_number


def parameter_layers(model: nn.Module) -> list[tuple[str, list[Tensor]]]:
    """The modules of ``model`` that own trainable parameters, in registration order.

    For ``nn.Sequential`` and most hand-written networks registration order is the order
    of the forward pass, from the input to the output.
    """
    layers = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own:
            layers.append((name or type(module).__name__, own))
    return layers


class LayerGradientMonitor(Monitor):
    r"""Reports gradients that shrink or grow geometrically from the output to the input.

    Every ``every`` steps it takes each parametrized layer's gradient RMS
    :math:`\rho_l = \|\nabla_{W_l} f\| / \sqrt{|W_l|}` (one host synchronization for all
    layers) and the ratio :math:`\rho_\text{first}/\rho_\text{last}` of the layer nearest
    the input to the one nearest the output. Backpropagation multiplies the gradient by
    each layer's Jacobian, :math:`\approx \sigma'\,\|W\|` per layer (at most 1/4 for a
    sigmoid), so the ratio is geometric in depth. Below ``vanishing`` the first layers
    barely learn; above ``exploding`` (or non-finite) updates there are unstable. It
    reports after ``patience`` checks in a row.

    Args:
        model: the network (bound by ``fit``; pass it when you run the loop yourself).
        every: check interval in steps, an integer >= 1.
        vanishing: ratio below which gradients vanish, in (0, 1).
        exploding: ratio above which gradients explode, > 1.
        patience: consecutive checks needed, an integer >= 1.

    Example:
        >>> monitor = LayerGradientMonitor(deep_sigmoid_net)
        >>> fit(deep_sigmoid_net, "mse", (X, y), monitors=[monitor])
        >>> monitor.diagnoses[0].kind
        'vanishing_gradients'
    """

    kinds = ("vanishing_gradients", "exploding_gradients")

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        every: int = 20,
        vanishing: float = 1e-3,
        exploding: float = 1e3,
        patience: int = 2,
    ) -> None:
        super().__init__(every=every)
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.vanishing = check_number(
            "vanishing", vanishing, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.exploding = check_number("exploding", exploding, low=1.0, low_open=True)
        self.patience = check_int("patience", patience, low=1)

    def begin(self, result: Any) -> None:
        self.layers = parameter_layers(self.model) if self.model is not None else []
        self.streak: dict[str, int] = {"vanishing_gradients": 0, "exploding_gradients": 0}
        self.last: list[float] = []

    def watch(self, nit: int) -> int:
        if len(self.layers) >= 2:
            self._check(nit)
        return self.next_multiple(nit)

    def _check(self, nit: int) -> None:
        grads: list[Tensor] = []
        owners: list[int] = []
        for i, (_, params) in enumerate(self.layers):
            for p in params:
                if p.grad is not None:
                    grads.append(p.grad.detach())
                    owners.append(i)
        if len(set(owners)) < len(self.layers):
            return  # some layer has no gradient yet (or is frozen): nothing to compare
        with torch.no_grad():
            norms = torch.stack(torch._foreach_norm(grads)).double().cpu().tolist()
        squares = [0.0] * len(self.layers)
        for owner, norm in zip(owners, norms):
            squares[owner] += norm * norm
        sizes = [sum(p.numel() for p in params) for _, params in self.layers]
        rms = [math.sqrt(sq / n) for sq, n in zip(squares, sizes)]
        self.last = rms
        first, last = rms[0], rms[-1]
        if not all(math.isfinite(r) for r in rms):
            ratio = math.inf
        elif last > 0:
            ratio = first / last
        else:
            ratio = math.inf if first > 0 else 1.0
        vanishing = ratio < self.vanishing
        exploding = ratio > self.exploding
        for kind, flag in (("vanishing_gradients", vanishing), ("exploding_gradients", exploding)):
            self.streak[kind] = self.streak[kind] + 1 if flag else 0
            if self.streak[kind] >= self.patience:
                self._report(kind, nit, ratio, rms)

    def _report(self, kind: str, nit: int, ratio: float, rms: list[float]) -> None:
        names = [name for name, _ in self.layers]
        depth = len(rms) - 1
        decades = math.log10(ratio) / depth if 0 < ratio < math.inf else math.nan
        evidence: dict[str, float] = {
            "first_to_last_ratio": ratio,
            "layers": len(rms),
            "decades_per_layer": decades,
        }
        for name, value in zip(names, rms):
            evidence[f"grad_rms[{name}]"] = value
        if kind == "vanishing_gradients":
            message = (
                f"the gradient shrinks {1 / ratio:.3g}x from the last layer ({names[-1]}, RMS "
                f"{rms[-1]:.3g}) to the first ({names[0]}, RMS {rms[0]:.3g}) over {len(rms)} "
                f"layers ({-decades:.2g} decades per layer): the first layers barely learn"
            )
            suggestion = (
                "use activations that do not saturate (ReLU, GELU instead of sigmoid/tanh), "
                "residual connections, normalization layers (LayerNorm, BatchNorm), a "
                "variance-preserving init (Kaiming for ReLU, Xavier for tanh), or fewer layers"
            )
        else:
            message = (
                f"the gradient grows {ratio:.3g}x from the last layer ({names[-1]}, RMS "
                f"{rms[-1]:.3g}) to the first ({names[0]}, RMS {rms[0]:.3g}) over {len(rms)} "
                "layers: updates of the first layers are unstable"
            )
            suggestion = (
                "clip gradients (torch.nn.utils.clip_grad_norm_), lower the learning rate, "
                "scale the initial weights down (Xavier/Kaiming), or add normalization layers"
            )
        self.report(
            Diagnosis(
                kind=kind,
                severity=Severity.WARNING,
                step=nit,
                message=message,
                evidence=evidence,
                suggestion=suggestion,
            )
        )

    def __repr__(self) -> str:
        model = type(self.model).__name__ if self.model is not None else None
        return f"LayerGradientMonitor(model={model}, every={self.every})"
