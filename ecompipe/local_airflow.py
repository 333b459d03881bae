"""Run this repo's Airflow 3 locally: start/stop the components, backfill with progress, rerun a date.

The components (scheduler, dag-processor, api-server, triggerer) run as separate processes, each in its
own process group with a pid file, so ``stop`` ends exactly them and everything they spawned (``airflow
standalone``'s children survive a TERM; these do not). Each runs under a small supervisor that starts it
again when it exits on its own (see ``ecompipe.core.processes``). Nothing here assumes SQLite or an executor:
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` and ``AIRFLOW__CORE__EXECUTOR`` from the environment win.

Everything else goes through Airflow's REST API with the official client (``apache-airflow-client``,
the version of the Airflow it talks to); see ``connect``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

import urllib3
from airflow_client.client import (
    ApiClient,
    ApiException,
    BackfillApi,
    BackfillPostBody,
    Configuration,
    DAGApi,
    DAGPatchBody,
    DagRunApi,
    DAGRunResponse,
    DagRunState,
    DagRunType,
    MonitorApi,
    ReprocessBehavior,
    TaskInstanceApi,
    TaskInstanceResponse,
    TaskInstanceState,
    TriggerDAGRunPostBody,
)
from airflow_client.client.rest import RESTResponse

from ecompipe.airflow_shell import write_activate_script
from ecompipe.core.dates import InvalidDateError, date_range, parse_date
from ecompipe.core.processes import alive, end_groups, exit_line, group_alive, supervised
from ecompipe.settings import REPO_ROOT, get_settings, pipeline_env

DAG_ID = "end_to_end_data_pipeline"
BULK_DAG_ID = "end_to_end_data_pipeline_bulk"
WAREHOUSE_POOL = "duckdb_warehouse"
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
ADMIN_USER = "admin"


class AirflowError(RuntimeError):
    """The local Airflow cannot do what was asked (not running, busy port, a backfill still open, ...)."""


def airflow_home() -> Path:
    return get_settings().airflow_home.expanduser().resolve()


def api_url() -> str:
    settings = get_settings()
    host = "127.0.0.1" if settings.airflow_api_host == "0.0.0.0" else settings.airflow_api_host
    return f"http://{host}:{settings.airflow_api_port}"


def airflow_env() -> dict[str, str]:
    """The environment every Airflow command of this repo runs with (user settings win)."""
    settings = get_settings()
    # `make airflow` is for trying the pipeline out: demo mode, unless PIPELINE_MODE says otherwise.
    mode = settings.pipeline_mode if "pipeline_mode" in settings.model_fields_set else "demo"
    docs_target = REPO_ROOT / "dbt_project" / "target" / "docs"  # published by `make docs-generate`
    ours = {
        "AIRFLOW_HOME": str(airflow_home()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__API__HOST": settings.airflow_api_host,
        "AIRFLOW__API__PORT": str(settings.airflow_api_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url()}/execution/",
        "AIRFLOW__API__BASE_URL": api_url(),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.airflow_worker_log_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.airflow_trigger_log_port),
        # New DAG files are picked up within seconds, not the default five minutes.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
        # Cosmos keeps each DAG's latest dbt partial-parse file in its cache, by default /tmp/cosmos,
        # shared by every install and user of the machine: this install's lives in its Airflow home.
        "AIRFLOW__COSMOS__CACHE_DIR": str(airflow_home() / "cosmos"),
        # No calls to the internet: Cosmos, dbt and Airflow telemetry off.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "PIPELINE_MODE": mode,
        "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": json.dumps(
            {"ecommerce": {"dir": str(docs_target), "name": "dbt Docs (ecommerce)"}}
        ),
        **pipeline_env(),
    }
    env = dict(os.environ)
    for key, value in ours.items():
        if key.startswith("AIRFLOW__") and key in os.environ and key != "AIRFLOW__CORE__DAGS_FOLDER":
            continue  # an explicit Airflow setting of the user's wins (but the DAGs are this repo's)
        env[key] = value
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _airflow_cli() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _airflow(*args: str) -> None:
    _finish(_airflow_started(*args), args)


def _airflow_started(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [_airflow_cli(), *args], env=airflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str], args: tuple[str, ...]) -> None:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise AirflowError(f"`airflow {' '.join(args)}` failed (exit {process.returncode}):\n{stderr[-2000:]}")


# --------------------------------------------------------------------------------------------------
# Processes


def _pid_file(component: str) -> Path:
    run_dir = airflow_home() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir / f"{component}.pid"


def _pid(component: str) -> int:
    pid_file = _pid_file(component)
    return int(pid_file.read_text().strip() or 0) if pid_file.exists() else 0


def service_log(component: str) -> Path:
    return airflow_home() / "logs" / "services" / f"{component}.log"


def running_components() -> dict[str, int]:
    return {component: pid for component in COMPONENTS if (pid := _pid(component)) and alive(pid)}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


POOL_ARGS = ("pools", "set", WAREHOUSE_POOL, "1", "DuckDB allows one writing process: serialises warehouse tasks")


def prepare() -> None:
    """Migrate the metadata DB (idempotent) and write the shell's activate script."""
    print(f"Airflow home: {airflow_home()}", flush=True)
    _airflow("db", "migrate")
    # The plain `airflow` CLI in a shell: `source airflow_home/activate` gives it this environment.
    write_activate_script(airflow_env(), Path(sys.executable).parent)


def _pool_created(creating: subprocess.Popen[str]) -> None:
    """Wait for the warehouse pool's `pools set` (idempotent); once more if SQLite was busy."""
    try:
        _finish(creating, POOL_ARGS)
    except AirflowError:
        _airflow(*POOL_ARGS)


def _log_sizes() -> dict[str, int]:
    return {c: service_log(c).stat().st_size if service_log(c).exists() else 0 for c in COMPONENTS}


def _exited_since(sizes: dict[str, int]) -> list[str]:
    """Components whose supervisor has seen them exit since their logs had these sizes: one that keeps
    exiting at start-up is restarted by it, so that its process alone does not tell."""
    exited = []
    for component, offset in sizes.items():
        with contextlib.suppress(OSError), service_log(component).open("rb") as log:
            log.seek(offset)
            if exit_line(component).encode() in log.read():
                exited.append(component)
    return exited


def _launch(component: str) -> None:
    log_path = service_log(component)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            supervised(component, [_airflow_cli(), component]),
            env=airflow_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends it and all its children
            cwd=str(REPO_ROOT),
        )
    _pid_file(component).write_text(str(process.pid))
    print(f"  started {component:<13} pid {process.pid}, log {log_path}", flush=True)


def revive_stopped_components() -> list[str]:
    """Start again the components whose process group is gone while Airflow was in use (killed with
    its supervisor, e.g. by the kernel's out-of-memory killer); returns their names. A component that
    exits on its own (on SQLite the scheduler can, on a write conflict with the api-server) is
    restarted by its supervisor; without either, its runs would wait, queued, until it is back."""
    running = running_components()
    if not running:
        return []  # stopped on purpose (make airflow-stop): not ours to restart
    stopped = [component for component in COMPONENTS if component not in running]
    for component in stopped:
        print(f"Airflow's {component} stopped (its log: {service_log(component)}): starting it again.", flush=True)
        # What it left running (the scheduler's log server, its workers) holds ports: end it first.
        end_groups({component: _pid(component)}, timeout=10.0)
        _launch(component)
    return stopped


def start(wait: bool = True) -> None:
    already = running_components()
    if len(already) == len(COMPONENTS):
        print(f"Airflow is already running (pids {sorted(already.values())}): {api_url()}")
        return
    if already:
        stop()  # a partial set (one component died): start all of them afresh
    port = get_settings().airflow_api_port
    if not _port_free(port):
        raise AirflowError(
            f"Port {port} is in use by another program. Choose another: AIRFLOW_API_PORT=NNNNN make airflow"
        )
    manifest = REPO_ROOT / "dbt_project" / "target" / "manifest.json"
    if not manifest.exists():
        raise AirflowError(f"dbt manifest missing ({manifest}): run `make manifest` first.")
    prepare()
    # The pool is created while the components start (2 s of a CLI process), before any run exists.
    creating_pool = _airflow_started(*POOL_ARGS)
    for component in COMPONENTS:
        _launch(component)
    try:
        _pool_created(creating_pool)
    except AirflowError:
        stop()
        raise
    if wait:
        try:
            wait_until_healthy()
        except AirflowError:
            stop()  # not half an Airflow, with a supervisor restarting a component that cannot start
            raise
    print(f"Airflow UI: {api_url()}  (login: {ADMIN_USER} / {admin_password() or 'see ' + str(_password_file())})")


def stop(timeout: float = 20.0) -> None:
    # component -> pid, the leader of its process group (one that died may have left members running)
    groups = {component: pid for component in COMPONENTS if (pid := _pid(component)) and group_alive(pid)}
    end_groups(groups, timeout)
    for component in COMPONENTS:
        _pid_file(component).unlink(missing_ok=True)
    print(f"Airflow stopped ({len(groups)} component(s))." if groups else "Airflow was not running.")


def status() -> None:
    running = running_components()
    for component in COMPONENTS:
        print(f"{component:<14} {f'running (pid {running[component]})' if component in running else 'stopped'}")
    if running:
        print(f"UI: {api_url()}  login: {ADMIN_USER} / {admin_password()}")


# --------------------------------------------------------------------------------------------------
# REST API: the official client, logged in with the simple auth manager's generated admin password

LOCKED_RETRY_PAUSES = (1, 2, 4, 8, 16)  # seconds; about half a minute in all
REQUEST_TIMEOUT = 30.0  # seconds, when a call does not set its own (the client's default is none)
PAGE_SIZE = 100  # Airflow's default maximum_page_limit


def _password_file(home: Path | None = None) -> Path:
    return (home or airflow_home()) / "simple_auth_manager_passwords.json.generated"


def admin_password(home: Path | None = None) -> str | None:
    try:
        return json.loads(_password_file(home).read_text()).get(ADMIN_USER)
    except (OSError, ValueError):
        return None


class AirflowClient(ApiClient):
    """The client's ``ApiClient``, retrying Airflow's "database is locked" 503 and with a timeout.

    SQLite (the default metadata DB) refuses a write while the scheduler holds its lock: Airflow answers
    503 "Database is locked" and nothing was written, so the same request is sent again. Every
    generated API method sends its request through ``call_api``, and reads the answer after it.
    """

    def call_api(  # type: ignore[override]
        self, method: str, url: str, header_params=None, body=None, post_params=None, _request_timeout=None
    ) -> RESTResponse:
        request = (method, url, header_params, body, post_params, _request_timeout or REQUEST_TIMEOUT)
        for pause in LOCKED_RETRY_PAUSES:
            response = super().call_api(*request)
            if response.status != 503 or b"locked" not in response.read().lower():
                return response
            detail = response.read().decode(errors="replace")[:200]
            print(f"Airflow's metadata database is busy ({detail}); retrying in {pause} s", flush=True)
            time.sleep(pause)
        return super().call_api(*request)


class Api:
    """The groups of the client's API this project uses, sharing one logged-in ``AirflowClient``."""

    def __init__(self, client: AirflowClient) -> None:
        self.client = client
        self.dags = DAGApi(client)
        self.dag_runs = DagRunApi(client)
        self.backfills = BackfillApi(client)
        self.task_instances = TaskInstanceApi(client)
        self.monitor = MonitorApi(client)


def _token(client: AirflowClient, password: str) -> str:
    # POST /auth/token belongs to the auth manager, not to the REST API the client is generated from
    # (its README fetches the token by hand): the same client sends it, so a locked database is retried.
    request = client.param_serialize(
        "POST",
        "/auth/token",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body={"username": ADMIN_USER, "password": password},
    )
    response = client.call_api(*request[:4])
    response.read()
    answer = client.response_deserialize(response, {"200": "object", "201": "object"}).data
    return str(answer["access_token"])


def connect(url: str | None = None, home: Path | None = None) -> Api:
    """A logged-in client of the Airflow at ``url`` (default: this repo's) whose home is ``home``."""
    password = admin_password(home)
    if password is None:
        raise AirflowError(f"No admin password yet in {_password_file(home)}: is the api-server running?")
    client = AirflowClient(Configuration(host=url or api_url()))
    client.configuration.access_token = _token(client, password)
    return Api(client)


def describe_error(error: BaseException) -> str | None:
    """A one-paragraph message for an error of this module or the client, else None (a bug: traceback)."""
    if isinstance(error, AirflowError):
        return str(error)
    if isinstance(error, ApiException):
        detail = (error.body or error.reason or "").strip()[:1000]
        return f"Airflow API answered {error.status}: {detail}"
    if isinstance(error, urllib3.exceptions.HTTPError):
        reason = getattr(error, "reason", None) or error
        return f"Cannot reach Airflow's API at {api_url()} ({reason}): is it running (make airflow-status)?"
    return None


def wait_until_healthy(timeout: float = 180.0) -> None:
    """Wait for the api-server, a healthy scheduler and the DAG being parsed."""
    started, sizes = time.monotonic(), _log_sizes()
    print(f"Waiting for Airflow at {api_url()} ...", flush=True)
    anonymous = Api(AirflowClient(Configuration(host=api_url())))  # the health endpoint needs no login
    api: Api | None = None
    last_problem = "api-server not answering"
    while time.monotonic() - started < timeout:
        dead = [c for c in COMPONENTS if c not in running_components()] or _exited_since(sizes)
        if dead:
            raise AirflowError(f"Airflow component(s) {dead} exited during start-up: see {service_log(dead[0])}")
        try:
            scheduler = anonymous.monitor.get_health().scheduler.status
            if scheduler != "healthy":
                last_problem = f"scheduler {scheduler}"
            else:
                api = api or connect()
                api.dags.get_dag(DAG_ID)  # 404 until the dag-processor has parsed it
                print(f"Airflow is ready ({time.monotonic() - started:.0f}s).", flush=True)
                return
        except (AirflowError, ApiException, urllib3.exceptions.HTTPError) as exc:
            last_problem = (describe_error(exc) or str(exc))[:200]
        time.sleep(2)
    raise AirflowError(
        f"Airflow not ready after {timeout:.0f}s ({last_problem}); logs: {service_log('scheduler').parent}"
    )


def set_paused(api: Api, paused: bool, dag_id: str = DAG_ID) -> None:
    api.dags.patch_dag(dag_id, DAGPatchBody(is_paused=paused), update_mask=["is_paused"])


# --------------------------------------------------------------------------------------------------
# Backfill, rerun and reprocessing, with progress
#
# Nothing here clears a run: a date that already has a run and is to be processed again gets a fresh
# manual run, and only dates without a run go through Airflow's backfill (which, for a date with a run,
# would clear it). A fresh run leaves the earlier one as it was (its state, logs and run-registry record:
# a rerun is a new record), it has no logical date, hence no deadline, and its tasks are all on try 1, so
# Cosmos WATCHER's producer runs the date's one `dbt build` however the DAG treats clears.

FINISHED = (DagRunState.SUCCESS, DagRunState.FAILED)
IN_FLIGHT = (DagRunState.QUEUED, DagRunState.RUNNING)
# REPROCESS=... -> the states of a date's latest run that make it be processed again.
REPROCESS_STATES: dict[str, tuple[str, ...]] = {
    "none": (),
    "failed": (DagRunState.FAILED.value,),
    "completed": tuple(state.value for state in FINISHED),
}


def _iso_bounds(start: str, end: str) -> tuple[datetime, datetime]:
    first, last = parse_date(start, "START"), parse_date(end, "END")
    if last < first:
        raise InvalidDateError(f"END {last} is before START {first}")
    # The run of partition D has logical date D 00:00 UTC; END is widened to the end of its day, so the
    # range holds the runs of START..END, both included, whatever time of day a timetable gives them.
    return datetime.combine(first, clock.min, UTC), datetime.combine(last, clock(23, 59, 59), UTC)


def _every_page(fetch: Callable[[str], Any], items: str) -> list[Any]:
    """Every item of a listing, page by page: ``fetch(cursor)`` gets one page of at most PAGE_SIZE.

    Airflow caps a page at 100 items. Keyset pages (``cursor``) rather than offsets: an item created
    while we read cannot shift another one into two pages or none.
    """
    found: list[Any] = []
    cursor = ""  # the first page
    while True:
        page = fetch(cursor)
        found.extend(getattr(page, items))
        if not page.next_cursor or not getattr(page, items):
            return found
        cursor = page.next_cursor


def list_runs(api: Api, dag_id: str = DAG_ID, **filters: Any) -> list[DAGRunResponse]:
    """Every run of ``dag_id`` the filters (``DagRunApi.get_dag_runs``'s parameters) match."""
    return _every_page(
        lambda cursor: api.dag_runs.get_dag_runs(dag_id, limit=PAGE_SIZE, cursor=cursor, **filters), "dag_runs"
    )


def list_task_instances(api: Api, dag_id: str, run_id: str, **filters: Any) -> list[TaskInstanceResponse]:
    """Every task instance of a run the filters (``TaskInstanceApi.get_task_instances``'s) match."""
    return _every_page(
        lambda cursor: api.task_instances.get_task_instances(dag_id, run_id, limit=PAGE_SIZE, cursor=cursor, **filters),
        "task_instances",
    )


def runs_in_range(api: Api, start: str, end: str, dag_id: str = DAG_ID) -> list[DAGRunResponse]:
    lo, hi = _iso_bounds(start, end)
    return list_runs(api, dag_id, logical_date_gte=lo, logical_date_lte=hi, order_by=["logical_date"])


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _utc_day(moment: datetime | None) -> str:
    return moment.astimezone(UTC).date().isoformat() if moment else ""


def run_date_of(run: DAGRunResponse) -> str:
    """The date a run processes, as the DAG's RUN_DATE: param run_date if given, else the logical date."""
    conf_date = (run.conf or {}).get("run_date")
    return str(conf_date)[:10] if conf_date else _utc_day(run.logical_date)


def task_log_dir(run_id: str, dag_id: str = DAG_ID) -> Path:
    return airflow_home() / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"


def rerun_date(text: str, today: date | None = None) -> str:
    """``make rerun``'s DATE, checked before anything is sent: a real date whose day is over (UTC)."""
    day = parse_date(text, "DATE")
    today = today or datetime.now(UTC).date()
    if day >= today:
        raise InvalidDateError(f"DATE {day} is not over yet: its partition is complete after {day} 24:00 UTC")
    return day.isoformat()


def fresh_run_body(day: str) -> TriggerDAGRunPostBody:
    """The body of a fresh manual run processing ``day``.

    ``logical_date`` null: the run has no logical date (nor data interval), so it cannot collide with
    the date's scheduled or backfill run (Airflow keeps one run per logical date), the DAG takes its
    date from ``run_date``, and its ``DeadlineAlert`` (counted from the logical date) creates no
    deadline for it: Airflow skips a deadline whose reference is null. ``force``: process the
    partition even if it is byte-identical to the one already processed.
    """
    return TriggerDAGRunPostBody(
        logical_date=None,
        conf={"run_date": day, "force": True},
        note=f"Reprocesses {day} (make rerun / REPROCESS backfill): a fresh run, one dbt build.",
    )


def backfill_body(lo: datetime, hi: datetime, max_active_runs: int, force: bool) -> BackfillPostBody:
    """The backfill to create. Always ``reprocess_behavior: none``: Airflow would clear a date's
    existing run, and those dates get fresh runs instead (see above)."""
    return BackfillPostBody(
        dag_id=DAG_ID,
        from_date=lo,
        to_date=hi,
        max_active_runs=max_active_runs,
        reprocess_behavior=ReprocessBehavior.NONE,
        run_backwards=False,
        # A reprocessing backfill processes even byte-identical partitions (skip-unchanged off).
        dag_run_conf={"force": force},
    )


def latest_states(runs: Iterable[DAGRunResponse], wanted: Iterable[str]) -> dict[str, str]:
    """Date -> state of the latest run (by queued time: a cleared run is queued again) processing it."""
    dates = set(wanted)
    never = datetime.min.replace(tzinfo=UTC)
    states: dict[str, str] = {}
    for run in sorted(runs, key=lambda item: item.queued_at or item.start_date or never):
        if (day := run_date_of(run)) in dates:
            states[day] = run.state.value
    return states


def plan_fresh_runs(states: dict[str, str], wanted: list[str], backfilled: Iterable[str], reprocess: str) -> list[str]:
    """The dates that get a fresh manual run: their latest run is in a state REPROCESS redoes, and
    Airflow's backfill does not create a run for them (it does for every date without a logical-dated
    run: those it processes itself, with try 1 too)."""
    redo, by_backfill = REPROCESS_STATES[reprocess], set(backfilled)
    return [day for day in wanted if day not in by_backfill and states.get(day) in redo]


def _api_ready(dag_id: str = DAG_ID) -> Api:
    """Start Airflow if it is not running, log in, unpause the DAG (runs of a paused DAG never start)."""
    if not running_components():
        print("Airflow is not running: starting it.", flush=True)
        start(wait=True)
    elif revive_stopped_components():
        wait_until_healthy()
    api = connect()
    set_paused(api, False, dag_id)
    return api


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
    since: datetime | None = None  # run_after of the first fresh run: the later ones are newer

    def dates(self) -> list[str]:
        return sorted({*self.backfill_dates, *self.manual.values()})

    def title(self) -> str:
        parts = [f"Backfill {self.backfill_id}"] if self.backfill_id is not None else []
        if self.manual:
            parts.append(f"{len(self.manual)} fresh run(s)")
        return " + ".join(parts) or "Backfill"

    def poll(self, api: Api) -> tuple[dict[str, DAGRunResponse], bool]:
        """(date -> its run, whether Airflow has created every run it will create).

        A backfill's runs are created with it; one Airflow did not create is known once the backfill
        is closed. Its end is not awaited otherwise: the scheduler closes finished backfills only
        every 30 s (the next backfill waits for that instead, see ``_wait_for_finished_backfills``)."""
        runs: dict[str, DAGRunResponse] = {}
        closed = True
        if self.backfill_id is not None:
            for run in runs_in_range(api, self.start, self.end):
                if run.run_type == DagRunType.BACKFILL and run_date_of(run) in self.backfill_dates:
                    runs[run_date_of(run)] = run
            closed = len(runs) == len(self.backfill_dates)
            closed = closed or api.backfills.get_backfill(self.backfill_id).completed_at is not None
        if self.manual:
            recent = list_runs(api, run_type=[DagRunType.MANUAL.value], run_after_gte=self.since)
            seen = [run for run in recent if run.dag_run_id in self.manual]
            runs.update({self.manual[run.dag_run_id]: run for run in seen})
            closed = closed and len(seen) == len(self.manual)
        return runs, closed


# A component that stops again and again is not a hiccup: say so instead of restarting it forever.
MAX_REVIVALS = 5


def follow_runs(api: Api, followed: _Followed, timeout: float, not_run: str = "") -> int:
    """Follow the runs to their end with progress. Returns 0 if all succeeded, 1 if any failed."""
    wanted = followed.dates()
    progress = _Progress(len(wanted), "dates")
    revived = 0
    while True:
        if revive_stopped_components():
            revived += 1
            if revived > MAX_REVIVALS:
                print(f"Airflow keeps stopping (see {service_log('scheduler')}); the runs wait in Airflow.")
                return 3
        runs, closed = followed.poll(api)
        done = [day for day, run in runs.items() if run.state in FINISHED]
        failed = sorted(day for day, run in runs.items() if run.state == DagRunState.FAILED)
        progress.update(len(done), len(failed), sum(run.state == DagRunState.RUNNING for run in runs.values()))
        # Wait for Airflow to close the backfill too: only one backfill per DAG may be open.
        if closed and len(done) == len(runs):
            break
        if progress.elapsed() > timeout:
            print(f"Gave up waiting after {_format_seconds(progress.elapsed())}; the runs go on in Airflow.")
            return 3
        time.sleep(1)  # a few cheap API calls: the summary follows the last run's end closely
    missing = sorted(set(wanted) - set(runs))
    print(
        f"{followed.title()} finished in {_format_seconds(progress.elapsed())}: "
        f"{len(done) - len(failed)} succeeded, {len(failed)} failed"
        + (f", {len(missing)} not created by Airflow: {', '.join(missing)}" if missing else "")
        + (f"; {not_run}" if not_run else "")
    )
    for day in failed:
        print(f"  FAILED {day}: logs in {task_log_dir(runs[day].dag_run_id)}")
        for line in failure_summary(api, runs[day].dag_run_id):
            print(f"    {line}")
    return 1 if failed else 0


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _exception_text(event: dict[str, Any]) -> str:
    """The exception an event carries (type: message), "" if none: structlog's dict traceback, the
    raised exception first."""
    for key in ("exception", "error_detail"):
        chain = event.get(key)
        if isinstance(chain, list) and chain and isinstance(chain[0], dict) and chain[0].get("exc_type"):
            return f"{chain[0]['exc_type']}: {chain[0].get('exc_value', '')}"
    return ""


def last_error(log: Path, limit: int = 300) -> str:
    """What an Airflow 3 task log (JSON lines) says went wrong, shortened: the last exception logged,
    else the last error-level message; "" if none."""
    exception = message = ""
    with contextlib.suppress(OSError), log.open(errors="replace") as lines:
        for line in lines:
            if '"level":"error"' not in line:
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    exception = _exception_text(event) or exception
                    message = str(event.get("event", "")) or message
    text = " ".join(ANSI.sub("", exception or message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_summary(api: Api, run_id: str, dag_id: str = DAG_ID, most: int = 3) -> list[str]:
    """A line per failed task of a run (at most ``most``): its id, try and last logged error."""
    failed = list_task_instances(api, dag_id, run_id, state=[TaskInstanceState.FAILED.value])
    lines = []
    for task in sorted(failed, key=lambda ti: (ti.end_date is None, ti.end_date))[:most]:
        log = task_log_dir(run_id, dag_id) / f"task_id={task.task_id}" / f"attempt={task.try_number}.log"
        error = last_error(log)
        lines.append(f"{task.task_id} failed (try {task.try_number})" + (f": {error}" if error else ""))
    if len(failed) > most:
        lines.append(f"... and {len(failed) - most} more failed task(s)")
    return lines


def _not_run_note(skipped: list[str], states: dict[str, str]) -> str:
    """Why the dates of the range that get no run get none."""
    finished, in_flight = REPROCESS_STATES["completed"], tuple(state.value for state in IN_FLIGHT)
    groups = {
        "already done (REPROCESS=completed processes them again)": [d for d in skipped if states.get(d) in finished],
        "in flight": [d for d in skipped if states.get(d) in in_flight],
        "not due (interval not over, or outside the DAG's dates)": [d for d in skipped if d not in states],
    }
    return "; ".join(f"{len(days)} not run, {why}: {', '.join(days)}" for why, days in groups.items() if days)


def _open_backfills(api: Api) -> list[Any]:
    return [item for item in api.backfills.list_backfills(DAG_ID, limit=100).backfills if not item.completed_at]


# Airflow's scheduler marks a backfill whose runs have all ended as completed every 30 s.
BACKFILL_CLOSE_WAIT = 45.0


def _wait_for_finished_backfills(api: Api, timeout: float = BACKFILL_CLOSE_WAIT) -> list[Any]:
    """The DAG's open backfills once those whose runs have all ended are closed by Airflow (it allows
    one open backfill per DAG). Returns at once while a backfill run is queued or running."""
    deadline = time.monotonic() + timeout
    said = False
    while open_backfills := _open_backfills(api):
        active = list_runs(api, run_type=[DagRunType.BACKFILL.value], state=["queued", "running"])
        if active or time.monotonic() > deadline:
            return open_backfills
        if not said:
            print(f"Backfill {open_backfills[0].id}'s runs have ended; waiting for Airflow to close it ...", flush=True)
            said = True
        time.sleep(2)
    return []


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
    open_backfills = _open_backfills(api)
    same = [item for item in open_backfills if (item.from_date, item.to_date) == (lo, hi)]
    if same and reprocess == "none":  # this very command, interrupted (or its Airflow restarted): follow it
        print(f"Backfill {same[0].id} of {start} .. {end} is already open: following it.", flush=True)
        followed = _Followed(start, end, backfill_id=same[0].id, backfill_dates=wanted)
        return follow_runs(api, followed, timeout)
    if open_backfills:
        open_backfills = _wait_for_finished_backfills(api)
    if open_backfills:
        raise AirflowError(
            f"Backfill {open_backfills[0].id} of {DAG_ID} is still running (Airflow allows one at a time): "
            f"wait for it, or cancel it in the UI ({api_url()}, Browse > Backfills)."
        )
    body = backfill_body(lo, hi, max_active_runs, force=reprocess != "none")
    # The dates the backfill creates runs for: those without a (logical-dated) run whose interval is over.
    planned = api.backfills.create_backfill_dry_run(body).backfills
    backfilled = sorted({_utc_day(item.logical_date) for item in planned if item.logical_date} & set(wanted))
    known = {run.dag_run_id: run for run in runs_in_range(api, start, end)}
    known.update(
        {run.dag_run_id: run for run in list_runs(api, run_type=[DagRunType.MANUAL.value], order_by=["run_after"])}
    )
    states = latest_states(known.values(), wanted)
    fresh = plan_fresh_runs(states, wanted, backfilled, reprocess)
    followed = _Followed(start, end)
    if backfilled:
        followed.backfill_id = api.backfills.create_backfill(body).id
        followed.backfill_dates = backfilled
        print(
            f"Backfill {followed.backfill_id}: {len(backfilled)} date(s) {backfilled[0]} .. {backfilled[-1]}, "
            f"max {max_active_runs} active run(s), reprocess={reprocess}",
            flush=True,
        )
    for day in fresh:
        run = api.dag_runs.trigger_dag_run(DAG_ID, fresh_run_body(day))
        followed.manual[run.dag_run_id] = day
        followed.since = followed.since or run.run_after
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
    run = api.dag_runs.trigger_dag_run(DAG_ID, fresh_run_body(day))
    print(f"Rerun of {day}: fresh manual run {run.dag_run_id} (conf run_date={day}, force=true)", flush=True)
    followed = _Followed(day, day, manual={run.dag_run_id: day}, since=run.run_after)
    return follow_runs(api, followed, timeout)


def demo(start_date: str, end_date: str) -> int:
    """The demo's Airflow part: a real backfill on the scheduler, then leave everything stopped, and the
    dbt docs generated from the warehouse it filled.

    On a fresh clone every date is backfilled; on a second run every date already has a run and gets a
    fresh one (REPROCESS=completed), one ``dbt build`` each."""
    from ecompipe.reports import docs_site

    start()
    try:
        outcome = backfill(start_date, end_date, max_active_runs=3, reprocess="completed")
        set_paused(connect(), True)  # starting Airflow later must not start scheduling on its own
    except BaseException:
        stop()
        raise
    # While Airflow stops (a few seconds): no task of it holds the warehouse any more.
    with ThreadPoolExecutor(max_workers=1) as meanwhile:
        docs = meanwhile.submit(docs_site.main, ["generate"])
        stop()
        docs_outcome = docs.result()
    print(f"Browse the runs: make airflow, then open {api_url()} (login {ADMIN_USER} / {admin_password()}).")
    return outcome or docs_outcome


def bulk_backfill(start_date: str, end_date: str, chunk_days: int = 31, timeout: float = 7200) -> int:
    """Trigger the bulk DAG for [start, end] and follow its chunks. Returns 0 if every chunk succeeded."""
    from ecompipe.pipeline.bulk import plan_chunks

    chunks = plan_chunks(start_date, end_date, chunk_days)  # validates before anything is sent
    api = _api_ready(BULK_DAG_ID)
    conf = {"start_date": start_date, "end_date": end_date, "chunk_days": chunk_days}
    run_id = api.dag_runs.trigger_dag_run(BULK_DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf=conf)).dag_run_id
    print(f"Bulk backfill {run_id}: {start_date} .. {end_date} in {len(chunks)} chunk(s) of <= {chunk_days} days")
    progress = _Progress(len(chunks), "chunks")
    while True:
        state = api.dag_runs.get_dag_run(BULK_DAG_ID, run_id).state
        mapped = list_task_instances(api, BULK_DAG_ID, run_id, task_id="build_chunk")
        ended = [ti for ti in mapped if ti.state in ("success", "failed", "upstream_failed")]
        failed = [ti for ti in ended if ti.state != "success"]
        progress.update(len(ended), len(failed))
        if state in FINISHED:
            break
        if progress.elapsed() > timeout:
            print(f"Gave up waiting after {_format_seconds(progress.elapsed())}; the run goes on in Airflow.")
            return 3
        time.sleep(3)
    print(
        f"Bulk backfill {state.value} in {_format_seconds(progress.elapsed())}: "
        f"{len(ended) - len(failed)} chunk(s) succeeded, {len(failed)} failed"
    )
    for ti in sorted(failed, key=lambda item: item.map_index):
        chunk = chunks[ti.map_index] if 0 <= ti.map_index < len(chunks) else {}
        folder = task_log_dir(run_id, BULK_DAG_ID) / "task_id=build_chunk" / f"map_index={ti.map_index}"
        print(f"  FAILED chunk {chunk.get('start_date')}..{chunk.get('end_date')}: logs in {folder}")
    return 0 if state == DagRunState.SUCCESS and not failed else 1
