"""What a record keeps of a run, and how it reads back like a result."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import descend
from descend.diagnostics import Diagnosis, Severity
from descend.runs import RunRecord, load, record, record_run
from descend.runs.record import config_json


def test_from_result_keeps_config_counts_history_and_environment(booth_run) -> None:
    config, result = booth_run
    entry = RunRecord.from_result("minimize", config, result)
    assert entry.label == "momentum" and entry.method == "momentum"
    assert entry.problem == "booth"
    assert entry.summary["status"] == result.status.value
    assert (entry.nit, entry.nfev, entry.njev) == (result.nit, result.nfev, result.njev)
    assert entry.fun == result.fun and entry.grad_norm == result.grad_norm
    assert entry.history.columns == result.history.columns
    assert len(entry.history) == len(result.history)
    np.testing.assert_array_equal(entry.history["x"], result.history["x"])
    env = entry.environment
    assert env["descend"] == descend.__version__ and env["torch"] == torch.__version__
    assert {"numpy", "python", "platform", "machine"} <= set(env)


def test_tuples_numpy_and_tensors_in_config_become_json() -> None:
    text = config_json(
        {"betas": (0.9, 0.99), "n": np.int64(3), "x0": torch.tensor([1.0, 2.0]), "p": None}
    )
    assert json.loads(text) == {"betas": [0.9, 0.99], "n": 3, "x0": [1.0, 2.0], "p": None}


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"fun": print}, r"config\['fun'\] is a builtin_function_or_method"),
        (
            {"nested": {"model": torch.nn.Linear(1, 1)}},
            r"config\['nested'\]\['model'\] is a Linear",
        ),
        ({1: "a"}, "has a key 1 that is not a string"),
        ([1, 2], "config must be a dict, got list"),
    ],
)
def test_config_that_json_cannot_hold_is_refused(config, match) -> None:
    with pytest.raises(TypeError, match=match):
        config_json(config)


def test_result_and_kind_are_checked(booth_run) -> None:
    config, result = booth_run
    with pytest.raises(TypeError, match="result must be a descend result"):
        RunRecord.from_result("minimize", config, object())
    with pytest.raises(ValueError, match="kind must be a non-empty string"):
        RunRecord.from_result(" ", config, result)
    with pytest.raises(ValueError, match="runner must be 'module:function'"):
        RunRecord.from_result("fit", config, result, runner="nocolon")


def test_diagnoses_are_kept_as_plain_fields(booth_run, db) -> None:
    config, result = booth_run
    finding = Diagnosis(
        kind="oscillation",
        severity=Severity.WARNING,
        step=7,
        message="steps flip",
        evidence={"mean_cos": -0.9, "ratio": math.inf},
        suggestion="lower lr",
        suggested={"lr": 0.01},
    )
    result.diagnoses = [finding]
    try:
        run_id = record_run("minimize", config, result)
    finally:
        result.diagnoses = []
    (kept,) = load(run_id).diagnoses
    assert kept == {
        "kind": "oscillation",
        "severity": "warning",
        "step": 7,
        "message": "steps flip",
        "evidence": {"mean_cos": -0.9, "ratio": math.inf},
        "suggestion": "lower lr",
        "suggested": {"lr": 0.01},
    }


def test_a_fit_run_keeps_both_histories_seed_and_parameters(db) -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, generator=g)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
    net = torch.nn.Linear(3, 1)
    res = descend.fit(
        net, "mse", (X, y), optimizer="gd", lr=0.1, epochs=3, batch_size=10, seed=5,
        validation=0.25, progress=False,
    )  # fmt: skip
    run_id = record(res, {"model": "linear(3, 1)", "epochs": 3})
    back = load(run_id)
    assert back.kind == "fit" and back.seed == 5
    assert back.epoch_history is not None and len(back.epoch_history) == 3
    np.testing.assert_array_equal(back.epoch_history["val_loss"], res.epoch_history["val_loss"])
    np.testing.assert_array_equal(back.history["loss"], res.history["loss"])
    assert back.x is None and back.summary["parameter_count"] == 4
    np.testing.assert_array_equal(back.arrays["parameters::weight"], net.weight.detach().numpy())
    assert len(back.summary["parameters_sha256"]) == 64
    assert back.summary["logs"]["val_loss"] == res.logs["val_loss"]


def test_to_dict_is_strict_json(booth_run) -> None:
    config, result = booth_run
    data = RunRecord.from_result("minimize", config, result).to_dict()
    text = json.dumps(data, allow_nan=False)  # raises on NaN or infinity
    back = json.loads(text)
    assert back["tables"]["history"]["step_norm"][0] is None  # NaN at the start
    assert back["tables"]["history"]["f"] == result.history["f"].tolist()
    assert back["result"]["fun"] == result.fun
    assert back["config"] == config


def test_tensor_results_keep_their_dtype() -> None:
    res = descend.minimize(
        lambda x: (x**2).sum(), torch.ones(3, dtype=torch.float32), "gd", max_iter=3
    )
    entry = RunRecord.from_result("minimize", {}, res)
    assert entry.x.dtype == np.float32 and entry.summary["x_kind"] == "tensor"
