"""The REST client behind `make backfill` / `make rerun`: retries Airflow's "database is locked" 503.

Airflow on SQLite answers 503 when the scheduler holds the database lock (seen under load). A local
HTTP server plays that answer; everything else the client does is exercised against a real Airflow in
tests/test_airflow_integration.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ecompipe import airflow_local


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
