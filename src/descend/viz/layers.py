"""Per-layer gradient norms over a run: a recorder callback and a heatmap."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from torch import Tensor, nn

from descend.callbacks import Callback
from descend.validation import check_int
from descend.viz.series import check_dpi, check_figsize, save

__all__ = ["LayerGradientRecorder", "layer_gradient_data", "plot_layer_gradients"]

#: history columns holding one layer's gradient norm: ``grad_norm[<layer>]`` (or the
#: ``grad_rms[<layer>]`` of the diagnostics' layer-gradient evidence)
_COLUMN = re.compile(r"^grad_(norm|rms)\[(.+)\]$")


class LayerGradientRecorder(Callback):
    r"""Records each layer's gradient norm :math:`\|\nabla_{W_l} f\|_2` every ``every`` steps.

    Give it to ``fit(..., callbacks=[recorder])`` (``fit`` binds the model) or to
    ``minimize(..., callback=recorder)`` (each parameter tensor is a "layer"). The norms
    of all layers are read in one host synchronization per recording. Layers are the
    modules that own trainable parameters, in registration order (input to output for
    ``nn.Sequential``), as ``descend.diagnostics`` names them.

    Args:
        model: the network; default: the one the run binds.
        every: record every this many steps, an integer >= 1.
        rms: record the root mean square :math:`\|\nabla_{W_l} f\|_2/\sqrt{|W_l|}`
            instead of the norm (comparable across layers of different sizes).

    Example:
        >>> recorder = LayerGradientRecorder(every=5)
        >>> descend.fit(net, "mse", (X, y), callbacks=[recorder])
        >>> plot_layer_gradients(recorder, "layers.png")
    """

    def __init__(self, model: nn.Module | None = None, *, every: int = 1, rms: bool = False):
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.every = check_int("every", every, low=1)
        self.rms = bool(rms)
        self.layers: list[tuple[str, list[Tensor]]] = []
        self._vector = False  # watching minimize's x: its gradient at x0 is there at the start
        self.steps: list[int] = []
        self.norms: list[list[float]] = []

    def bind(self, **run: Any) -> None:
        if self.model is None and isinstance(run.get("model"), nn.Module):
            self.model = run["model"]
        if self.model is not None:
            from descend.monitors.layer_gradients import parameter_layers

            self.layers = parameter_layers(self.model)
        elif run.get("objective") is not None:
            params = list(run["objective"].params)
            self.layers = [(f"x{i}" if len(params) > 1 else "x", [p]) for i, p in enumerate(params)]
            self._vector = True

    def on_begin(self, result: Any) -> None:
        if not self.layers and isinstance(getattr(result, "model", None), nn.Module):
            self.bind(model=result.model)  # a runner that binds nothing still shows its model
        if not self.layers:
            raise ValueError(
                "LayerGradientRecorder has no layers to watch: give it the model, or use it "
                "in fit or minimize, which bind theirs"
            )
        self.steps, self.norms = [], []
        if self._vector:
            self.record(0)

    def on_iteration(self, nit: int) -> bool:
        if nit % self.every == 0:
            self.record(nit)
        return False

    def on_step(self, result: Any) -> None:
        # fit calls on_step every step (minimize calls on_iteration first)
        nit = int(result.nit)
        if nit % self.every == 0 and (not self.steps or self.steps[-1] != nit):
            self.record(nit)

    def record(self, step: int) -> None:
        """Take the current gradients' norms as those of ``step``."""
        grads, owners = [], []
        for i, (_, params) in enumerate(self.layers):
            for p in params:
                if p.grad is not None:
                    grads.append(p.grad.detach())
                    owners.append(i)
        squares = [0.0] * len(self.layers)
        if grads:
            with torch.no_grad():
                norms = torch.stack(torch._foreach_norm(grads)).double().cpu().tolist()
            for owner, norm in zip(owners, norms, strict=True):
                squares[owner] += norm * norm
        present = set(owners)
        row = []
        for i, (_, params) in enumerate(self.layers):
            value = math.sqrt(squares[i]) if i in present else math.nan
            if self.rms and i in present:
                value /= math.sqrt(sum(p.numel() for p in params))
            row.append(value)
        self.steps.append(step)
        self.norms.append(row)

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{"step": steps, "grad_norm[<layer>]": norms, ...}`` (``grad_rms[...]`` with
        ``rms=True``): columns a run record or a DataFrame keeps as they are."""
        kind = "grad_rms" if self.rms else "grad_norm"
        table = np.asarray(self.norms, dtype=np.float64).reshape(len(self.steps), -1)
        out: dict[str, np.ndarray] = {"step": np.asarray(self.steps, dtype=np.int64)}
        for i, (name, _) in enumerate(self.layers):
            out[f"{kind}[{name}]"] = table[:, i]
        return out

    def __repr__(self) -> str:
        return f"LayerGradientRecorder(layers={len(self.layers)}, recorded={len(self.steps)})"


def layer_gradient_data(data: Any) -> tuple[np.ndarray, list[str], np.ndarray, str]:
    """``(steps, layer names, norms[layer, step], what)`` from any form
    :func:`plot_layer_gradients` takes."""
    if hasattr(data, "as_dict") and callable(data.as_dict):
        data = data.as_dict()
    elif hasattr(data, "history") and hasattr(data.history, "as_dict"):
        data = data.history.as_dict()
    if not isinstance(data, Mapping):
        raise TypeError(
            "data must be a LayerGradientRecorder, a History or a dict with grad_norm[<layer>] "
            f"columns, or a dict {{layer: norms}}, got {type(data).__name__}"
        )
    columns = {k: m for k in data if (m := _COLUMN.match(str(k)))}
    if columns:
        names = [m.group(2) for m in columns.values()]
        kinds = {m.group(1) for m in columns.values()}
        what = "gradient RMS" if kinds == {"rms"} else "gradient norm"
        rows = [np.asarray(data[k], dtype=np.float64).reshape(-1) for k in columns]
        steps = next((data[k] for k in ("step", "iteration") if k in data), None)
    else:
        names = [str(k) for k in data if k not in ("step", "iteration")]
        rows = [np.asarray(data[k], dtype=np.float64).reshape(-1) for k in names]
        what = "gradient norm"
        steps = next((data[k] for k in ("step", "iteration") if k in data), None)
    if not rows:
        raise ValueError("data holds no layers: give at least one layer's gradient norms")
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise ValueError(
            f"every layer needs the same number of recordings, got lengths {sorted(lengths)}"
        )
    (length,) = lengths
    if length == 0:
        raise ValueError("data holds no recordings: the run recorded no gradient norms")
    steps = np.arange(length) if steps is None else np.asarray(steps, dtype=np.float64)
    if len(steps) != length:
        raise ValueError(f"{len(steps)} steps for {length} recordings per layer")
    return steps, names, np.vstack(rows), what


def plot_layer_gradients(
    data: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    log: bool = True,
    title: str | None = None,
    dpi: int = 130,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """A heatmap of each layer's gradient norm over the run: layers top (input) to
    bottom (output), steps left to right, a log color scale.

    Vanishing gradients show as the top rows darkening away from the bottom ones;
    exploding ones as the opposite; a dead layer as a row at the floor.

    Args:
        data: a :class:`LayerGradientRecorder`; a ``History``, a run or a dict with
            ``grad_norm[<layer>]`` (or ``grad_rms[<layer>]``) columns and a ``step`` (or
            ``iteration``) column; or a dict ``{layer: norms over time}``.
        path: where to save it (.png, .pdf, .svg); None: only return the figure.
        log: log color scale (zeros are shown at the smallest positive value).
        title: the figure title.
        dpi: resolution of a saved raster image, an integer >= 1.
        figsize: (width, height) in inches; default: grows with the number of layers.

    Returns:
        the matplotlib ``Figure``.

    Example:
        >>> norms = {"fc1": [0.5, 0.4, 0.2], "fc2": [1.0, 0.6, 0.3]}  # one per recorded step
        >>> plot_layer_gradients(norms, "layers.png")  # doctest: +ELLIPSIS
        <Figure size ...>
    """
    dpi = check_dpi(dpi)
    steps, names, norms, what = layer_gradient_data(data)
    size = figsize or (8.0, min(2.0 + 0.35 * len(names), 12.0))
    fig = Figure(figsize=check_figsize(size), layout="constrained")
    ax = fig.subplots()
    finite = norms[np.isfinite(norms)]
    positive = finite[finite > 0]
    if log and positive.size:
        shown = np.where(np.isfinite(norms), np.maximum(norms, positive.min()), np.nan)
        norm: Normalize = LogNorm(vmin=float(positive.min()), vmax=float(positive.max()))
    else:
        shown = norms
        norm = Normalize(
            vmin=float(finite.min()) if finite.size else 0.0,
            vmax=float(finite.max()) if finite.size else 1.0,
        )
    edges = _edges(steps)
    mesh = ax.pcolormesh(
        edges, np.arange(len(names) + 1), np.ma.masked_invalid(shown), norm=norm, cmap="magma"
    )
    ax.set_yticks(np.arange(len(names)) + 0.5, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("step")
    ax.set_ylabel("layer (input at the top)")
    bar = fig.colorbar(mesh, ax=ax, pad=0.01)
    bar.set_label(what + (" (log scale)" if isinstance(norm, LogNorm) else ""))
    fig.suptitle(title if title is not None else f"{what} per layer", fontsize=12)
    return save(fig, path, dpi)


def _edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges around each step (midpoints between recordings)."""
    if len(steps) == 1:
        return np.array([steps[0] - 0.5, steps[0] + 0.5])
    mid = (steps[1:] + steps[:-1]) / 2
    return np.concatenate([[2 * steps[0] - mid[0]], mid, [2 * steps[-1] - mid[-1]]])
