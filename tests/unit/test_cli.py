"""The `ecompipe` command: every subcommand is there, and the project's own errors are one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ecompipe.cli import main

COMMANDS = (
    "generate",
    "airflow",
    "demo",
    "backfill",
    "rerun",
    "status",
    "backfill-bulk",
    "docs",
    "dashboard",
    "snapshot",
    "summary",
    "quality-report",
    "settings",
    "cluster",
)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.split("Commands:")[1].splitlines() if line.strip()]
    assert sorted(listed) == sorted(COMMANDS)
    assert main(["airflow", "--help"]) == 0 and main(["docs", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("start", "stop", "status", "generate", "serve"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rerun", "2024-13-01"], "error: DATE '2024-13-01' is not a real calendar date"),
        (["backfill", "2024-01-05", "2024-01-01"], "error: END 2024-01-01 is before START 2024-01-05"),
        (["backfill-bulk", "2024-01-01", "2024-01-10", "--chunk-days", "0"], "error: chunk_days must be between"),
        (["quality-report", "2024-01-01; drop table x"], "error: start date must be a date in YYYY-MM-DD form"),
        (
            ["generate", "--start-date", "2024-01-05", "--end-date", "2024-01-01"],
            "error: end date 2024-01-01 is before",
        ),
    ],
)
def test_project_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before Airflow is started or anything is sent: no Airflow runs here."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and "Traceback" not in err


def test_a_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIRFLOW_API_PORT", "eighty")
    assert main(["airflow", "status"]) == 2
    err = capsys.readouterr().err
    assert "AIRFLOW_API_PORT must be" in err and "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--start-date", "2024-01-01"]) == 2
    assert "--start-date needs --end-date" in capsys.readouterr().err
    assert main(["backfill", "2024-01-01", "2024-01-02", "--reprocess", "all"]) == 2


def test_generate_writes_the_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "--start-date", "2024-01-01", "--end-date", "2024-01-02", "--rows", "50"]
    assert main([*argv, "--output-dir", str(tmp_path)]) == 0
    assert "[2/2] 2024-01-02: 50 rows" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-01-01", "2024-01-02"]


def test_python_dash_m_ecompipe_runs_the_same_command() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ecompipe", "rerun", "tomorrow"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 2 and completed.stderr.startswith("error: DATE must be a date")
