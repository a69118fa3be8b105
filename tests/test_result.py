"""OptimizeResult: SciPy's mapping contract, plain-JSON output, and hess_inv from BFGS."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import descend
from descend.optim import BFGS
from descend.result import RESULT_KEYS, Status
from descend.scipy_form import inverse_hessian


def sphere(x):
    return ((x - 3.0) ** 2).sum()


@pytest.fixture(scope="module")
def res():
    return descend.minimize(sphere, [0.0, 1.0], "lbfgs", record=True)


def test_result_is_a_read_only_mapping_as_scipys(res) -> None:
    assert res["x"] is res.x and res["fun"] == res.fun and res["nit"] == res.nit
    assert res["success"] is True and res["status"] == "gtol"
    assert "x" in res and "jac" in res and "message" in res
    assert "allvecs" not in res and 0 not in res
    assert list(res) == list(res.keys()) and list(res)[:3] == ["x", "fun", "jac"]
    assert len(res) == len(list(res)) == len(RESULT_KEYS) - 1  # no hess_inv: it is None
    assert dict(res)["message"] == res.message
    assert dict(res.items())["nfev"] == res.nfev
    assert res.get("hess_inv") is None and res.get("nope", 7) == 7
    with pytest.raises(KeyError, match="nope"):
        res["nope"]
    with pytest.raises(KeyError, match="hess_inv"):
        res["hess_inv"]


def test_hess_inv_is_a_key_exactly_when_the_method_has_one(res) -> None:
    with_h = descend.OptimizeResult(**{f: getattr(res, f) for f in _fields(res)})
    with_h.hess_inv = np.eye(2)
    assert "hess_inv" in with_h and len(with_h) == len(RESULT_KEYS)
    assert list(with_h).index("hess_inv") == 3
    np.testing.assert_array_equal(with_h["hess_inv"], np.eye(2))


def test_to_dict_is_plain_python_that_json_takes(res) -> None:
    d = res.to_dict()
    text = json.dumps(d)  # no TypeError: every value is plain
    back = json.loads(text)
    assert back["x"] == pytest.approx([3.0, 3.0])
    assert back["status"] == "gtol" and back["success"] is True and back["converged"] is True
    assert isinstance(back["nit"], int) and back["method"] == "lbfgs"
    assert set(back["history"]) >= {"iteration", "f", "grad_norm", "step_norm", "x"}
    assert back["history"]["f"][0] == pytest.approx(sphere(torch.tensor([0.0, 1.0])).item())
    assert back["history"]["x"][0] == [0.0, 1.0]
    # the start has no step: NaN there becomes null, so the text is strict JSON
    assert back["history"]["step_norm"][0] is None
    assert "NaN" not in text and "Infinity" not in text


def test_to_json_is_strict_json_of_to_dict(res) -> None:
    text = res.to_json(indent=2)
    assert json.loads(text) == json.loads(json.dumps(res.to_dict()))
    assert "\n  " in text


def test_to_dict_converts_tensors_arrays_enums_and_diagnoses() -> None:
    x0 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    res = descend.minimize(lambda x: (x**2).sum(), x0, "gd", lr=1.5, max_iter=50)
    assert res.status == Status.DIVERGED and res.diagnoses
    res.jac = torch.zeros(1, 2, dtype=torch.float64)
    res.hess_inv = torch.eye(2, dtype=torch.float64)
    back = json.loads(res.to_json())
    assert len(back["x"]) == 1 and len(back["x"][0]) == 2  # the shape of x0, as lists
    assert back["jac"] == [[0.0, 0.0]] and back["hess_inv"] == [[1.0, 0.0], [0.0, 1.0]]
    assert back["status"] == "diverged" and back["success"] is False
    first = back["diagnoses"][0]
    assert first["kind"] == "divergence" and isinstance(first["severity"], str)
    assert all(v is None or math.isfinite(v) for v in back["history"]["f"])


def test_early_stopping_status_is_kept() -> None:
    assert Status.EARLY_STOPPING.value == "early_stopping"
    assert not Status.EARLY_STOPPING.converged


def test_jac_and_hess_inv_default_to_none() -> None:
    res = descend.OptimizeResult(
        x=np.zeros(1), fun=0.0, grad_norm=0.0, nit=0, nfev=1, njev=1,
        status=Status.GTOL, message="", history=descend.result.History(),
    )  # fmt: skip
    assert res.jac is None and res.hess_inv is None and res["jac"] is None


# -- inverse_hessian: what hess_inv is made from ----------------------------------------------

A = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]], dtype=torch.float64)


def _quadratic_bfgs(steps: int):
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = BFGS([x])

    def closure():
        opt.zero_grad()
        f = 0.5 * x @ A @ x
        f.backward()
        return f

    xs = [x.detach().clone()]
    for _ in range(steps):
        opt.step(closure)
        xs.append(x.detach().clone())
    return opt, xs


def test_inverse_hessian_starts_as_the_identity_as_scipys() -> None:
    opt, _ = _quadratic_bfgs(0)
    torch.testing.assert_close(inverse_hessian(opt), torch.eye(3, dtype=torch.float64))


def test_inverse_hessian_meets_the_secant_equation_of_the_last_step() -> None:
    opt, xs = _quadratic_bfgs(2)
    h = inverse_hessian(opt)
    assert h.shape == (3, 3)
    torch.testing.assert_close(h, h.T)
    assert torch.linalg.eigvalsh(h).min() > 0
    s = xs[-1] - xs[-2]
    y = A @ s  # the change of the gradient A x over the step
    torch.testing.assert_close(h @ y, s, rtol=1e-10, atol=1e-12)


def test_inverse_hessian_is_a_copy_and_none_for_other_optimizers() -> None:
    opt, _ = _quadratic_bfgs(1)
    h = inverse_hessian(opt)
    h.zero_()
    assert inverse_hessian(opt).abs().sum() > 0
    x = torch.zeros(2, requires_grad=True)
    assert inverse_hessian(descend.optim.LBFGS([x])) is None
    assert inverse_hessian(torch.optim.SGD([x], lr=0.1)) is None


def _fields(res):
    return [f.name for f in dataclasses.fields(res)]
