"""The daily DAG's deadline (Airflow 3's deadline alerts, which replaced SLAs).

A scheduled run must finish within ``PIPELINE_DEADLINE_MINUTES`` (default 120) after it is due,
i.e. partition D (due at D+1 02:00 UTC) must be loaded by D+1 04:00. On a miss the scheduler queues
``record_deadline_miss`` (an ``AsyncCallback``) to the triggerer: it logs the miss and records it in
the run registry (``pipeline_runs.deadline_missed_at`` and the JSON lines file).

Only scheduled runs are held to it. A backfill's interval ended long ago, so every one of them would
"miss"; a manual run starts whenever someone asks. Their misses are logged as not
applicable and not recorded. Reruns (``make rerun``, reprocessing backfills) are manual runs without a
logical date: Airflow creates no deadline for them at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from ecompipe.airflow.timetable import DAY, RUN_LAG
from ecompipe.core.dates import parse_date
from ecompipe.settings import get_settings

log = logging.getLogger(__name__)

HELD_RUN_TYPES = ("scheduled",)


def deadline_after_interval() -> timedelta:
    """``PIPELINE_DEADLINE_MINUTES`` (a number > 0, fractions allowed) after the run is due."""
    return timedelta(minutes=get_settings().pipeline_deadline_minutes)


def deadline_interval_after_logical_date() -> timedelta:
    """The ``DeadlineAlert`` interval, counted from the run's logical date.

    Airflow 3.3 has no "run due" deadline reference. This DAG's timetable (DailyPartitionTimetable)
    gives partition D the logical date D 00:00 and runs it at D+1 00:00 + RUN_LAG, so
    logical date + 1 day + RUN_LAG + N = due time + N.
    """
    return DAY + RUN_LAG + deadline_after_interval()


def under_dags_test(argv: list[str] | None = None) -> bool:
    """Is this process ``airflow dags test``? There the DAG gets no deadline: Airflow 3.3.2's
    ``dag.test()`` crashes after a successful run of a DAG with one (apache/airflow#73428), and a test
    run has no schedule to keep anyway."""
    args = sys.argv[1:] if argv is None else argv
    return args[:2] == ["dags", "test"]


def run_date_of(dag_run: dict[str, Any]) -> str:
    """The partition date a run processes: param ``run_date`` if given, else its logical date."""
    conf = dag_run.get("conf") or {}
    value = conf.get("run_date") or str(dag_run.get("logical_date") or dag_run.get("data_interval_start") or "")[:10]
    return parse_date(value, "run_date").isoformat()


def miss_record(context: dict[str, Any], missed_at: datetime) -> dict[str, Any]:
    """The registry record of a missed deadline, from the callback's context."""
    dag_run = context["dag_run"]
    return {
        "run_date": run_date_of(dag_run),
        "run_id": str(dag_run["dag_run_id"]),
        "run_type": str(dag_run.get("run_type")),
        "started_at": dag_run.get("start_date"),
        "ended_at": dag_run.get("end_date"),
        "status": str(dag_run.get("state") or "running"),
        "deadline_time": str(context["deadline"]["deadline_time"]),
        "deadline_missed_at": missed_at.isoformat(),
    }


async def record_deadline_miss(context: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """Deadline-miss callback (runs in the triggerer): log the miss, record it in the run registry.

    Returns a short text: Airflow stores it as the callback's output, a string column (a dict there
    makes the triggerer crash on SQLite).
    """
    if not context or "dag_run" not in context:
        raise ValueError(f"Deadline callback called without a dag_run in its context ({kwargs}): nothing to record.")
    dag_run = context["dag_run"]
    if dag_run.get("run_type") not in HELD_RUN_TYPES:
        log.info(
            "Deadline passed for %s run %s of %s: deadlines apply to scheduled runs only, not recorded.",
            dag_run.get("run_type"),
            dag_run.get("dag_run_id"),
            dag_run.get("dag_id"),
        )
        return f"not applicable to {dag_run.get('run_type')} run {dag_run.get('dag_run_id')}: not recorded"
    record = miss_record(context, datetime.now(UTC))
    log.warning(
        "DEADLINE MISSED: %s run %s (partition %s, data interval ending %s) was not finished by %s; state %s.",
        dag_run.get("dag_id"),
        record["run_id"],
        record["run_date"],
        dag_run.get("data_interval_end"),
        record["deadline_time"],
        record["status"],
    )
    stored = await _write_registry(record)
    log.info("Run registry: deadline miss recorded: %s", stored)
    return f"recorded: {record['run_date']} {record['run_id']} missed its deadline {record['deadline_time']}"


async def _write_registry(record: dict[str, Any]) -> dict[str, Any]:
    """``python -m ecompipe.pipeline.run_registry deadline-missed``: a short-lived process, which waits for the
    warehouse's write lock (DuckDB allows one writing process) while the triggerer's loop runs on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ecompipe.pipeline.run_registry",
        "deadline-missed",
        json.dumps(record),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"Recording the missed deadline of {record['run_id']} failed: {err.decode(errors='replace')[-2000:]}"
        )
    return json.loads(out.decode().strip().splitlines()[-1])
