"""The command line on an 80-column terminal, and on the inputs that used to print a
traceback: every table fits without a cut cell, and every mistake is one line, exit 2."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import descend
from descend.cli import app
from descend.problems import get_problem
from descend.runs import RunRecord, RunStore

runner = CliRunner()


def invoke(*args: str, columns: int = 80):
    return runner.invoke(app, list(args), env={"COLUMNS": str(columns)})


def assert_user_error(result, *fragments: str) -> None:
    """Exit 2, one line 'error: ...' on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output


def assert_fits(stdout: str, width: int = 80) -> None:
    """No line wider than the terminal, no cell cut short."""
    assert "…" not in stdout, stdout
    assert max(len(line.rstrip()) for line in stdout.splitlines()) <= width, stdout


@pytest.fixture(scope="module")
def booth() -> descend.OptimizeResult:
    return descend.minimize(get_problem("booth"), [0.0, 0.0], "gd", max_iter=5)


@pytest.fixture(scope="module")
def fitted() -> descend.FitResult:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(16, 2, generator=generator)
    y = X @ torch.tensor([[1.0], [-2.0]])
    model = torch.nn.Linear(2, 1)
    return descend.fit(model, "mse", (X, y), epochs=2, seed=0, progress=False)


@pytest.fixture
def db(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DESCEND_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "runs.sqlite"


def _add(db: Path, kind: str, config: dict, result, **names) -> int:
    with RunStore(db) as store:
        return store.add(RunRecord.from_result(kind, config, result, **names))


# ---------------------------------------------------------------------------------------
# 80 columns


def test_problems_and_methods_fit_80_columns_with_every_row_and_full_defaults() -> None:
    problems = invoke("problems")
    assert problems.exit_code == 0, problems.output
    assert_fits(problems.stdout)
    methods = invoke("methods")
    assert methods.exit_code == 0, methods.output
    assert_fits(methods.stdout)
    for name, method in descend.METHODS.items():
        assert re.search(rf"^ *{re.escape(name)} ", methods.stdout, re.MULTILINE), name
        for option, value in method.defaults.items():
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            assert f"{option}={shown}" in methods.stdout, (name, option)
    # L-BFGS's inner max_iter (fixed) is not confused with minimize's budget
    lbfgs = methods.stdout[methods.stdout.index(" lbfgs ") :].splitlines()[0]
    assert "15000" in lbfgs and "max_iter=15000" not in methods.stdout
    assert "max_iter=1 (fixed)" in methods.stdout
    # a wide terminal also shows the starts
    assert "(-1.2, 1)" in invoke("problems", columns=140).stdout


def test_a_race_with_a_long_method_name_fits_80_columns(db) -> None:
    methods = "gd,momentum,nesterov,adagrad,rmsprop,adam,schedule-free-adamw"
    result = invoke("compare", "booth", "--methods", methods, "--max-iter", "5", "--no-record")
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    rows = "".join(line.split()[0] for line in result.stdout.splitlines() if line.strip())
    assert "schedule-free-adamw" in rows  # folded, whole


def test_runs_list_keeps_every_id_at_80_columns(db, booth) -> None:
    ids = [
        _add(
            db,
            "compare",
            {"problem": "mgh-discrete-boundary-value"},
            booth,
            group="compare-0123abcd",
        )
        for _ in range(3)
    ]
    ids.append(_add(db, "minimize", {"problem": "booth"}, booth, label="a-rather-long-label"))
    result = invoke("runs", "list")
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    first_cells = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    for run_id in ids:
        assert str(run_id) in first_cells
    listed = json.loads(invoke("runs", "list", "--json").stdout)
    assert [row["id"] for row in listed] == ids
    assert listed[0]["group"] == "compare-0123abcd" and listed[3]["label"] == "a-rather-long-label"


def test_runs_show_fits_80_columns_and_its_json_is_the_record(db, booth) -> None:
    digest = "0123456789abcdef" * 4  # a value longer than the column: folded, not cut
    run_id = _add(db, "minimize", {"problem": "booth", "x0": [0.0, 0.0], "sha": digest}, booth)
    shown = invoke("runs", "show", str(run_id))
    assert shown.exit_code == 0, shown.output
    assert_fits(shown.stdout)
    assert digest in "".join(line.strip(" │") for line in shown.stdout.splitlines())
    other = _add(db, "minimize", {"problem": "booth", "x0": [1.0, 0.0], "sha": "1"}, booth)
    compared = invoke("runs", "compare", str(run_id), str(other))
    assert compared.exit_code == 0, compared.output
    assert_fits(compared.stdout)
    shown = json.loads(invoke("runs", "show", str(run_id), "--json").stdout)
    assert shown["id"] == run_id and shown["config"]["x0"] == [0.0, 0.0]
    assert shown["result"]["nit"] == booth.nit and shown["result"]["fun"] == booth.fun
    assert shown["tables"] == {"history": len(booth.history)}


# ---------------------------------------------------------------------------------------
# runs compare and delete


def test_compare_a_minimize_run_with_a_fit_run_prints_a_table(db, booth, fitted) -> None:
    minimize_id = _add(db, "minimize", {"problem": "booth", "settings": {"max_iter": None}}, booth)
    fit_id = _add(db, "fit", {"data": "train.csv", "settings": {"epochs": 2}}, fitted)
    result = invoke("runs", "compare", str(minimize_id), str(fit_id), columns=120)
    assert result.exit_code == 0, result.output
    # a setting one run lacks (None in the other) is a difference, not "the same"
    row = next(line for line in result.stdout.splitlines() if "settings.max_iter" in line)
    assert "—" in row and "(none)" in row
    assert "data" in result.stdout and "same in all" not in result.stdout


# ---------------------------------------------------------------------------------------
# user strings are never markup


def test_markup_in_user_strings_is_printed_as_written(db, booth) -> None:
    run_id = _add(db, "minimize", {"problem": "booth", "column [/]": "[bold]x[/]"}, booth,
                  label="[red]label[/]")  # fmt: skip
    other = _add(db, "minimize", {"problem": "booth", "column [/]": "y"}, booth)
    shown = invoke("runs", "show", str(run_id), columns=120)
    assert shown.exit_code == 0, shown.output
    assert "[red]label[/]" in shown.stdout and "[bold]x[/]" in shown.stdout
    compared = invoke("runs", "compare", str(run_id), str(other), columns=120)
    assert compared.exit_code == 0, compared.output
    assert "column [/]" in compared.stdout and "[red]label[/]" in compared.stdout
    listed = invoke("runs", "list", columns=120)
    assert listed.exit_code == 0 and "[red]label[/]" in listed.stdout


# ---------------------------------------------------------------------------------------
# output paths: refused before any work, replacing a file said


def test_an_output_path_that_is_a_folder_is_refused_before_work(db, booth, tmp_path) -> None:
    run_id = str(_add(db, "minimize", {"problem": "booth"}, booth))
    folder = tmp_path / "out"
    folder.mkdir()
    for args, option in [
        (
            ("compare", "booth", "--methods", "gd", "--max-iter", "5", "--plot", str(folder)),
            "--plot",
        ),
        (("runs", "compare", run_id, run_id + "0", "--plot", str(folder)), "--plot"),
        (("runs", "export", run_id, "--output", str(folder)), "--output"),
        (("report", run_id, "--html", str(folder)), "--html"),
    ]:
        assert_user_error(invoke(*args), option, "is a folder")
    assert len(RunStore(db).ids()) == 1  # compare stopped before it raced or recorded


def test_an_unwritable_folder_is_refused(db, booth, tmp_path, monkeypatch) -> None:
    run_id = str(_add(db, "minimize", {"problem": "booth"}, booth))
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(  # root may write anywhere: the folder says it is not writable
        os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode)
    )
    assert_user_error(invoke("report", run_id, "--html", str(locked / "r.html")), "is not writable")
    assert_user_error(
        invoke("runs", "export", run_id, "--output", str(locked / "r.json")), "is not writable"
    )
    assert not any(locked.iterdir())


def test_replacing_a_file_is_said(db, booth, tmp_path) -> None:
    run_id = str(_add(db, "minimize", {"problem": "booth"}, booth))
    target = tmp_path / "run.json"
    first = invoke("runs", "export", run_id, "--output", str(target), columns=200)
    assert first.exit_code == 0 and "replacing the file" not in first.stdout
    again = invoke("runs", "export", run_id, "--output", str(target), columns=200)
    assert again.exit_code == 0 and "replacing the file that was there" in again.stdout


def test_a_problem_too_large_for_memory_is_one_line(db) -> None:
    assert_user_error(
        invoke("minimize", "rosenbrock-99999999999d", "--no-record"),
        "rosenbrock-99999999999d",
        "does not fit in memory",
    )


# ---------------------------------------------------------------------------------------
# tables a user hands to descend fit


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"a,a,y\n1,2,0\n3,4,1\n5,6,0\n", ("names two columns the same", "'a' in columns 1, 2")),
        (b"a,b,y\n1,2,0\n3,inf,1\n5,6,0\n", ("column 'b' is inf at row 2", "line 3")),
        (b"a,b,y\n1,2,0\n3,-inf,1\n5,6,0\n", ("column 'b' is -inf at row 2",)),
        (b"a,b,y\n1,,0\n3,4,1\n5,nan,0\n", ("column 'b' is empty or NaN at row 1", "1 more")),
        (b"a,b,y\n1,2,0\n3,4,\n5,6,1\n", ("column 'y' is empty or NaN at row 2",)),
        (b"a,caf\xe9,y\n1,2,0\n3,4,1\n", ("data.csv", "not UTF-8", "iconv")),
        (b"a,b,y\n1,2,caf\xe9\n3,4,th\xe9\n", ("data.csv", "column 'y' is not UTF-8", "iconv")),
    ],
)
def test_a_faulty_table_is_one_line_naming_file_column_and_row(
    tmp_path, content, fragments
) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(content)
    result = invoke("fit", str(data), "--target", "y", "--model", "linear", "--no-record")
    assert_user_error(result, *fragments)
    assert len(result.stderr) < 300  # one readable line, not a library's essay


def test_a_folder_given_as_a_table_says_it_is_a_folder(tmp_path) -> None:
    result = invoke("fit", str(tmp_path), "--target", "y", "--no-record")
    assert_user_error(result, "is a folder")
