"""Fuzzing ``minimize``'s options and ``fit``'s arguments with hypothesis: whatever a user
passes, the run either returns a result or refuses the input with a ValueError or
TypeError whose message names an argument it was given. Anything else (an IndexError
from torch, a ZeroDivisionError in a monitor, an OverflowError) is a fault.

Bounded: 100 examples a test, small problems, a deadline per example, and derandomized, so a
run on any machine draws the same cases.
"""

import math
import re
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from descend import FitResult, OptimizeResult, Status, fit, minimize

FUZZ = settings(
    max_examples=100,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def names_an_argument(message: str, arguments) -> bool:
    """Whether ``message`` names one of ``arguments`` as a word."""
    return any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message) for name in arguments)


def refused_clearly(error: Exception, arguments) -> bool:
    return isinstance(error, (ValueError, TypeError)) and names_an_argument(str(error), arguments)


# -- minimize -----------------------------------------------------------------------------


def mostly(valid, invalid):
    """Valid values four times in five, so a case often gets past the first check."""
    return st.sampled_from([True, True, True, True, False]).flatmap(
        lambda ok: valid if ok else invalid
    )


METHOD_NAMES = ["gd", "momentum", "nesterov", "adam", "rmsprop", "adagrad", "lbfgs", "bfgs"]
METHOD_NAMES += ["cg", "newton", "trust-region", "BFGS", "L-BFGS-B", "CG"]
odd_floats = st.sampled_from([0.0, -1.0, 1e-12, 1e300, -1e300, math.nan, math.inf, -math.inf])
reals = mostly(st.floats(1e-4, 2.0), odd_floats)


def array(shape, dtype):
    return np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape).astype(dtype)


methods = mostly(
    st.sampled_from(METHOD_NAMES),
    st.sampled_from(["", "adamm", "Gd", "sgd", "newton_cg", ["gd"], 0, None]),
)
x0s = mostly(
    st.one_of(
        st.lists(st.floats(-3, 3), min_size=1, max_size=4),
        st.builds(array, st.sampled_from([(2,), (2, 2), (1, 3)]), st.just(np.float64)),
        st.builds(
            lambda dtype: torch.tensor([0.5, -1.0], dtype=dtype),
            st.sampled_from([torch.float32, torch.float64]),
        ),
    ),
    st.one_of(
        st.lists(st.one_of(st.floats(-3, 3), odd_floats), min_size=0, max_size=3),
        st.builds(
            array,
            st.sampled_from([(2,), (0,)]),
            st.sampled_from([np.float32, np.int64, np.bool_, np.complex128]),
        ),
        st.builds(
            lambda dtype: torch.tensor([0.5, -1.0], dtype=dtype),
            st.sampled_from([torch.int64, torch.float16, torch.bfloat16, torch.complex64]),
        ),
        st.sampled_from([None, "1.0", [[1.0], [2.0, 3.0]], 1.5]),
    ),
)
bounds = mostly(
    st.lists(st.tuples(st.floats(-5, 0), st.floats(0.5, 5)), min_size=1, max_size=4),
    st.one_of(
        st.lists(st.tuples(reals, reals), min_size=0, max_size=3),
        st.tuples(reals, reals),
        st.just("positive"),
    ),
)
minimize_options = st.fixed_dictionaries(
    {"max_iter": mostly(st.integers(0, 25), st.sampled_from([-1, 2.5, "10"]))},
    optional={
        "lr": mostly(reals, st.just("0.1")),
        "momentum": mostly(st.floats(0, 0.99), st.one_of(st.floats(-1, 3), odd_floats)),
        "gtol": reals,
        "ftol": reals,
        "xtol": reals,
        "bounds": bounds,
        "restarts": mostly(st.integers(1, 3), st.sampled_from([0, -1, "2", 1.5])),
        "device": mostly(st.sampled_from([None, "cpu"]), st.sampled_from(["cuda", "gpu", 3])),
        "weight_decay": mostly(st.floats(0, 0.1), st.sampled_from([1e308, -1.0, math.nan])),
        "maximize": mostly(st.just(False), st.just(True)),
    },
)


def quadratic(x):
    return ((x - 1) ** 2).sum()


@FUZZ
@given(method=methods, x0=x0s, options=minimize_options)
def test_minimize_returns_or_refuses_naming_the_argument(method, x0, options):
    try:
        res = minimize(quadratic, x0, method, **options)
    except Exception as error:
        arguments = {"x0", "method", "fun", *options}
        assert refused_clearly(error, arguments), f"{type(error).__name__}: {error}"
        return
    assert isinstance(res, OptimizeResult) and isinstance(res.status, Status)
    assert np.shape(res.x) == np.shape(x0)


# -- fit ------------------------------------------------------------------------------------

LOSSES = ["mse", "mae", "huber", "bce", "bce_with_logits", "cross_entropy", "nll"]
OPTIMIZERS = ["gd", "momentum", "adam", "rmsprop", "lbfgs", "newton"]


@st.composite
def fit_arguments(draw):
    rows = draw(st.integers(1, 12))
    features = draw(st.integers(1, 3))
    outputs = draw(st.integers(1, 3))
    data_features = draw(mostly(st.just(features), st.just(features + 1)))
    g = torch.Generator().manual_seed(draw(st.integers(0, 3)))
    X = torch.randn(rows, data_features, generator=g)
    target_kind = draw(
        mostly(st.sampled_from(["float", "labels"]), st.sampled_from(["wide", "flat", "short"]))
    )
    if target_kind == "labels":
        y = torch.randint(-1 if draw(st.booleans()) else 0, outputs + 1, (rows,), generator=g)
    elif target_kind == "wide":
        y = torch.randn(rows, outputs + 1, generator=g)
    elif target_kind == "flat":
        y = torch.randn(rows, generator=g)
    elif target_kind == "short":
        y = torch.randn(max(rows - 1, 0), outputs, generator=g)
    else:
        y = torch.randn(rows, outputs, generator=g)
    torch.manual_seed(0)
    model = nn.Linear(features, outputs)
    options = draw(
        st.fixed_dictionaries(
            {
                "loss": mostly(st.sampled_from(LOSSES), st.sampled_from(["msee", "MSE", ""])),
                "epochs": mostly(st.integers(1, 2), st.sampled_from([0, -1, "2", 1.5])),
            },
            optional={
                "batch_size": mostly(
                    st.one_of(st.integers(1, 20), st.just("full")),
                    st.sampled_from([0, -1, "half", 2.5, None]),
                ),
                "optimizer": mostly(
                    st.sampled_from(OPTIMIZERS), st.sampled_from(["sgd", "Adam", ""])
                ),
                "lr": reals,
                "metric": mostly(
                    st.sampled_from([None, "accuracy", "mse", "mae"]),
                    st.sampled_from(["acc", "auc"]),
                ),
                "validation": mostly(st.just("same"), st.sampled_from(["text", "narrow"])),
                "l2": mostly(st.floats(0, 0.1), st.sampled_from([1e308, -1.0, math.nan])),
                "clip_grad_norm": reals,
            },
        )
    )
    validation = options.get("validation")
    if validation == "same":
        options["validation"] = (X, y)
    elif validation == "text":
        options["validation"] = "validation.csv"
    elif validation == "narrow":
        options["validation"] = (X[:, :1], y)
    return model, (X, y), options


@FUZZ
@given(arguments=fit_arguments())
def test_fit_returns_or_refuses_naming_the_argument(arguments):
    model, data, options = arguments
    loss = options.pop("loss")
    try:
        res = fit(model, loss, data, progress=False, **options)
    except Exception as error:
        named = {"model", "loss", "data", "X", "y", *options}
        assert refused_clearly(error, named), f"{type(error).__name__}: {error}"
        return
    assert isinstance(res, FitResult) and isinstance(res.status, Status)


# -- what the fuzz found -------------------------------------------------------------------
# Faults the fuzz found and that are now fixed, each held by an example of its own (a
# future fault found the same way goes here as a strict xfail until it is fixed).


def linear_data(rows=6):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(rows, 3, generator=g)
    return X, X.sum(1, keepdim=True)


def refuses(call, argument):
    """The right behaviour for a bad input: a ValueError or TypeError naming ``argument``."""

    def check():
        with pytest.raises((ValueError, TypeError)) as caught:
            call()
        assert names_an_argument(str(caught.value), [argument]), str(caught.value)

    return check


FOUND = {
    "fit optimizer='sgd' names optimizer": refuses(
        lambda: fit(nn.Linear(3, 1), "mse", linear_data(), optimizer="sgd", progress=False),
        "optimizer",
    ),
    "fit loss='bce' on outputs outside [0, 1]": refuses(
        lambda: fit(nn.Linear(3, 1), "bce", linear_data(), epochs=1, progress=False),
        "loss",
    ),
    "fit validation rows of another width": refuses(
        lambda: fit(
            nn.Linear(3, 1),
            "mse",
            linear_data(),
            validation=(linear_data()[0][:, :1], linear_data()[1]),
            epochs=1,
            progress=False,
        ),
        "validation",
    ),
}


@pytest.mark.parametrize("fault", FOUND)
def test_what_the_fuzz_found_is_refused_by_name(fault):
    FOUND[fault]()
