"""The bulk backfill: a long date range in chunks, one dbt invocation per chunk.

A per-day Airflow run pays scheduler, task start-up and dbt parsing for every day; the engine needs
well under a second per day. The bulk DAG splits [start, end] into chunks and runs the whole dbt
graph once per chunk with the models' ``start_date``/``end_date`` range vars, which replace exactly
the chunk's dates (the same incremental logic as the daily runs, so the result is identical).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta

from ecompipe.core.dates import date_range, parse_date
from ecompipe.pipeline.generator import generate_partition
from ecompipe.pipeline.quality import write_reports
from ecompipe.pipeline.run_registry import RunRecord, record_runs
from ecompipe.settings import DBT_PROJECT_DIR, dbt_executable, logs_dir, pipeline_env, raw_dir, raw_partition_path

log = logging.getLogger(__name__)
MAX_DAYS = 3660

# Lines of dbt's output that say which date is wrong and why (raised by the project's macros).
_PROBLEM = re.compile(r"(Raw partition missing.*|Refusing to load:.*|Invalid var .*|Failure in test .*)")


class ChunkFailedError(RuntimeError):
    """A chunk's dbt build failed; the message names the dates and the problem."""


def plan_chunks(start: str, end: str, chunk_days: int) -> list[dict[str, str]]:
    """[start, end] split into consecutive chunks of at most ``chunk_days`` days."""
    first, last = parse_date(start, "start_date"), parse_date(end, "end_date")
    if last < first:
        raise ValueError(f"end_date {last} is before start_date {first}")
    if not 1 <= int(chunk_days) <= 366:
        raise ValueError(f"chunk_days must be between 1 and 366, got {chunk_days}")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValueError(f"{(last - first).days + 1} days requested; at most {MAX_DAYS} per bulk run")
    chunks = []
    chunk_start = first
    while chunk_start <= last:
        chunk_end = min(chunk_start + timedelta(days=int(chunk_days) - 1), last)
        chunks.append({"start_date": chunk_start.isoformat(), "end_date": chunk_end.isoformat()})
        chunk_start = chunk_end + timedelta(days=1)
    return chunks


def ensure_partitions(start: str, end: str, generate_if_missing: bool) -> list[str]:
    """Generate the chunk's missing raw partitions in demo mode; return the dates generated."""
    generated = []
    for day in date_range(start, end):
        if not raw_partition_path(day.isoformat()).exists() and generate_if_missing:
            generate_partition(day, raw_dir())
            generated.append(day.isoformat())
    return generated


def dbt_build_range(start: str, end: str) -> str:
    """``dbt build`` for [start, end] in a child process; returns its output, raises naming the problem."""
    first, last = parse_date(start, "start_date").isoformat(), parse_date(end, "end_date").isoformat()
    log_dir = logs_dir() / "dbt" / f"bulk_{first}_{last}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dbt_target_") as target:
        # A private target dir: the project's own target/ holds the manifest the DAGs are parsed from.
        command = [
            str(dbt_executable()),  # on the cluster profile: the per-date lock and conflict retries
            "build",
            "--vars",
            json.dumps({"start_date": first, "end_date": last}),
            # One node at a time: a chunk's nodes are each long and keep both cores busy, and two at
            # once made a year's chunks ~20 % slower (docs/performance.md); a day's build runs two.
            "--threads",
            "1",
            "--target-path",
            target,
            "--log-path",
            str(log_dir),
        ]
        env = {**os.environ, **pipeline_env(), "DO_NOT_TRACK": "1"}
        completed = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, check=False)
    output = completed.stdout + completed.stderr
    log.info("dbt build %s..%s:\n%s", first, last, output[-20_000:])
    if completed.returncode != 0:
        problems = sorted({match.group(1).strip() for match in _PROBLEM.finditer(output)})
        detail = "; ".join(problems) if problems else output.strip().splitlines()[-1]
        raise ChunkFailedError(f"Chunk {first}..{last} failed, nothing of it was published: {detail} (log: {log_dir})")
    return output


def run_chunk(chunk: dict[str, str], generate_if_missing: bool, run_id: str = "manual") -> dict[str, object]:
    """Partitions, one dbt build, then per date: quality report and run-registry record."""
    start, end = chunk["start_date"], chunk["end_date"]
    started = datetime.now(UTC).isoformat()
    generated = ensure_partitions(start, end, generate_if_missing)
    days = [day.isoformat() for day in date_range(start, end)]
    try:
        dbt_build_range(start, end)
    except ChunkFailedError:
        ended = datetime.now(UTC).isoformat()
        record_runs([RunRecord(day, run_id, "bulk", started, ended, "failed") for day in days])
        raise
    write_reports(days)
    ended = datetime.now(UTC).isoformat()
    record_runs([RunRecord(day, run_id, "bulk", started, ended, "success") for day in days])
    return {"start_date": start, "end_date": end, "generated": generated}
