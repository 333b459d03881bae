"""The REST client behind `make backfill` / `make rerun`: retries Airflow's "database is locked" 503 and
reads run lists page by page; and the pure parts of reruns and reprocessing backfills (date check,
request bodies, the plan).

Airflow on SQLite answers 503 when the scheduler holds the database lock (seen under load). A local
HTTP server plays Airflow's answers to the official client (apache-airflow-client); everything else
the client does is exercised against a real Airflow in tests/integration/test_airflow_integration.py.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from airflow_client.client import ApiException, BackfillPostBody, Configuration, DAGRunResponse

from ecompipe import local_airflow as airflow_local
from ecompipe.core.dates import InvalidDateError

BACKFILL = {
    "id": 7,
    "dag_id": "d",
    "dag_display_name": "d",
    "from_date": "2024-01-01T00:00:00Z",
    "to_date": "2024-01-03T23:59:59Z",
    "created_at": "2024-02-01T00:00:00Z",
    "updated_at": "2024-02-01T00:00:00Z",
    "completed_at": None,
    "is_paused": False,
    "max_active_runs": 2,
    "reprocess_behavior": "none",
    "dag_run_conf": {"force": False},
}


class _Airflow(BaseHTTPRequestHandler):
    """Airflow's api-server as the client sees it: scripted answers to POSTs, run lists to GETs."""

    answers: list[tuple[int, str]] = []
    seen: list[str] = []  # the bodies of the POSTs
    queries: list[dict[str, list[str]]] = []  # the query strings of the GETs
    runs: list[dict[str, Any]] = []

    def _answer(self, code: int, body: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.seen.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self._answer(*self.answers.pop(0))

    def do_GET(self) -> None:  # noqa: N802
        # GET /api/v2/dags/{dag_id}/dagRuns with keyset pages, capped at 100 runs as Airflow does.
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        self.queries.append(query)
        start = int(query["cursor"][0] or 0)
        end = start + min(int(query["limit"][0]), 100)
        page = {
            "dag_runs": self.runs[start:end],
            "total_entries": len(self.runs),
            "next_cursor": str(end) if end < len(self.runs) else None,
        }
        self._answer(200, json.dumps(page))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    httpd = HTTPServer(("127.0.0.1", 0), _Airflow)
    _Airflow.seen, _Airflow.queries, _Airflow.runs = [], [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def _api(httpd: HTTPServer) -> airflow_local.Api:
    configuration = Configuration(host=f"http://127.0.0.1:{httpd.server_address[1]}", access_token="t")
    return airflow_local.Api(airflow_local.AirflowClient(configuration))


def _backfill_body() -> BackfillPostBody:
    lo, hi = airflow_local._iso_bounds("2024-01-01", "2024-01-03")
    return airflow_local.backfill_body(lo, hi, 2, force=False)


def test_database_locked_is_retried_until_it_succeeds(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airflow_local.time, "sleep", lambda seconds: None)
    locked = (503, json.dumps({"detail": "Database is locked. Backfill creation is not supported on SQLite"}))
    _Airflow.answers = [locked, locked, (200, json.dumps(BACKFILL))]
    assert _api(server).backfills.create_backfill(_backfill_body()).id == 7
    assert len(_Airflow.seen) == 3 and len(set(_Airflow.seen)) == 1
    assert json.loads(_Airflow.seen[0])["dag_id"] == airflow_local.DAG_ID


def test_other_errors_are_not_retried(server: HTTPServer) -> None:
    _Airflow.answers = [(409, json.dumps({"detail": "There is already a running backfill"}))]
    with pytest.raises(ApiException) as raised:
        _api(server).backfills.create_backfill(_backfill_body())
    assert len(_Airflow.seen) == 1
    message = airflow_local.describe_error(raised.value)
    assert message is not None and re.search("answered 409: .*already a running backfill", message)


def test_the_token_is_fetched_with_the_generated_admin_password(
    server: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(airflow_local.time, "sleep", lambda seconds: None)
    (tmp_path / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "s3cret"}))
    locked = (503, json.dumps({"detail": "(sqlite3.OperationalError) database is locked"}))
    _Airflow.answers = [locked, (201, json.dumps({"access_token": "jwt-1"}))]
    api = airflow_local.connect(f"http://127.0.0.1:{server.server_address[1]}", tmp_path)
    assert api.client.configuration.access_token == "jwt-1"
    assert [json.loads(body) for body in _Airflow.seen] == [{"username": "admin", "password": "s3cret"}] * 2
    with pytest.raises(airflow_local.AirflowError, match="No admin password yet"):
        airflow_local.connect(f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "elsewhere")


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
    body = airflow_local.fresh_run_body("2024-01-15").to_dict()  # what the client sends
    # No logical date: no collision with the date's backfill run, no deadline (it counts from it).
    assert body["logical_date"] is None
    assert body["conf"] == {"run_date": "2024-01-15", "force": True}
    assert set(body) == {"logical_date", "conf", "note"}


def test_backfill_never_asks_airflow_to_clear_runs() -> None:
    lo, hi = airflow_local._iso_bounds("2024-01-01", "2024-01-03")
    assert (lo.isoformat(), hi.isoformat()) == ("2024-01-01T00:00:00+00:00", "2024-01-03T23:59:59+00:00")
    for force in (False, True):
        body = airflow_local.backfill_body(lo, hi, 2, force).to_dict()
        assert body["reprocess_behavior"] == "none"
        assert body["dag_run_conf"] == {"force": force}
        assert body["max_active_runs"] == 2 and body["dag_id"] == airflow_local.DAG_ID


def _run(
    run_id: str, state: str, queued_at: str, day: str | None = None, conf_date: str | None = None
) -> DAGRunResponse:
    return DAGRunResponse.from_dict(
        {
            "dag_id": airflow_local.DAG_ID,
            "dag_display_name": airflow_local.DAG_ID,
            "dag_run_id": run_id,
            "dag_versions": [],
            "run_type": "manual" if conf_date else "backfill",
            "run_after": queued_at,
            "state": state,
            "queued_at": queued_at,
            "data_interval_start": f"{day}T00:00:00Z" if day else None,
            "logical_date": f"{day}T00:00:00Z" if day else None,
            "conf": {"run_date": conf_date, "force": True} if conf_date else {},
        }
    )


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


def test_run_lists_are_read_page_by_page(server: HTTPServer) -> None:
    """Airflow answers at most 100 runs a page: a list of 250 takes three requests, and every run once."""
    queued = datetime(2024, 2, 1, tzinfo=UTC).isoformat()
    _Airflow.runs = [json.loads(_run(f"r{i}", "success", queued, "2024-01-01").to_json()) for i in range(250)]
    runs = airflow_local.list_runs(_api(server), run_type=["manual"], order_by=["run_after"])
    assert [run.dag_run_id for run in runs] == [f"r{i}" for i in range(250)]
    assert len(_Airflow.queries) == 3
    assert all(query["run_type"] == ["manual"] and query["order_by"] == ["run_after"] for query in _Airflow.queries)
    _Airflow.runs, _Airflow.queries = [], []
    assert airflow_local.list_runs(_api(server)) == [] and len(_Airflow.queries) == 1


def test_last_error_of_a_task_log_prefers_the_exception(tmp_path: Path) -> None:
    """Airflow 3 task logs are JSON lines; a failure is an error event carrying the exception."""
    log = tmp_path / "attempt=1.log"
    events = [
        {"level": "info", "event": "starting"},
        {"level": "error", "event": "\x1b[31m2 of 47 ERROR creating model x\x1b[0m"},
        {
            "level": "error",
            "event": "Task failed with exception",
            "exception": [{"exc_type": "AirflowSensorTimeout", "exc_value": "Raw partition for 2024-01-05 is late"}],
        },
        {"level": "error", "event": "error calling listener"},
        "not json {",
    ]
    log.write_text(
        "\n".join(event if isinstance(event, str) else json.dumps(event, separators=(",", ":")) for event in events)
    )
    assert airflow_local.last_error(log) == "AirflowSensorTimeout: Raw partition for 2024-01-05 is late"
    log.write_text("\n".join(json.dumps(event, separators=(",", ":")) for event in events[:2]))
    assert airflow_local.last_error(log) == "2 of 47 ERROR creating model x"  # colours gone
    assert airflow_local.last_error(tmp_path / "missing.log") == ""
    assert len(airflow_local.last_error(log, limit=10)) == 10


def test_a_component_that_keeps_exiting_at_start_up_is_told_from_a_slow_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its supervisor starts it again, so its process runs on: its log tells (only what came after)."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    scheduler_log = airflow_local.service_log("scheduler")
    scheduler_log.parent.mkdir(parents=True)
    scheduler_log.write_text("[t] ecompipe supervisor: scheduler exited (code 1) after 3 s: starting it again in 2 s\n")
    sizes = airflow_local._log_sizes()
    assert airflow_local._exited_since(sizes) == [], "an exit before the wait began is not this start-up's"
    with scheduler_log.open("a") as log:
        log.write("Traceback ... OperationalError\n[t] ecompipe supervisor: scheduler exited (code 1) after 2 s: ...\n")
    airflow_local.service_log("triggerer").write_text("[t] ecompipe supervisor: triggerer exited (code 1) after 2 s\n")
    assert airflow_local._exited_since(sizes) == ["scheduler", "triggerer"]
