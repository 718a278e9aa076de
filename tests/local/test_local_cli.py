"""The `waguard` command line: subcommands, defaults and dispatch."""

from __future__ import annotations

import pytest

from waguard import cli


def test_serve_defaults_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from waguard import serve

    calls = []
    monkeypatch.setattr(serve, "run", lambda *a, **k: calls.append((a, k)) or 0)
    assert cli.main(["serve"]) == 0
    assert calls[-1] == (
        ("127.0.0.1", 3000, 4566),
        {"verbose": False, "log_dir": None, "forward_events": None},
    )
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "8080", "--aws-port", "5000", "-v"]) == 0
    assert calls[-1][0] == ("0.0.0.0", 8080, 5000) and calls[-1][1]["verbose"] is True
    assert cli.main(["serve", "--forward-events", "http://127.0.0.1:8080/events"]) == 0
    assert calls[-1][1]["forward_events"] == "http://127.0.0.1:8080/events"


def test_invoke_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from waguard import invoke

    calls = []
    monkeypatch.setattr(invoke, "run", lambda *a: calls.append(a) or 3)
    assert cli.main(["invoke", "sender", "--event", "e.json"]) == 3
    assert calls[-1] == ("sender", "e.json", None)
    cli.main(["invoke", "webhook", "--event", "-", "--aws-endpoint", "http://127.0.0.1:4566"])
    assert calls[-1] == ("webhook", "-", "http://127.0.0.1:4566")
    with pytest.raises(SystemExit):
        cli.main(["invoke", "webhook"])  # --event is required


def test_report_gets_every_argument_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from waguard import report

    calls = []
    monkeypatch.setattr(report, "main", lambda argv: calls.append(argv) or 0)
    assert cli.main(["report", "--format", "html", "--out", "x.html"]) == 0
    assert calls == [["--format", "html", "--out", "x.html"]]


def test_an_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as err:
        cli.main(["deploy"])
    assert err.value.code == 2
