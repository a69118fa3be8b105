r"""Why a least-squares run stopped: SciPy's ``least_squares`` statuses, their messages, and
the step tests of ``trf`` and ``dogbox``.

======= =================================================================================
status  meaning
======= =================================================================================
-1      improper input (SciPy's MINPACK code; descend refuses bad input with an error instead,
        so it never returns -1)
0       ``max_nfev`` residual evaluations were spent
1       ``gtol``: the (scaled) gradient is small
2       ``ftol``: the cost barely fell, on a step the model predicted well
3       ``xtol``: the step was small against :math:`x`
4       both ``ftol`` and ``xtol``
======= =================================================================================

Statuses above 0 count as success.
"""

from __future__ import annotations

MAX_NFEV, GTOL, FTOL, XTOL, FTOL_AND_XTOL = 0, 1, 2, 3, 4

MESSAGES = {
    -1: "Improper input parameters.",
    MAX_NFEV: "The maximum number of function evaluations is exceeded.",
    GTOL: "`gtol` termination condition is satisfied.",
    FTOL: "`ftol` termination condition is satisfied.",
    XTOL: "`xtol` termination condition is satisfied.",
    FTOL_AND_XTOL: "Both `ftol` and `xtol` termination conditions are satisfied.",
}


def step_termination(
    reduction: float,
    cost: float,
    step_norm: float,
    x_norm: float,
    ratio: float,
    ftol: float,
    xtol: float,
) -> int | None:
    r"""The step tests of ``trf`` and ``dogbox`` after a trial step; None if neither holds.

    ftol: :math:`\Delta F < \text{ftol}\, F` where the model agreed, :math:`\rho > 1/4`
    (:math:`\Delta F` the actual reduction, :math:`F` the cost before the step, :math:`\rho`
    the ratio of actual to predicted reduction). xtol: :math:`\|\Delta x\| <
    \text{xtol}\,(\text{xtol} + \|x\|)`.
    """
    ftol_holds = reduction < ftol * cost and ratio > 0.25
    xtol_holds = step_norm < xtol * (xtol + x_norm)
    if ftol_holds and xtol_holds:
        return FTOL_AND_XTOL
    if ftol_holds:
        return FTOL
    if xtol_holds:
        return XTOL
    return None
