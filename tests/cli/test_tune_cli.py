"""``descend tune``: a study on a CSV table, its best trials, a SQLite study continued by
running the command again, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from descend.cli import app
from descend.runs import RunStore

runner = CliRunner()


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    frame = load_digits(as_frame=True).frame.sample(300, random_state=0)
    frame["target"] = frame["target"].map(lambda d: f"digit{d}")  # text labels
    path = tmp_path_factory.mktemp("tune") / "digits.csv"
    frame.to_csv(path, index=False)
    return path


def invoke(*args: object):
    return runner.invoke(app, ["tune", *(str(a) for a in args)])


def test_tune_runs_a_stored_study_and_continues_it(table, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = (table, "--target", "target", "--model", "logistic", "--optimizer",
              "adam,momentum", "--epochs", "3", "--storage", storage,
              "--study-name", "d")  # fmt: skip
    first = invoke(*common, "--trials", "3")
    assert first.exit_code == 0, first.output
    assert "logistic on digits.csv: 3 trials" in first.stdout
    assert "best trials by validation accuracy" in first.stdout
    assert "best: optimizer=" in first.stdout
    second = invoke(*common, "--trials", "5", "--plots", tmp_path / "plots")
    assert second.exit_code == 0, second.output
    assert "5 trials" in second.stdout
    for name in ("history", "importances", "slice"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 0
    stored = optuna.load_study(study_name="d", storage=storage)
    assert len(stored.trials) == 5
    assert stored.direction == optuna.study.StudyDirection.MAXIMIZE


def test_every_trial_and_a_rerun_of_the_best_are_run_records(table, tmp_path):
    db = tmp_path / "runs.sqlite"
    done = invoke(table, "--target", "target", "--model", "logistic", "--epochs", "2",
                  "--trials", "3", "--pruner", "none", "--db", db)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "recorded as runs" in done.stdout
    with RunStore(db) as store:
        records = [store.get(i) for i in store.ids()]
    assert [r.kind for r in records] == ["tune"] * 4
    assert len({r.group for r in records}) == 1
    trials, best = records[:3], records[3]
    chosen = best.config["trial"]
    assert best.label == f"best: trial {chosen}, rerun"
    # the rerun is the best trial again, with its seed: the same numbers
    assert best.summary["fun"] == trials[chosen].summary["fun"]
    assert trials[chosen].config["arguments"] == best.config["arguments"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--target", "nope"), "no column 'nope'"),
        (("--target", "target", "--model", "svm"), "unknown --model"),
        (("--target", "target", "--optimizer", "adamx"), "unknown method"),
        (("--target", "target", "--batch-sizes", "0"), "--batch-sizes"),
        (("--target", "target", "--pruner", "mean"), "pruner"),
        (("--target", "target", "--validation-split", "1"), "--validation-split"),
    ],
)
def test_bad_input_is_one_line(table, args, fragment):
    result = invoke(table, *args, "--trials", "1", "--epochs", "1")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
