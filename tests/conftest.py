"""Shared fixtures and the suite's tiers.

Every test gets its own data dir and warehouse through the two env vars. Tests under
``tests/integration/`` run a real Airflow and are marked ``airflow`` (``make test-fast`` leaves them out);
tests under ``tests/cluster/`` start PostgreSQL, Redis, Airflow and Celery workers and are marked
``cluster`` (and ``airflow``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.sandbox import REPO_ROOT, Pipeline

# Airflow reads its settings when first imported: point it at a throwaway home before any test does.
_AIRFLOW_TEST_HOME = Path(tempfile.mkdtemp(prefix="airflow_test_home_"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_TEST_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
os.environ["DO_NOT_TRACK"] = "1"
for _inherited in (
    "PIPELINE_DATA_DIR",
    "DUCKDB_PATH",
    "PIPELINE_MODE",
    "PIPELINE_SCHEDULE_END_DATE",
    "PIPELINE_PROFILE",
    "PIPELINE_CLUSTER_DIR",
):
    os.environ.pop(_inherited, None)

_INTEGRATION = Path(__file__).resolve().parent / "integration"
_CLUSTER = Path(__file__).resolve().parent / "cluster"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parents = Path(str(item.path)).resolve().parents
        if _INTEGRATION in parents:
            item.add_marker(pytest.mark.airflow)
        if _CLUSTER in parents:  # real PostgreSQL, Redis, Airflow and Celery workers: also left out of test-fast
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.airflow)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The throwaway Airflow home goes with the session (its SQLite database and logs)."""
    shutil.rmtree(_AIRFLOW_TEST_HOME, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly which checks could not run on this machine (a skip is easy to miss in the -ra lines)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reasons[reason.removeprefix("Skipped: ")] = reasons.get(reason.removeprefix("Skipped: "), 0) + 1
    terminalreporter.write_sep("!", f"{len(skipped)} CHECKS COULD NOT RUN ON THIS MACHINE", red=True, bold=True)
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"  {count} x {reason}", red=True, bold=True)


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DUCKDB_PATH", str(data_dir / "warehouse.duckdb"))
    yield Pipeline(data_dir=data_dir, work_dir=tmp_path / "work")
