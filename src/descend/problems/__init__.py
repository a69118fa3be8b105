"""Test problems with known minima: the landscapes optimizers are raced and tested on.

Every problem is a :class:`Problem` (function, dimension, minima, f*, start, bounds).
They live in one registry, :data:`PROBLEMS`, looked up case-insensitively by
:func:`get_problem`; ``"rosenbrock-10d"`` selects another dimension of a problem that has
one. Each module in this package registers its own problems when imported, and this
package imports every module in it, so a new module (say ``mgh.py``) only has to call
:func:`register`.

Example:
    >>> from descend.problems import get_problem
    >>> p = get_problem("himmelblau")
    >>> p(torch.tensor(p.minima))  # f at all four minima at once: tensor([0., 0., 0., 0.])
"""

from __future__ import annotations

import importlib
import pkgutil

from descend.problems.classic import (
    ackley,
    ackley_nd,
    beale,
    booth,
    goldstein_price,
    himmelblau,
    monkey_saddle,
    rastrigin,
    rastrigin_nd,
    rosenbrock,
    rosenbrock_nd,
    saddle,
    styblinski_tang,
    styblinski_tang_nd,
)
from descend.problems.problem import Problem
from descend.problems.quadratic import QuadraticForm, quadratic
from descend.problems.registry import (
    FAMILIES,
    PROBLEMS,
    canonical_name,
    get_problem,
    register,
    unknown_problem_message,
)

# Every other module of the package registers its problems on import (e.g. mgh.py).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
del _module

__all__ = [
    "FAMILIES",
    "PROBLEMS",
    "Problem",
    "QuadraticForm",
    "ackley",
    "ackley_nd",
    "beale",
    "booth",
    "canonical_name",
    "get_problem",
    "goldstein_price",
    "himmelblau",
    "monkey_saddle",
    "quadratic",
    "rastrigin",
    "rastrigin_nd",
    "register",
    "rosenbrock",
    "rosenbrock_nd",
    "saddle",
    "styblinski_tang",
    "styblinski_tang_nd",
    "unknown_problem_message",
]
