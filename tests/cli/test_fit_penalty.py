"""``descend fit --penalty/--alpha/--l1-ratio``: the CLI trains the estimator Python would
with the same arguments, ridge as scikit-learn solves it, a larger alpha shrinks the
weights, the penalty is printed and recorded (a rerun repeats it), and bad values are
one-line errors naming what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

from descend.cli import app
from descend.estimators import LinearRegression, LogisticRegression
from descend.estimators.persist import load

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray, np.ndarray]]:
    """A regression and a two-class table, each as its file, X and y."""
    folder = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    values = X @ np.array([2.0, -1.0, 0.5]) + 0.1 * rng.normal(size=80)
    labels = (X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=80) > 0).astype(int)
    made = {}
    for name, y in (("values", values), ("labels", labels)):
        path = folder / f"{name}.csv"
        rows = "\n".join(",".join(repr(float(v)) for v in (*x, t)) for x, t in zip(X, y))
        path.write_text("a,b,c,y\n" + rows + "\n")
        made[name] = (path, X, y)
    return made


def cli_coefficients(path: Path, model: str, tmp_path: Path, *penalty: object) -> np.ndarray:
    """The coefficients ``descend fit`` saves, trained on every row, unscaled."""
    saved = tmp_path / f"{model}-{'-'.join(map(str, penalty))}.pt"
    result = invoke(
        "fit", path, "--target", "y", "--model", model, "--validation-split", "0",
        "--no-standardize", "--no-record", "--save", saved, *penalty,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return load(saved)[0].coef_


def test_the_cli_trains_what_the_estimator_trains_with_the_same_arguments(tables, tmp_path):
    path, X, y = tables["values"]
    from_cli = cli_coefficients(path, "linear", tmp_path, "--penalty", "l2", "--alpha", 0.3)
    in_python = LinearRegression(penalty="l2", alpha=0.3, random_state=0).fit(X, y).coef_
    np.testing.assert_array_equal(from_cli, in_python)
    # ridge: mean squared error / 2 + alpha/2 |w|^2 is scikit-learn's Ridge(alpha=n alpha)
    ridge = Ridge(alpha=len(y) * 0.3).fit(X, y).coef_
    np.testing.assert_allclose(from_cli, ridge, rtol=1e-5, atol=1e-8)

    path, X, y = tables["labels"]
    args = {"penalty": "elasticnet", "alpha": 0.01, "l1_ratio": 0.5}
    from_cli = cli_coefficients(
        path, "logistic", tmp_path, "--penalty", "elasticnet", "--alpha", 0.01, "--l1-ratio", 0.5
    )
    in_python = LogisticRegression(**args, random_state=0).fit(X, y).coef_
    np.testing.assert_array_equal(from_cli, in_python)
    default = cli_coefficients(path, "logistic", tmp_path, "--alpha", 0.01)
    assert not np.array_equal(default, from_cli)  # the elastic net was not ignored


def test_a_larger_alpha_shrinks_the_weights(tables, tmp_path):
    path, *_ = tables["values"]
    norms = [
        np.linalg.norm(cli_coefficients(path, "linear", tmp_path, "--penalty", p, "--alpha", a))
        for p, a in (("l2", 0.01), ("l2", 1.0), ("l1", 0.01), ("l1", 0.5))
    ]
    assert norms[1] < norms[0] and norms[3] < norms[2]
    unpenalized = np.linalg.norm(cli_coefficients(path, "linear", tmp_path))
    assert norms[0] < unpenalized


def test_the_summary_names_the_penalty_and_the_metric_and_the_record_keeps_them(tables, tmp_path):
    path, *_ = tables["labels"]
    db = tmp_path / "runs.sqlite"
    trained = invoke(
        "fit", path, "--target", "y", "--model", "logistic", "--penalty", "elasticnet",
        "--alpha", "0.02", "--l1-ratio", "0.25", "--db", db,
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "penalty: elasticnet, alpha 0.02, l1_ratio 0.25\n" in trained.stdout
    assert "accuracy is the share of rows labelled right" in trained.stdout
    config = json.loads(invoke("runs", "show", "1", "--db", db, "--json").stdout)["config"]
    assert (config["penalty"], config["alpha"], config["l1_ratio"]) == ("elasticnet", 0.02, 0.25)
    again = invoke("runs", "rerun", "1", "--db", db)
    assert again.exit_code == 0 and "identical" in again.stdout, again.output

    regression = invoke(
        "fit", tables["values"][0], "--target", "y", "--model", "linear", "--no-record"
    )
    assert regression.exit_code == 0, regression.output
    assert "penalty: none\n" in regression.stdout and "R² is 1 - " in regression.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--model", "linear", "--penalty", "l3"), ("'l3'", "none, l1, l2 or elasticnet")),
        (("--model", "mlp-regressor", "--penalty", "l1"), ("takes only l2", "--alpha 0")),
        (("--model", "linear", "--penalty", "l2", "--alpha", "-1"), ("--alpha", "-1", "[0")),
        (("--model", "linear", "--penalty", "l2", "--alpha", "nan"), ("--alpha", "nan")),
        (("--model", "linear", "--alpha", "0.1"), ("without a penalty", "--penalty l1, l2")),
        (("--model", "linear", "--penalty", "l2", "--l1-ratio", "0.5"), ("elasticnet",)),
        (
            ("--model", "linear", "--penalty", "elasticnet", "--l1-ratio", "2"),
            ("--l1-ratio", "[0, 1]", "2"),
        ),
    ],
)
def test_bad_penalties_are_one_line_errors(tables, args, fragments):
    result = invoke("fit", tables["values"][0], "--target", "y", "--no-record", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output
