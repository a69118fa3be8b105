"""``descend federated``: a simulation on a CSV table with a table per round, and
one-line errors naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from descend.cli import app
from descend.runs import RunStore

runner = CliRunner()


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    frame = load_digits(as_frame=True).frame.sample(400, random_state=0)
    path = tmp_path_factory.mktemp("federated") / "digits.csv"
    frame.to_csv(path, index=False)
    return path


def invoke(*args: object):
    return runner.invoke(app, ["federated", *(str(a) for a in args)])


def test_federated_prints_a_row_per_round_and_repeats_with_the_seed(table):
    args = (table, "--target", "target", "--clients", "8", "--rounds", "3",
            "--partition", "dirichlet", "--alpha", "0.5", "--strategy", "fedprox",
            "--fraction", "0.5", "--lr", "0.05", "--no-record")  # fmt: skip
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "8 clients (dirichlet" in first.stdout and "fedprox, 3 rounds" in first.stdout
    assert "test accuracy" in first.stdout
    rows = [line for line in first.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 3 and all("│       4 │" in row for row in rows)
    again = invoke(*args)
    assert again.stdout == first.stdout


def test_a_run_stopped_and_resumed_is_recorded_as_the_uninterrupted_one(table, tmp_path):
    db = tmp_path / "runs.sqlite"
    args = (table, "--target", "target", "--clients", "6", "--strategy", "fedavgm",
            "--fraction", "0.5", "--lr", "0.05", "--db", db)  # fmt: skip
    straight = invoke(*args, "--rounds", "3")
    assert straight.exit_code == 0, straight.output
    assert "recorded as run 1" in straight.stdout
    saved = tmp_path / "server.pt"
    first = invoke(*args, "--rounds", "2", "--checkpoint", saved)
    assert first.exit_code == 0, first.output
    resumed = invoke(*args, "--rounds", "3", "--checkpoint", saved, "--resume")
    assert resumed.exit_code == 0, resumed.output
    with RunStore(db) as store:
        whole, _, rest = (store.get(i) for i in store.ids())
    assert whole.kind == "federated" and whole.label == "fedavgm"
    assert whole.summary["nit"] == rest.summary["nit"] == 3
    assert rest.summary["fun"] == whole.summary["fun"]
    assert rest.summary["parameters_sha256"] == whole.summary["parameters_sha256"]


def test_resume_needs_a_checkpoint(table):
    result = invoke(table, "--target", "target", "--rounds", "1", "--resume")
    assert result.exit_code == 2 and "give --checkpoint" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--alpha", "0", "--partition", "dirichlet"), "alpha"),
        (("--clients", "1000"), "clients"),
        (("--fraction", "1.5"), "fraction"),
        (("--strategy", "fedsgd"), "strategy"),
        (("--test-split", "0"), "--test-split"),
        (("--batch-size", "x"), "--batch-size"),
        (("--model", "svm"), "unknown --model"),
    ],
)
def test_bad_input_is_one_line_naming_it(table, args, fragment):
    result = invoke(table, "--target", "target", "--rounds", "1", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines


def test_the_saved_global_model_predicts_through_descend_predict(table, tmp_path):
    """--save writes the global model; descend predict reads it and labels every row as the
    model's most probable class (accuracy on the training table well above chance)."""
    import pandas as pd

    saved = tmp_path / "global.pt"
    done = invoke(table, "--target", "target", "--clients", "4", "--rounds", "3",
                  "--lr", "0.1", "--no-record", "--save", saved)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"saved the global model to {saved}" in done.stdout
    out = tmp_path / "predicted.csv"
    predicted = runner.invoke(app, ["predict", str(saved), str(table), "--output", str(out)])
    assert predicted.exit_code == 0, predicted.output
    truth = pd.read_csv(table)["target"].to_numpy()
    labels = pd.read_csv(out)["target_predicted"].to_numpy()
    assert len(labels) == len(truth) and set(labels) <= set(truth)
    assert (labels == truth).mean() > 0.5  # 10 classes: chance is 0.1


def test_a_saved_regression_model_predicts_in_the_targets_units(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["y"] = 100 + 5 * X[:, 0] - 3 * X[:, 1]
    data = tmp_path / "reg.csv"
    frame.to_csv(data, index=False)
    saved = tmp_path / "reg.pt"
    done = invoke(data, "--target", "y", "--model", "linear", "--clients", "4", "--rounds", "20",
                  "--optimizer", "gd", "--lr", "0.3", "--local-epochs", "5", "--no-record",
                  "--save", saved)  # fmt: skip
    assert done.exit_code == 0, done.output
    out = tmp_path / "p.csv"
    predicted = runner.invoke(app, ["predict", str(saved), str(data), "--output", str(out)])
    assert predicted.exit_code == 0, predicted.output
    error = pd.read_csv(out)["y_predicted"].to_numpy() - frame["y"].to_numpy()
    assert np.sqrt(np.mean(error**2)) < 0.5  # target spread is ~6: back in the target's units
