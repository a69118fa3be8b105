"""``descend fit`` and ``descend predict``: training on CSV tables, metrics, saved models
read back safely, predictions, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from descend.cli import app
from descend.estimators.persist import load

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> None:
    """Exit 2, one line 'error: ...' on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    names = list(columns)
    rows = zip(*(columns[name] for name in names))
    path.write_text(",".join(names) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


@pytest.fixture
def tables(tmp_path):
    """A classification table (text labels, features on very different scales) and a
    regression table (target far from 0)."""
    rng = np.random.default_rng(0)
    n = 240
    a, b, c = rng.normal(size=n), 100 * rng.normal(size=n), rng.normal(size=n)
    label = np.where(a + b / 100 > 0.2, "yes", np.where(c > 0, "maybe", "no"))
    value = 50 + 3 * a + 0.05 * b - 2 * c + 0.1 * rng.normal(size=n)
    classes = write_csv(tmp_path / "classes.csv", {"a": a, "b": b, "c": c, "label": label})
    values = write_csv(tmp_path / "values.csv", {"a": a, "b": b, "c": c, "value": value})
    return classes, values


def test_fit_prints_metrics_and_saves_a_safely_loadable_model(tables, tmp_path):
    classes, _ = tables
    model, curves = tmp_path / "model.pt", tmp_path / "curves.png"
    result = invoke(
        "fit", classes, "--target", "label", "--model", "logistic", "--seed", "3",
        "--save", model, "--plot", curves,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "LogisticRegression on classes.csv by lbfgs" in out
    train = next(line for line in out.splitlines() if "train" in line)
    validation = next(line for line in out.splitlines() if "validation" in line)
    assert "192" in train and "48" in validation  # a 0.2 validation split of 240 rows
    assert float(validation.split("│")[-2]) > 0.85  # validation accuracy
    assert curves.stat().st_size > 1000
    payload = torch.load(model, weights_only=True)  # plain data only
    assert payload["estimator"]["class"] == "LogisticRegression"
    estimator, extra = load(model)
    assert extra["target"] == "label" and extra["features"] == ["a", "b", "c"]
    assert list(estimator.classes_) == ["maybe", "no", "yes"]
    assert len(extra["loss_curve"]) == estimator.n_iter_ == len(extra["validation_loss_curve"])
    assert extra["metrics"]["validation"]["rows"] == 48


def test_predict_writes_what_the_saved_model_predicts(tables, tmp_path):
    _, values = tables
    model, output = tmp_path / "reg.pt", tmp_path / "out.csv"
    fitted = invoke("fit", values, "--target", "value", "--model", "linear", "--save", model)
    assert fitted.exit_code == 0, fitted.output
    assert "R²" in fitted.stdout and "standardized target" in fitted.stdout
    result = invoke("predict", model, values, "--output", output)
    assert result.exit_code == 0, result.output
    lines = output.read_text().splitlines()
    assert lines[0] == "value_predicted" and len(lines) == 241
    predicted = np.array(lines[1:], dtype=float)
    truth = np.loadtxt(values, delimiter=",", skiprows=1, usecols=3)
    assert np.sqrt(np.mean((predicted - truth) ** 2)) < 0.2  # the target's own units
    to_stdout = invoke("predict", model, values)
    assert to_stdout.stdout.splitlines() == lines


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("svm", []),
        ("mlp-classifier", ["--optimizer", "adam", "--batch-size", "64", "--lr", "0.01"]),
        ("mlp-regressor", ["--epochs", "20", "--lr", "0.01"]),
        ("logistic", ["--optimizer", "newton", "--no-standardize", "--validation-split", "0"]),
    ],
)
def test_every_model_trains(tables, model, extra):
    classes, values = tables
    table, target = (values, "value") if model.endswith("regressor") else (classes, "label")
    result = invoke("fit", table, "--target", target, "--model", model, "--epochs", "20", *extra)
    assert result.exit_code == 0, result.output
    assert ("validation" in result.stdout) == ("0" not in extra)


def test_stopping_short_is_a_note_not_a_failure(tables):
    classes, _ = tables
    result = invoke("fit", classes, "--target", "label", "--model", "logistic", "--epochs", "1")
    assert result.exit_code == 0
    assert "note: LogisticRegression did not converge in --epochs 1: " in result.stderr
    assert "raise --epochs" in result.stderr and "max_epochs" not in result.stderr


def test_overfitting_is_shown_after_the_metrics(tmp_path):
    # the first-hour report: a wide MLP on diabetes with adam, the validation loss climbing
    # while the training loss falls, and the fix printed under the table
    datasets = pytest.importorskip("sklearn.datasets")
    frame = datasets.load_diabetes(as_frame=True).frame
    table = write_csv(tmp_path / "diabetes.csv", {c: frame[c].to_numpy() for c in frame})
    args = ["fit", table, "--target", "target", "--model", "mlp-regressor", "--optimizer"]
    result = invoke(*args, "adam", "--epochs", "40", "--no-record")
    assert result.exit_code == 0, result.output
    table_end = result.stdout.index("validation")
    shown = result.stdout.index("MLPRegressor: what the monitors saw")
    assert shown > table_end
    assert "[warning] overfitting (step" in result.stdout
    assert "early_stopping=True" in result.stdout
    held_in = invoke(*args, "adam", "--epochs", "40", "--validation-split", "0", "--no-record")
    assert held_in.exit_code == 0, held_in.output
    assert "what the monitors saw" not in held_in.stdout  # nothing held out: nothing to read


def test_user_errors_are_one_line(tables, tmp_path):
    classes, values = tables
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b'a,b\n1,2,3\n"x')
    text = write_csv(tmp_path / "text.csv", {"a": ["x", "y", "z"], "value": [1, 2, 3]})
    assert_user_error(invoke("fit", tmp_path / "none.csv", "--target", "y"), "no such file")
    assert_user_error(invoke("fit", garbage, "--target", "a"), "cannot read", "as CSV")
    assert_user_error(invoke("fit", classes, "--target", "nope"), "no column 'nope'", "columns:")
    assert_user_error(
        invoke("fit", text, "--target", "value", "--model", "linear"), "'a'", "not numeric"
    )
    assert_user_error(
        invoke("fit", classes, "--target", "label", "--model", "linear"),
        "target column 'label' is not numeric",
    )
    assert_user_error(invoke("fit", classes, "--target", "label", "--model", "tree"), "tree")
    assert_user_error(
        invoke("fit", classes, "--target", "label", "--batch-size", "big"), "--batch-size"
    )
    assert_user_error(
        invoke("fit", classes, "--target", "label", "--validation-split", "1.5"),
        "--validation-split",
    )
    assert_user_error(
        invoke("fit", classes, "--target", "label", "--optimizer", "sgdd"), "not a descend method"
    )
    assert_user_error(
        invoke("fit", classes, "--target", "label", "--save", tmp_path / "no" / "m.pt"),
        "does not exist",
    )
    assert_user_error(invoke("predict", classes, values), "not a descend model file", "MODEL.pt")
    assert_user_error(invoke("predict", tmp_path, values), "it is a folder")
    assert_user_error(
        invoke("fit", classes, "--target", "label", "--save", tmp_path), "is a folder"
    )
    model = tmp_path / "m.pt"
    assert (
        invoke("fit", values, "--target", "value", "--model", "linear", "--save", model).exit_code
        == 0
    )
    write_csv(tmp_path / "fewer.csv", {"a": [1.0], "b": [2.0]})
    assert_user_error(invoke("predict", model, tmp_path / "fewer.csv"), "no column(s) 'c'")


def test_a_real_process_trains_and_predicts(tables, tmp_path):
    _, values = tables
    model = tmp_path / "model.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "descend.cli"]
    fit = subprocess.run(
        [*command, "fit", str(values), "--target", "value", "--model", "linear",
         "--save", str(model)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert "LinearRegression on values.csv" in fit.stdout
    predict = subprocess.run(
        [*command, "predict", str(model), str(values)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert predict.returncode == 0, predict.stderr
    assert len(predict.stdout.splitlines()) == 241
    bad = subprocess.run(
        [*command, "fit", str(values), "--target", "missing"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and not bad.stdout


def test_a_fit_run_is_recorded_and_reruns_bit_for_bit(tables, tmp_path):
    db = tmp_path / "runs.sqlite"
    trained = invoke(
        "fit",
        tables[0],
        "--target",
        "label",
        "--epochs",
        "3",
        "--model",
        "mlp-classifier",
        "--db",
        db,
    )
    assert trained.exit_code == 0, trained.output
    assert "recorded as run 1" in trained.stdout
    shown = invoke("runs", "show", "1", "--db", db)
    assert shown.exit_code == 0 and "mlp-classifier" in shown.stdout
    again = invoke("runs", "rerun", "1", "--db", db)
    assert again.exit_code == 0, again.output
    assert "identical" in again.stdout
    skipped = invoke("fit", tables[0], "--target", "label", "--no-record", "--db", db)
    assert skipped.exit_code == 0 and "recorded" not in skipped.stdout


def test_replacing_a_saved_model_is_said(tables, tmp_path):
    _, values = tables
    model = tmp_path / "m.pt"
    args = ("fit", values, "--target", "value", "--model", "linear", "--epochs", "2",
            "--no-record", "--save", model)  # fmt: skip
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert f"saved the model to {model}\n" in first.stdout
    assert f"saved the model to {model} (replacing the file that was there)" in second.stdout
