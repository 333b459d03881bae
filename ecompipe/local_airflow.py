"""Run this repo's Airflow 3 locally: start/stop the components, backfill with progress, rerun a date.

The components (scheduler, dag-processor, api-server, triggerer) run as separate processes, each in its
own process group with a pid file, so ``stop`` ends exactly them and everything they spawned (``airflow
standalone``'s children survive a TERM; these do not). Nothing here assumes SQLite or an executor:
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` and ``AIRFLOW__CORE__EXECUTOR`` from the environment win.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ecompipe.core.dates import InvalidDateError, date_range, parse_date
from ecompipe.settings import REPO_ROOT, pipeline_env

DAG_ID = "end_to_end_data_pipeline"
WAREHOUSE_POOL = "duckdb_warehouse"
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
ADMIN_USER = "admin"


def airflow_home() -> Path:
    configured = os.environ.get("AIRFLOW_HOME")
    return Path(configured).resolve() if configured else REPO_ROOT / "airflow_home"


def _default_port_base() -> int:
    # Derived from the checkout's path: a second checkout on the same machine gets other ports,
    # and neither uses 8080, where another Airflow may already listen.
    return 20_000 + (zlib.crc32(str(REPO_ROOT).encode()) % 5_000) * 3


def api_port() -> int:
    return int(os.environ.get("AIRFLOW_API_PORT", _default_port_base()))


def api_host() -> str:
    return os.environ.get("AIRFLOW_API_HOST", "127.0.0.1")


def api_url() -> str:
    return f"http://{api_host() if api_host() != '0.0.0.0' else '127.0.0.1'}:{api_port()}"


def airflow_env() -> dict[str, str]:
    """The environment every Airflow command of this repo runs with (user settings win)."""
    base = _default_port_base()
    ours = {
        "AIRFLOW_HOME": str(airflow_home()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__API__HOST": api_host(),
        "AIRFLOW__API__PORT": str(api_port()),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url()}/execution/",
        "AIRFLOW__API__BASE_URL": api_url(),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": os.environ.get("AIRFLOW_WORKER_LOG_PORT", str(base + 1)),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": os.environ.get("AIRFLOW_TRIGGER_LOG_PORT", str(base + 2)),
        # New DAG files are picked up within seconds, not the default five minutes.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
        # No calls to the internet: Cosmos, dbt and Airflow telemetry off.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "PIPELINE_MODE": os.environ.get("PIPELINE_MODE", "demo"),
        **pipeline_env(),
    }
    docs_target = REPO_ROOT / "dbt_project" / "target" / "docs"  # published by `make docs-generate`
    ours["AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"] = json.dumps(
        {"ecommerce": {"dir": str(docs_target), "name": "dbt Docs (ecommerce)"}}
    )
    env = dict(os.environ)
    for key, value in ours.items():
        if key.startswith("AIRFLOW__") and key in os.environ and key not in ("AIRFLOW__CORE__DAGS_FOLDER",):
            continue  # an explicit setting of the user's wins
        env[key] = value
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _airflow(*args: str, check: bool = True, quiet: bool = True) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "airflow"), *args]
    completed = subprocess.run(command, env=airflow_env(), capture_output=quiet, text=True, check=False)
    if check and completed.returncode != 0:
        detail = (completed.stderr or "")[-2000:] if quiet else ""
        raise RuntimeError(f"`airflow {' '.join(args)}` failed (exit {completed.returncode}):\n{detail}")
    return completed


# --------------------------------------------------------------------------------------------------
# Processes


def _run_dir() -> Path:
    path = airflow_home() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pid_file(component: str) -> Path:
    return _run_dir() / f"{component}.pid"


def service_log(component: str) -> Path:
    return airflow_home() / "logs" / "services" / f"{component}.log"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_components() -> dict[str, int]:
    found = {}
    for component in COMPONENTS:
        pid_file = _pid_file(component)
        if pid_file.exists():
            pid = int(pid_file.read_text().strip() or 0)
            if pid and _alive(pid):
                found[component] = pid
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def prepare() -> None:
    """Migrate the metadata DB and create the warehouse pool (idempotent)."""
    print(f"Airflow home: {airflow_home()}", flush=True)
    _airflow("db", "migrate")
    _airflow("pools", "set", WAREHOUSE_POOL, "1", "DuckDB allows one writing process: serialises warehouse tasks")


def start(wait: bool = True) -> None:
    already = running_components()
    if len(already) == len(COMPONENTS):
        print(f"Airflow is already running (pids {sorted(already.values())}): {api_url()}")
        return
    if already:
        stop()
    busy = [port for port in (api_port(),) if not _port_free(port)]
    if busy:
        raise RuntimeError(
            f"Port {busy[0]} is in use by another program. Choose another: AIRFLOW_API_PORT=NNNNN make airflow"
        )
    manifest = REPO_ROOT / "dbt_project" / "target" / "manifest.json"
    if not manifest.exists():
        raise RuntimeError(f"dbt manifest missing ({manifest}): run `make manifest` first.")
    prepare()
    for component in COMPONENTS:
        log_path = service_log(component)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [str(Path(sys.executable).parent / "airflow"), component],
                env=airflow_env(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: stop() kills it and all its children
                cwd=str(REPO_ROOT),
            )
        _pid_file(component).write_text(str(process.pid))
        print(f"  started {component:<13} pid {process.pid}, log {log_path}", flush=True)
    if wait:
        wait_until_healthy()
    print(f"Airflow UI: {api_url()}  (login: {ADMIN_USER} / {admin_password() or 'see ' + str(_password_file())})")


def stop(timeout: float = 20.0) -> None:
    groups = {}
    for component in COMPONENTS:
        pid_file = _pid_file(component)
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text().strip() or 0)
        if pid and _alive(pid):
            groups[component] = pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_group_alive(pid) for pid in groups.values()):
        time.sleep(0.2)
    for component, pid in groups.items():
        if _group_alive(pid):
            print(f"  {component} did not stop in {timeout:.0f}s: killing its process group", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    for component in COMPONENTS:
        _pid_file(component).unlink(missing_ok=True)
    print(f"Airflow stopped ({len(groups)} component(s))." if groups else "Airflow was not running.")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still "exists": look for any live member of the group.
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


# --------------------------------------------------------------------------------------------------
# REST API


def _password_file() -> Path:
    return airflow_home() / "simple_auth_manager_passwords.json.generated"


def admin_password() -> str | None:
    try:
        return json.loads(_password_file().read_text()).get(ADMIN_USER)
    except (OSError, ValueError):
        return None


class _DatabaseLockedError(RuntimeError):
    """Airflow answered 503 because its SQLite metadata database was locked; safe to retry."""


@dataclass
class ApiClient:
    base: str
    token: str | None = None

    def _request(self, method: str, path: str, body: object | None = None) -> object:
        # SQLite (the default metadata DB) refuses a write while the scheduler holds its lock: Airflow
        # answers 503 "database is locked" and nothing was written, so the same request is retried.
        for pause in (1, 2, 4, 8, 16):
            try:
                return self._request_once(method, path, body)
            except _DatabaseLockedError as exc:
                print(f"Airflow's metadata database is busy ({exc}); retrying in {pause} s", flush=True)
                time.sleep(pause)
        return self._request_once(method, path, body)

    def _request_once(self, method: str, path: str, body: object | None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:1000]
            error = _DatabaseLockedError if exc.code == 503 and "locked" in detail.lower() else RuntimeError
            raise error(f"Airflow API {method} {path} answered {exc.code}: {detail}") from None
        return json.loads(payload) if payload else None

    def login(self) -> ApiClient:
        password = admin_password()
        if password is None:
            raise RuntimeError(f"No admin password yet in {_password_file()}: is the api-server running?")
        answer = self._request("POST", "/auth/token", {"username": ADMIN_USER, "password": password})
        self.token = answer["access_token"]  # type: ignore[index]
        return self

    def get(self, path: str) -> object:
        return self._request("GET", path)

    def post(self, path: str, body: object) -> object:
        return self._request("POST", path, body)

    def patch(self, path: str, body: object) -> object:
        return self._request("PATCH", path, body)


def wait_until_healthy(timeout: float = 180.0) -> None:
    """Wait for the api-server, a healthy scheduler and the DAG being parsed."""
    started = time.monotonic()
    print(f"Waiting for Airflow at {api_url()} ...", flush=True)
    client: ApiClient | None = None
    last_problem = "api-server not answering"
    while time.monotonic() - started < timeout:
        dead = [c for c in COMPONENTS if c not in running_components()]
        if dead:
            raise RuntimeError(f"Airflow component(s) {dead} exited during start-up: see {service_log(dead[0])}")
        try:
            health = ApiClient(api_url()).get("/api/v2/monitor/health")
            scheduler = health.get("scheduler", {}).get("status")  # type: ignore[union-attr]
            if scheduler != "healthy":
                last_problem = f"scheduler {scheduler}"
            else:
                client = client or ApiClient(api_url()).login()
                client.get(f"/api/v2/dags/{DAG_ID}")
                print(f"Airflow is ready ({time.monotonic() - started:.0f}s).", flush=True)
                return
        except (OSError, RuntimeError) as exc:
            last_problem = str(exc)[:200]
        time.sleep(2)
    raise RuntimeError(
        f"Airflow not ready after {timeout:.0f}s ({last_problem}); logs: {service_log('scheduler').parent}"
    )


def client() -> ApiClient:
    return ApiClient(api_url()).login()


# --------------------------------------------------------------------------------------------------
# Backfill, rerun and reprocessing, with progress
#
# The daily DAG runs dbt through Cosmos WATCHER: one producer task runs the date's `dbt build` and a
# sensor per model reports it. A *cleared* run (try 2) breaks that: the producer skips itself and every
# sensor falls back to running dbt for its own model, ~21 dbt processes for the date instead of one.
# So nothing here clears a run: a date that already has a run and is to be processed again gets a
# fresh manual run (try 1 everywhere, one `dbt build`), and only dates without a run go through
# Airflow's backfill (which, for a date with a run, would clear it).

FINISHED = ("success", "failed")
IN_FLIGHT = ("queued", "running")
# REPROCESS=... -> the states of a date's latest run that make it be processed again.
REPROCESS_STATES: dict[str, tuple[str, ...]] = {"none": (), "failed": ("failed",), "completed": FINISHED}


def _iso_bounds(start: str, end: str) -> tuple[str, str]:
    first, last = parse_date(start, "START"), parse_date(end, "END")
    if last < first:
        raise ValueError(f"END {last} is before START {first}")
    # Logical dates are D 02:00 (interval start); a bare END date would mean midnight and stop a day
    # early, so widen it to the end of that day: END is inclusive for users.
    return f"{first.isoformat()}T00:00:00+00:00", f"{last.isoformat()}T23:59:59+00:00"


def _list_runs(api: ApiClient, query: str, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
    """Every run of ``dag_id`` a query matches, page by page (Airflow caps a page at 100 runs)."""
    runs: list[dict[str, Any]] = []
    while True:
        answer = api.get(f"/api/v2/dags/{dag_id}/dagRuns?{query}&limit=100&offset={len(runs)}")
        page = list(answer["dag_runs"])  # type: ignore[index]
        runs.extend(page)
        total = answer.get("total_entries")  # type: ignore[union-attr]
        if not page or (total is not None and len(runs) >= total):
            return runs


def _runs_in_range(api: ApiClient, start: str, end: str) -> list[dict[str, Any]]:
    lo, hi = _iso_bounds(start, end)
    quote = urllib.parse.quote
    return _list_runs(api, f"logical_date_gte={quote(lo)}&logical_date_lte={quote(hi)}&order_by=logical_date")


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _run_date_of(run: dict[str, Any]) -> str:
    # The date the DAG processes: param run_date when the run was given one, else its interval's start.
    conf = run.get("conf") or {}
    return str(conf.get("run_date") or run.get("data_interval_start") or run.get("logical_date"))[:10]


def task_log_dir(run_id: str) -> Path:
    return airflow_home() / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"


def rerun_date(text: str, today: date | None = None) -> str:
    """``make rerun``'s DATE, checked before anything is sent: a real date whose day is over (UTC)."""
    day = parse_date(text, "DATE")
    today = today or datetime.now(UTC).date()
    if day >= today:
        raise InvalidDateError(f"DATE {day} is not over yet: its partition is complete after {day} 24:00 UTC")
    return day.isoformat()


def fresh_run_body(day: str) -> dict[str, Any]:
    """The ``POST /dags/{dag_id}/dagRuns`` body of a fresh manual run processing ``day``.

    ``logical_date`` null: the run has no logical date (nor data interval), so it cannot collide with
    the date's scheduled or backfill run (Airflow keeps one run per logical date), the DAG takes its
    date from ``run_date``, and its ``DeadlineAlert`` (counted from the logical date) creates no
    deadline for it: Airflow skips a deadline whose reference is null. ``force``: process the
    partition even if it is byte-identical to the one already processed.
    """
    return {
        "logical_date": None,
        "conf": {"run_date": day, "force": True},
        "note": f"Reprocesses {day} (make rerun / REPROCESS backfill): a fresh run, one dbt build.",
    }


def backfill_body(lo: str, hi: str, max_active_runs: int, force: bool) -> dict[str, Any]:
    """The ``POST /backfills`` body. Always ``reprocess_behavior: none``: Airflow would clear a
    date's existing run, and those dates get fresh runs instead (see above)."""
    return {
        "dag_id": DAG_ID,
        "from_date": lo,
        "to_date": hi,
        "max_active_runs": max_active_runs,
        "reprocess_behavior": "none",
        "run_backwards": False,
        # A reprocessing backfill processes even byte-identical partitions (skip-unchanged off).
        "dag_run_conf": {"force": force},
    }


def latest_states(runs: Iterable[dict[str, Any]], wanted: Iterable[str]) -> dict[str, str]:
    """Date -> state of the latest run (by queued time: a cleared run is queued again) processing it."""
    dates = set(wanted)
    states: dict[str, str] = {}
    for run in sorted(runs, key=lambda item: str(item.get("queued_at") or item.get("start_date") or "")):
        if (day := _run_date_of(run)) in dates:
            states[day] = str(run["state"])
    return states


def plan_fresh_runs(states: dict[str, str], wanted: list[str], backfilled: Iterable[str], reprocess: str) -> list[str]:
    """The dates that get a fresh manual run: their latest run is in a state REPROCESS redoes, and
    Airflow's backfill does not create a run for them (it does for every date without a logical-dated
    run: those it processes itself, with try 1 too)."""
    redo, by_backfill = REPROCESS_STATES[reprocess], set(backfilled)
    return [day for day in wanted if day not in by_backfill and states.get(day) in redo]


def _api_ready(dag_id: str = DAG_ID) -> ApiClient:
    """Start Airflow if it is not running, log in, unpause the DAG (runs of a paused DAG never start)."""
    if not running_components():
        print("Airflow is not running: starting it.", flush=True)
        start_airflow()
    api = client()
    api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
    return api


def _trigger_fresh_run(api: ApiClient, day: str) -> dict[str, Any]:
    return api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", fresh_run_body(day))  # type: ignore[return-value]


@dataclass
class _Progress:
    """A progress line when the counts change, else a heartbeat every 30 s, with an ETA."""

    total: int
    unit: str
    began: float = field(default_factory=time.monotonic)
    last: tuple[int, ...] | None = None
    last_print: float = -1.0

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def update(self, done: int, failed: int, running: int | None = None) -> None:
        elapsed = self.elapsed()
        counts = (done, failed, -1 if running is None else running)
        if counts == self.last and elapsed - self.last_print < 30:
            return
        eta = elapsed / done * (self.total - done) if done else None
        print(
            f"[{_format_seconds(elapsed)}] {done}/{self.total} {self.unit} done, {failed} failed"
            + (f", {running} running" if running is not None else "")
            + (f", ETA {_format_seconds(eta)}" if eta and done < self.total else ""),
            flush=True,
        )
        self.last, self.last_print = counts, elapsed


@dataclass
class _Followed:
    """The runs one command started: a backfill's (one per date) and fresh manual runs (by run id)."""

    start: str
    end: str
    backfill_id: int | None = None
    backfill_dates: list[str] = field(default_factory=list)
    manual: dict[str, str] = field(default_factory=dict)  # run id -> date
    since: str = ""  # run_after of the first fresh run: the later ones are newer

    def dates(self) -> list[str]:
        return sorted({*self.backfill_dates, *self.manual.values()})

    def title(self) -> str:
        parts = [f"Backfill {self.backfill_id}"] if self.backfill_id is not None else []
        if self.manual:
            parts.append(f"{len(self.manual)} fresh run(s)")
        return " + ".join(parts) or "Backfill"

    def poll(self, api: ApiClient) -> tuple[dict[str, dict[str, Any]], bool]:
        """(date -> its run, whether Airflow has created every run and closed the backfill)."""
        runs: dict[str, dict[str, Any]] = {}
        closed = True
        if self.backfill_id is not None:
            closed = api.get(f"/api/v2/backfills/{self.backfill_id}").get("completed_at") is not None  # type: ignore[union-attr]
            for run in _runs_in_range(api, self.start, self.end):
                if run.get("run_type") == "backfill" and _run_date_of(run) in self.backfill_dates:
                    runs[_run_date_of(run)] = run
        if self.manual:
            recent = _list_runs(api, f"run_type=manual&run_after_gte={urllib.parse.quote(self.since)}")
            seen = [run for run in recent if run["dag_run_id"] in self.manual]
            runs.update({self.manual[run["dag_run_id"]]: run for run in seen})
            closed = closed and len(seen) == len(self.manual)
        return runs, closed


def follow_runs(api: ApiClient, followed: _Followed, timeout: float, not_run: str = "") -> int:
    """Follow the runs to their end with progress. Returns 0 if all succeeded, 1 if any failed."""
    wanted = followed.dates()
    progress = _Progress(len(wanted), "dates")
    while True:
        runs, closed = followed.poll(api)
        done = [day for day, run in runs.items() if run["state"] in FINISHED]
        failed = sorted(day for day, run in runs.items() if run["state"] == "failed")
        progress.update(len(done), len(failed), sum(run["state"] == "running" for run in runs.values()))
        # Wait for Airflow to close the backfill too: only one backfill per DAG may be open.
        if closed and len(done) == len(runs):
            break
        if progress.elapsed() > timeout:
            print(f"Gave up waiting after {_format_seconds(progress.elapsed())}; the runs go on in Airflow.")
            return 3
        time.sleep(3)
    missing = sorted(set(wanted) - set(runs))
    print(
        f"{followed.title()} finished in {_format_seconds(progress.elapsed())}: "
        f"{len(done) - len(failed)} succeeded, {len(failed)} failed"
        + (f", {len(missing)} not created by Airflow: {', '.join(missing)}" if missing else "")
        + (f"; {not_run}" if not_run else "")
    )
    for day in failed:
        print(f"  FAILED {day}: logs in {task_log_dir(str(runs[day]['dag_run_id']))}")
    return 1 if failed else 0


def _not_run_note(skipped: list[str], states: dict[str, str]) -> str:
    """Why the dates of the range that get no run get none."""
    groups = {
        "already done (REPROCESS=completed processes them again)": [d for d in skipped if states.get(d) in FINISHED],
        "in flight": [d for d in skipped if states.get(d) in IN_FLIGHT],
        "not due (interval not over, or outside the DAG's dates)": [d for d in skipped if d not in states],
    }
    return "; ".join(f"{len(days)} not run, {why}: {', '.join(days)}" for why, days in groups.items() if days)


def backfill(start: str, end: str, max_active_runs: int = 3, reprocess: str = "none", timeout: float = 7200) -> int:
    """Process [start, end] and follow it to the end. Returns 0 if every date processed succeeded.

    Dates without a run: Airflow's backfill. Dates whose latest run REPROCESS redoes: fresh manual runs
    (never a cleared run: see above). Fresh runs are manual runs, so the DAG's ``max_active_runs`` (1)
    applies to them, not ``max_active_runs`` here; the one-slot warehouse pool serialises dbt anyway.
    """
    if reprocess not in REPROCESS_STATES:
        raise ValueError(f"REPROCESS must be none, failed or completed, got {reprocess!r}")
    lo, hi = _iso_bounds(start, end)
    wanted = [day.isoformat() for day in date_range(start, end)]
    api = _api_ready()
    open_backfills = [
        item
        for item in api.get(f"/api/v2/backfills?dag_id={DAG_ID}&limit=100")["backfills"]  # type: ignore[index]
        if item.get("completed_at") is None
    ]
    if open_backfills:
        raise RuntimeError(
            f"Backfill {open_backfills[0]['id']} of {DAG_ID} is still running (Airflow allows one at a time): "
            f"wait for it, or cancel it in the UI ({api_url()}, Browse > Backfills)."
        )
    body = backfill_body(lo, hi, max_active_runs, force=reprocess != "none")
    # The dates the backfill creates runs for: those without a (logical-dated) run whose interval is over.
    planned = api.post("/api/v2/backfills/dry_run", body)["backfills"]  # type: ignore[index]
    backfilled = sorted({str(item["logical_date"])[:10] for item in planned} & set(wanted))
    known = {run["dag_run_id"]: run for run in _runs_in_range(api, start, end)}
    known.update({run["dag_run_id"]: run for run in _list_runs(api, "run_type=manual&order_by=run_after")})
    states = latest_states(known.values(), wanted)
    fresh = plan_fresh_runs(states, wanted, backfilled, reprocess)
    followed = _Followed(start, end)
    if backfilled:
        followed.backfill_id = int(api.post("/api/v2/backfills", body)["id"])  # type: ignore[index]
        followed.backfill_dates = backfilled
        print(
            f"Backfill {followed.backfill_id}: {len(backfilled)} date(s) {backfilled[0]} .. {backfilled[-1]}, "
            f"max {max_active_runs} active run(s), reprocess={reprocess}",
            flush=True,
        )
    for day in fresh:
        run = _trigger_fresh_run(api, day)
        followed.manual[str(run["dag_run_id"])] = day
        followed.since = followed.since or str(run["run_after"])
    if fresh:
        print(
            f"Fresh manual runs (REPROCESS={reprocess}, dates that have a run; one at a time): "
            f"{len(fresh)} date(s) {fresh[0]} .. {fresh[-1]}",
            flush=True,
        )
    skipped = [day for day in wanted if day not in followed.dates()]
    return follow_runs(api, followed, timeout, _not_run_note(skipped, states))


def rerun(day: str, timeout: float = 7200) -> int:
    """Process one date again in a fresh manual run and follow it. Returns 0 if it succeeded."""
    day = rerun_date(day)  # validated before anything is sent or started
    api = _api_ready()
    run = _trigger_fresh_run(api, day)
    run_id = str(run["dag_run_id"])
    print(f"Rerun of {day}: fresh manual run {run_id} (conf run_date={day}, force=true)", flush=True)
    followed = _Followed(day, day, manual={run_id: day}, since=str(run["run_after"]))
    return follow_runs(api, followed, timeout)


def start_airflow() -> None:
    start(wait=True)


def set_paused(paused: bool) -> None:
    client().patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": paused})


def demo(start_date: str, end_date: str) -> int:
    """The demo's Airflow part: a real backfill on the scheduler, then leave everything stopped.

    On a fresh clone every date is backfilled; on a second run every date already has a run and gets a
    fresh one (REPROCESS=completed), one ``dbt build`` each."""
    start()
    try:
        outcome = backfill(start_date, end_date, max_active_runs=3, reprocess="completed")
        set_paused(True)  # starting Airflow later must not start scheduling on its own
    finally:
        stop()
    print(f"Browse the runs: make airflow, then open {api_url()} (login {ADMIN_USER} / {admin_password()}).")
    return outcome


BULK_DAG_ID = "end_to_end_data_pipeline_bulk"


def bulk_backfill(start_date: str, end_date: str, chunk_days: int = 31, timeout: float = 7200) -> int:
    """Trigger the bulk DAG for [start, end] and follow its chunks. Returns 0 if every chunk succeeded."""
    from ecompipe.pipeline.bulk import plan_chunks

    chunks = plan_chunks(start_date, end_date, chunk_days)  # validates before anything is sent
    api = _api_ready(BULK_DAG_ID)
    run = api.post(
        f"/api/v2/dags/{BULK_DAG_ID}/dagRuns",
        {"logical_date": None, "conf": {"start_date": start_date, "end_date": end_date, "chunk_days": chunk_days}},
    )
    run_id = str(run["dag_run_id"])  # type: ignore[index]
    print(f"Bulk backfill {run_id}: {start_date} .. {end_date} in {len(chunks)} chunk(s) of <= {chunk_days} days")
    progress = _Progress(len(chunks), "chunks")
    quoted = urllib.parse.quote(run_id, safe="")
    while True:
        state = str(api.get(f"/api/v2/dags/{BULK_DAG_ID}/dagRuns/{quoted}")["state"])  # type: ignore[index]
        instances = api.get(f"/api/v2/dags/{BULK_DAG_ID}/dagRuns/{quoted}/taskInstances?limit=1000")
        mapped = [ti for ti in instances["task_instances"] if ti["task_id"] == "build_chunk"]  # type: ignore[index]
        done = [ti for ti in mapped if ti["state"] in ("success", "failed", "upstream_failed")]
        failed = [ti for ti in mapped if ti["state"] in ("failed", "upstream_failed")]
        progress.update(len(done), len(failed))
        if state in FINISHED:
            break
        if progress.elapsed() > timeout:
            print(f"Gave up waiting after {_format_seconds(progress.elapsed())}; the run goes on in Airflow.")
            return 3
        time.sleep(3)
    print(
        f"Bulk backfill {state} in {_format_seconds(progress.elapsed())}: "
        f"{len(done) - len(failed)} chunk(s) succeeded, {len(failed)} failed"
    )
    for ti in sorted(failed, key=lambda item: item["map_index"]):
        chunk = chunks[ti["map_index"]] if 0 <= ti["map_index"] < len(chunks) else {}
        folder = (
            airflow_home()
            / "logs"
            / f"dag_id={BULK_DAG_ID}"
            / f"run_id={run_id}"
            / "task_id=build_chunk"
            / f"map_index={ti['map_index']}"
        )
        print(f"  FAILED chunk {chunk.get('start_date')}..{chunk.get('end_date')}: logs in {folder}")
    return 0 if state == "success" and not failed else 1
