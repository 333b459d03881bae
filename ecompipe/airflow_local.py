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
from dataclasses import dataclass
from pathlib import Path

from ecompipe.dates import date_range, parse_date
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
# Backfill with progress


def _iso_bounds(start: str, end: str) -> tuple[str, str]:
    first, last = parse_date(start, "START"), parse_date(end, "END")
    if last < first:
        raise ValueError(f"END {last} is before START {first}")
    # Logical dates are D 02:00 (interval start); a bare END date would mean midnight and stop a day
    # early, so widen it to the end of that day: END is inclusive for users.
    return f"{first.isoformat()}T00:00:00+00:00", f"{last.isoformat()}T23:59:59+00:00"


def _runs_in_range(api: ApiClient, start: str, end: str) -> list[dict[str, object]]:
    lo, hi = _iso_bounds(start, end)
    query = (
        f"/api/v2/dags/{DAG_ID}/dagRuns?logical_date_gte={urllib.parse.quote(lo)}"
        f"&logical_date_lte={urllib.parse.quote(hi)}&limit=1000&order_by=logical_date"
    )
    return list(api.get(query)["dag_runs"])  # type: ignore[index]


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _run_date_of(run: dict[str, object]) -> str:
    return str(run.get("data_interval_start") or run.get("logical_date"))[:10]


def task_log_dir(run_id: str) -> Path:
    return airflow_home() / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"


def backfill(start: str, end: str, max_active_runs: int = 3, reprocess: str = "none", timeout: float = 7200) -> int:
    """Create a backfill of [start, end] and follow it to the end. Returns 0 if every date succeeded."""
    if reprocess not in ("none", "failed", "completed"):
        raise ValueError(f"REPROCESS must be none, failed or completed, got {reprocess!r}")
    lo, hi = _iso_bounds(start, end)
    wanted = [day.isoformat() for day in date_range(start, end)]
    if not running_components():
        print("Airflow is not running: starting it.", flush=True)
        start_airflow()
    api = client()
    # Backfill runs of a paused DAG are never queued.
    api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
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
    created = api.post(
        "/api/v2/backfills",
        {
            "dag_id": DAG_ID,
            "from_date": lo,
            "to_date": hi,
            "max_active_runs": max_active_runs,
            "reprocess_behavior": reprocess,
            "run_backwards": False,
            # A reprocessing backfill processes even byte-identical partitions (skip-unchanged off).
            "dag_run_conf": {"force": reprocess != "none"},
        },
    )
    backfill_id = created["id"]  # type: ignore[index]
    print(
        f"Backfill {backfill_id}: {len(wanted)} date(s) {wanted[0]} .. {wanted[-1]}, "
        f"max {max_active_runs} active run(s), reprocess={reprocess}",
        flush=True,
    )
    return follow_backfill(api, backfill_id, start, end, wanted, timeout)


def follow_backfill(api: ApiClient, backfill_id: int, start: str, end: str, wanted: list[str], timeout: float) -> int:
    began = time.monotonic()
    last_counts: tuple[int, int, int] | None = None
    last_print = 0.0
    while True:
        info = api.get(f"/api/v2/backfills/{backfill_id}")
        runs = {_run_date_of(run): run for run in _runs_in_range(api, start, end) if run.get("run_type") == "backfill"}
        runs = {day: run for day, run in runs.items() if day in wanted}
        done = [day for day, run in runs.items() if run["state"] in ("success", "failed")]
        failed = sorted(day for day, run in runs.items() if run["state"] == "failed")
        running = sum(run["state"] == "running" for run in runs.values())
        elapsed = time.monotonic() - began
        counts = (len(done), len(failed), running)
        # A line when something changed, else a heartbeat every 30 s.
        if counts != last_counts or elapsed - last_print >= 30:
            eta = (elapsed / len(done)) * (len(wanted) - len(done)) if done else None
            print(
                f"[{_format_seconds(elapsed)}] {len(done)}/{len(wanted)} dates done, {len(failed)} failed, "
                f"{running} running" + (f", ETA {_format_seconds(eta)}" if eta and len(done) < len(wanted) else ""),
                flush=True,
            )
            last_counts, last_print = counts, elapsed
        finished = info.get("completed_at") is not None  # type: ignore[union-attr]
        # Wait for Airflow to close the backfill too: only one backfill per DAG may be open.
        if finished and all(run["state"] in ("success", "failed") for run in runs.values()):
            break
        if elapsed > timeout:
            print(f"Gave up waiting after {_format_seconds(elapsed)}; the backfill goes on in Airflow.")
            return 3
        time.sleep(3)
    missing = sorted(set(wanted) - set(runs))
    print(
        f"Backfill {backfill_id} finished in {_format_seconds(time.monotonic() - began)}: "
        f"{len(done) - len(failed)} succeeded, {len(failed)} failed"
        + (f", {len(missing)} not run (already done; use REPROCESS=completed): {', '.join(missing)}" if missing else "")
    )
    for day in failed:
        print(f"  FAILED {day}: logs in {task_log_dir(str(runs[day]['dag_run_id']))}")
    return 1 if failed else 0


def start_airflow() -> None:
    start(wait=True)


def set_paused(paused: bool) -> None:
    client().patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": paused})


def demo(start_date: str, end_date: str) -> int:
    """The demo's Airflow part: a real backfill on the scheduler, then leave everything stopped."""
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
    from ecompipe.bulk import plan_chunks

    chunks = plan_chunks(start_date, end_date, chunk_days)  # validates before anything is sent
    if not running_components():
        print("Airflow is not running: starting it.", flush=True)
        start_airflow()
    api = client()
    api.patch(f"/api/v2/dags/{BULK_DAG_ID}", {"is_paused": False})
    run = api.post(
        f"/api/v2/dags/{BULK_DAG_ID}/dagRuns",
        {"logical_date": None, "conf": {"start_date": start_date, "end_date": end_date, "chunk_days": chunk_days}},
    )
    run_id = str(run["dag_run_id"])  # type: ignore[index]
    print(f"Bulk backfill {run_id}: {start_date} .. {end_date} in {len(chunks)} chunk(s) of <= {chunk_days} days")
    began = time.monotonic()
    last: tuple[int, int] | None = None
    last_print = 0.0
    quoted = urllib.parse.quote(run_id, safe="")
    while True:
        state = str(api.get(f"/api/v2/dags/{BULK_DAG_ID}/dagRuns/{quoted}")["state"])  # type: ignore[index]
        instances = api.get(f"/api/v2/dags/{BULK_DAG_ID}/dagRuns/{quoted}/taskInstances?limit=1000")
        mapped = [ti for ti in instances["task_instances"] if ti["task_id"] == "build_chunk"]  # type: ignore[index]
        done = [ti for ti in mapped if ti["state"] in ("success", "failed", "upstream_failed")]
        failed = [ti for ti in mapped if ti["state"] in ("failed", "upstream_failed")]
        elapsed = time.monotonic() - began
        if (len(done), len(failed)) != last or elapsed - last_print >= 30:
            eta = elapsed / len(done) * (len(chunks) - len(done)) if done else None
            print(
                f"[{_format_seconds(elapsed)}] {len(done)}/{len(chunks)} chunks done, {len(failed)} failed"
                + (f", ETA {_format_seconds(eta)}" if eta and len(done) < len(chunks) else ""),
                flush=True,
            )
            last, last_print = (len(done), len(failed)), elapsed
        if state in ("success", "failed"):
            break
        if elapsed > timeout:
            print(f"Gave up waiting after {_format_seconds(elapsed)}; the run goes on in Airflow.")
            return 3
        time.sleep(3)
    print(
        f"Bulk backfill {state} in {_format_seconds(time.monotonic() - began)}: "
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
