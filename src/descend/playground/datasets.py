"""The data mode's data sets and models: 2-D classification sets drawn from a seed, two
features of a scikit-learn bundled set, and logistic regression or a small MLP.

Generated sets (``n`` points, Gaussian jitter of standard deviation ``noise``, drawn from
a ``torch.Generator`` seeded with ``seed``; the global random state is never touched):

* ``moons``: two interleaving half circles, :math:`(\\cos t, \\sin t)` and
  :math:`(1 - \\cos t, \\tfrac12 - \\sin t)`, :math:`t \\sim U[0, \\pi]`;
* ``circles``: a circle of radius 1 around one of radius 1/2;
* ``blobs``: three Gaussian blobs (standard deviation 1/2) centred on a circle of radius 2;
* ``xor``: :math:`U[-1, 1]^2`, class 1 where :math:`x y > 0`;
* ``spirals``: two interleaved arms :math:`r (\\cos(r + \\pi c), \\sin(r + \\pi c))`,
  :math:`r \\sim U[0.25, 3\\pi]` (TensorFlow Playground's spiral).

Bundled sets (need scikit-learn, no network): ``iris``, ``wine``, ``breast_cancer``, two
features chosen by index, standardized. Every set is split into train and test rows at
random (seeded).

Example:
    >>> data = make_dataset("moons", n=200, noise=0.2, seed=0)
    >>> model = make_model("mlp", classes=data.classes, layers=1, width=8)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from descend.validation import check_int, check_non_negative, nearest

__all__ = [
    "ACTIVATIONS",
    "BUNDLED",
    "DATASETS",
    "GENERATED",
    "MAX_POINTS",
    "DataSet",
    "dataset_table",
    "make_dataset",
    "make_model",
]

#: the largest data set a request may ask for
MAX_POINTS = 1000


@dataclass(frozen=True)
class DataSet:
    """Train and test rows of a 2-D classification set.

    Attributes:
        name: the set's name.
        X_train, y_train, X_test, y_test: float32 features (m, 2) and int64 classes (m,).
        classes: the number of classes.
        features: the two features' names.
        made_with: the keyword arguments of :func:`make_dataset` that made it.
    """

    name: str
    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor
    classes: int
    features: tuple[str, str]
    made_with: dict[str, Any] = field(default_factory=dict)


def _moons(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    y = torch.arange(n) % 2
    t = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    outer = torch.stack([torch.cos(t), torch.sin(t)], 1)
    inner = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    return torch.where(y[:, None] == 0, outer, inner), y


def _circles(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    y = torch.arange(n) % 2
    t = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    radius = torch.where(y == 0, 1.0, 0.5).to(torch.float64)
    return radius[:, None] * torch.stack([torch.cos(t), torch.sin(t)], 1), y


def _blobs(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    y = torch.arange(n) % 3
    angle = 2 * math.pi * y.to(torch.float64) / 3 + math.pi / 2
    centres = 2 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return centres + 0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64), y


def _xor(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    X = 2 * torch.rand(n, 2, generator=g, dtype=torch.float64) - 1
    return X, (X[:, 0] * X[:, 1] > 0).long()


def _spirals(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    y = torch.arange(n) % 2
    r = 0.25 + (3 * math.pi - 0.25) * torch.rand(n, generator=g, dtype=torch.float64)
    angle = r + math.pi * y.to(torch.float64)
    return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1) / math.pi, y


#: the generated sets: name -> (n, generator) -> (X, y) before the jitter
GENERATED: dict[str, Callable[[int, torch.Generator], tuple[Tensor, Tensor]]] = {
    "moons": _moons,
    "circles": _circles,
    "blobs": _blobs,
    "xor": _xor,
    "spirals": _spirals,
}

#: scikit-learn's bundled sets: name -> its loader's name
BUNDLED = {"iris": "load_iris", "wine": "load_wine", "breast_cancer": "load_breast_cancer"}

DATASETS = (*GENERATED, *BUNDLED)


def make_dataset(
    name: str,
    *,
    n: int = 200,
    noise: float = 0.1,
    seed: int = 0,
    features: Sequence[int] = (0, 1),
    test_fraction: float = 0.25,
) -> DataSet:
    """A seeded 2-D classification set, split into train and test rows.

    Args:
        name: one of :data:`DATASETS`.
        n: points of a generated set, 10 to :data:`MAX_POINTS` (a bundled set has its own).
        noise: standard deviation of the Gaussian jitter added to the points, >= 0.
        seed: seeds the points, the jitter and the split, >= 0.
        features: the two feature indices of a bundled set.
        test_fraction: the share of rows held out for testing, in [0, 0.5].
    """
    _check_name("dataset", name, DATASETS)
    n = check_int("n", n, low=10)
    if n > MAX_POINTS:
        raise ValueError(f"n must be at most {MAX_POINTS}, got {n}")
    check_non_negative("noise", noise)
    seed = check_int("seed", seed, low=0)
    if not 0.0 <= test_fraction <= 0.5:
        raise ValueError(f"test_fraction must be in [0, 0.5], got {test_fraction!r}")
    g = torch.Generator().manual_seed(seed)
    if name in GENERATED:
        X, y = GENERATED[name](n, g)
        names = ("x", "y")
    else:
        X, y, names = _bundled(name, features)
    X = X + noise * torch.randn(X.shape, generator=g, dtype=torch.float64)
    order = torch.randperm(X.shape[0], generator=g)
    cut = X.shape[0] - round(test_fraction * X.shape[0])
    train, test = order[:cut], order[cut:]
    X32 = X.to(torch.float32)
    made_with: dict[str, Any] = {"n": n} if name in GENERATED else {"features": list(features)}
    made_with.update(noise=noise, seed=seed, test_fraction=test_fraction)
    return DataSet(
        name, X32[train], y[train], X32[test], y[test], int(y.max()) + 1, names, made_with
    )


def dataset_table() -> list[dict[str, Any]]:
    """Every data set: ``name``, ``bundled`` (scikit-learn's) and, for a bundled one, its
    ``features`` (the names a request picks two of, by index); an empty list where
    scikit-learn is not installed."""
    table: list[dict[str, Any]] = [{"name": n, "bundled": False, "features": []} for n in GENERATED]
    try:
        import sklearn.datasets
    except ImportError:
        return table
    for name, loader in BUNDLED.items():
        names = [str(f) for f in getattr(sklearn.datasets, loader)().feature_names]
        table.append({"name": name, "bundled": True, "features": names})
    return table


def _bundled(name: str, features: Sequence[int]) -> tuple[Tensor, Tensor, tuple[str, str]]:
    try:
        import sklearn.datasets
    except ImportError:
        raise ValueError(
            f"dataset {name!r} is one of scikit-learn's: pip install 'descend[estimators]'"
        ) from None
    bunch = getattr(sklearn.datasets, BUNDLED[name])()
    count = bunch.data.shape[1]
    chosen = list(features)
    if len(chosen) != 2 or len(set(chosen)) != 2 or not all(0 <= i < count for i in chosen):
        raise ValueError(
            f"features must be two different indices from 0 to {count - 1} for {name!r}, "
            f"got {list(features)!r}"
        )
    X = torch.tensor(bunch.data[:, chosen], dtype=torch.float64)
    X = (X - X.mean(0)) / X.std(0)
    names = (str(bunch.feature_names[chosen[0]]), str(bunch.feature_names[chosen[1]]))
    return X, torch.tensor(bunch.target, dtype=torch.int64), names


#: the hidden layers' activations by name
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


def make_model(
    kind: str = "mlp",
    *,
    classes: int = 2,
    layers: int = 1,
    width: int = 8,
    activation: str = "tanh",
) -> nn.Sequential:
    """Logistic regression (``kind="logistic"``: one linear layer to the class scores) or
    an MLP of ``layers`` hidden layers of ``width`` units, for 2 features.

    The weights are left uninitialized (no draw from the global random state):
    ``descend.fit(..., init="xavier", seed=...)`` sets them.

    Args:
        kind: ``"logistic"`` or ``"mlp"``.
        classes: output classes, >= 2 (cross-entropy on the scores).
        layers: hidden layers of an MLP, 1 to 4.
        width: units per hidden layer, 1 to 64.
        activation: one of :data:`ACTIVATIONS`.
    """
    _check_name("kind", kind, ("logistic", "mlp"))
    classes = check_int("classes", classes, low=2)
    if kind == "logistic":
        return nn.Sequential(nn.utils.skip_init(nn.Linear, 2, classes))
    layers, width = check_int("layers", layers, low=1), check_int("width", width, low=1)
    if layers > 4 or width > 64:
        raise ValueError(f"an MLP here has 1 to 4 layers of 1 to 64 units, got {layers} x {width}")
    _check_name("activation", activation, ACTIVATIONS)
    modules: list[nn.Module] = []
    fan_in = 2
    for _ in range(layers):
        modules += [nn.utils.skip_init(nn.Linear, fan_in, width), ACTIVATIONS[activation]()]
        fan_in = width
    modules.append(nn.utils.skip_init(nn.Linear, fan_in, classes))
    return nn.Sequential(*modules)


def _check_name(field: str, value: str, valid: Sequence[str] | Mapping[str, object]) -> None:
    if value not in valid:
        guess = nearest(value, valid)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise ValueError(f"unknown {field} {value!r}{hint}; valid: {', '.join(valid)}")
