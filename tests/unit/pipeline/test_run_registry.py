"""The run registry records many dates at once exactly as it records them one by one."""

from __future__ import annotations

import json

import duckdb

from ecompipe.pipeline.run_registry import RunRecord, record_deadline_miss, record_run, record_runs, registry_path
from tests.helpers.sandbox import Pipeline

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


def _rows(pipeline: Pipeline) -> list[tuple]:
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        return con.execute(
            "select run_date::varchar, run_id, status, deadline_missed_at is not null from main.pipeline_runs "
            "order by run_date"
        ).fetchall()


def _lines() -> list[dict]:
    return [json.loads(line) for line in registry_path().read_text().splitlines()]


def test_a_batch_replaces_each_key_once_and_keeps_a_recorded_deadline_miss(pipeline: Pipeline) -> None:
    # A date recorded alone first, with a deadline miss: the batch must replace it, not add a second.
    record_run(RunRecord(DAYS[1], "bulk_1", "bulk", None, None, "failed"))
    record_deadline_miss(
        RunRecord(
            DAYS[1],
            "bulk_1",
            "bulk",
            None,
            None,
            "failed",
            deadline_time="2024-01-03T06:00:00",
            deadline_missed_at="2024-01-03T06:05:00",
        )
    )
    recorded = record_runs([RunRecord(day, "bulk_1", "bulk", None, None, "success") for day in DAYS])
    assert [record.run_date for record in recorded] == DAYS
    assert _rows(pipeline) == [
        (DAYS[0], "bulk_1", "success", False),
        (DAYS[1], "bulk_1", "success", True),
        (DAYS[2], "bulk_1", "success", False),
    ]
    lines = _lines()
    assert sorted(line["run_date"] for line in lines) == DAYS
    assert [line["deadline_missed_at"] is not None for line in sorted(lines, key=lambda x: x["run_date"])] == [
        False,
        True,
        False,
    ]
    # Twice equals once.
    record_runs([RunRecord(day, "bulk_1", "bulk", None, None, "success") for day in DAYS])
    assert len(_rows(pipeline)) == 3 and len(_lines()) == 3
