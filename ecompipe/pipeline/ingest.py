"""The DAG's small run-time helpers: make sure a date's raw partition is there, and report on a date."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC

import duckdb

from ecompipe.core.dates import parse_date
from ecompipe.pipeline.generator import generate_partition
from ecompipe.settings import get_settings, raw_dir, raw_partition_path

log = logging.getLogger(__name__)


class MissingPartitionError(FileNotFoundError):
    """The raw partition of a date is not there and this run may not generate it."""


def demo_mode_enabled(override: object = None) -> bool:
    """Demo mode (generate missing partitions) from a DAG param, else ``PIPELINE_MODE=demo``."""
    if override is not None and override != "":
        return str(override).lower() in ("1", "true", "yes", "on")
    return get_settings().pipeline_mode == "demo"


def partition_arrived(run_date: str, generate_if_missing: bool) -> bool:
    """The sensor's check: is the date's raw partition there? Demo mode never waits (ingestion generates)."""
    day = parse_date(run_date, "run_date").isoformat()
    path = raw_partition_path(day)
    if generate_if_missing:
        log.info("Demo mode: not waiting for %s (ingest_raw_partition generates it if missing)", path)
        return True
    if path.is_file():
        log.info("Raw partition for %s has arrived: %s", day, path)
        return True
    log.info("Waiting for the raw partition of %s: %s is not there yet", day, path)
    return False


def partition_timeout_message(run_date: str, waited_seconds: float) -> str:
    """What a timed-out wait says: the date, the file, what to do."""
    day = parse_date(run_date, "run_date").isoformat()
    return (
        f"Raw partition for {day} did not arrive within {waited_seconds:.0f} s: {raw_partition_path(day)} is missing. "
        f"Deliver the file, then clear this task (or `make rerun DATE={day}`); to wait longer set "
        "PIPELINE_SENSOR_TIMEOUT_SECONDS (or trigger with param sensor_timeout_seconds); "
        "in demo mode (PIPELINE_MODE=demo, or param generate_if_missing=true) the partition is generated."
    )


def ensure_raw_partition(
    run_date: str, generate_if_missing: bool, rows: int = 1000, force: bool = False
) -> dict[str, object]:
    """Check that the date's raw partition exists (demo mode: generate it), then skip the run when
    the file is byte-identical to the one already processed successfully, unless ``force``."""
    from airflow.exceptions import AirflowSkipException

    from ecompipe.pipeline.raw_fingerprints import fingerprint, recorded_sha256

    day = parse_date(run_date, "run_date").isoformat()
    path = raw_partition_path(day)
    generated = False
    if not path.exists():
        if not generate_if_missing:
            raise MissingPartitionError(
                f"Raw partition for {day} not found: {path}. Deliver the file, or run in demo mode "
                f"(PIPELINE_MODE=demo, or trigger with param generate_if_missing=true) to generate it."
            )
        result = generate_partition(day, raw_dir(), rows=rows)
        generated = True
        log.info("Demo mode: generated %s rows for %s at %s", result["num_transactions"], day, path)
    current = fingerprint(day)
    assert current is not None
    log.info("Raw partition for %s: %s (%d bytes, sha256 %s)", day, path, current.size_bytes, current.sha256)
    if not force and recorded_sha256([day]).get(day) == current.sha256:
        raise AirflowSkipException(
            f"Raw partition for {day} is byte-identical to the one already processed (sha256 {current.sha256[:12]}): "
            "nothing to do. Trigger with param force=true (or make rerun) to process it anyway."
        )
    return {"run_date": day, "path": str(path), "generated": generated, "sha256": current.sha256}


def reprocess_late_partitions(
    run_date: str, lookback_days: int, run_id: str, active: Callable[[str], bool] | None = None
) -> list[dict[str, object]]:
    """Load every previous date (up to ``lookback_days`` back) whose raw file is late: changed since it
    was loaded, or never loaded (its run gave up waiting, failed, or never happened). Dates whose own
    run is in flight (``active``) are left to it. For each: dbt for that date, its exports and quality
    report, a registry record (run_type says which case) with the row counts before and after."""
    from datetime import datetime

    from ecompipe.pipeline.bulk import ChunkFailedError, dbt_build_range
    from ecompipe.pipeline.quality import write_report
    from ecompipe.pipeline.raw_fingerprints import late_in_lookback
    from ecompipe.pipeline.run_registry import RunRecord, record_run

    day = parse_date(run_date, "run_date").isoformat()
    done = []
    for found in late_in_lookback(day, lookback_days):
        late = found.partition_date
        if active is not None and active(late):
            log.info("Late file of %s (%s) left to its own run, which is in flight", late, found.run_type)
            continue
        before = _kept_rows(late)
        started = datetime.now(UTC).isoformat()
        log.info("Late file of %s found (%s): loading it", late, found.run_type)
        try:
            dbt_build_range(late, late)
        except ChunkFailedError as exc:
            # A bad late file must not stop this run (nor the next ones): record it and go on.
            log.warning("Late file of %s could not be loaded, recorded as failed: %s", late, exc)
            status, summary = "failed", f"{found.run_type} by the run for {day} failed: {exc}"
        else:
            write_report(late)
            status = "success"
            summary = f"{found.run_type} by the run for {day}; kept rows before {before}, after {_kept_rows(late)}"
        ended = datetime.now(UTC).isoformat()
        record_run(
            RunRecord(late, f"{run_id}:late:{late}", found.run_type, started, ended, status, dbt_summary=summary)
        )
        done.append({"date": late, "run_type": found.run_type, "status": status, "kept_before": before})
    log.info("Late data: %s", done or f"no late file in the {lookback_days} day(s) before {day}")
    return done


def _kept_rows(day: str) -> int | None:
    from ecompipe.core.warehouse import connect_read_only

    try:
        with connect_read_only() as con:
            row = con.execute("select kept_rows from int_partitions__row_accounting where partition_date = ?", [day])
            found = row.fetchone()
    except (FileNotFoundError, duckdb.Error) as exc:  # no warehouse or table yet
        log.info("No row count for %s yet (%s)", day, exc)
        return None
    return int(found[0]) if found else None


def report_date(run_date: str) -> dict[str, object]:
    """Write the date's data-quality report and log its row accounting; fail if the date is not loaded.

    In this process: dbt runs in its own (Cosmos's subprocess invocation), so no connection here
    holds the file with dbt's settings."""
    from ecompipe.pipeline.quality import report_with_summary

    day = parse_date(run_date, "run_date").isoformat()
    result = report_with_summary(day)
    if not result["summary"]:
        raise RuntimeError(f"No rows for {day} in the warehouse after the dbt build: check the dbt task logs.")
    log.info("Summary for %s: %s", day, result["summary"])
    log.info("Data-quality report (%s): %s", result["quality_status"], result["quality_report"])
    return result


def _flatten_states(states: dict[str, object]) -> dict[str, str]:
    """``{run_id: {task_id: state}}`` (or already flat) -> ``{task_id: state}``."""
    flat: dict[str, str] = {}
    for key, value in states.items():
        if isinstance(value, dict):
            flat.update({str(k): str(v) for k, v in value.items()})
        else:
            flat[str(key)] = str(value)
    return flat


def record_run_outcome(run_date: str, context: dict[str, object]) -> dict[str, object]:
    """Last task of a daily run (trigger rule all_done): write the quality report and the registry
    record, then fail if anything upstream failed, so the run's state stays true."""
    from dataclasses import asdict
    from datetime import datetime

    from ecompipe.pipeline.run_registry import RunRecord, record_run

    day = parse_date(run_date, "run_date").isoformat()
    dag_run = context["dag_run"]
    task_instance = context["ti"]
    states = task_instance.get_task_states(  # type: ignore[attr-defined]
        dag_id=task_instance.dag_id,
        run_ids=[dag_run.run_id],  # type: ignore[attr-defined]
    )
    upstream_failed = sorted(
        task_id
        for task_id, state in _flatten_states(states).items()
        if task_id != task_instance.task_id and state in ("failed", "upstream_failed")  # type: ignore[attr-defined]
    )
    flat = _flatten_states(states)
    skipped = flat.get("ingest_raw_partition") == "skipped"
    status = "failed" if upstream_failed else ("skipped" if skipped else "success")
    summary: dict[str, object] = {}
    if status == "success":
        summary = report_date(day)
    record = record_run(
        RunRecord(
            run_date=day,
            run_id=str(getattr(dag_run, "run_id", "")),
            run_type=str(getattr(getattr(dag_run, "run_type", None), "value", None) or "manual"),
            started_at=str(getattr(dag_run, "start_date", "") or "") or None,
            ended_at=datetime.now(UTC).isoformat(),
            status=status,
        )
    )
    log.info("Run registry: %s", json.dumps(asdict(record)))
    if upstream_failed:
        raise RuntimeError(f"Run for {day} failed in {', '.join(sorted(upstream_failed))}; recorded as failed.")
    late = task_instance.xcom_pull(task_ids="reprocess_late_partitions") or []  # type: ignore[attr-defined]
    return {
        **summary,
        "status": status,
        "reprocessed_dates": [str(item["date"]) for item in late if item.get("status") == "success"],
    }
