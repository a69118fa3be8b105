"""Saving fitted estimators as plain data that ``torch.load(..., weights_only=True)`` reads.

A saved model is a dict of tensors, numbers, strings, lists and dicts only (no pickled
classes), so loading it runs no code from the file: the estimator's class name and
hyperparameters, its fitted attributes (arrays as tensors, labels and names as lists)
and its module's ``state_dict``, plus whatever the caller adds (feature names, target,
metrics).

Example:
    >>> from descend.estimators import LinearRegression
    >>> from descend.estimators.persist import save, load
    >>> reg = LinearRegression().fit(X, y[:, 0])
    >>> save(reg, "model.pt", target="label")
    >>> loaded, extra = load("model.pt")
    >>> extra, np.array_equal(loaded.predict(X), reg.predict(X))
    ({'target': 'label'}, True)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from scipy import sparse

#: identifies the layout of the saved dict
FORMAT = "descend.estimator/1"

#: what the training routine keeps for itself and a saved model does not need
_SKIP = {"_module", "_optimizer", "_optimizer_label", "_fit_result"}


def _classes() -> dict[str, type]:
    from descend import estimators

    return {cls.__name__: cls for cls in estimators.ESTIMATORS}


def _encode(value: Any) -> Any:
    """``value`` as data torch's safe loader accepts (tensors, numbers, text, containers)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            return {"__array__": torch.from_numpy(np.ascontiguousarray(value).copy())}
        return {"__array__": [_encode(v) for v in value.tolist()], "dtype": value.dtype.str}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).replace("torch.", "")}
    if sparse.issparse(value):
        # scipy-stubs: issparse narrows to SparseABC, which csr_array's overloads leave out
        csr = sparse.csr_array(value)  # type: ignore[call-overload]
        return {
            "__csr__": [torch.from_numpy(a.copy()) for a in (csr.data, csr.indices, csr.indptr)],
            "shape": list(csr.shape),
        }
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [_encode(v) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        return {"__dict__": {str(k): _encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    raise TypeError(f"cannot save a value of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            data = value["__array__"]
            if isinstance(data, torch.Tensor):
                return data.numpy()
            return np.asarray([_decode(v) for v in data], dtype=np.dtype(value["dtype"]))
        if "__dtype__" in value:
            return getattr(torch, value["__dtype__"])
        if "__csr__" in value:
            data, indices, indptr = (t.numpy() for t in value["__csr__"])
            return sparse.csr_array((data, indices, indptr), shape=tuple(value["shape"]))
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: _decode(v) for k, v in value["__dict__"].items()}
        raise ValueError(f"unknown saved value {sorted(value)}")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def estimator_state(estimator: Any) -> dict[str, Any]:
    """The fitted ``estimator`` as a dict of plain data (see the module's docstring)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    unsaved = [k for k, v in params.items() if not _plain(v)]
    if unsaved:
        raise TypeError(
            f"cannot save {type(estimator).__name__} with non-data hyperparameters "
            f"{unsaved} (an optimizer object or function); give them by name instead"
        )
    attributes = {k: _encode(v) for k, v in vars(estimator).items() if _fitted(k, params)}
    return {
        "format": FORMAT,
        "class": type(estimator).__name__,
        "params": _encode(params),
        "attributes": attributes,
        "module": {k: v.detach().cpu().clone() for k, v in estimator._module.state_dict().items()},
    }


def estimator_from_state(state: dict[str, Any]) -> Any:
    """The estimator saved by :func:`estimator_state`, ready to predict."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"not a saved descend estimator (expected format {FORMAT!r})")
    classes = _classes()
    name = state["class"]
    if name not in classes:
        raise ValueError(f"unknown estimator class {name!r}; known: {', '.join(classes)}")
    estimator = classes[name](**_decode(state["params"]))
    attributes = {k: _decode(v) for k, v in state["attributes"].items()}
    for key, value in attributes.items():
        setattr(estimator, key, value)
    with torch.random.fork_rng(devices=[]):
        module = estimator._build_module(
            attributes["n_features_in_"], attributes, attributes["_torch_dtype_"], 0
        )
    module.load_state_dict(state["module"])
    estimator._module = module.eval()
    return estimator


def save(estimator: Any, path: str | os.PathLike[str], **extra: Any) -> None:
    """Write the fitted ``estimator`` (and ``extra`` plain data) to ``path`` with
    ``torch.save``."""
    payload = {"estimator": estimator_state(estimator), "extra": _encode(extra)}
    torch.save(payload, os.fspath(path))


def load(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """``(estimator, extra)`` from a file written by :func:`save`, read with
    ``weights_only=True`` (no code runs from the file)."""
    payload = torch.load(os.fspath(path), weights_only=True, map_location="cpu")
    if not isinstance(payload, dict) or "estimator" not in payload:
        raise ValueError(f"{os.fspath(path)!r} is not a model saved by descend")
    return estimator_from_state(payload["estimator"]), _decode(payload.get("extra", {}))


def _fitted(name: str, params: dict[str, Any]) -> bool:
    return name not in params and name not in _SKIP and not name.startswith("__")


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
