"""The table of named test problems, which any module in ``descend.problems`` can add to."""

from __future__ import annotations

import re
from collections.abc import Callable

from descend.problems.problem import Problem
from descend.validation import nearest

#: every registered problem, keyed by its canonical (lower-case, dash-separated) name
PROBLEMS: dict[str, Problem] = {}

#: for problems defined in any dimension: the factory ``n -> Problem``, keyed like PROBLEMS
FAMILIES: dict[str, Callable[[int], Problem]] = {}

_DIM_SUFFIX = re.compile(r"^(?P<base>.+?)-(?P<n>\d+)d$")


def canonical_name(name: str) -> str:
    """The registry key for ``name``: lower case, underscores and spaces as dashes."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def register(problem: Problem, *, family: Callable[[int], Problem] | None = None) -> Problem:
    """Add ``problem`` to :data:`PROBLEMS` under its canonical name and return it.

    A later registration of the same name replaces the earlier one, so a module may refine
    a problem defined elsewhere.

    Args:
        problem: the problem; its ``name`` becomes the key (case-insensitive).
        family: for a problem defined in any dimension, the factory ``n -> Problem`` that
            ``get_problem("name-10d")`` and ``get_problem("name", dim=10)`` call.

    Example:
        >>> register(Problem("bowl", lambda x: (x**2).sum(-1), 2, ((0.0, 0.0),), 0.0,
        ...                  (1.0, 1.0), ((-2.0, 2.0), (-2.0, 2.0))))
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a descend.problems.Problem, got {type(problem).__name__}")
    key = canonical_name(problem.name)
    if not key or _DIM_SUFFIX.match(key):
        raise ValueError(
            f"problem name {problem.name!r} is not usable as a key: it must be non-empty and "
            "must not end in '-<n>d' (that suffix selects a dimension)"
        )
    PROBLEMS[key] = problem
    if family is not None:
        if not callable(family):
            raise TypeError(f"family must be callable n -> Problem, got {type(family).__name__}")
        FAMILIES[key] = family
    else:
        FAMILIES.pop(key, None)
    return problem


def get_problem(name: str, dim: int | None = None) -> Problem:
    """The registered problem called ``name`` (case-insensitive), optionally in dimension ``dim``.

    ``"rosenbrock-10d"`` is the same as ``get_problem("rosenbrock", dim=10)``; only problems
    registered with a ``family`` exist in other dimensions than their default.

    Args:
        name: a key of :data:`PROBLEMS`, optionally with a ``-<n>d`` suffix.
        dim: the dimension, an integer >= 1; ``None`` keeps the registered problem's.

    Raises:
        ValueError: for an unknown name (the message suggests the closest names and lists
            all valid ones) or a dimension the problem does not have.

    Example:
        >>> get_problem("Rosenbrock").f_min
        0.0
        >>> get_problem("rastrigin-5d").dim
        5
    """
    if not isinstance(name, str):
        raise TypeError(f"problem name must be a string, got {type(name).__name__}")
    key = canonical_name(name)
    match = _DIM_SUFFIX.match(key)
    if key not in PROBLEMS and match and match["base"] in PROBLEMS:
        suffix_dim = int(match["n"])
        if dim is not None and dim != suffix_dim:
            raise ValueError(f"problem {name!r} names dimension {suffix_dim} but dim={dim}")
        key, dim = match["base"], suffix_dim
    if key not in PROBLEMS:
        raise ValueError(unknown_problem_message(name))
    problem = PROBLEMS[key]
    if dim is None or dim == problem.dim:
        return problem
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    if key not in FAMILIES:
        scalable = ", ".join(sorted(FAMILIES)) or "none"
        raise ValueError(
            f"problem {key!r} is defined only in dimension {problem.dim}, got dim={dim}; "
            f"problems in any dimension: {scalable}"
        )
    return FAMILIES[key](dim)


def unknown_problem_message(name: str) -> str:
    """``unknown problem 'rosenbrok'; did you mean 'rosenbrock'? valid problems: ...``."""
    close = nearest(canonical_name(name), PROBLEMS)
    hint = f"; did you mean {close!r}?" if close else ";"
    return f"unknown problem {name!r}{hint} valid problems: {', '.join(sorted(PROBLEMS))}"
