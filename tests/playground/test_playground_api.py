"""The playground's JSON API through FastAPI's TestClient: its numbers are descend's, its
exported code reproduces them, and every bad request gets a one-line 4xx."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

import descend
from descend.playground.api import MAX_BODY, create_app
from descend.problems import get_problem


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def race(client: TestClient, **body):
    return client.post("/api/race", json=body)


def test_the_page_and_its_assets_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "/vendor/plotly.min.js" in page.text and "http" not in page.text.split("<body>")[0]
    for path, kind in [
        ("/static/app.js", "javascript"),
        ("/static/style.css", "css"),
        ("/vendor/plotly.min.js", "javascript"),
    ]:
        response = client.get(path)
        assert response.status_code == 200 and kind in response.headers["content-type"], path
    assert len(client.get("/vendor/plotly.min.js").content) > 1_000_000  # Plotly.js itself
    schema = client.get("/api/openapi.json").json()
    assert {"/api/problems", "/api/methods", "/api/landscape", "/api/race"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 404  # Swagger's page would load a CDN


def test_problems_and_methods_list_what_descend_has(client):
    problems = {p["name"]: p for p in client.get("/api/problems").json()}
    assert problems["rosenbrock"]["minima"] == [[1.0, 1.0]]
    assert problems["rosenbrock"]["f_min"] == 0.0
    assert set(problems) == set(descend.problems.PROBLEMS)
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert set(methods) == set(descend.methods.METHODS)
    adam = {o["name"]: o["default"] for o in methods["adam"]["options"]}
    assert adam["betas"] == [0.9, 0.999] and "lr" in adam and "foreach" not in adam
    assert methods["adam"]["elementwise"] and not methods["lbfgs"]["elementwise"]
    assert methods["lars"]["first_order"] and not methods["lars"]["elementwise"]
    assert not methods["lbfgs"]["first_order"] and not methods["newton"]["first_order"]


def test_the_schedules_offered_are_fits():
    from typing import get_args

    from descend.playground.api import ScheduleName
    from descend.train.schedules import NAMES

    assert get_args(ScheduleName) == NAMES


@pytest.mark.parametrize(
    ("method", "options", "around"),
    [("momentum", {"lr": 1e-3, "momentum": 0.8}, {}),
     ("adam", {"lr": 0.05, "betas": [0.8, 0.99]}, {}),
     ("adam", {"lr": 0.05}, {"schedule": "warmup_cosine", "clip_grad_norm": 2.0}),
     ("lbfgs", {}, {})],
)  # fmt: skip
def test_a_race_runs_exactly_what_minimize_runs(client, method, options, around):
    body = {"problem": "rosenbrock", "start": [-1.2, 1.0], "steps": 150}
    run = race(client, **body, racers=[{"method": method, "options": options, **around}]).json()
    (racer,) = run["racers"]
    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    res = descend.minimize(
        get_problem("rosenbrock"), [-1.2, 1.0], method, max_iter=150, record=True, **opts,
        **around,
    )  # fmt: skip
    np.testing.assert_allclose(racer["lr"], res.history["lr"], rtol=0, atol=0)
    np.testing.assert_allclose(np.array(racer["x"]), res.history["x"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(racer["f"], res.history["f"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(racer["grad_norm"], res.history["grad_norm"], rtol=0, atol=1e-12)
    assert (racer["status"], racer["message"]) == (res.status.value, res.message)
    assert racer["nit"] == res.nit and len(racer["x"]) == res.nit + 1
    # the arrows' gradients: exact, one per iterate, their norms the run's
    np.testing.assert_allclose(np.linalg.norm(racer["grad"], axis=1), res.history["grad_norm"])


def test_the_exported_code_reproduces_the_racer(client):
    """ "Export as code" runs as printed and gives the page's numbers: a slice of an n-D
    problem with gradient noise, the hardest case to print."""
    run = race(
        client, problem="mgh-wood", start=[-1.0, 0.5], steps=60, noise=0.3, seed=7,
        racers=[{"method": "adam", "options": {"lr": 0.05, "betas": [0.85, 0.99]}}],
    ).json()  # fmt: skip
    racer = run["racers"][0]
    scope: dict = {}
    exec(racer["code"].replace("print(res)\n", ""), scope)
    np.testing.assert_array_equal(scope["trajectory"], np.array(racer["x"]))


def test_the_exported_code_of_a_formula_reproduces_the_racer(client):
    run = race(
        client, formula="sin(x) * y**2 + 0.1*x**2", start=[1.0, 1.0], steps=40,
        racers=[{"method": "gd", "options": {"lr": 0.1}},
                {"method": "momentum", "options": {"lr": 0.3}, "schedule": "one_cycle",
                 "clip_grad_norm": 0.5}],
    ).json()  # fmt: skip
    plain, scheduled = run["racers"]
    assert "schedule='one_cycle', clip_grad_norm=0.5)" in scheduled["code"]
    for racer in (plain, scheduled):
        scope: dict = {}
        exec(racer["code"].replace("print(res)\n", ""), scope)
        np.testing.assert_array_equal(scope["trajectory"], np.array(racer["x"]))
    assert not np.allclose(plain["x"][1:], scheduled["x"][1:])


def test_gradient_noise_is_seeded(client):
    body = dict(
        problem="himmelblau", start=[0.0, 0.0], steps=50, noise=0.5,
        racers=[{"method": "gd", "options": {"lr": 0.01}}],
    )  # fmt: skip
    first = race(client, **body, seed=1).json()["racers"][0]["x"]
    again = race(client, **body, seed=1).json()["racers"][0]["x"]
    other = race(client, **body, seed=2).json()["racers"][0]["x"]
    quiet = race(client, **{**body, "noise": 0.0}, seed=1).json()["racers"][0]["x"]
    assert first == again
    assert first != other and first != quiet


def test_a_formula_landscape_is_drawn_and_raced_with_its_autodiff_gradient(client):
    grid = client.post("/api/landscape", json={"formula": "(x - 1)**2 + 3*y**2", "n": 5}).json()
    assert len(grid["x"]) == len(grid["y"]) == 5 and len(grid["z"]) == 5
    assert grid["z"][2][2] == pytest.approx(1.0)  # at (0, 0)
    racer = race(
        client, formula="(x - 1)**2 + 3*y**2", start=[3.0, 2.0],
        racers=[{"method": "lbfgs"}],
    ).json()["racers"][0]  # fmt: skip
    assert racer["converged"] and racer["x"][-1] == pytest.approx([1.0, 0.0], abs=1e-6)


def test_the_answer_carries_the_race_s_numbers_exactly(client):
    from descend.playground.landscape import get_landscape
    from descend.playground.race import Racer
    from descend.playground.race import race as run_race

    racers = [{"method": "adam", "options": {"lr": 0.05}}, {"method": "lbfgs"}]
    answer = race(client, problem="rosenbrock", start=[-1.2, 1.0], steps=60, racers=racers)
    direct = run_race(
        get_landscape(problem="rosenbrock"), [-1.2, 1.0],
        [Racer(r["method"], r.get("options", {})) for r in racers], steps=60,
    )  # fmt: skip
    # what json.dumps would write, read back: every float to the last bit
    assert answer.json()["racers"] == json.loads(json.dumps(direct))


def test_a_problem_in_more_dimensions_is_its_slice_through_the_minimum(client):
    grid = client.post("/api/landscape", json={"problem": "mgh-extended-rosenbrock", "n": 3})
    assert grid.status_code == 200
    meta = grid.json()
    assert meta["dim"] == 10 and meta["minima"] == [[1.0, 1.0]] and meta["f_min"] == 0.0


def test_the_diagnoses_come_back_in_words(client):
    racer = race(
        client, problem="rosenbrock", start=[-1.2, 1.0], steps=200,
        racers=[{"method": "gd", "options": {"lr": 0.01}}],
    ).json()["racers"][0]  # fmt: skip
    assert racer["status"] == "diverged"
    kinds = [d["kind"] for d in racer["diagnoses"]]
    assert "divergence" in kinds and all(d["message"] for d in racer["diagnoses"])


@pytest.mark.parametrize(
    ("formula", "words"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "attribute access (.system)"),
        ("x.__class__", "attribute access"),
        ("().__class__.__bases__", "attribute access"),
        ("os", "unknown name 'os'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("lambda: 1", "Lambda"),
        ("[c for c in x]", "ListComp"),
        ("x[0]", "Subscript"),
        ("9**9**9", "cannot be evaluated"),
        ("x +", "does not parse"),
    ],
)
def test_a_formula_outside_the_whitelist_is_refused_naming_the_field(client, formula, words):
    for path, extra in [("/api/landscape", {}), ("/api/race", {"racers": [{"method": "gd"}]})]:
        response = client.post(path, json={"formula": formula, **extra})
        assert response.status_code == 422, (path, response.text)
        error = response.json()
        assert error["field"] == "formula" and words in error["error"]
        assert "\n" not in error["error"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"problem": "rosenbrok"}, "problem", "did you mean 'rosenbrock'"),
        ({"racers": [{"method": "adamm"}]}, "racers.0", "unknown method"),
        ({"racers": [{"method": "adam", "options": {"lrr": 0.1}}]}, "racers.0", "lrr"),
        ({"racers": [{"method": "gd", "options": {"lr": -1.0}}]}, "racers.0", "lr"),
        ({"racers": [{"method": "gd", "options": {"restarts": 10**6}}]}, "racers.0",
         "no option 'restarts'"),
        ({"racers": [{"method": "adam", "options": {"max_time": 1e9}}]}, "racers.0",
         "no option 'max_time'"),
        ({"racers": [{"method": "gd"}, {"method": "adam", "options": {"betas": "x"}}]},
         "racers.1", "adam"),
        ({"racers": [{"method": "adam", "schedule": "cosin"}]}, "racers.0.schedule",
         "'cosine'"),
        ({"racers": [{"method": "adam", "clip_grad_norm": 0}]}, "racers.0.clip_grad_norm",
         "greater than 0"),
        ({"racers": [{"method": "gd"}, {"method": "lbfgs", "schedule": "cosine"}]},
         "racers.1", "lbfgs: method 'lbfgs' takes line-search or curvature steps, which "
         "schedule= would break; the first-order methods take them: gd, momentum"),
        ({"racers": [{"method": "newton", "clip_grad_norm": 1.0}]}, "racers.0",
         "clip_grad_norm= would break"),
        ({"start": [1.0]}, "start", "at least 2"),
        ({"start": [1.0, "nan"]}, "start.1", "finite"),
        ({"steps": 0}, "steps", "greater than or equal to 1"),
        ({"steps": 10**6}, "steps", "less than or equal to 5000"),
        ({"noise": -1}, "noise", "greater than or equal to 0"),
        ({"racers": []}, "racers", "at least 1"),
        ({"racers": [{"method": "gd"}] * 9}, "racers", "at most 8"),
        ({"formula": "x**2"}, "body", "exactly one of problem"),
        ({"bogus": 1}, "bogus", "Extra inputs"),
    ],
)  # fmt: skip
def test_a_bad_race_is_refused_with_a_422_naming_the_field(client, body, field, words):
    request = {"problem": "rosenbrock", "racers": [{"method": "gd"}], **body}
    response = client.post("/api/race", json=request)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["field"] == field and words in error["error"], error
    assert error["error"].startswith(f"{field}: ") and "\n" not in error["error"]


def test_bodies_that_are_too_large_or_not_json_are_refused(client):
    huge = client.post(
        "/api/race",
        content=b"{" + b" " * MAX_BODY + b"}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and "bytes" in huge.json()["error"]
    broken = client.post(
        "/api/race", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and "error" in broken.json()
    assert client.get("/api/methods").status_code == 200  # and it keeps answering


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)  # fmt: skip
racers = st.lists(
    st.fixed_dictionaries(
        {"method": st.sampled_from(["gd", "adam", "lbfgs", "newton", "nope", ""]) | json_values},
        optional={"options": st.dictionaries(
            st.sampled_from(["lr", "betas", "momentum", "eps", "max_eval", "x"]), json_values,
            max_size=3),
            "schedule": st.sampled_from(["cosine", "one_cycle", "plateau", "nope"]) | json_values,
            "clip_grad_norm": st.floats() | json_values},
    ),
    max_size=3,
)  # fmt: skip
race_bodies = st.fixed_dictionaries(
    {},
    optional={
        "problem": st.sampled_from(["rosenbrock", "mgh-wood", "nope"]) | json_values,
        "formula": st.sampled_from(["x**2 + y", "exp(x*y)", "log(x)", "x."]) | json_values,
        "start": st.lists(st.floats() | json_values, max_size=3),
        "racers": racers,
        "steps": st.integers(-2, 5) | json_values,
        "noise": st.floats() | json_values,
        "seed": st.integers(-2, 2**64) | json_values,
        "n": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=race_bodies | json_values)
def test_fuzzed_requests_get_an_answer_and_never_a_server_error(client, body):
    text = json.dumps(
        body
    )  # NaN and Infinity as JavaScript writes them: the server's json reads them
    for path in ("/api/race", "/api/landscape"):
        response = client.post(path, content=text, headers={"content-type": "application/json"})
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error, str) and "\n" not in error
