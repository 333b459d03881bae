"""4. One Airflow DAG run of a date (`airflow dags test`) vs a plain `dbt build` of that date.

Same raw file, same warehouse state (a small earlier day loaded) for both, alternating. Airflow runs
with a throwaway AIRFLOW_HOME whose metadata DB is migrated once and copied for every repetition.
The timeline of each task is broken down (see airflow_timeline): the dbt phases of every task that
runs dbt (with Cosmos WATCHER, one producer task running `dbt build`), and the time of the others
(the per-model sensor tasks that report what that build did, ingestion, the run record).

Optional (BENCH_BACKFILL=1): a real scheduler (`make airflow`) backfilling N dates, against N plain
`dbt build` runs and one ranged `dbt build`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from benchmarks import airflow_timeline, dbt_runs, measure
from benchmarks.common import AIRFLOW, BASE_DAY, DAG_ID, ONE_DAY, REPO_ROOT, Config, base_env, days_from, fresh_dir, iso
from benchmarks.datasets import Sandbox
from ecompipe import local_airflow as airflow_local


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def airflow_cli_env(
    home: Path, sandbox: Sandbox, dags_folder: Path | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment `make airflow` would use (ecompipe.local_airflow), pointed at the sandbox."""
    values = base_env()
    values.update(
        {
            "AIRFLOW_HOME": str(home),
            "PIPELINE_DATA_DIR": str(sandbox.data_dir),
            "DUCKDB_PATH": str(sandbox.warehouse),
            "PIPELINE_MODE": "production",
            "PIPELINE_RETRY_DELAY_SECONDS": "1",
            **(extra or {}),
        }
    )
    with _environ(values):
        env = airflow_local.airflow_env()
    if dags_folder is not None:
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    return env


def migrated_home(root: Path, sandbox: Sandbox) -> tuple[Path, measure.Sample]:
    """An AIRFLOW_HOME with a migrated metadata DB (the template every repetition copies)."""
    template = fresh_dir(root / "home-template")
    env = airflow_cli_env(template, sandbox)
    sample = measure.run([AIRFLOW, "db", "migrate"], log_path=root / "db-migrate.log", env=env, timeout=600)
    return template, sample


def home_copy(template: Path, target: Path) -> Path:
    """A fresh home holding a copy of the template's metadata DB (airflow.cfg is regenerated for it)."""
    fresh_dir(target)
    shutil.copyfile(template / "airflow.db", target / "airflow.db")
    return target


def dags_test(
    template: Path,
    sandbox: Sandbox,
    day: date,
    run_dir: Path,
    dags_folder: Path | None = None,
    extra_env: dict[str, str] | None = None,
    require_success: bool = True,
) -> measure.Sample:
    """`airflow dags test <dag> <day+1>T02:00:00+00:00` (processes partition ``day``), measured.

    ``require_success=False``: a failed run is measured anyway (``extra["failed_tasks"]`` names them).
    """
    home = home_copy(template, run_dir / "airflow_home")
    # Cosmos caches dbt's partial-parse state in a machine-wide folder by default (/tmp/cosmos): give
    # every run its own, so that other runs on the machine (tests, other checkouts) cannot leak in.
    cache = {"AIRFLOW__COSMOS__CACHE_DIR": str(run_dir / "cosmos-cache")}
    env = airflow_cli_env(home, sandbox, dags_folder, {**cache, **(extra_env or {})})
    logical = f"{iso(day + timedelta(days=1))}T02:00:00+00:00"
    log = run_dir / "dags-test.log"
    command = [AIRFLOW, "dags", "test", DAG_ID, logical]
    sample = measure.run(command, log_path=log, env=env, timeout=1800, check=False)
    output = log.read_text(errors="replace")
    tasks = airflow_timeline.parse(output)
    failed = airflow_timeline.failed_tasks(tasks)
    exit_bug = sample.returncode != 0 and _deadline_exit_bug(output)
    if require_success and (sample.returncode != 0 and not exit_bug):
        raise measure.CommandFailed(f"`{' '.join(command)}` exited {sample.returncode}; log {log}")
    if require_success and (not tasks or failed or "DagRun failed" in output):
        raise measure.CommandFailed(f"`airflow dags test` did not succeed ({failed or 'no task ran'}): see {log}")
    run_s = max((t.end or t.start for t in tasks), default=0.0) - (tasks[0].start if tasks else 0.0)
    sample.extra = {
        "tasks": tasks,
        "run_s": run_s,
        "api_warmup_s": airflow_timeline.inprocess_api_warmup_s(tasks),
        "failed_tasks": failed,
        "deadline_exit_bug": exit_bug,
    }
    return sample


def _deadline_exit_bug(output: str) -> bool:
    """apache/airflow#73428 (Airflow 3.3.2): `dags test` of a DAG with a deadline alert raises *after*
    marking the run successful (the alert is looked up by an id it does not have). Such a run counts;
    its tasks' states are still checked."""
    marked = re.search(r"Marking run <DagRun .*> successful", output)
    return bool(marked) and "DeadlineAlertModel.get_by_id" in output[marked.end() :] and "'hex'" in output


def _timeline_totals(rows: list[dict[str, object]]) -> dict[str, float]:
    keys = ("pre_s", "dbt_startup_s", "dbt_parse_s", "dbt_execute_s", "dbt_exit_s", "post_s")
    dbt_rows = [row for row in rows if "dbt_startup_s" in row]
    totals = {key: sum(float(row[key]) for row in dbt_rows) for key in keys}  # type: ignore[arg-type]
    totals["dbt_tasks"] = len(dbt_rows)
    sensors = [row for row in rows if "dbt_startup_s" not in row and str(row["task_id"]).startswith("dbt.")]
    totals["dbt_sensor_tasks"] = len(sensors)
    totals["dbt_sensor_s"] = sum(float(row["total_s"]) for row in sensors)  # type: ignore[arg-type]
    others = [row for row in rows if "dbt_startup_s" not in row and not str(row["task_id"]).startswith("dbt.")]
    totals["other_tasks_s"] = sum(float(row["total_s"]) for row in others)  # type: ignore[arg-type]
    return totals


def prepared_sandbox(cfg: Config, name: str) -> tuple[Sandbox, Path]:
    sandbox = Sandbox.create(cfg.work_dir / name, cfg.work_dir)
    sandbox.link([BASE_DAY], cfg.startup_rows)
    sandbox.link([ONE_DAY], cfg.airflow_rows)
    invocation = dbt_runs.DbtInvocation(dbt_runs.run_vars(iso(BASE_DAY)))
    dbt_runs.build(invocation, sandbox.env(), sandbox.root / "runs" / "base")
    return sandbox, sandbox.snapshot("base")


def summarize_dags_test(samples: list[measure.Sample]) -> dict[str, object]:
    timeline = airflow_timeline.summarize([s.extra["tasks"] for s in samples])  # type: ignore[misc]
    result = measure.summarize(samples)
    for item in result["samples"]:  # type: ignore[union-attr]
        keys = ("run_s", "api_warmup_s", "failed_tasks", "deadline_exit_bug")
        item["extra"] = {key: item["extra"].get(key) for key in keys}  # type: ignore[union-attr]
    result.update(
        {
            "dag_run_s": measure.median(float(s.extra["run_s"]) for s in samples),  # type: ignore[arg-type]
            "api_warmup_s": measure.median(float(s.extra["api_warmup_s"]) for s in samples),  # type: ignore[arg-type]
            "tasks": timeline,
            "totals": _timeline_totals(timeline),
        }
    )
    return result


def run(cfg: Config) -> dict[str, object]:
    sandbox, snapshot = prepared_sandbox(cfg, "airflow")
    root = sandbox.root
    template, migrate = migrated_home(root, sandbox)
    samples: dict[str, list[measure.Sample]] = {"airflow_dags_test": [], "dbt_build": []}
    invocation = dbt_runs.DbtInvocation(dbt_runs.run_vars(iso(ONE_DAY)))
    for rep in range(cfg.reps):
        print(f"  airflow dags test, repetition {rep + 1}/{cfg.reps} ...", flush=True)
        sandbox.restore(snapshot)
        samples["airflow_dags_test"].append(dags_test(template, sandbox, ONE_DAY, root / "runs" / f"airflow-{rep}"))
        sandbox.restore(snapshot)
        samples["dbt_build"].append(dbt_runs.build(invocation, sandbox.env(), root / "runs" / f"dbt-{rep}"))
    airflow = summarize_dags_test(samples["airflow_dags_test"])
    dbt = measure.summarize(samples["dbt_build"])
    dbt["phases"] = dbt_runs.phase_medians(samples["dbt_build"])
    return {
        "rows": cfg.airflow_rows,
        "date": iso(ONE_DAY),
        "airflow_dags_test": airflow,
        "dbt_build": dbt,
        "db_migrate_s": migrate.wall_s,
        "ratios": {
            "airflow_over_dbt_wall": airflow["wall_s"] / dbt["wall_s"],  # type: ignore[operator]
            "dag_run_over_dbt_wall": airflow["dag_run_s"] / dbt["wall_s"],  # type: ignore[operator]
            # The target's measure: the DAG run's tasks, first start to last end, less `dags test`'s
            # one-off in-process API start (a scheduled run's tasks use the running API server).
            "dag_run_net_over_dbt_wall": (airflow["dag_run_s"] - airflow["api_warmup_s"]) / dbt["wall_s"],  # type: ignore[operator]
            "airflow_over_dbt_cpu": airflow["cpu_s"] / dbt["cpu_s"],  # type: ignore[operator]
        },
    }


# --------------------------------------------------------------------------------------------------
# Optional: a real scheduler backfilling N dates


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _airflow_pids(home: Path) -> list[int]:
    pids = []
    for pid_file in (home / "run").glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pids.append(int(pid_file.read_text().strip()))
    return pids


def _make(args: list[str], env: dict[str, str], log: Path, home: Path | None = None) -> measure.Sample:
    roots = (lambda: _airflow_pids(home)) if home else None
    return measure.run(["make", "-s", *args], log_path=log, cwd=REPO_ROOT, env=env, timeout=3600, extra_roots=roots)


def run_backfill(cfg: Config) -> dict[str, object]:
    days = days_from(date(2024, 2, 1), cfg.backfill_days)
    sandbox = Sandbox.create(cfg.work_dir / "backfill", cfg.work_dir)
    sandbox.link(days, cfg.airflow_rows)
    home = sandbox.root / "airflow_home"
    env = base_env()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PIPELINE_DATA_DIR": str(sandbox.data_dir),
            "DUCKDB_PATH": str(sandbox.warehouse),
            "PIPELINE_MODE": "production",
            "PIPELINE_SCHEDULE_END_DATE": iso(days[-1]),
            "PIPELINE_RETRY_DELAY_SECONDS": "2",
            "AIRFLOW_API_PORT": str(_free_port()),
            "AIRFLOW_WORKER_LOG_PORT": str(_free_port()),
            "AIRFLOW_TRIGGER_LOG_PORT": str(_free_port()),
            "AIRFLOW__COSMOS__CACHE_DIR": str(sandbox.root / "cosmos-cache"),
        }
    )
    logs = sandbox.root / "logs"
    try:
        started = _make(["airflow"], env, logs / "airflow-start.log")
        backfill = _make(
            ["backfill", f"START={iso(days[0])}", f"END={iso(days[-1])}", "REPROCESS=completed"],
            env,
            logs / "backfill.log",
            home,
        )
    finally:
        stopped = _make(["airflow-stop"], env, logs / "airflow-stop.log")
    airflow_warehouse = sandbox.snapshot("after_backfill")
    # The same dates with plain dbt: one invocation per date, then one ranged invocation.
    sandbox.reset_warehouse()
    per_date = [
        dbt_runs.build(dbt_runs.DbtInvocation(dbt_runs.run_vars(iso(day))), sandbox.env(), logs / f"dbt-{iso(day)}")
        for day in days
    ]
    sandbox.reset_warehouse()
    ranged = dbt_runs.build(
        dbt_runs.DbtInvocation(dbt_runs.range_vars(iso(days[0]), iso(days[-1]))), sandbox.env(), logs / "dbt-range"
    )
    sequential_s = sum(sample.wall_s for sample in per_date)
    return {
        "dates": [iso(days[0]), iso(days[-1])],
        "rows_per_day": cfg.airflow_rows,
        "max_active_runs": int(os.environ.get("MAX_ACTIVE_RUNS", 3)),
        "airflow_start_s": started.wall_s,
        "backfill_s": backfill.wall_s,
        "backfill_peak_tree_rss_mb": backfill.peak_tree_rss_mb,
        "airflow_stop_s": stopped.wall_s,
        "dbt_per_date_total_s": sequential_s,
        "dbt_per_date_max_rss_mb": max(sample.max_rss_mb for sample in per_date),
        "dbt_ranged_s": ranged.wall_s,
        "dbt_ranged_max_rss_mb": ranged.max_rss_mb,
        "backfill_over_dbt_per_date": backfill.wall_s / sequential_s,
        "backfill_over_dbt_ranged": backfill.wall_s / ranged.wall_s,
        "warehouse_after_backfill_mb": airflow_warehouse.stat().st_size / 2**20,
        "backfill_output_tail": (logs / "backfill.log").read_text(errors="replace")[-600:],
    }
