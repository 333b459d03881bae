"""Late files that were never loaded are loaded by a later run; a date range's status in one call."""

from __future__ import annotations

import duckdb

from ecompipe.pipeline.ingest import reprocess_late_partitions
from ecompipe.pipeline.raw_fingerprints import NEVER_LOADED, REDELIVERED, late_in_lookback
from ecompipe.pipeline.run_registry import RunRecord, record_run
from ecompipe.reports.status import CHANGED, FAILED, LOADED, NEVER_RUN, NO_RAW_FILE, format_status, partition_status
from tests.helpers.sandbox import Pipeline


def _load(pipeline: Pipeline, day: str) -> None:
    pipeline.build(day)
    record_run(RunRecord(day, f"scheduled__{day}", "scheduled", None, None, "success"))


def _fact_dates(pipeline: Pipeline) -> list[str]:
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        return [
            str(row[0]) for row in con.sql("select distinct partition_date from fct_transactions order by 1").fetchall()
        ]


def test_a_never_loaded_file_in_the_lookback_is_loaded_and_a_run_in_flight_is_left_alone(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", rows=200)
    _load(pipeline, "2024-01-01")
    # 01-02's run gave up before its file came; 01-03's run is in flight; 01-04 is this run's own date.
    record_run(RunRecord("2024-01-02", "scheduled__2024-01-02", "scheduled", None, None, "failed"))
    assert [(late.partition_date, late.run_type) for late in late_in_lookback("2024-01-04", 3)] == [
        ("2024-01-02", NEVER_LOADED),
        ("2024-01-03", NEVER_LOADED),
    ]
    done = reprocess_late_partitions("2024-01-04", 3, "scheduled__2024-01-04", active=lambda day: day == "2024-01-03")
    assert [(item["date"], item["run_type"], item["status"]) for item in done] == [
        ("2024-01-02", NEVER_LOADED, "success")
    ]
    assert _fact_dates(pipeline) == ["2024-01-01", "2024-01-02"]
    # Loaded now: a second look finds nothing for 01-02 (twice equals once).
    assert [late.partition_date for late in late_in_lookback("2024-01-04", 3)] == ["2024-01-03"]


def test_a_redelivered_file_is_reprocessed_and_a_bad_late_file_is_recorded_not_fatal(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", "2024-01-02", rows=200)
    _load(pipeline, "2024-01-01")
    pipeline.generate("2024-01-01", rows=250, seed=7, force=True)  # re-delivered with other rows
    bad = pipeline.raw_dir / "2024-01-02" / "transactions.csv"
    bad.write_text("not,a,transactions,file\n1,2,3,4\n")
    done = reprocess_late_partitions("2024-01-03", 3, "scheduled__2024-01-03")
    assert [(item["date"], item["run_type"], item["status"]) for item in done] == [
        ("2024-01-01", REDELIVERED, "success"),
        ("2024-01-02", NEVER_LOADED, "failed"),
    ]
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        raw_rows = con.sql("select raw_rows from int_partitions__row_accounting where partition_date = '2024-01-01'")
        assert raw_rows.fetchone()[0] == 250
        failed = con.sql("select run_type, status, dbt_summary from pipeline_runs where run_date = '2024-01-02'")
        run_type, status, summary = failed.fetchone()
    assert (run_type, status) == (NEVER_LOADED, "failed") and "2024-01-02" in summary


def test_status_of_a_range_names_each_case_and_says_how_to_mend(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05", rows=200)
    _load(pipeline, "2024-01-01")
    _load(pipeline, "2024-01-05")
    record_run(RunRecord("2024-01-02", "scheduled__2024-01-02", "scheduled", None, None, "failed"))
    pipeline.generate("2024-01-05", rows=210, seed=3, force=True)
    rows = partition_status("2024-01-01", "2024-01-05")
    assert [(row.partition_date, row.status) for row in rows] == [
        ("2024-01-01", LOADED),
        ("2024-01-02", FAILED),
        ("2024-01-03", NEVER_RUN),
        ("2024-01-04", NO_RAW_FILE),
        ("2024-01-05", CHANGED),
    ]
    assert rows[1].last_run_id == "scheduled__2024-01-02" and rows[1].last_run_status == "failed"
    text = format_status(rows)
    assert "1 loaded, 1 changed since loaded, 1 failed, 1 no raw file, 1 never run" in text
    assert "make backfill START=2024-01-01 END=2024-01-05 REPROCESS=failed" in text


def test_status_without_a_warehouse_reads_the_raw_files(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-02", rows=100)
    assert [row.status for row in partition_status("2024-01-01", "2024-01-02")] == [NO_RAW_FILE, NEVER_RUN]
