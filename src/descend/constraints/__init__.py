"""Feasible sets and their projections: boxes, the nonnegative orthant, the simplex.

``minimize(..., bounds=...)`` keeps every iterate in the set these describe, and
:func:`project_parameters_` keeps a model's parameters there during training.

Example:
    >>> from descend.constraints import Box, Simplex, as_constraint
    >>> as_constraint([(0, 1), (None, 2)]).project(torch.tensor([2.0, 3.0]))  # [1., 2.]
    >>> Simplex().project(torch.tensor([0.5, 1.0, -1.0]))  # [0.25, 0.75, 0.]
"""

from descend.constraints.box import Box, NonNegative
from descend.constraints.constraint import Constraint
from descend.constraints.parameters import project_parameters_
from descend.constraints.parse import NAMED, as_constraint
from descend.constraints.simplex import Simplex

__all__ = [
    "NAMED",
    "Box",
    "Constraint",
    "NonNegative",
    "Simplex",
    "as_constraint",
    "project_parameters_",
]
