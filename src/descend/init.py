"""Weight initialization by name, from a seeded generator (never the global RNG).

Schemes (``torch.nn.init`` does the math):

* ``xavier`` / ``glorot`` (uniform), ``xavier_normal``: variance
  :math:`2/(n_\\text{in}+n_\\text{out})`.
* ``he`` / ``kaiming`` (uniform), ``he_normal``: variance :math:`2/n_\\text{in}` (ReLU).
* ``lecun`` (normal): variance :math:`1/n_\\text{in}`.
* ``orthogonal``: a (semi-)orthogonal matrix (Saxe et al., 2014).
* ``normal``: :math:`\\mathcal N(0, 0.01^2)`; ``uniform``: :math:`U(-0.05, 0.05)`;
  ``zeros``.

Weights (parameters with two or more dimensions) get the scheme; biases are set to
``bias`` (0 by default); other one-dimensional parameters (normalization scales) keep
their values. Each tensor is drawn on the CPU and copied to its device, so the same seed
gives the same weights on every device.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable

import torch
from torch import Tensor, nn

_Init = Callable[[Tensor, torch.Generator], object]


def _lecun(t: Tensor, g: torch.Generator) -> object:
    fan_in = t.shape[1] * (t[0][0].numel() if t.dim() > 2 else 1)
    return nn.init.normal_(t, 0.0, 1.0 / math.sqrt(fan_in), generator=g)


SCHEMES: dict[str, _Init] = {
    "xavier": lambda t, g: nn.init.xavier_uniform_(t, generator=g),
    "xavier_normal": lambda t, g: nn.init.xavier_normal_(t, generator=g),
    "he": lambda t, g: nn.init.kaiming_uniform_(t, nonlinearity="relu", generator=g),
    "he_normal": lambda t, g: nn.init.kaiming_normal_(t, nonlinearity="relu", generator=g),
    "lecun": _lecun,
    "orthogonal": lambda t, g: nn.init.orthogonal_(t, generator=g),
    "normal": lambda t, g: nn.init.normal_(t, 0.0, 0.01, generator=g),
    "uniform": lambda t, g: nn.init.uniform_(t, -0.05, 0.05, generator=g),
    "zeros": lambda t, g: nn.init.zeros_(t),
}
ALIASES = {
    "glorot": "xavier",
    "glorot_uniform": "xavier",
    "xavier_uniform": "xavier",
    "glorot_normal": "xavier_normal",
    "kaiming": "he",
    "kaiming_uniform": "he",
    "he_uniform": "he",
    "kaiming_normal": "he_normal",
    "lecun_normal": "lecun",
}


def initialize(
    module: nn.Module,
    scheme: str = "xavier",
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    bias: float = 0.0,
) -> nn.Module:
    """Initialize ``module``'s weights in place by ``scheme``; returns the module.

    Args:
        module: any ``torch.nn.Module``.
        scheme: a name in ``SCHEMES`` (or an alias such as ``glorot``, ``kaiming``).
        seed: seeds a fresh CPU generator (ignored when ``generator`` is given; a random
            seed when both are None).
        generator: a CPU ``torch.Generator`` to draw from.
        bias: the value biases are set to.

    Example:
        >>> net = initialize(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)),
        ...                  "he", seed=0)
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    key = ALIASES.get(str(scheme).lower(), str(scheme).lower())
    if key not in SCHEMES:
        names = ", ".join([*SCHEMES, *ALIASES])
        raise ValueError(f"unknown init scheme {scheme!r}; valid names: {names}")
    if generator is None:
        generator = torch.Generator().manual_seed(
            secrets.randbits(63) if seed is None else int(seed)
        )
    fill = SCHEMES[key]
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.fill_(bias)
            elif p.dim() >= 2:
                draw = torch.empty(p.shape, dtype=p.dtype)
                fill(draw, generator)
                p.copy_(draw)
    return module
