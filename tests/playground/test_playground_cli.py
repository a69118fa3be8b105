"""``descend playground``: serves with the options given, or says in one line what to
install."""

from __future__ import annotations

from typer.testing import CliRunner

from descend.cli import app
from descend.playground import server

runner = CliRunner()


def test_playground_serves_on_the_loopback_address_by_default(monkeypatch):
    calls = []
    monkeypatch.setattr(server, "missing_requirements", lambda: [])
    monkeypatch.setattr(server, "serve", lambda *a, **kw: calls.append((a, kw)))
    assert runner.invoke(app, ["playground"]).exit_code == 0
    assert runner.invoke(app, ["playground", "--host", "0.0.0.0", "--port", "9000",
                               "--no-browser", "--compile", "never"]).exit_code == 0  # fmt: skip
    assert calls == [
        (("127.0.0.1", 8765), {"open_browser": True, "compile": "background"}),
        (("0.0.0.0", 9000), {"open_browser": False, "compile": "never"}),
    ]


def test_a_compile_policy_it_does_not_know_is_refused_with_the_choices():
    result = runner.invoke(app, ["playground", "--compile", "sometimes"])
    assert result.exit_code == 2
    assert "--compile" in result.output and "background" in result.output


def test_without_its_extra_the_command_says_what_to_install(monkeypatch):
    monkeypatch.setattr(server, "missing_requirements", lambda: ["fastapi", "uvicorn"])
    result = runner.invoke(app, ["playground"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [
        "error: the playground needs fastapi, uvicorn: pip install 'descend[playground]'"
    ]


def test_a_port_out_of_range_is_refused():
    result = runner.invoke(app, ["playground", "--port", "70000"])
    assert result.exit_code == 2 and "--port" in result.output and "65535" in result.output


def test_on_exit_the_server_finishes_a_compile_and_a_second_ctrl_c_quits_at_once(
    monkeypatch, capsys
):
    import uvicorn

    from descend.playground import rows_race

    waited, exits = [], []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # served, then Ctrl+C
    monkeypatch.setattr(rows_race, "compiling", lambda: True)
    monkeypatch.setattr(rows_race, "wait_for_compiles", lambda: waited.append(True))
    monkeypatch.setattr(server.os, "_exit", exits.append)
    server.serve(port=0, open_browser=False, compile="never")
    assert waited == [True] and exits == []  # the compile finished: a normal exit
    assert "finishing a race kernel's compile (Ctrl+C again quits now)" in capsys.readouterr().out

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rows_race, "wait_for_compiles", interrupted)
    server.serve(port=0, open_browser=False, compile="never")
    assert exits == [0]  # at once, without the teardown a half-done compile aborts
