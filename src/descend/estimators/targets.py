"""Target handling of the estimators, as mixins: labels of the classifiers (with the
cross-entropy loss and its probabilities) and numeric targets of the regressors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch.nn.functional as F
from scipy.special import expit, softmax
from torch import Tensor


class ClassifierTargets:
    """Label handling of the classifiers: ``classes_`` (sorted, any labels, strings
    included), the ``classes`` argument of ``partial_fit``, labels to indices, and scores
    to labels (one output for two classes, one per class otherwise)."""

    classes_: np.ndarray  # set by fit

    def _y_args(self) -> dict[str, Any]:
        return {}

    def _n_outputs(self, fitted: dict[str, Any]) -> int:
        k = len(fitted["classes_"])
        return 1 if k == 2 else k

    @staticmethod
    def _scores(z: np.ndarray) -> np.ndarray:
        """The outputs (n, k) as scores: shape (n,) for one output (two classes), else (n, k)."""
        return z[:, 0] if z.shape[1] == 1 else z

    def _labels(self, scores: np.ndarray) -> np.ndarray:
        """The label of each row's largest score; scores (n,): ``classes_[1]`` where > 0."""
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    def _validate_targets(
        self,
        y: Any,
        *,
        first: bool,
        classes: Any,
        partial: bool = False,
        weights: np.ndarray | None = None,
    ) -> dict[str, Any]:
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y)
        name = type(self).__name__
        if not first:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} differs from the classes of the "
                    f"first partial_fit call, {self.classes_.tolist()}"
                )
            return {"classes_": self.classes_}
        if classes is None and partial:
            raise ValueError(
                f"classes must be passed on the first call to {name}.partial_fit "
                "(every label the model will see)"
            )
        found = np.unique(np.asarray(y))
        classes_ = found if classes is None else np.unique(np.asarray(classes))
        if classes is not None:
            unknown = np.setdiff1d(found, classes_)
            if unknown.size:
                raise ValueError(
                    f"y has labels {unknown.tolist()} that are not in classes={classes_.tolist()}"
                )
        if classes_.size < 2:
            raise ValueError(
                f"{name} needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes_.tolist()[0]!r}"
            )
        return {"classes_": classes_}

    @staticmethod
    def _label_indices(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Each label's index in ``classes``; unknown labels raise a ValueError."""
        y = np.asarray(y).reshape(-1)
        index = np.searchsorted(classes, y)
        index = np.clip(index, 0, len(classes) - 1)
        bad = classes[index] != y
        if np.any(bad):
            raise ValueError(
                f"y has labels {np.unique(y[bad]).tolist()[:10]} unseen in fit; known "
                f"classes: {classes.tolist()}"
            )
        return index.astype(np.int64)


class CrossEntropyTargets(ClassifierTargets):
    """The classifiers of the cross-entropy loss: two classes have one output and the
    logistic loss (sigmoid), K > 2 classes K outputs and the softmax cross-entropy."""

    def _encode_targets(self, y: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
        index = self._label_indices(y, fitted["classes_"])
        if len(fitted["classes_"]) == 2:
            return index.astype(np.float64).reshape(-1, 1)
        return index

    def _sample_loss(self, fitted: dict[str, Any]) -> Callable[[Tensor, Tensor], Tensor]:
        if len(fitted["classes_"]) == 2:

            def logistic(prediction: Tensor, target: Tensor) -> Tensor:
                return F.binary_cross_entropy_with_logits(
                    prediction, target, reduction="none"
                ).reshape(-1)

            return logistic

        def multinomial(prediction: Tensor, target: Tensor) -> Tensor:
            return F.cross_entropy(prediction, target.reshape(-1).long(), reduction="none")

        return multinomial

    def _mean_loss(self, fitted: dict[str, Any]) -> Callable[[Tensor, Tensor], Tensor]:
        if len(fitted["classes_"]) == 2:
            return F.binary_cross_entropy_with_logits
        return F.cross_entropy

    @staticmethod
    def _probabilities(scores: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes) from the scores of :meth:`_scores`."""
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The log of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))  # type: ignore[attr-defined]


class RegressorTargets:
    """Target handling of the regressors: numeric y of shape (n,) or (n, k)."""

    # set by fit
    _multi_output: bool
    n_outputs_: int

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.target_tags.multi_output = True
        return tags

    def _y_args(self) -> dict[str, Any]:
        return {"y_numeric": True, "multi_output": True}

    def _validate_targets(
        self,
        y: Any,
        *,
        first: bool,
        classes: Any,
        partial: bool = False,
        weights: np.ndarray | None = None,
    ) -> dict[str, Any]:
        y = np.asarray(y)
        k = 1 if y.ndim == 1 else y.shape[1]
        if first:
            return {"_multi_output": y.ndim == 2, "n_outputs_": k}
        if (y.ndim == 2) != self._multi_output or k != self.n_outputs_:
            raise ValueError(
                f"y has shape {y.shape}, but this model was fitted to {self.n_outputs_} "
                f"target(s) given as {'2-D' if self._multi_output else '1-D'} y"
            )
        return {"_multi_output": self._multi_output, "n_outputs_": k}

    def _encode_targets(self, y: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise ValueError(f"y must be numeric for a regressor, got dtype {y.dtype}")
        y = y.reshape(len(y), -1).astype(np.float64)
        if y.shape[1] != fitted["n_outputs_"]:
            raise ValueError(
                f"y has {y.shape[1]} target column(s), the model {fitted['n_outputs_']}"
            )
        if not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinity")
        return y

    def _n_outputs(self, fitted: dict[str, Any]) -> int:
        return fitted["n_outputs_"]
