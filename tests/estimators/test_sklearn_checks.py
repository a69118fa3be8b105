"""scikit-learn's estimator contract, run through ``parametrize_with_checks``.

Instances use small networks and epoch budgets so the whole contract runs in seconds;
the contract does not depend on them. The sample-weight check runs on 15 rows, one
mini-batch, so it holds for the mini-batch models too (except with dropout).
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from descend.estimators import (
    LinearRegression,
    LinearSVC,
    LogisticRegression,
    MatrixFactorization,
    MLPClassifier,
    MLPRegressor,
)

PAIRS = (
    "MatrixFactorization's X is (user id, item id) pairs, two columns; this check fits it "
    "on a feature matrix of another width"
)
DROPOUT_WEIGHTS = (
    "dropout draws one mask per row, so k repeated rows get k masks where a row of "
    "weight k gets one: equal in expectation only"
)


def expected_failed_checks(estimator):
    if isinstance(estimator, MatrixFactorization):
        return {
            name: PAIRS
            for name in (
                "check_fit_score_takes_y",
                "check_dont_overwrite_parameters",
                "check_n_features_in_after_fitting",
                "check_positive_only_tag_during_fit",
                "check_estimators_dtypes",
                "check_sample_weights_list",
                "check_sample_weight_equivalence_on_dense_data",
                "check_dtype_object",
                "check_pipeline_consistency",
                "check_estimators_nan_inf",
                "check_estimators_pickle",
                "check_f_contiguous_array_estimator",
                "check_regressors_train",
                "check_regressor_data_not_an_array",
                "check_regressors_no_decision_function",
                "check_supervised_y_2d",
                "check_regressors_int",
                "check_methods_sample_order_invariance",
                "check_methods_subset_invariance",
                "check_fit2d_1sample",
                "check_dict_unchanged",
                "check_fit2d_predict1d",
            )
        }
    if isinstance(estimator, (MLPClassifier, MLPRegressor)) and estimator.dropout > 0:
        return {"check_sample_weight_equivalence_on_dense_data": DROPOUT_WEIGHTS}
    return {}


@parametrize_with_checks(
    [
        LinearRegression(),
        LinearRegression(penalty="elasticnet", alpha=0.01, max_epochs=200),
        LogisticRegression(),
        LogisticRegression(optimizer="newton-cg", tol=1e-8),  # stops where tol is met
        LinearSVC(tol=1e-8),
        LinearSVC(loss="hinge", max_epochs=30),
        MLPClassifier((16,), lr=1e-2, max_epochs=40),
        MLPClassifier((8,), batch_norm=True, dropout=0.1, lr=1e-2, max_epochs=40),
        MLPRegressor((32,), lr=1e-2, max_epochs=50),
        MatrixFactorization(n_components=3, max_epochs=5),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_contract(estimator, check):
    check(estimator)


@pytest.mark.parametrize("name", ["check_fit2d_1feature", "check_all_zero_sample_weights_error"])
def test_matrix_factorization_passes_the_pair_checks_that_apply(name):
    """Two checks of other widths do apply to pairs: their errors are the expected ones."""
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, name)("MatrixFactorization", MatrixFactorization(max_epochs=2))
