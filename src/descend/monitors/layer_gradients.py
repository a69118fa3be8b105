"""Vanishing and exploding gradients across the layers of a network."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from descend.monitors.diagnosis import Diagnosis, Severity
from descend.monitors.monitor import Monitor
from descend.validation import check_int, check_number


def depth_ratio(rms: list[float]) -> float:
    r"""The input-side over output-side gradient size, from the trend across all layers.

    A least-squares line through :math:`\log_{10}\rho_l` against the layer index l gives
    the ratio :math:`10^{\hat y_0 - \hat y_{L-1}}` of the line's ends, so one odd layer (a
    narrow read-out, say) does not decide it. A first layer with exactly zero gradient
    while the last has some gives 0; a non-finite gradient gives inf.
    """
    if not all(math.isfinite(r) for r in rms):
        return math.inf
    if rms[0] == 0.0:
        return 0.0 if rms[-1] > 0 else 1.0
    points = [(i, math.log10(r)) for i, r in enumerate(rms) if r > 0]
    if len(points) < 2:
        return 1.0
    n = len(points)
    mean_i = sum(i for i, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((i - mean_i) ** 2 for i, _ in points)
    slope = sum((i - mean_i) * (v - mean_v) for i, v in points) / spread
    return 10.0 ** (-slope * (len(rms) - 1))


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
    layers), and the ratio of the input side to the output side, read off a least-squares
    line through :math:`\log\rho_l` against depth (:func:`depth_ratio`). Backpropagation
    multiplies the gradient by each layer's Jacobian, :math:`\approx \sigma'\,\|W\|` per
    layer (:math:`\sigma' \le 1/4` for a sigmoid), so the ratio is geometric in depth.
    Below ``vanishing`` the first layers barely learn; above ``exploding`` (or non-finite)
    updates there are unstable. It reports after ``patience`` checks in a row.

    Args:
        model: the network (bound by ``fit``; pass it when you run the loop yourself).
        every: check interval in steps, an integer >= 1.
        vanishing: ratio below which gradients vanish, in (0, 1).
        exploding: ratio above which gradients explode, > 1.
        patience: consecutive checks needed, an integer >= 1.

    Example:
        >>> layers = [m for _ in range(20) for m in (nn.Linear(3, 3), nn.Sigmoid())]
        >>> deep_sigmoid_net = nn.Sequential(*layers, nn.Linear(3, 1))
        >>> monitor = LayerGradientMonitor(deep_sigmoid_net, every=2)
        >>> res = fit(deep_sigmoid_net, "mse", (X, y), monitors=[monitor], progress=False)
        >>> monitor.diagnoses[0].kind
        'vanishing_gradients'
    """

    kinds = ("vanishing_gradients", "exploding_gradients")
    state = ("streak", "last")

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        every: int = 50,
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
        ratio = depth_ratio(rms)
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
            "input_to_output_ratio": ratio,
            "layers": len(rms),
            "decades_per_layer": decades,
        }
        for name, value in zip(names, rms):
            evidence[f"grad_rms[{name}]"] = value
        if kind == "vanishing_gradients":
            if ratio > 0:
                trend = (
                    f"shrinks about {1 / ratio:.3g}x ({-decades:.2g} decades per layer) from "
                    f"the output side to the input side over {len(rms)} layers"
                )
            else:
                trend = (
                    "is exactly zero at the first layer: the signal dies on the way back "
                    "(dead units?)"
                )
            message = (
                f"the gradient {trend} (RMS {rms[-1]:.3g} at {names[-1]}, {rms[0]:.3g} at "
                f"{names[0]}): the first layers barely learn"
            )
            suggestion = (
                "use activations that do not saturate (ReLU, GELU instead of sigmoid/tanh), "
                "residual connections, normalization layers (LayerNorm, BatchNorm), a "
                "variance-preserving init (Kaiming for ReLU, Xavier for tanh), or fewer layers"
            )
        else:
            message = (
                f"the gradient grows about {ratio:.3g}x ({decades:.2g} decades per layer) from "
                f"the output side to the input side over {len(rms)} layers (RMS "
                f"{rms[-1]:.3g} at {names[-1]}, {rms[0]:.3g} at {names[0]}): updates of the "
                "first layers are unstable"
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
