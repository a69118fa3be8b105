"""``descend runs ...`` and ``descend report``, and the recording of minimize and compare."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from descend.cli import app
from descend.runs import RunStore

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DESCEND_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "runs.sqlite"


@pytest.fixture
def recorded(home) -> Path:
    """Run 1: minimize booth by gd; runs 2-3: a race of gd and adam on booth."""
    assert (
        invoke("minimize", "booth", "-m", "gd", "--lr", "0.05", "--max-iter", "30").exit_code == 0
    )
    done = invoke("compare", "booth", "--methods", "gd,adam", "--max-iter", "30")
    assert done.exit_code == 0, done.output
    return home


def test_minimize_and_compare_record_their_runs(recorded) -> None:
    with RunStore(recorded) as store:
        infos = store.list()
        assert [(i.id, i.kind, i.label) for i in infos] == [
            (1, "minimize", "gd"),
            (2, "compare", "gd"),
            (3, "compare", "adam"),
        ]
        assert infos[1].group == infos[2].group and infos[1].group.startswith("compare-")
        first = store.get(1)
    assert first.config == {
        "problem": "booth",
        "x0": [-5.0, -5.0],
        "method": "gd",
        "options": {"lr": 0.05},
        "settings": {"max_iter": 30, "record": True},
    }
    assert first.history.record_x  # a 2-D run keeps its path for the report


def test_minimize_says_where_it_recorded(home) -> None:
    result = invoke("minimize", "booth", "--max-iter", "5")
    assert f"recorded as run 1 in {home}" in " ".join(result.stdout.split())


def test_db_flag_and_no_record(tmp_path, home) -> None:
    other = tmp_path / "other.sqlite"
    assert invoke("minimize", "booth", "--max-iter", "5", "--db", str(other)).exit_code == 0
    assert invoke("minimize", "booth", "--max-iter", "5", "--no-record").exit_code == 0
    assert not home.exists()
    with RunStore(other) as store:
        assert len(store) == 1
    assert "no runs recorded" in invoke("runs", "list").stdout
    assert "booth" in invoke("runs", "list", "--db", str(other)).stdout


def test_list_shows_a_row_per_run(recorded) -> None:
    result = invoke("runs", "list")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert rows[2][3:7] == ["compare", "adam", "on", "booth"]
    only = invoke("runs", "list", "--kind", "minimize").stdout
    assert "compare" not in only and "minimize" in only
    newest = invoke("runs", "list", "-n", "1").stdout
    assert " adam on " in newest and " gd on " not in newest


def test_show_prints_result_config_and_environment(recorded) -> None:
    result = invoke("runs", "show", "1")
    assert result.exit_code == 0, result.output
    text = result.stdout
    for fragment in ("run 1: gd (minimize)", "options.lr", "0.05", "settings.max_iter", "torch"):
        assert fragment in text, fragment
    assert "histories: history (31 rows)" in text


def test_compare_lines_runs_up_and_plots(recorded, tmp_path) -> None:
    target = tmp_path / "cmp.png"
    result = invoke("runs", "compare", "1", "2", "3", "--plot", str(target))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "run 1" in line)
    assert header.split() == ["run", "1", "run", "2", "run", "3"]
    assert any(line.split()[:1] == ["options.lr"] for line in lines)  # it differs
    assert "same in all: problem=booth" in " ".join(result.stdout.split())
    assert target.read_bytes()[:4] == b"\x89PNG"


def test_rerun_reports_identical(recorded) -> None:
    result = invoke("runs", "rerun", "3")
    assert result.exit_code == 0, result.output
    assert "identical: status, counts, final f, x and" in " ".join(result.stdout.split())


def test_rerun_reports_the_first_difference_and_exits_1(recorded) -> None:
    with sqlite3.connect(recorded) as conn:
        (summary,) = conn.execute("SELECT summary FROM runs WHERE id = 1").fetchone()
        data = json.loads(summary)
        data["fun"] = data["fun"] * 2
        conn.execute("UPDATE runs SET summary = ? WHERE id = 1", (json.dumps(data),))
    result = invoke("runs", "rerun", "1")
    assert result.exit_code == 1, result.output
    assert "different: final f: recorded" in " ".join(result.stdout.split())


def test_a_rank_that_fails_in_a_rerun_is_one_line_exit_1(recorded, monkeypatch) -> None:
    import descend.runs
    from descend.distributed.launch import RankFailure

    def failing(record):  # a rerun of a --nproc 2 run whose rank 1 died
        raise RankFailure(1, 2, "", "killed by SIGKILL")

    monkeypatch.setattr(descend.runs, "rerun", failing)
    result = invoke("runs", "rerun", "3")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == "error: rank 1 of 2 failed: killed by SIGKILL"


def test_export_csv_and_json(recorded, tmp_path) -> None:
    result = invoke("runs", "export", "1", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == [
        "iteration",
        "f",
        "grad_norm",
        "step_norm",
        "lr",
        "time",
        "nfev",
        "njev",
        "x0",
        "x1",
    ]
    with RunStore(recorded) as store:
        run = store.get(1)
    assert len(rows) == len(run.history) + 1
    assert [float(r[1]) for r in rows[1:]] == run.history["f"].tolist()  # exact round trip
    target = tmp_path / "run.json"
    result = invoke("runs", "export", "1", "--format", "json", "--output", str(target))
    assert result.exit_code == 0 and f"to {target}" in result.stdout
    data = json.loads(target.read_text())
    assert data["id"] == 1 and data["config"]["method"] == "gd"
    assert data["tables"]["history"]["f"] == run.history["f"].tolist()
    assert data["environment"]["torch"]


def test_delete_asks_then_removes_runs(recorded) -> None:
    declined = runner.invoke(app, ["runs", "delete", "2", "3"], input="n\n")
    assert declined.exit_code == 1 and "delete runs 2, 3" in declined.stdout
    assert "nothing deleted" in declined.stderr
    with RunStore(recorded) as store:
        assert store.ids() == [1, 2, 3]
    unanswered = runner.invoke(app, ["runs", "delete", "2"], input="")
    assert unanswered.exit_code == 1 and "nothing deleted" in unanswered.stderr
    accepted = runner.invoke(app, ["runs", "delete", "2"], input="y\n")
    assert accepted.exit_code == 0 and "deleted run 2" in accepted.stdout
    result = invoke("runs", "delete", "3", "--yes")
    assert result.exit_code == 0 and "deleted run 3" in result.stdout
    with RunStore(recorded) as store:
        assert store.ids() == [1]
    assert_user_error(invoke("runs", "delete", "1", "7", "--yes"), "no run with id 7")
    with RunStore(recorded) as store:
        assert store.ids() == [1]  # all or nothing


def test_report_writes_one_self_contained_page(recorded, tmp_path) -> None:
    target = tmp_path / "report.html"
    result = invoke("report", "2", "3", "--html", str(target))
    assert result.exit_code == 0, result.output
    page = target.read_text()
    assert "data:image/png;base64," in page and "https://" not in page
    assert "descend runs 2, 3 on booth" in page


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("runs", "show", "9"), ("no run with id 9 in", "runs 1 to 3")),
        (("runs", "show", "x"), ("Invalid value for 'ID'",)),
        (("runs", "compare", "1"), ("at least two run ids",)),
        (("runs", "compare", "1", "1"), ("name a run twice",)),
        (("runs", "compare", "1", "2", "--plot", "a.txt"), ("no known image suffix",)),
        (("runs", "export", "1", "--format", "xml"), ("--format 'xml' is not known",)),
        (("runs", "export", "1", "--format", "csv", "--table", "epoch_history"), ("has history",)),
        (("runs", "export", "1", "--output", "/no/such/dir/x.json"), ("does not exist",)),
        (("report", "1", "--html", "r.pdf"), ("must end in .html",)),
        (("report", "1"), ("Missing option '--html'",)),
    ],
)
def test_mistakes_give_one_line_and_exit_2(recorded, args, fragments) -> None:
    assert_user_error(invoke(*args), *fragments)


def test_a_corrupt_database_stops_every_command_with_one_line(home) -> None:
    home.parent.mkdir(parents=True)
    home.write_bytes(b"garbage" * 1000)
    for args in (("runs", "list"), ("runs", "show", "1"), ("minimize", "booth", "--max-iter", "3")):
        result = invoke(*args)
        assert_user_error(result, str(home), "corrupt or not a database", "Move it aside")
        assert result.stdout == ""  # minimize stopped before running
    assert home.read_bytes() == b"garbage" * 1000
    # --no-record still runs
    assert invoke("minimize", "booth", "--max-iter", "3", "--no-record").exit_code == 0
