"""A feasible set from what a user writes for ``bounds=``."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from descend.constraints.box import Box, NonNegative
from descend.constraints.constraint import Constraint
from descend.constraints.simplex import Simplex
from descend.validation import nearest

#: the sets a name gives
NAMED = {"nonnegative": NonNegative, "simplex": Simplex}


def as_constraint(bounds: Any, n: int | None = None) -> Constraint | None:
    """The feasible set ``bounds`` describes (None for None).

    Accepted forms:

    * a :class:`Constraint` (``Box``, ``NonNegative``, ``Simplex``), as it is;
    * a name: ``"nonnegative"`` (:math:`x \\ge 0`) or ``"simplex"`` (:math:`x \\ge 0`,
      :math:`\\sum x = 1`);
    * SciPy's ``minimize`` form: a sequence of ``(low, high)`` pairs, one per coordinate,
      None for no bound; or an (n, 2) array or tensor (±inf for no bound);
    * a ``scipy.optimize.Bounds`` (anything with ``lb`` and ``ub``).

    Args:
        bounds: one of the above.
        n: the number of coordinates of x, to check a box's length against.

    Raises:
        ValueError: an unknown name (with the nearest valid one), low > high, NaN, a
            length other than ``n``, a shape that is not (n, 2).

    Example:
        >>> as_constraint([(0, 1), (None, 2)])  # Box(low=[0. -inf], high=[1. 2.])
        >>> as_constraint("simplex")  # Simplex(total=1)
    """
    if bounds is None:
        return None
    if isinstance(bounds, Constraint):
        constraint = bounds
    elif isinstance(bounds, str):
        key = bounds.lower().replace("-", "").replace("_", "")
        if key not in NAMED:
            near = nearest(bounds.lower(), NAMED)
            hint = f"did you mean {near!r}? " if near else ""
            raise ValueError(
                f"unknown bounds {bounds!r}; {hint}named sets: {', '.join(NAMED)}; or give "
                "(low, high) pairs, one per coordinate"
            )
        constraint = NAMED[key]()
    elif hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        constraint = Box(_flat(bounds.lb), _flat(bounds.ub))
    else:
        constraint = _pairs(bounds)
    if n is not None:
        constraint.check_size(n)
    return constraint


def _flat(value: Any) -> Any:
    array = np.asarray(value, dtype=np.float64)
    return array.reshape(-1) if array.ndim else float(array)


def _pairs(bounds: Any) -> Box:
    """A box from (low, high) pairs: a sequence (None: no bound), an array or a tensor."""
    if isinstance(bounds, Tensor):
        bounds = bounds.detach().cpu().numpy()
    table = _numeric_table(bounds)
    if table is None and isinstance(bounds, (list, tuple)):
        rows = []
        for i, pair in enumerate(bounds):
            if not isinstance(pair, (list, tuple, np.ndarray, Tensor)) or len(pair) != 2:
                raise ValueError(
                    f"bounds[{i}] must be a (low, high) pair, got {pair!r}; give one pair per "
                    "coordinate, None for no bound"
                )
            low, high = (float(b) if isinstance(b, Tensor) else b for b in pair)
            rows.append((-np.inf if low is None else low, np.inf if high is None else high))
        bounds = rows
    if table is None:
        try:
            table = np.asarray(bounds, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"bounds must be (low, high) pairs of numbers, got {bounds!r}: {exc}"
            ) from None
    if table.ndim != 2 or table.shape[1] != 2 or table.shape[0] == 0:
        raise ValueError(
            f"bounds must be (low, high) pairs, shape (n, 2), got shape {table.shape}; or a "
            f"name ({', '.join(NAMED)}), a scipy.optimize.Bounds or a descend.constraints set"
        )
    return Box(table[:, 0], table[:, 1])


def _numeric_table(bounds: Any) -> np.ndarray | None:
    """``bounds`` as an (n, 2) float table when it reads as one at once without NaN (no
    None to read as an open side), else None: the fast path for long lists."""
    try:
        table = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if table.ndim == 2 and table.shape[1] == 2 and not np.isnan(table).any():
        return table
    return None
