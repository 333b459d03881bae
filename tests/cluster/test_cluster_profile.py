"""The cluster profile on real services: PostgreSQL, Redis, Airflow (CeleryExecutor) and two Celery
workers on free loopback ports, the warehouse on DuckLake. One cluster for the module (starting it is
the slow part); the tests run in file order and build on each other's dates.

The reference for every result is the embedded profile (a DuckDB file) built by dbt over the same raw
files: every mart must be hash-equal to it (tests.helpers.sandbox.Pipeline, warehouse fingerprints).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecompipe.core.warehouse import MART_TABLES, fingerprints
from ecompipe.local_airflow import DAG_ID, Api, connect, fresh_run_body, list_runs, list_task_instances
from ecompipe.pipeline.generator import generate_partition
from tests.helpers.airflow import supervised_service
from tests.helpers.sandbox import DBT_PROJECT, Pipeline, _free_port

VENV_BIN = Path(sys.executable).parent
BACKFILL = [f"2024-01-0{day}" for day in range(1, 7)]  # six dates, three active runs
IN_FLIGHT = "2024-01-07"  # backfilled while a rerun of it is started
ALL_DATES = [*BACKFILL, IN_FLIGHT]
ROWS = 300
# Mart keys: none may occur twice.
KEYS = {
    "fct_transactions": "transaction_id",
    "agg_customer_daily": "customer_id, transaction_date",
    "agg_customer_rolling": "customer_id, transaction_date",
    "fct_transaction_features": "transaction_id",
}

pytestmark = pytest.mark.skipif(
    not shutil.which("redis-server") or not Path("/usr/lib/postgresql").exists(),
    reason="PostgreSQL or Redis is not installed (Debian postgresql, redis-server: make system-packages)",
)


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]

    @property
    def home(self) -> Path:
        return self.root / "cluster" / "airflow_home"

    def ecompipe(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "ecompipe"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def python(self, code: str) -> str:
        """Run ``code`` in a process with the cluster's settings; returns its stdout."""
        done = subprocess.run(
            [sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def api(self) -> Api:
        return connect(f"http://127.0.0.1:{self.env['AIRFLOW_API_PORT']}", self.home)

    def lake_fingerprints(self) -> dict[str, tuple[int, int]]:
        code = "import json; from ecompipe.core.warehouse import fingerprints, MART_TABLES; "
        code += "print(json.dumps(fingerprints(tables=MART_TABLES)))"
        found = json.loads(self.python(code).strip().splitlines()[-1])
        return {table: tuple(value) for table, value in found.items()}

    def duplicate_keys(self) -> dict[str, int]:
        queries = {
            table: f"select count(*) from (select {key} from {table} group by all having count(*) > 1)"
            for table, key in KEYS.items()
        }
        code = (
            "import json; from ecompipe.core.warehouse import connect\n"
            f"queries = {queries!r}\n"
            "with connect(read_only=True) as con:\n"
            "    print(json.dumps({t: con.execute(q).fetchone()[0] for t, q in queries.items()}))"
        )
        return json.loads(self.python(code).strip().splitlines()[-1])


def _ours(message: str, completed: subprocess.CompletedProcess[str], retries: Path | None = None) -> str:
    said = f"{message} (exit {completed.returncode}):\n{completed.stdout[-4000:]}\n{completed.stderr[-3000:]}"
    if retries is not None and retries.exists():  # ecompipe-dbt's DuckLake retries, one JSON line each
        said += "\nDuckLake retries:\n" + retries.read_text()[-3000:]
    return said


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Not under pytest's tmp dir: that is private to root (0700), and PostgreSQL runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="ecompipe_cluster_", dir="/tmp"))
    root.chmod(0o755)
    data = root / "data"
    for day in ALL_DATES:
        generate_partition(day, data / "raw", rows=ROWS)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "PIPELINE_", "LAKE_"))}
    env.update(
        {
            "PIPELINE_PROFILE": "cluster",
            "PIPELINE_CLUSTER_DIR": str(root / "cluster"),
            "PIPELINE_DATA_DIR": str(data),
            "PIPELINE_MODE": "production",  # the files are there: nothing is generated
            "PIPELINE_RETRY_DELAY_SECONDS": "2",
            "PIPELINE_SCHEDULE_END_DATE": ALL_DATES[-1],
            "LAKE_PG_PORT": str(_free_port()),
            "CLUSTER_REDIS_PORT": str(_free_port()),
            "AIRFLOW_API_PORT": str(_free_port()),
            "AIRFLOW_TRIGGER_LOG_PORT": str(_free_port()),
            "AIRFLOW_WORKER_LOG_PORT": str(_free_port()),
            # A killed worker's task is failed (then retried) once its heartbeat is this old.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "DO_NOT_TRACK": "1",
        }
    )
    started = Cluster(root, env)
    try:
        up = started.ecompipe("cluster", "up", timeout=600)
        assert up.returncode == 0, _ours("cluster up failed", up)
        assert "UI" in up.stdout and "login: admin /" in up.stdout
        yield started
    finally:
        down = started.ecompipe("cluster", "down", timeout=300)
        left = [
            pid
            for pid in os.listdir("/proc")
            if pid.isdigit() and str(root).encode() in _read(Path("/proc") / pid / "cmdline")
        ]
        shutil.rmtree(root, ignore_errors=True)
    assert down.returncode == 0, _ours("cluster down failed", down)
    assert not left, f"processes left after cluster down: {left}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, tuple[int, int]]]:
    """The marts of the embedded profile (one DuckDB file) over the same raw files, built date by date:
    after the backfill's dates ("backfill") and after every date ("all")."""
    root = tmp_path_factory.mktemp("embedded")
    pipeline = Pipeline(data_dir=root / "data", work_dir=root / "work")
    states = {}
    for day in ALL_DATES:
        generate_partition(day, pipeline.raw_dir, rows=ROWS)
        pipeline.build(day)
        if day == BACKFILL[-1]:
            states["backfill"] = fingerprints(pipeline.warehouse, MART_TABLES)
    states["all"] = fingerprints(pipeline.warehouse, MART_TABLES)
    return states


def _wait_for_runs(api: Api, run_ids: list[str], timeout: float = 600) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = {run_id: api.dag_runs.get_dag_run(DAG_ID, run_id).state.value for run_id in run_ids}
        if all(state in ("success", "failed") for state in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(3)


def test_backfill_runs_dates_side_by_side_on_both_workers(cluster: Cluster) -> None:
    started = time.monotonic()
    done = cluster.ecompipe("backfill", BACKFILL[0], BACKFILL[-1], "--max-active-runs", "3")
    assert done.returncode == 0, _ours("backfill failed", done, cluster.root / "data/logs/dbt/lake_retries.jsonl")
    api = cluster.api()
    runs = [run for run in list_runs(api) if run.state.value == "success"]
    assert len(runs) >= len(BACKFILL)
    hosts: set[str] = set()
    intervals = []
    for run in runs:
        for ti in list_task_instances(api, DAG_ID, run.dag_run_id):
            hosts.add((ti.hostname or "").split("@")[0])
            if ti.task_id == "dbt.dbt_producer_watcher" and ti.start_date and ti.end_date:
                intervals.append((ti.start_date, ti.end_date))
    assert {"w1", "w2"} <= hosts, f"task instances ran on {hosts}"
    # Builds of different dates overlapped in time: no one-slot pool on this profile.
    intervals.sort()
    assert any(later[0] < earlier[1] for earlier, later in zip(intervals, intervals[1:], strict=False)), intervals
    # Each date was built by its own run: no run took an earlier date, already loaded or in flight,
    # for a late file (the lookback reads the lake's manifest of loaded files).
    code = (
        "from ecompipe.core.warehouse import connect\n"
        "with connect(read_only=True) as con:\n"
        "    late = \"select count(*) from main.pipeline_runs where run_type like 'late-data%'\"\n"
        "    print(con.execute(late).fetchone()[0])"
    )
    assert cluster.python(code).strip().splitlines()[-1] == "0"
    print(f"backfill of {len(BACKFILL)} dates in {time.monotonic() - started:.0f}s")


def test_marts_equal_the_embedded_profile_without_duplicates(
    cluster: Cluster, embedded: dict[str, dict[str, tuple[int, int]]]
) -> None:
    assert cluster.duplicate_keys() == dict.fromkeys(KEYS, 0)
    assert cluster.lake_fingerprints() == embedded["backfill"]


def test_a_second_build_of_a_date_waits_for_the_first(cluster: Cluster) -> None:
    """Two `ecompipe-dbt build`s of one date at once (outside Airflow): the second waits for the per-date
    lock, then replaces the rows; nothing is doubled."""
    day = BACKFILL[2]
    command = [str(VENV_BIN / "ecompipe-dbt"), "build", "--vars", json.dumps({"run_date": day})]
    builds = []
    for index in range(2):
        target = cluster.root / f"lock_target_{index}"
        builds.append(
            subprocess.Popen(
                [*command, "--target-path", str(target), "--log-path", str(target)],
                cwd=DBT_PROJECT,
                env=cluster.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        time.sleep(1.0)
    outputs = [build.communicate(timeout=600)[0] for build in builds]
    assert [build.returncode for build in builds] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert f"another build holds {day.replace('-', '')}: waiting" in outputs[1], outputs[1][:2000]
    assert cluster.duplicate_keys() == dict.fromkeys(KEYS, 0)


def test_rerun_started_while_the_backfill_of_the_date_runs(cluster: Cluster) -> None:
    backfill = subprocess.Popen(
        [str(VENV_BIN / "ecompipe"), "backfill", IN_FLIGHT, IN_FLIGHT],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    api = cluster.api()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # until the backfill run's build has started
        running = [run for run in list_runs(api, state=["running"]) if run.run_type.value == "backfill"]
        producer = [
            ti
            for run in running
            for ti in list_task_instances(api, DAG_ID, run.dag_run_id, task_id="dbt.dbt_producer_watcher")
            if ti.state and ti.state.value == "running"
        ]
        if producer:
            break
        time.sleep(1)
    rerun = cluster.ecompipe("rerun", IN_FLIGHT)
    output = backfill.communicate(timeout=900)[0]
    assert backfill.returncode == 0, output[-3000:]
    assert rerun.returncode == 0, _ours("rerun failed", rerun)
    assert cluster.duplicate_keys() == dict.fromkeys(KEYS, 0)


def _stat(pid: int) -> tuple[int, int]:
    """(parent pid, process group) of a process; (0, 0) once it is gone."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return int(fields[1]), int(fields[2])


def _dbt_build_on(workers: dict[str, int]) -> tuple[str, int] | None:
    """(worker, process group of the build) of an `ecompipe-dbt build` running under a worker. The task
    runs dbt in a session of its own (Airflow's subprocess hook), so it is found by ancestry."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or b"ecompipe-dbt\x00build" not in _read(proc / "cmdline"):
            continue
        pid = int(proc.name)
        ancestor = pid
        while ancestor > 1:
            for name, leader in workers.items():
                if ancestor == leader:
                    return name, _stat(pid)[1]
            ancestor = _stat(ancestor)[0]
    return None


def test_a_worker_killed_during_a_dbt_task_is_retried(cluster: Cluster) -> None:
    api = cluster.api()
    day = BACKFILL[0]
    run = api.dag_runs.trigger_dag_run(DAG_ID, fresh_run_body(day))
    pids = {name: int((cluster.home / "run" / f"{name}.pid").read_text()) for name in ("worker-1", "worker-2")}
    found = None
    deadline = time.monotonic() + 300
    while found is None and time.monotonic() < deadline:
        found = _dbt_build_on(pids)
        time.sleep(0.5)
    assert found, "no dbt build started on a worker"
    victim, build_group = found
    time.sleep(3)  # in the middle of the build
    # The worker, its task and the task's dbt (a session of its own): all gone, as if the machine died.
    for group in (pids[victim], build_group):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    restart = f"from ecompipe import local_cluster; local_cluster.activate(); local_cluster.start_worker({victim!r})"
    cluster.python(restart)
    states = _wait_for_runs(api, [run.dag_run_id], timeout=900)
    assert states == {run.dag_run_id: "success"}
    instances = {ti.task_id: ti for ti in list_task_instances(api, DAG_ID, run.dag_run_id)}
    producer = instances.pop("dbt.dbt_producer_watcher")
    assert producer.try_number >= 2, "the killed task was not retried"
    # The retry was one dbt build of the date: every model task read its result at its first try (a
    # skipped producer would have left each of them to run dbt for its model on a retry).
    assert producer.state.value == "success", producer
    model_tasks = {task_id: ti.try_number for task_id, ti in instances.items() if task_id.startswith("dbt.")}
    assert model_tasks and set(model_tasks.values()) == {1}, model_tasks
    assert cluster.duplicate_keys() == dict.fromkeys(KEYS, 0)


def test_postgres_restarted_while_runs_are_queued(cluster: Cluster) -> None:
    api = cluster.api()
    runs = [api.dag_runs.trigger_dag_run(DAG_ID, fresh_run_body(day)).dag_run_id for day in BACKFILL[3:5]]
    time.sleep(2)
    cluster.python("from ecompipe import local_cluster; local_cluster.activate(); local_cluster.pg_restart()")
    # The scheduler exits when its database goes away, though not always at once: make it exit now (if
    # it has not already), with nobody but its supervisor to start it again.
    if (scheduler := supervised_service(cluster.home, "scheduler")) is not None:
        os.kill(scheduler, signal.SIGKILL)
    states = _wait_for_runs(
        cluster.api(), runs, timeout=1800
    )  # a new client (its pool predates the restart); slow when busy
    assert set(states.values()) == {"success"}, states
    assert "ecompipe supervisor: scheduler exited" in (cluster.home / "logs" / "services" / "scheduler.log").read_text()
    assert cluster.duplicate_keys() == dict.fromkeys(KEYS, 0)


def test_everything_still_equals_the_embedded_profile(
    cluster: Cluster, embedded: dict[str, dict[str, tuple[int, int]]]
) -> None:
    assert cluster.lake_fingerprints() == embedded["all"]


def test_reports_read_the_lake(cluster: Cluster) -> None:
    """The per-date summary, quality report and dashboard read the lake through warehouse.connect."""
    summary = cluster.ecompipe("summary", ALL_DATES[0], ALL_DATES[-1])
    assert summary.returncode == 0, _ours("summary failed", summary)
    assert f"{len(ALL_DATES)}/{len(ALL_DATES)} date(s) loaded" in summary.stdout, summary.stdout
    dashboard = cluster.ecompipe("dashboard")
    assert dashboard.returncode == 0, _ours("dashboard failed", dashboard)
    page = (cluster.root / "data" / "dashboard" / "index.html").read_text()
    assert ALL_DATES[-1] in page


def test_training_snapshot_records_the_lake_version_and_reads_it_again(cluster: Cluster) -> None:
    made = cluster.ecompipe("snapshot", "--days", str(len(ALL_DATES)), "--as-of", ALL_DATES[-1])
    assert made.returncode == 0, _ours("snapshot failed", made)
    first = json.loads(made.stdout[made.stdout.index("{") :])
    manifest = json.loads((Path(first["path"]) / "manifest.json").read_text())
    version = manifest["source"]["lake_snapshot_id"]
    # The last date is re-delivered with other rows and loaded: the lake moves on.
    generate_partition(ALL_DATES[-1], cluster.root / "data" / "raw", rows=ROWS + 50, seed=7, force=True)
    build = subprocess.run(
        [str(VENV_BIN / "ecompipe-dbt"), "build", "--vars", json.dumps({"run_date": ALL_DATES[-1]})],
        cwd=DBT_PROJECT,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:]
    code = (
        "import json; from ecompipe.pipeline.training_snapshot import build_snapshot as b\n"
        f"for v in ({version}, None):\n"
        f"    r = b({ALL_DATES[-1]!r}, {len(ALL_DATES)}, lake_version=v)\n"
        "    print(json.dumps([r.manifest['parquet']['sha256'], r.manifest['source']['lake_snapshot_id']]))"
    )
    (again, at), (latest, now) = (json.loads(line) for line in cluster.python(code).strip().splitlines()[-2:])
    assert (again, at) == (first["sha256"], version)  # the same version: the same bytes
    assert latest != first["sha256"] and now > version
