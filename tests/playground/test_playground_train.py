"""The data mode: seeded data sets, racers trained by ``descend.fit`` side by side (batch
size 1, k and the full set), their numbers equal to ``fit``'s, the exported code
reproducing them, and bad requests refused with a one-line 422."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

import descend
from descend.playground.api import create_app
from descend.playground.datasets import GENERATED, make_dataset, make_model
from descend.playground.training import MAX_TRAIN_STEPS


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


BODY = {
    "data": {"name": "moons", "n": 60, "noise": 0.2, "seed": 3},
    "model": {"kind": "mlp", "layers": 1, "width": 6, "activation": "tanh"},
    "epochs": 4,
    "seed": 5,
    "l2": 1e-3,
    "schedule": "cosine",
    "clip_grad_norm": 1.0,
    "racers": [
        {"method": "adam", "options": {"lr": 0.05}, "batch_size": 1},
        {"method": "momentum", "options": {"lr": 0.1}, "batch_size": 8},
        {"method": "adam", "options": {"lr": 0.05, "betas": [0.8, 0.99]}, "batch_size": "full"},
    ],
}


def test_racers_train_side_by_side_exactly_as_fit_trains(client):
    response = client.post("/api/train", json=BODY)
    assert response.status_code == 200, response.text
    out = response.json()
    data = make_dataset("moons", n=60, noise=0.2, seed=3)
    m = len(data.y_train)
    assert out["data"]["y_train"] == data.y_train.tolist() and out["data"]["classes"] == 2
    for racer, run in zip(BODY["racers"], out["racers"], strict=True):
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in racer["options"].items()}
        res = descend.fit(
            make_model("mlp", classes=2, layers=1, width=6, activation="tanh"), "cross_entropy",
            (data.X_train, data.y_train), optimizer=racer["method"], batch_size=racer["batch_size"],
            epochs=4, max_steps=MAX_TRAIN_STEPS, seed=5, init="xavier", l2=1e-3,
            schedule="cosine", clip_grad_norm=1.0,
            validation=(data.X_test, data.y_test), metric="accuracy", progress=False, **options,
        )  # fmt: skip
        np.testing.assert_array_equal(run["loss"], res.epoch_history["loss"])
        np.testing.assert_array_equal(run["test_loss"], res.epoch_history["val_loss"])
        assert (run["status"], run["message"], run["steps"]) == (
            res.status.value, res.message, res.nit
        )  # fmt: skip
        # stochastic, mini-batch and batch descent: one step per batch of each epoch
        size = m if racer["batch_size"] == "full" else racer["batch_size"]
        assert run["steps"] == 4 * math.ceil(m / size)
        # the boundary is the trained model's prediction on the lattice
        grid = run["boundary"]
        xx, yy = np.meshgrid(grid["x"], grid["y"])
        points = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float32)
        with torch.no_grad():
            predicted = res.model(points).argmax(1).reshape(xx.shape)
        assert (np.array(grid["z"]) == predicted.numpy()).mean() > 0.999  # ties may round apart


def test_the_exported_training_code_reproduces_the_racer(client):
    run = client.post("/api/train", json=BODY).json()["racers"][1]
    scope: dict = {}
    exec(run["code"].replace("print(res)\n", ""), scope)
    np.testing.assert_array_equal(scope["test_loss"], run["test_loss"])


def test_generated_sets_are_seeded_and_drawn_from_their_shapes():
    for name in GENERATED:
        a, b = make_dataset(name, n=40, seed=1), make_dataset(name, n=40, seed=1)
        assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
        assert not torch.equal(a.X_train, make_dataset(name, n=40, seed=2).X_train)
        assert len(a.y_train) + len(a.y_test) == 40 and len(a.y_test) == 10
    xor = make_dataset("xor", n=100, noise=0.0)
    X, y = torch.cat([xor.X_train, xor.X_test]), torch.cat([xor.y_train, xor.y_test])
    assert torch.equal(y, (X[:, 0] * X[:, 1] > 0).long())
    circles = make_dataset("circles", n=100, noise=0.0)
    radius = torch.linalg.vector_norm(circles.X_train, dim=1)
    expected = torch.where(circles.y_train == 0, 1.0, 0.5)
    torch.testing.assert_close(radius, expected)


def test_two_features_of_a_bundled_set_standardized():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris

    iris = make_dataset("iris", features=[2, 3], noise=0.0, test_fraction=0.2)
    X = torch.cat([iris.X_train, iris.X_test]).double()
    raw = load_iris().data[:, [2, 3]]
    torch.testing.assert_close(X.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)
    assert iris.features == ("petal length (cm)", "petal width (cm)") and iris.classes == 3
    assert sorted(X[:, 0].tolist()) == pytest.approx(
        sorted(((raw[:, 0] - raw[:, 0].mean()) / raw[:, 0].std(ddof=1)).tolist()), abs=1e-5
    )


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"data": {"name": "moon"}}, "data.name", "did you mean 'moons'"),
        ({"data": {"name": "iris", "features": [1, 9]}}, "data.features", "from 0 to 3"),
        ({"racers": [{"method": "adma"}]}, "racers.0", "adam"),
        ({"racers": [{"method": "lbfgs", "batch_size": 8}]}, "racers.0", "full batch only"),
        ({"racers": [{"method": "gd", "batch_size": 0}]}, "racers.0.batch_size", ""),
        ({"racers": [{"method": "gd"}] * 5}, "racers", "at most 4"),
        ({"model": {"kind": "forest"}}, "model.kind", ""),
        ({"epochs": 10_000}, "epochs", "500"),
    ],
)
def test_a_bad_training_request_is_refused_naming_the_field(client, change, field, words):
    body = {**BODY, **change}
    if "data" in change:
        body["data"] = {**BODY["data"], **change["data"]}
    response = client.post("/api/train", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["field"] == field and words in error["error"] and "\n" not in error["error"]


def test_the_datasets_are_listed_with_the_bundled_ones_features(client):
    table = {d["name"]: d for d in client.get("/api/datasets").json()}
    assert set(GENERATED) <= set(table)
    if "iris" in table:
        assert table["iris"]["features"][2] == "petal length (cm)"


json_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
train_bodies = st.fixed_dictionaries(
    {},
    optional={
        "data": st.fixed_dictionaries({}, optional={
            "name": st.sampled_from(["moons", "iris", "nope"]) | json_values,
            "n": st.sampled_from([-1, 10, 20, 1001]) | json_values,
            "noise": st.floats() | json_values,
            "features": st.lists(st.integers(-1, 40) | json_values, max_size=3),
        }) | json_values,
        "model": st.fixed_dictionaries({}, optional={
            "kind": st.sampled_from(["mlp", "logistic", "tree"]) | json_values,
            "layers": st.integers(-1, 6), "width": st.integers(-1, 70),
            "activation": st.sampled_from(["relu", "nope"]) | json_values,
        }) | json_values,
        "racers": st.lists(st.fixed_dictionaries(
            {"method": st.sampled_from(["gd", "adam", "lbfgs", "nope"]) | json_values},
            optional={
                "options": st.dictionaries(st.sampled_from(["lr", "momentum", "x"]), json_values,
                                           max_size=2),
                "batch_size": st.sampled_from([0, 1, 8, "full", "half"]) | json_values,
            },
        ), max_size=2),
        "epochs": st.integers(-1, 2) | json_values,
        "l1": st.floats() | json_values,
        "schedule": st.sampled_from(["cosine", "nope"]) | json_values,
        "early_stopping": st.integers(-1, 2) | json_values,
        "grid": st.integers(0, 12) | json_values,
    },
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=train_bodies | json_values)
def test_fuzzed_training_requests_get_an_answer_and_never_a_server_error(client, body):
    text = json.dumps(body)  # NaN and Infinity as JavaScript writes them
    response = client.post("/api/train", content=text, headers={"content-type": "application/json"})
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error, str) and "\n" not in error
