"""The ``descend`` command line: tables, exit codes, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import descend
from descend.cli import app, main
from descend.cli.parse import format_vector, parse_methods, parse_options, parse_value, parse_x0
from descend.methods import METHODS
from descend.minimize import DEFAULT_METHOD
from descend.problems import PROBLEMS, get_problem

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_user_error(result, *fragments: str) -> None:
    """Exit 2, one line 'error: ...' on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ---------------------------------------------------------------------------------------
# listing


def test_problems_lists_every_registered_problem_with_its_minimum() -> None:
    result = invoke("problems")
    assert result.exit_code == 0, result.output
    for name in PROBLEMS:
        assert name in result.stdout
    listed = {row["name"]: row for row in json.loads(invoke("problems", "--json").stdout)}
    assert listed.keys() == PROBLEMS.keys()
    rosenbrock = listed["rosenbrock"]
    assert rosenbrock["start"] == [-1.2, 1.0] and rosenbrock["any_dimension"] is True
    assert listed["monkey-saddle"]["f_min"] is None  # -inf: strict JSON has no infinity
    assert "-inf" in next(line for line in result.stdout.splitlines() if "monkey-saddle" in line)


def test_methods_lists_every_method_with_class_and_defaults() -> None:
    result = invoke("methods")
    assert result.exit_code == 0, result.output
    listed = {row["name"]: row for row in json.loads(invoke("methods", "--json").stdout)}
    assert list(listed) == list(METHODS)
    for name, method in METHODS.items():
        assert name in result.stdout and method.optimizer.__name__ in result.stdout
        assert listed[name]["optimizer"] == f"descend.optim.{method.optimizer.__name__}"
        assert listed[name]["defaults"] == method.defaults
        assert listed[name]["max_iter"] == method.max_iter
    assert "momentum=0.9" in result.stdout and "nesterov=True (fixed)" in result.stdout


def test_version_and_help() -> None:
    assert invoke("--version").stdout.strip() == f"descend {descend.__version__}"
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("problems", "methods", "minimize", "compare"):
        assert command in result.stdout


# ---------------------------------------------------------------------------------------
# minimize


def _field(stdout: str, name: str) -> str:
    row = next(line for line in stdout.splitlines() if line.startswith(f"│ {name} "))
    return row.split("│")[2].strip()


def test_minimize_prints_the_result_of_descend_minimize() -> None:
    result = invoke("minimize", "booth", "--method", "momentum", "--max-iter", "600")
    assert result.exit_code == 0, result.output
    reference = descend.minimize(get_problem("booth"), [-5.0, -5.0], "momentum", max_iter=600)
    assert reference.converged
    out = result.stdout
    assert _field(out, "iterations") == str(reference.nit)
    assert _field(out, "f").startswith(f"{reference.fun:.10g}")
    assert _field(out, "status").startswith(reference.status.value)
    assert float(_field(out, "distance to nearest minimum")) < 1e-3
    assert _field(out, "x") == format_vector(reference.x, limit=10, digits=8)
    assert _field(out, "evaluations") == str(reference.nfev)
    assert "lr=0.001, momentum=0.9" in _field(out, "options")


def test_minimize_takes_x0_lr_and_options() -> None:
    args = ("minimize", "rosenbrock", "-m", "adam", "--x0=-1,2", "--lr", "0.05")
    result = invoke(*args, "--max-iter", "30", "-o", "betas=0.8,0.99", "-o", "amsgrad=true")
    assert result.exit_code == 0, result.output
    assert "from (-1, 2)" in result.stdout
    options = _field(result.stdout, "options")
    assert "lr=0.05" in options and "betas=0.8,0.99" in options and "amsgrad=True" in options
    reference = descend.minimize(
        get_problem("rosenbrock"),
        [-1.0, 2.0],
        "adam",
        max_iter=30,
        lr=0.05,
        betas=(0.8, 0.99),
        amsgrad=True,
    )
    assert _field(result.stdout, "f").startswith(f"{reference.fun:.10g}")


def test_minimize_negative_x0_as_separate_argument() -> None:
    result = invoke("minimize", "booth", "--x0", "-1.5,2", "--max-iter", "5")
    assert result.exit_code == 0, result.output
    assert "from (-1.5, 2)" in result.stdout


def test_minimize_in_another_dimension() -> None:
    result = invoke("minimize", "rosenbrock-4d", "--max-iter", "5", "--x0", "0,0,0,0")
    assert result.exit_code == 0, result.output
    assert f"rosenbrock-4d by {DEFAULT_METHOD}" in result.stdout


def test_minimize_on_a_problem_without_minimum_reports_divergence() -> None:
    result = invoke("minimize", "monkey-saddle", "-m", "gd", "--lr", "0.1", "--max-iter", "2000")
    assert result.exit_code == 0, result.output
    assert _field(result.stdout, "status").startswith("diverged")
    assert _field(result.stdout, "distance to nearest minimum") == "—"


# ---------------------------------------------------------------------------------------
# compare


def _rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = line.split()
        if cells and cells[0] in METHODS and "did not converge" not in line:
            rows[cells[0]] = cells
    return rows


def test_compare_prints_one_row_per_method_matching_minimize() -> None:
    result = invoke("compare", "himmelblau", "--methods", "gd,momentum,adam", "--max-iter", "400")
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert list(rows) == ["gd", "momentum", "adam"]
    problem = get_problem("himmelblau")
    for name, cells in rows.items():
        reference = descend.minimize(problem, [0.0, 0.0], name, max_iter=400)
        assert cells[2] == f"{reference.fun:.3g}"
        assert float(cells[3]) == pytest.approx(problem.distance_to_minimum(reference.x), rel=1e-2)
        assert cells[5] == str(reference.nit)
        assert cells[8] == reference.status.value
        clean = not any(d.severity == "error" for d in reference.diagnoses)
        assert (cells[-1] == "✓") == (reference.converged and clean)
    assert rows["gd"][1] == f"{METHODS['gd'].defaults['lr']:g}"
    assert rows["adam"][1] == f"{METHODS['adam'].defaults['lr']:g}"
    # a method that runs out of its 400 iterations gets a one-line explanation
    for name, cells in rows.items():
        stopped_short = cells[8] == "max_iter"
        explained = re.search(
            rf"^{name} did not converge: reached max_iter = 400", result.stdout, re.M
        )
        assert stopped_short == bool(explained)
    assert not re.search(r"^momentum did not converge", result.stdout, re.M)


def test_compare_lr_applies_to_every_method() -> None:
    result = invoke(
        "compare", "booth", "--methods", "gd,nesterov", "--lr", "0.02", "--max-iter", "50"
    )
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows["gd"][1] == "0.02" and rows["nesterov"][1] == "0.02"


def test_compare_from_a_given_start() -> None:
    result = invoke("compare", "saddle", "--methods", "gd", "--x0", "0.5,-0.2", "--max-iter", "20")
    assert result.exit_code == 0, result.output
    assert "saddle from (0.5, -0.2)" in result.stdout


def test_compare_writes_a_plot_in_process(tmp_path: Path) -> None:
    target = tmp_path / "race.svg"
    result = invoke(
        "compare", "quadratic-3d", "--methods", "gd,adam", "--max-iter", "30", "--plot", str(target)
    )
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("<?xml")
    assert f"saved the race plot to {target}" in result.stdout


def test_python_dash_m_descend_is_the_command_line(tmp_path: Path) -> None:
    """``python -m descend`` runs the same app as the ``descend`` script."""
    done = subprocess.run(
        [sys.executable, "-m", "descend", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    for command in ("problems", "methods", "minimize", "compare", "fit", "runs"):
        assert command in done.stdout
    assert done.stderr == ""


def test_compare_subprocess_writes_a_png(tmp_path: Path) -> None:
    """The installed console script, as a user runs it."""
    script = shutil.which("descend", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "descend.cli"]
    env = {**os.environ, "MPLBACKEND": "", "DISPLAY": ""}
    done = subprocess.run(
        [
            *command,
            "compare",
            "rosenbrock",
            "--methods",
            "gd,momentum,adam",
            "--max-iter",
            "200",
            "--plot",
            "race.png",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    png = tmp_path / "race.png"
    assert png.exists() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Traceback" not in done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    assert "momentum" in done.stdout


# ---------------------------------------------------------------------------------------
# a user's mistakes: one line on stderr, exit 2


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ("minimize", "rosenbrok"),
            ("unknown problem 'rosenbrok'; did you mean 'rosenbrock'?", "valid problems:", "booth"),
        ),
        (("compare", "rosenbrok"), ("did you mean 'rosenbrock'?",)),
        (
            ("minimize", "booth", "-m", "adma"),
            ("unknown method 'adma'; did you mean 'adam'?", "valid methods: gd"),
        ),
        (("compare", "booth", "--methods", "gd,nestrov"), ("did you mean 'nesterov'?",)),
        (("compare", "booth", "--methods", "gd,,adam"), ("--methods 'gd,,adam' is malformed",)),
        (("compare", "booth", "--methods", "gd,gd"), ("names 'gd' twice",)),
        (("minimize", "booth", "--lr", "abc"), ("'--lr'",)),
        (("minimize", "booth", "--max-iter", "0"), ("'--max-iter'",)),
        (("minimize", "booth", "--max-iter", "ten"), ("'--max-iter'",)),
        (("minimize", "booth", "-m", "gd", "--lr", "-1"), ("lr must be in [0, inf), got -1.0",)),
        (
            ("minimize", "booth", "--x0", "1,2,3"),
            ("--x0 has 3 number(s) but problem 'booth' has dimension 2",),
        ),
        (("compare", "booth", "--x0", "1"), ("--x0 has 1 number(s)",)),
        (("minimize", "booth", "--x0", "1,x"), ("--x0: 'x' in '1,x' is not a number",)),
        (("minimize", "booth", "--x0", "1,,2"), ("--x0 '1,,2' is malformed",)),
        (("minimize", "booth", "--x0", "1,nan"), ("not finite",)),
        (("minimize", "booth", "-o", "momentum"), ("--option 'momentum' is malformed",)),
        (("minimize", "booth", "-o", "=3"), ("--option '=3' is malformed",)),
        (
            ("minimize", "booth", "-m", "adam", "-o", "momentum=0.5"),
            ("method 'adam' does not take option(s) momentum", "valid options:"),
        ),
        (("minimize", "booth", "-o", "lr=0.1", "--lr", "0.2"), ("given twice",)),
        (("minimize", "booth", "-m", "nesterov", "-o", "momentum=0"), ("nesterov=True needs",)),
        (("minimize", "beale-3d"), ("'beale' is defined only in dimension 2",)),
        (("compare", "booth", "--plot", "race.txt"), ("--plot 'race.txt' has no known image",)),
        (("compare", "booth", "--plot", "/no/such/dir/race.png"), ("does not exist",)),
        (("minimize",), ("Missing argument 'PROBLEM'",)),
        (("minimize", "booth", "--lrr", "1"), ("No such option", "--lrr")),
        (("frobnicate",), ("No such command 'frobnicate'",)),
    ],
)
def test_user_mistakes_give_one_line_and_exit_2(args, fragments) -> None:
    assert_user_error(invoke(*args), *fragments)


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "Usage" in result.output and "compare" in result.output
    assert "Traceback" not in result.output


def test_console_script_main_exits_2_with_one_line(monkeypatch, capsys) -> None:
    """``main()`` is what the installed ``descend`` script runs."""
    monkeypatch.setattr(sys, "argv", ["descend", "minimize", "rosenbrok"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("error: unknown problem 'rosenbrok'; did you mean")


# ---------------------------------------------------------------------------------------
# the readers behind the flags


def test_parse_x0() -> None:
    assert parse_x0(" -1.2, 1e-3 ", 2) == [-1.2, 1e-3]
    with pytest.raises(ValueError, match=r"has 1 number\(s\) but rosen has dimension 3"):
        parse_x0("1", 3, "rosen")
    with pytest.raises(ValueError, match="malformed"):
        parse_x0("", 2)


def test_parse_value_and_options() -> None:
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("1e-3") == 1e-3
    assert parse_value("True") is True and parse_value("false") is False
    assert parse_value("none") is None
    assert parse_value("0.9, 0.999") == (0.9, 0.999)
    assert parse_value("fast") == "fast"
    assert parse_options(["a=1", "b = x "]) == {"a": 1, "b": "x"}
    with pytest.raises(ValueError, match="given twice"):
        parse_options(["a=1", "a=2"])
    with pytest.raises(ValueError, match="malformed"):
        parse_options(["1a=2"])


def test_parse_methods_is_case_insensitive_and_ordered() -> None:
    assert [m.name for m in parse_methods("Adam, GD")] == ["adam", "gd"]


def test_format_vector_keeps_the_ends() -> None:
    assert format_vector([1.0, 2.5]) == "(1, 2.5)"
    assert format_vector(range(10), limit=4) == "(0, 1, 2, …, 9)"


def test_a_converged_run_with_an_error_diagnosis_gets_no_tick() -> None:
    from descend.cli.app import _status
    from descend.monitors import Diagnosis, Severity

    res = descend.minimize(lambda x: (x**2).sum(), [1.0], "bfgs")
    assert _status(res).plain == "gtol ✓"
    res.diagnoses = [Diagnosis("divergence", Severity.ERROR, 3, "f blew up", {}, "lower lr")]
    assert _status(res).plain == "gtol ! divergence" and "✓" not in _status(res).plain


def test_a_saved_path_stays_on_one_line_in_a_narrow_terminal(tmp_path: Path) -> None:
    """Tables fit the width; a line naming a file is never folded, so it can be copied."""
    target = tmp_path / ("a-rather-long-folder-name-" * 3) / "race.svg"
    target.parent.mkdir()
    result = runner.invoke(
        app,
        ["compare", "quadratic-3d", "--methods", "gd", "--max-iter", "5", "--plot", str(target)],
        env={"COLUMNS": "40"},
    )
    assert result.exit_code == 0, result.output
    assert f"saved the race plot to {target}" in result.stdout
    assert any(line.startswith("recorded as run") and "runs.sqlite" in line
               for line in result.stdout.splitlines())  # fmt: skip


def test_a_short_flag_means_one_thing_in_every_command() -> None:
    """-m is the method (minimize's --method, fit's/tune's/federated's --optimizer), -o
    minimize's --option only, -t the target column: never a model or an output file."""
    import click
    import typer

    meanings = {
        "-m": {"--method", "--optimizer"}, "-o": {"--option"}, "-t": {"--target"},
        "-n": {"--limit"}, "-f": {"--format"}, "-y": {"--yes"}, "-h": {"--help"},
    }  # fmt: skip
    seen: dict[str, set[str]] = {}

    def walk(command: click.Command) -> None:
        for param in command.params:
            longs = {o for o in param.opts if o.startswith("--")}
            for short in (o for o in param.opts if len(o) == 2 and o.startswith("-")):
                seen.setdefault(short, set()).update(longs)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    assert seen, "no command was found"
    for short, longs in seen.items():
        assert short in meanings and longs <= meanings[short], (short, longs)
