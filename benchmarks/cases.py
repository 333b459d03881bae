"""The benchmarks. Each takes the Config and returns a JSON-able dict for results/latest.json.

Every contender's repetitions start from the same saved warehouse and the contenders take turns.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from benchmarks import harness as h
from benchmarks.cluster import cluster

DAG_ID = "end_to_end_data_pipeline"
SCRIPTS = {
    "bare_duckdb": h.BENCH_DIR / "bare_duckdb.py",
    "pandas": h.BENCH_DIR / "lab_pandas.py",
    "io_floor": h.BENCH_DIR / "io_floor.py",  # the I/O limit: its output is every parsed row, not compared
}
CLEANERS = ("bare_duckdb", "pandas")


def _same_exports(reference: list[list[Path]], candidate: list[list[Path]]) -> dict[str, Any]:
    clean, features = (h.same_rows(ref, cand) for ref, cand in zip(reference, candidate, strict=True))
    return {"equal": clean["equal"] and features["equal"], "clean": clean, "features": features}


def one_day(cfg: h.Config) -> dict[str, object]:
    """One day at several sizes: `dbt build` vs the bare DuckDB floor vs the lab's pandas."""
    return {"date": h.iso(h.ONE_DAY), "sizes": {str(rows): _one_day_at(cfg, rows) for rows in cfg.sizes}}


def _one_day_at(cfg: h.Config, rows: int) -> dict[str, object]:
    print(f"  one day, {rows:,} rows ...", flush=True)
    box = h.Sandbox.create(cfg.work_dir, f"one_day/rows={rows}")
    box.link([h.BASE_DAY], h.BASE_ROWS)
    box.link([h.ONE_DAY], rows)
    runs = box.root / "runs"
    # Creates the tables (the timed day is incremental) and the partial-parse file the DAG's builds start from.
    h.dbt_build(None, h.dag_env(box, h.BASE_DAY), runs / "base")
    base = box.save("base")

    def dbt(rep: int) -> h.Sample:  # as the DAG runs it: the date in the environment, a partial parse
        box.restore(base)
        return h.dbt_build(None, h.dag_env(box, h.ONE_DAY), runs / f"dbt-{rep}", parsed=runs / "base" / "target")

    def dbt_vars(rep: int) -> h.Sample:  # by hand: `dbt build --vars '{run_date: D}'`, a full parse
        box.restore(base)
        return h.dbt_build(h.run_vars(h.ONE_DAY), box.env(), runs / f"dbt_vars-{rep}")

    def contender(name: str) -> Any:
        args = ["--csv", str(box.raw_file(h.ONE_DAY)), "--date", h.iso(h.ONE_DAY), "--out", str(box.root / name)]
        return lambda rep: h.script([str(SCRIPTS[name]), *args], runs / f"{name}-{rep}.log")

    for name in SCRIPTS:
        contender(name)("warmup")  # page cache, imports
    samples = h.alternate(cfg.reps, {"dbt": dbt, "dbt_vars": dbt_vars, **{name: contender(name) for name in SCRIPTS}})
    check = _same_exports(box.exports([h.ONE_DAY]), box.exports([h.ONE_DAY], box.root / "bare_duckdb"))
    counts = {"dbt": [check["clean"]["rows_reference"], check["features"]["rows_reference"]]}
    counts |= {
        name: [samples[name][-1].extra["clean_rows"], samples[name][-1].extra["feature_rows"]] for name in CLEANERS
    }
    # The rows set aside, by reason: the warehouse's classification against the bare script's.
    rejected = {"dbt": _rejected_by_reason(box, h.ONE_DAY), "bare_duckdb": samples["bare_duckdb"][-1].extra["rejected"]}
    same = check["equal"] and counts["dbt"] == counts["bare_duckdb"] == counts["pandas"]
    same = same and rejected["dbt"] == rejected["bare_duckdb"]
    result: dict[str, object] = {"dbt": h.dbt_stats(samples["dbt"]), "dbt_vars": h.dbt_stats(samples["dbt_vars"])}
    result |= {name: h.stats(samples[name]) for name in SCRIPTS}
    return result | {"rows_out": counts, "rejected": rejected, "bare_equals_dbt": check, "same_output": same}


def _rejected_by_reason(box: h.Sandbox, day: date) -> dict[str, int]:
    query = (
        "select row_status, count(*) from int_transactions__classified "
        "where partition_date = ? and row_status <> 'kept' group by all order by all"
    )
    with duckdb.connect(str(box.warehouse), read_only=True) as con:
        return {str(status): int(rows) for status, rows in con.execute(query, [day]).fetchall()}


def incremental(cfg: h.Config) -> dict[str, object]:
    """Flatness: a day's `dbt build` on N days of history vs day 1 on an empty warehouse (and day 2)."""
    days = h.days_from(h.HISTORY_START, cfg.history_days + 1)
    box = h.Sandbox.create(cfg.work_dir, "incremental")
    print(f"  {len(days)} days of {cfg.history_rows:,} rows ...", flush=True)
    box.link(days, cfg.history_rows)
    runs = box.root / "runs"
    h.dbt_build(h.run_vars(days[0]), box.env(), runs / "warmup")
    after_day1 = box.save("after_day1")
    history = h.dbt_build(h.run_vars(days[1], days[-2]), box.env(), runs / "history")  # one ranged invocation
    after_history = box.save("after_history")

    def day(index: int, saved: Path | None) -> Any:
        def run(rep: int) -> h.Sample:
            box.restore(saved)
            return h.dbt_build(h.run_vars(days[index]), box.env(), runs / f"day{index + 1}-{rep}")

        return run

    samples = h.alternate(cfg.reps, {"day1": day(0, None), "day2": day(1, after_day1), "dayN": day(-1, after_history)})
    history_rows = cfg.history_rows * (len(days) - 2)
    return {
        "history_days": cfg.history_days,
        "rows_per_day": cfg.history_rows,
        "history_load": h.dbt_stats([history], rows=history_rows, dates=[h.iso(days[1]), h.iso(days[-2])]),
        "warehouse_mb": after_history.stat().st_size / 2**20,
        **{name: h.dbt_stats(items) for name, items in samples.items()},
    }


EMPTY_DAG = """from datetime import datetime

from airflow.sdk import DAG

with DAG(dag_id="empty_dag", schedule=None, start_date=datetime(2024, 1, 1)):
    pass
"""


def dag_parse(cfg: h.Config) -> dict[str, object]:
    """`DagBag` of dags/ vs of one empty DAG, each in a fresh process; subprocesses started are recorded."""
    root = h.fresh_dir(cfg.work_dir / "dag_parse")
    (root / "empty").mkdir()
    (root / "empty" / "empty_dag.py").write_text(EMPTY_DAG)

    def probe(folder: Path, name: str) -> Any:
        env = h.base_env(AIRFLOW_HOME=str(root / "home"), AIRFLOW__CORE__DAGS_FOLDER=str(folder))
        env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        return lambda rep: h.script(
            ["-m", "benchmarks.probes", "dag_parse", str(folder)], root / f"{name}-{rep}.log", env
        )

    probe(root / "empty", "empty")("warmup")  # writes airflow.cfg once
    samples = h.alternate(
        cfg.reps, {"dags": probe(h.REPO_ROOT / "dags", "dags"), "empty": probe(root / "empty", "empty")}
    )
    result = {}
    for name, items in samples.items():
        last = items[-1].extra
        parse = {key: h.median(float(s.extra[key]) for s in items) for key in ("parse_s", "import_s")}
        result[name] = h.stats(items, **parse, **{key: last[key] for key in last if key not in parse})
    return result


# --------------------------------------------------------------------------------------------------
# Airflow


def _airflow_env(box: h.Sandbox, home: Path, **extra: str) -> dict[str, str]:
    """The environment `make airflow` uses (ecompipe.local_airflow.airflow_env), pointed at the sandbox."""
    from ecompipe import local_airflow

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(box.env(AIRFLOW_HOME=str(home), PIPELINE_MODE="production", PIPELINE_RETRY_DELAY_SECONDS="1"))
    os.environ.update(extra)
    try:
        return local_airflow.airflow_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)


TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)")
TASK = re.compile(r"\[DAG TEST\] (starting|end task) task_id=(\S+)")
STATE = re.compile(r"Task instance state updated.*new_state=(\w+)")


def dag_run_timeline(output: str) -> dict[str, Any]:
    """The tasks of one `airflow dags test` output (each task's last try): the DAG run's span, failures.

    ``api_warmup_s``: `dags test` builds its execution API in-process when the first task starts (a
    scheduled run's tasks use the running API server): the first task's wait for it beyond the others'.
    """
    tasks: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in output.splitlines():
        stamp = TIMESTAMP.match(line)
        if not stamp:
            continue
        ts = datetime.fromisoformat(stamp[1].replace("Z", "+00:00")).timestamp()
        task = TASK.search(line)
        if task and task[1] == "starting":
            current = tasks[task[2]] = {"start": ts}
        elif current is None:
            continue
        elif task:
            current["end"] = ts
        elif state := STATE.search(line):
            current["state"] = state[1]
        elif "Task started" in line and "execution_api" in line:
            current.setdefault("api", ts)
    ended = {task_id: task["end"] - task["start"] for task_id, task in tasks.items() if "end" in task}
    delays = [task["api"] - task["start"] for task in tasks.values() if "api" in task]
    return {
        "tasks": len(tasks),
        "failed": sorted(i for i, task in tasks.items() if "end" not in task or task.get("state") != "success"),
        "dag_run_s": max(t.get("end", 0) for t in tasks.values()) - min(t["start"] for t in tasks.values()),
        "api_warmup_s": max(delays[0] - h.median(delays[1:]), 0.0) if len(delays) > 1 else 0.0,
        "dbt_tasks_s": sum(seconds for task_id, seconds in ended.items() if task_id.startswith("dbt.")),
        "other_tasks_s": sum(seconds for task_id, seconds in ended.items() if not task_id.startswith("dbt.")),
    }


def airflow(cfg: h.Config) -> dict[str, object]:
    """One date through the daily DAG (`airflow dags test`) vs a plain `dbt build` of it, same state."""
    box = h.Sandbox.create(cfg.work_dir, "airflow")
    box.link([h.BASE_DAY], h.BASE_ROWS)
    box.link([h.ONE_DAY], cfg.airflow_rows)
    runs = box.root / "runs"
    h.dbt_build(h.run_vars(h.BASE_DAY), box.env(), runs / "base")
    base = box.save("base")
    template = h.fresh_dir(box.root / "home-template")
    h.measure([h.AIRFLOW, "db", "migrate"], box.root / "db-migrate.log", _airflow_env(box, template), timeout=600)

    def dags_test(rep: int) -> h.Sample:
        box.restore(base)
        home = h.fresh_dir(runs / f"airflow-{rep}")
        shutil.copyfile(template / "airflow.db", home / "airflow.db")
        env = _airflow_env(box, home, AIRFLOW__COSMOS__CACHE_DIR=str(home / "cosmos-cache"))
        conf = json.dumps({"run_date": h.iso(h.ONE_DAY)})  # the date whatever the timetable makes of a logical date
        command = [h.AIRFLOW, "dags", "test", "--conf", conf, DAG_ID, h.iso(h.ONE_DAY)]
        sample = h.measure(command, home / "dags-test.log", env, timeout=1800)
        sample.extra = dag_run_timeline((home / "dags-test.log").read_text(errors="replace"))
        if sample.extra["failed"] or not sample.extra["tasks"]:
            raise h.CommandFailed(f"`airflow dags test` failed ({sample.extra['failed']}): {home / 'dags-test.log'}")
        return sample

    def dbt(rep: int) -> h.Sample:
        box.restore(base)
        return h.dbt_build(h.run_vars(h.ONE_DAY), box.env(), runs / f"dbt-{rep}")

    samples = h.alternate(cfg.reps, {"dags_test": dags_test, "dbt_build": dbt})
    airflow_runs = samples["dags_test"]
    timeline = {key: h.median(s.extra[key] for s in airflow_runs) for key in airflow_runs[0].extra if key != "failed"}
    return {
        "rows": cfg.airflow_rows,
        "date": h.iso(h.ONE_DAY),
        "dags_test": h.stats(airflow_runs, **timeline),
        "dbt_build": h.dbt_stats(samples["dbt_build"]),
    }


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def scheduler_run(box: h.Sandbox, mode: str, days: list[date], number: int) -> dict[str, object]:
    """A real Airflow (scheduler, dag-processor, triggerer, api-server) started in the sandbox, running
    the daily DAG's backfill (``number``: max active runs) or the bulk DAG (``number``: chunk days), stopped.
    Wall and CPU seconds of the whole process tree, start to stop; ``start_s``/``run_s``/``stop_s`` inside."""
    home = box.root / "airflow_home"
    ports = {name: _free_port() for name in ("AIRFLOW_API_PORT", "AIRFLOW_WORKER_LOG_PORT", "AIRFLOW_TRIGGER_LOG_PORT")}
    env = _airflow_env(
        box,
        home,
        PIPELINE_SCHEDULE_END_DATE=h.iso(days[-1]),
        **ports,
        AIRFLOW__COSMOS__CACHE_DIR=str(box.root / "cosmos-cache"),
    )
    print(f"  Airflow, {mode} DAG over {h.iso(days[0])} .. {h.iso(days[-1])} ({len(days)} days) ...", flush=True)
    command = ["-m", "benchmarks.probes", "airflow", mode, h.iso(days[0]), h.iso(days[-1]), str(number)]
    try:
        sample = h.script(command, box.root / "airflow.log", env, timeout=6 * 3600)
    finally:  # a safety net, should the driver have been killed: stop what it started
        stop = [h.PYTHON, "-c", "from ecompipe import local_airflow; local_airflow.stop()"]
        subprocess.run(stop, env=env, cwd=h.REPO_ROOT, capture_output=True, timeout=120, check=False)
    sample.extra.pop("outcome")
    return h.stats([sample], days=len(days), **sample.extra)


def _per_date_in_steady_state(metadata_db: Path) -> float | None:
    """Seconds between one date's run ending and the next one's, first to last: a backfill's cost per
    extra date, without its fixed head (the first run's checks) and tail (the last run's model reports)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(metadata_db)) as con:
        rows = con.execute("select end_date from dag_run where dag_id = ? order by end_date", [DAG_ID])
        ends = [datetime.fromisoformat(row[0]) for row in rows if row[0]]
    return round((ends[-1] - ends[0]).total_seconds() / (len(ends) - 1), 2) if len(ends) > 1 else None


def backfill(cfg: h.Config) -> dict[str, object]:
    """Opt-in (BENCH_BACKFILL=1): a real scheduler backfilling N dates vs N plain `dbt build`s and one ranged."""
    days = h.days_from(date(2024, 2, 1), cfg.backfill_days)
    box = h.Sandbox.create(cfg.work_dir, "backfill")
    box.link(days, cfg.airflow_rows)
    result = {"rows_per_day": cfg.airflow_rows, "max_active_runs": cfg.max_active_runs}
    result["airflow"] = scheduler_run(box, "daily", days, cfg.max_active_runs)
    box.restore(None)
    per_date = [h.dbt_build(h.run_vars(day), box.env(), box.root / "runs" / h.iso(day)) for day in days]
    box.restore(None)
    ranged = h.dbt_build(h.run_vars(days[0], days[-1]), box.env(), box.root / "runs" / "ranged")
    total = {key: sum(getattr(s, key) for s in per_date) for key in ("wall_s", "cpu_s")}
    result["airflow"]["per_date_s"] = _per_date_in_steady_state(box.root / "airflow_home" / "airflow.db")
    return result | {
        "dbt_per_date": total | {"max_rss_mb": max(s.max_rss_mb for s in per_date)},
        "dbt_ranged": h.stats([ranged]),
    }


def generator(cfg: h.Config) -> dict[str, object]:
    """The project's generator vs DuckDB generating an equivalent day in SQL and COPY-ing it to CSV."""
    root = h.fresh_dir(cfg.work_dir / "generator")

    def probe(impl: str) -> Any:
        command = ["-m", "benchmarks.probes", "generator", impl, str(cfg.generator_rows), str(root)]
        return lambda rep: h.script(command, root / f"{impl}-{rep}.log")

    samples = h.alternate(cfg.reps, {"ecompipe": probe("ecompipe"), "duckdb": probe("duckdb")})
    result: dict[str, object] = {"rows": cfg.generator_rows}
    for name, items in samples.items():
        seconds = h.median(float(s.extra["seconds"]) for s in items)
        result[name] = h.stats(
            items,
            seconds=seconds,
            rows_per_s=cfg.generator_rows / seconds,
            bytes=items[-1].extra["bytes"],
            rows_written=items[-1].extra["rows"],
        )
    return result


def year(cfg: h.Config) -> dict[str, object]:
    """Opt-in (`--only year`, ~1 h at full size): the year through the bulk DAG vs the daily DAG's
    backfill (its first days, extrapolated) vs the bare DuckDB floor over every date; outputs checked."""
    days = h.days_from(h.HISTORY_START, cfg.year_days)
    perday_days = days[: cfg.year_perday_days]
    print(f"  raw partitions: {len(days)} days x {cfg.year_rows:,} rows (generated once, cached) ...", flush=True)
    raw = h.ensure_raw(cfg.work_dir, days, cfg.year_rows)
    root = h.fresh_dir(cfg.work_dir / "year")
    result: dict[str, Any] = {"days": len(days), "rows_per_day": cfg.year_rows, "first": h.iso(days[0])}
    result |= {"bulk": {}, "checks": {}}
    boxes = {}
    for chunk in cfg.year_chunk_days:
        boxes[chunk] = h.Sandbox.create(cfg.work_dir, f"year/bulk-{chunk}")
        boxes[chunk].link(days, cfg.year_rows)
        result["bulk"][str(chunk)] = scheduler_run(boxes[chunk], "bulk", days, chunk)
    perday = h.Sandbox.create(cfg.work_dir, "year/perday")
    perday.link(perday_days, cfg.year_rows)
    result["perday"] = item = scheduler_run(perday, "daily", perday_days, cfg.max_active_runs)
    scale = len(days) / len(perday_days)
    result["perday_extrapolated"] = {
        "days": len(days),
        "wall_s": item["start_s"] + item["stop_s"] + item["run_s"] * scale,  # type: ignore[operator]
        "cpu_s": item["cpu_s"] + item["run_cpu_s"] * (scale - 1),  # type: ignore[operator]
    }
    print(f"  bare DuckDB over {len(days)} days ...", flush=True)
    command = ["-m", "benchmarks.probes", "bare_days", str(raw), h.iso(days[0]), str(len(days)), str(root / "bare")]
    bare = h.script(command, root / "bare.log", timeout=6 * 3600)
    result["bare"] = h.stats([bare], **bare.extra)
    for chunk, box in boxes.items():
        checks = result["checks"]
        checks[f"bulk ({chunk}-day chunks) = per-day, exports of {len(perday_days)} dates"] = _same_exports(
            box.exports(perday_days), perday.exports(perday_days)
        )
        checks[f"bare DuckDB = bulk ({chunk}-day chunks), exports of {len(days)} dates"] = _same_exports(
            box.exports(days), box.exports(days, root / "bare")
        )
    shutil.rmtree(root / "bare")
    for box in [*boxes.values(), perday]:  # gigabytes at full size; the raw cache and the logs stay
        box.restore(None)
        shutil.rmtree(box.data_dir)
    return result


BENCHMARKS = {
    "one_day": one_day,
    "incremental": incremental,
    "dag_parse": dag_parse,
    "airflow": airflow,
    "generator": generator,
    "backfill": backfill,  # opt-in: BENCH_BACKFILL=1, --backfill or --only backfill
    "year": year,  # opt-in: --only year
    "cluster": cluster,  # opt-in: --only cluster (benchmarks/cluster.py)
}
OPT_IN = ("backfill", "year", "cluster")
