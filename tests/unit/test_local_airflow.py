"""The REST client behind `make backfill` / `make rerun`: retries Airflow's "database is locked" 503;
and the pure parts of reruns and reprocessing backfills (date check, request bodies, the plan).

Airflow on SQLite answers 503 when the scheduler holds the database lock (seen under load). A local
HTTP server plays that answer; everything else the client does is exercised against a real Airflow in
tests/integration/test_airflow_integration.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ecompipe import local_airflow as airflow_local
from ecompipe.core.dates import InvalidDateError


class _Answers(BaseHTTPRequestHandler):
    answers: list[tuple[int, str]] = []
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.seen.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        code, body = self.answers.pop(0)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    httpd = HTTPServer(("127.0.0.1", 0), _Answers)
    _Answers.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def _client(httpd: HTTPServer) -> airflow_local.ApiClient:
    return airflow_local.ApiClient(f"http://127.0.0.1:{httpd.server_address[1]}")


def test_database_locked_is_retried_until_it_succeeds(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airflow_local.time, "sleep", lambda seconds: None)
    locked = (503, json.dumps({"detail": "(sqlite3.OperationalError) database is locked"}))
    _Answers.answers = [locked, locked, (200, json.dumps({"id": 7}))]
    assert _client(server).post("/api/v2/backfills", {"dag_id": "d"}) == {"id": 7}
    assert len(_Answers.seen) == 3 and all(json.loads(body) == {"dag_id": "d"} for body in _Answers.seen)


def test_other_errors_are_not_retried(server: HTTPServer) -> None:
    _Answers.answers = [(409, json.dumps({"detail": "There is already a running backfill"}))]
    with pytest.raises(RuntimeError, match="answered 409: .*already a running backfill"):
        _client(server).post("/api/v2/backfills", {"dag_id": "d"})
    assert len(_Answers.seen) == 1


# The pure parts of `make rerun` and reprocessing backfills (no Airflow needed).


def test_rerun_date_is_validated_before_anything_is_sent() -> None:
    today = date(2024, 3, 10)
    assert airflow_local.rerun_date("2024-03-09", today) == "2024-03-09"
    for bad in ("2024-13-01", "2024-02-30", "20240301", "2024-03-01; drop table x", ""):
        with pytest.raises(InvalidDateError, match="DATE"):
            airflow_local.rerun_date(bad, today)
    for not_over in ("2024-03-10", "2024-03-11"):
        with pytest.raises(InvalidDateError, match="not over yet"):
            airflow_local.rerun_date(not_over, today)


def test_fresh_run_has_no_logical_date_and_forces_the_date() -> None:
    body = airflow_local.fresh_run_body("2024-01-15")
    # No logical date: no collision with the date's backfill run, no deadline (it counts from it).
    assert body["logical_date"] is None
    assert body["conf"] == {"run_date": "2024-01-15", "force": True}
    assert set(body) == {"logical_date", "conf", "note"}


def test_backfill_never_asks_airflow_to_clear_runs() -> None:
    for force in (False, True):
        body = airflow_local.backfill_body("2024-01-01T00:00:00+00:00", "2024-01-03T23:59:59+00:00", 2, force)
        assert body["reprocess_behavior"] == "none"
        assert body["dag_run_conf"] == {"force": force}
        assert body["max_active_runs"] == 2 and body["dag_id"] == airflow_local.DAG_ID


def _run(run_id: str, state: str, queued_at: str, day: str | None = None, conf_date: str | None = None) -> dict:
    return {
        "dag_run_id": run_id,
        "state": state,
        "queued_at": queued_at,
        "data_interval_start": f"{day}T02:00:00Z" if day else None,
        "logical_date": f"{day}T02:00:00Z" if day else None,
        "conf": {"run_date": conf_date, "force": True} if conf_date else {},
    }


def test_fresh_runs_go_to_dates_whose_latest_run_reprocess_redoes() -> None:
    wanted = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    runs = [
        _run("backfill__01", "success", "2024-02-01T00:00:00Z", "2024-01-01"),
        _run("backfill__02", "failed", "2024-02-01T00:00:01Z", "2024-01-02"),
        _run("backfill__03", "failed", "2024-02-01T00:00:02Z", "2024-01-03"),
        # 01-03 failed, then a fresh manual run (no logical date) of it succeeded.
        _run("manual__03", "success", "2024-02-02T00:00:00Z", conf_date="2024-01-03"),
        _run("backfill__04", "running", "2024-02-01T00:00:03Z", "2024-01-04"),
        _run("other_dag_date", "failed", "2024-02-01T00:00:00Z", "2023-12-31"),
    ]
    states = airflow_local.latest_states(runs, wanted)
    assert states == {"2024-01-01": "success", "2024-01-02": "failed", "2024-01-03": "success", "2024-01-04": "running"}
    # 01-05 has no run: the backfill creates one for it, never a fresh run too.
    backfilled = ["2024-01-05"]
    assert airflow_local.plan_fresh_runs(states, wanted, backfilled, "none") == []
    assert airflow_local.plan_fresh_runs(states, wanted, backfilled, "failed") == ["2024-01-02"]
    assert airflow_local.plan_fresh_runs(states, wanted, backfilled, "completed") == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
    ]
    note = airflow_local._not_run_note(["2024-01-01", "2024-01-03", "2024-01-04", "2024-01-06"], states)
    assert "2 not run, already done" in note and "1 not run, in flight: 2024-01-04" in note
    assert "1 not run, not due" in note


class _Pages:
    """A client answering the dagRuns list 100 at a time, as Airflow's maximum_page_limit does."""

    def __init__(self, total: int) -> None:
        self.runs = [{"dag_run_id": f"r{i}"} for i in range(total)]
        self.paths: list[str] = []

    def get(self, path: str) -> dict:
        self.paths.append(path)
        offset = int(path.rsplit("offset=", 1)[1])
        return {"dag_runs": self.runs[offset : offset + 100], "total_entries": len(self.runs)}


def test_run_lists_are_read_page_by_page() -> None:
    pages = _Pages(250)
    assert airflow_local._list_runs(pages, "run_type=manual") == pages.runs  # type: ignore[arg-type]
    assert len(pages.paths) == 3
    assert airflow_local._list_runs(_Pages(0), "x") == []  # type: ignore[arg-type]
