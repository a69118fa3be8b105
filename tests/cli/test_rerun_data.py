"""A recorded ``descend fit`` keeps its data's absolute path and SHA-256: ``runs rerun``
from another folder finds the data, or says which file it needs and whether the file it
found holds the same bytes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from descend.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture
def recorded_fit(tmp_path, monkeypatch):
    """Run 1: a linear fit of train.csv, recorded from folder a/ with a relative path."""
    monkeypatch.setenv("DESCEND_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    rows = "\n".join(f"{a:.6f},{b:.6f},{2 * a - b:.6f}" for a, b in X)
    here = tmp_path / "a"
    here.mkdir()
    (here / "train.csv").write_text("a,b,y\n" + rows + "\n")
    monkeypatch.chdir(here)
    done = invoke("fit", "train.csv", "--target", "y", "--model", "linear", "--epochs", "2")
    assert done.exit_code == 0, done.output
    elsewhere = tmp_path / "b"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return here / "train.csv"


def test_the_record_keeps_the_absolute_path_and_the_hash(recorded_fit) -> None:
    config = json.loads(invoke("runs", "show", "1", "--json").stdout)["config"]
    assert config["data"] == "train.csv"
    assert config["data_path"] == str(recorded_fit.resolve())
    assert config["data_sha256"] == hashlib.sha256(recorded_fit.read_bytes()).hexdigest()


def test_a_rerun_from_another_folder_finds_the_data(recorded_fit) -> None:
    again = invoke("runs", "rerun", "1")
    assert again.exit_code == 0, again.output
    assert f"data: {recorded_fit}" in again.stdout and "identical" in again.stdout


def test_a_changed_or_missing_file_is_named(recorded_fit, tmp_path) -> None:
    # a file of the same name here, with other bytes, and the recorded one changed
    (tmp_path / "b" / "train.csv").write_text("a,b,y\n1,2,3\n")
    recorded_fit.write_text(recorded_fit.read_text() + "0,0,0\n")
    changed = invoke("runs", "rerun", "1")
    assert changed.exit_code == 2, changed.output
    assert "holds other data" in changed.stderr and str(recorded_fit) in changed.stderr
    (tmp_path / "b" / "train.csv").unlink()
    recorded_fit.unlink()
    missing = invoke("runs", "rerun", "1")
    assert missing.exit_code == 2, missing.output
    assert "needs the data file" in missing.stderr and "neither is here" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
