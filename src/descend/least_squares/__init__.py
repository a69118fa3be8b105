"""Nonlinear least squares: :func:`least_squares` (``"lm"``, ``"trf"``, ``"dogbox"``), with
bounds, robust losses and Jacobians by autodiff, dense or matrix-free.

One idea a module: ``losses`` (robust losses and their rescaling), ``lm``
(Levenberg-Marquardt as MINPACK), ``trf`` (Trust Region Reflective), ``dogbox`` (dogleg in
a box), ``trust_region`` (the subproblems and the radius rule), ``bounds`` (the box),
``cgls`` (the matrix-free inner solve), ``operator`` (the Jacobian, dense or matrix-free),
``residuals`` (the counted residual function), ``status`` (SciPy's statuses and step
tests), ``result`` (what a run returns), ``solve`` (the front function).
"""

from descend.least_squares.operator import JacobianOperator
from descend.least_squares.result import LeastSquaresResult
from descend.least_squares.solve import least_squares

__all__ = ["JacobianOperator", "LeastSquaresResult", "least_squares"]
