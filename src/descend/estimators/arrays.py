"""The estimators' array helpers: dtypes, NumPy to torch without copies, validated
``(X, y)``, and the target tensor ``fit`` sees (targets with the sample weights)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import validate_data
from torch import Tensor

#: dtypes the estimators compute in: float32 input stays float32, anything else is float64
FLOAT_DTYPES = (np.float64, np.float32)


def torch_dtype(dtype: Any) -> torch.dtype:
    """The torch dtype of a NumPy float dtype (float32 or float64)."""
    return torch.float32 if np.dtype(dtype) == np.float32 else torch.float64


def as_tensor(array: np.ndarray, dtype: torch.dtype | None = None) -> Tensor:
    """A CPU tensor sharing memory with ``array`` when it is contiguous and writable."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    tensor = torch.from_numpy(array)
    return tensor if dtype is None else tensor.to(dtype)


def validated(estimator: Any, X: Any, y: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``validate_data`` for (X, y), with a plain message for text targets of a regressor."""
    name = type(estimator).__name__
    try:
        X, y = validate_data(estimator, X, y, **kwargs)
    except ValueError as exc:
        if kwargs.get("y_numeric") and "could not convert string to float" in str(exc):
            raise ValueError(
                f"y must be numeric for {name}, a regressor; got text ({exc})"
            ) from None
        raise
    if kwargs.get("y_numeric") and np.asarray(y).dtype.kind not in "biuf":
        raise ValueError(f"y must be numeric for {name}, a regressor; got dtype {y.dtype}")
    return X, y


def pack_targets(target: np.ndarray, weights: np.ndarray | None, dtype: torch.dtype) -> Tensor:
    """The target tensor fit sees: the encoded targets, and the weights as a last column."""
    if weights is None:
        if target.dtype.kind in "iu":
            return torch.from_numpy(np.ascontiguousarray(target, dtype=np.int64))
        return as_tensor(np.asarray(target), dtype)
    columns = target.reshape(len(target), -1).astype(np.float64)
    return as_tensor(np.column_stack([columns, weights]), dtype)
