r"""Matrix factorization for ratings: users and items to scores, and recommendations."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar, cast

import numpy as np
import torch
from scipy import sparse
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import Interval
from torch import Tensor, nn

from descend.estimators.base import DescendEstimator

#: the index of an id unseen in fit
UNKNOWN = -1


class Factorization(nn.Module):
    r"""The rating model :math:`\hat r_{ui} = \mu + b_u + c_i + p_u^\top q_i`.

    Its input is an (n, 2) tensor of (user index, item index) pairs (floats holding
    integers, as ``descend.fit`` casts features to the model's dtype); the global mean
    :math:`\mu` is a fixed buffer.
    """

    mean: Tensor  # a buffer

    def __init__(self, n_users: int, n_items: int, k: int, biases: bool, mean: float) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(n_users, k)
        self.item_factors = nn.Embedding(n_items, k)
        self.biases = biases
        if biases:
            # "offsets", not "bias": descend.fit's L2 term spares parameters named *bias,
            # and these are regularized like the factors
            self.user_offsets = nn.Embedding(n_users, 1)
            self.item_offsets = nn.Embedding(n_items, 1)
        self.register_buffer("mean", torch.tensor(float(mean)))

    def forward(self, pairs: Tensor) -> Tensor:
        users, items = pairs[:, 0].long(), pairs[:, 1].long()
        out = (self.user_factors(users) * self.item_factors(items)).sum(dim=1, keepdim=True)
        out = out + self.mean
        if self.biases:
            out = out + self.user_offsets(users) + self.item_offsets(items)
        return out


class MatrixFactorization(RegressorMixin, DescendEstimator):
    r"""Ratings from user and item ids by matrix factorization with biases.

    ``X`` holds (user id, item id) pairs, shape (n, 2) (any ids: integers, strings; a
    pandas frame of two columns works), ``y`` the ratings. The model is
    :math:`\hat r_{ui} = \mu + b_u + c_i + p_u^\top q_i` with :math:`\mu` the mean rating
    of the first fit, user and item biases :math:`b_u, c_i` and factors
    :math:`p_u, q_i \in \mathbb{R}^k`; the objective is

    .. math::
        \frac{\sum s_{ui}\,\tfrac12 (r_{ui} - \hat r_{ui})^2}{\sum s_{ui}}
        + \frac{\alpha}{2}\big(\|P\|^2 + \|Q\|^2 + \|b\|^2 + \|c\|^2\big),

    minimized by mini-batch Adam by default (:math:`\mu` is the weighted mean with
    sample weights). Factors start at
    :math:`\mathcal N(0, \text{init\_scale}^2)`, biases at 0.

    Ids unseen in fit predict from what is known (an unknown user: :math:`\mu + c_i`;
    both unknown: :math:`\mu`). ``partial_fit`` continues from the current model on new
    ratings; new users and items get new rows (and the optimizer's state restarts).

    Args:
        n_components: k, the number of latent factors, >= 1.
        alpha: L2 strength >= 0 on factors and biases.
        biases: learn :math:`b_u` and :math:`c_i` (else they are 0).
        init_scale: standard deviation > 0 of the initial factors.
        optimizer: ``"auto"`` (mini-batch Adam), a method name, an optimizer class or
            instance, or a factory ``params -> optimizer``.
        lr: learning rate > 0 (None: the method's training default in
            ``descend.METHODS``, 1e-3 for Adam).
        batch_size: ``"auto"`` (min(512, n)), ``"full"`` or rows per step >= 1.
        max_epochs: passes over the ratings (default 50).
        tol, early_stopping, validation_fraction, n_iter_no_change, random_state,
        device, optimizer_params, verbose: as for the other estimators (see
        :class:`~descend.estimators.MLPClassifier`).

    Attributes:
        users_, items_: the ids seen, sorted (row order of the factor matrices).
        user_factors_ (n_users, k), item_factors_ (n_items, k), user_bias_, item_bias_,
        global_mean_: the fitted model.
        n_iter_, t_, loss_, loss_curve_, validation_loss_curve_.

    Example:
        >>> from descend.estimators import MatrixFactorization
        >>> rng = np.random.default_rng(0)
        >>> U, V = rng.normal(size=(20, 2)), rng.normal(size=(30, 2))  # rank-2 tastes
        >>> pairs = np.array([(u, i) for u in range(20) for i in range(30) if rng.random() < 0.5])
        >>> ratings = (U[pairs[:, 0]] * V[pairs[:, 1]]).sum(1)
        >>> mf = MatrixFactorization(2, lr=0.05, max_epochs=200, random_state=0)
        >>> mf = mf.fit(pairs, ratings)
        >>> user, item = 0, 1
        >>> bool(abs(mf.predict([[user, item]])[0] - U[user] @ V[item]) < 0.1)
        True
        >>> len(mf.recommend(user, k=5))  # the user's five best-rated items
        5
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **DescendEstimator._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "biases": ["boolean"],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
    }
    _auto_batch_size = 512

    def __init__(
        self,
        n_components: int = 10,
        *,
        alpha: float = 1e-4,
        biases: bool = True,
        init_scale: float = 0.1,
        optimizer: Any = "auto",
        lr: float | None = None,
        batch_size: int | str = "auto",
        max_epochs: int = 50,
        tol: float = 1e-4,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        random_state: Any = None,
        device: str | None = "cpu",
        optimizer_params: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.biases = biases
        self.init_scale = init_scale
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device
        self.optimizer_params = optimizer_params
        self.verbose = verbose

    # -- hooks of the training routine -----------------------------------------------------

    def _validate_X(self) -> dict[str, Any]:
        return {"dtype": None}

    def _y_args(self) -> dict[str, Any]:
        return {"y_numeric": True}

    def _dtype(self, X: np.ndarray) -> torch.dtype:
        return torch.float64  # indices travel as floats: exact up to 2**53

    def _default_method(self, *, partial: bool, l1: float, fitted: dict[str, Any]) -> str:
        return "adam"

    def _penalty(self) -> tuple[float, float]:
        return 0.0, float(self.alpha)

    def _validate_targets(
        self,
        y: Any,
        *,
        first: bool,
        classes: Any,
        partial: bool = False,
        weights: np.ndarray | None = None,
    ) -> dict[str, Any]:
        y = np.asarray(y, dtype=np.float64)
        if first:
            return {"global_mean_": float(np.average(y, weights=weights))}
        return {"global_mean_": self.global_mean_}

    def _encode_features(
        self, X: np.ndarray, fitted: dict[str, Any], *, first: bool
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if X.shape[1] != 2:
            raise ValueError(
                f"X must have 2 columns (user id, item id), got n_features = {X.shape[1]}"
            )
        users = _ids(X[:, 0], "user")
        items = _ids(X[:, 1], "item")
        if first:
            known_users, known_items = np.unique(users), np.unique(items)
        else:
            known_users = _union(self.users_, users, "user")
            known_items = _union(self.items_, items, "item")
        u = np.searchsorted(known_users, users)
        i = np.searchsorted(known_items, items)
        rated = sparse.csr_array(
            (np.ones(len(u)), (u, i)), shape=(len(known_users), len(known_items))
        )
        if not first:
            old = sparse.csr_array(self._rated_)
            old.resize((len(known_users), len(known_items)))
            rated = rated + old
        rated.data[:] = 1.0
        updates = {"users_": known_users, "items_": known_items, "_rated_": rated}
        return np.column_stack([u, i]).astype(np.float64), updates

    def _encode_targets(self, y: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise ValueError(f"ratings y must be numeric, got dtype {y.dtype}")
        return y.astype(np.float64).reshape(-1, 1)

    def _sample_loss(self, fitted: dict[str, Any]) -> Any:
        def squared(prediction: Tensor, target: Tensor) -> Tensor:
            return 0.5 * (prediction - target).square().sum(dim=1)

        return squared

    def _mean_loss(self, fitted: dict[str, Any]) -> Any:
        def squared_mean(prediction: Tensor, target: Tensor) -> Tensor:
            return 0.5 * (prediction - target).square().mean()

        return squared_mean

    def _build_module(
        self, n_features: int, fitted: dict[str, Any], dtype: torch.dtype, seed: int
    ) -> Factorization:
        module = Factorization(
            len(fitted["users_"]),
            len(fitted["items_"]),
            int(self.n_components),
            bool(self.biases),
            fitted["global_mean_"],
        ).to(dtype)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for table in (module.user_factors, module.item_factors):
                table.weight.copy_(
                    torch.randn(table.weight.shape, generator=generator) * self.init_scale
                )
            if self.biases:
                module.user_offsets.weight.zero_()
                module.item_offsets.weight.zero_()
        return module

    def _module_for_update(self, fitted: dict[str, Any], seed: int) -> nn.Module:
        """The fitted model, with new rows (initialized as in fit) for new ids."""
        old = cast(Factorization, self._module)
        n_users, n_items = len(fitted["users_"]), len(fitted["items_"])
        if (n_users, n_items) == (len(self.users_), len(self.items_)):
            import copy

            return copy.deepcopy(old)
        module = self._build_module(2, fitted, old.mean.dtype, seed)
        user_rows = np.searchsorted(fitted["users_"], self.users_)
        item_rows = np.searchsorted(fitted["items_"], self.items_)
        with torch.no_grad():
            module.mean.copy_(old.mean)
            pairs = [("user_factors", user_rows), ("item_factors", item_rows)]
            if self.biases:
                pairs += [("user_offsets", user_rows), ("item_offsets", item_rows)]
            for name, rows in pairs:
                index = torch.from_numpy(rows)
                getattr(module, name).weight[index] = getattr(old, name).weight
        return module

    def _fitted_from_module(self, module: nn.Module, fitted: dict[str, Any]) -> dict[str, Any]:
        def table(name: str, n: int) -> np.ndarray:
            if not self.biases and name.endswith("offsets"):
                return np.zeros(n)
            return getattr(module, name).weight.detach().numpy().copy()

        n_users, n_items = len(fitted["users_"]), len(fitted["items_"])
        return {
            "user_factors_": table("user_factors", n_users),
            "item_factors_": table("item_factors", n_items),
            "user_bias_": table("user_offsets", n_users).reshape(-1),
            "item_bias_": table("item_offsets", n_items).reshape(-1),
        }

    # -- the public API ----------------------------------------------------------------------

    # narrower than DescendEstimator.fit: no distributed, checkpoint or resume (yet)
    def fit(  # type: ignore[override]
        self, X: Any, y: Any, sample_weight: Any = None, *, validation: Any = None
    ) -> MatrixFactorization:
        """Fit to (user, item) pairs ``X`` (n, 2) and ratings ``y`` (n,); returns ``self``.

        ``sample_weight`` (n,) >= 0 weighs ratings; ``validation=(X_val, y_val)`` is scored
        after every epoch (ids unseen in ``X`` count as unknown there too) and, with
        ``early_stopping``, decides the stop.
        """
        return self._train(X, y, sample_weight, validation=validation)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MatrixFactorization:
        """One epoch on new ratings from the current model (new ids get new rows)."""
        return self._train(X, y, sample_weight, partial=True)

    def _validation_data(
        self, validation: Any, fitted: dict[str, Any], dtype: torch.dtype, *, weighted: bool
    ) -> Any:
        raise ValueError(
            "MatrixFactorization takes no validation=(X, y): held-out ratings of unseen "
            "ids have no rows to score; use early_stopping with validation_fraction"
        )

    def data_loss(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        r"""The weighted mean of :math:`\frac12 (r - \hat r)^2` on ``(X, y)`` (ids unseen
        in fit predicted as in :meth:`predict`)."""
        residual = self.predict(X) - np.asarray(y, dtype=np.float64).reshape(-1)
        return float(0.5 * np.average(residual**2, weights=sample_weight))

    def _rows(self, ids: Any, known: np.ndarray, what: str) -> np.ndarray:
        """Each id's row in ``known``, or ``UNKNOWN``."""
        ids = _ids(np.asarray(ids), what)
        if (ids.dtype.kind in "US") != (known.dtype.kind in "US"):
            return np.full(len(ids), UNKNOWN)  # text ids never match numeric ones
        rows = np.searchsorted(known, ids)
        rows = np.clip(rows, 0, len(known) - 1)
        return np.where(known[rows] == ids, rows, UNKNOWN)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted ratings for (user id, item id) pairs, shape (n,)."""
        X = self._check_X(X)
        if X.shape[1] != 2:
            raise ValueError(f"X must have 2 columns (user id, item id), got {X.shape[1]}")
        u = self._rows(X[:, 0], self.users_, "user")
        i = self._rows(X[:, 1], self.items_, "item")
        return self._scores(u, i)

    def _scores(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        ku, ki = u != UNKNOWN, i != UNKNOWN
        out = np.full(len(u), self.global_mean_, dtype=np.float64)
        out[ku] += self.user_bias_[u[ku]]
        out[ki] += self.item_bias_[i[ki]]
        both = ku & ki
        out[both] += np.einsum("ij,ij->i", self.user_factors_[u[both]], self.item_factors_[i[both]])
        return out

    def recommend(
        self, user: Any, k: int = 10, *, exclude_rated: bool = True, return_scores: bool = False
    ) -> Any:
        """The ``k`` items with the highest predicted rating for ``user``, best first.

        Args:
            user: a user id. One unseen in fit gets the items ranked by
                :math:`\\mu + c_i` (popularity), with nothing excluded.
            k: how many items, >= 1 (fewer when fewer are left).
            exclude_rated: leave out the items the user rated in fit/partial_fit.
            return_scores: also return the predicted ratings.

        Returns:
            the item ids (an array), or ``(item ids, scores)``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        row = self._rows(np.asarray([user], dtype=object), self.users_, "user")[0]
        scores = self.global_mean_ + self.item_bias_.astype(np.float64)
        candidates = np.ones(len(self.items_), dtype=bool)
        if row != UNKNOWN:
            scores = scores + self.user_bias_[row] + self.item_factors_ @ self.user_factors_[row]
            if exclude_rated:
                rated = self._rated_[[row], :].indices
                candidates[rated] = False
        index = np.flatnonzero(candidates)
        k = min(int(k), len(index))
        top = index[np.argsort(-scores[index], kind="stable")[:k]]
        items = self.items_[top]
        return (items, scores[top]) if return_scores else items


def _ids(column: np.ndarray, what: str) -> np.ndarray:
    """A column of ids as a sortable array (numbers stay numbers, other ids become str)."""
    column = np.asarray(column)
    if column.dtype == object:
        try:
            column = column.astype(np.float64)
        except (TypeError, ValueError):
            column = column.astype(str)
    if column.dtype.kind == "f" and not np.isfinite(column).all():
        raise ValueError(f"{what} ids contain NaN or infinity")
    return column


def _union(known: np.ndarray, new: np.ndarray, what: str) -> np.ndarray:
    if known.dtype.kind != new.dtype.kind and {known.dtype.kind, new.dtype.kind} & {"U", "S"}:
        raise ValueError(
            f"{what} ids of partial_fit are {new.dtype}, but fit saw {known.dtype}; keep one "
            "kind of id"
        )
    return np.union1d(known, new)
