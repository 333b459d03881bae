"""The bulk backfill's building blocks, without Airflow (the real-scheduler test covers the DAG)."""

from __future__ import annotations

import pytest

from ecompipe.core.warehouse import fingerprints
from ecompipe.pipeline.bulk import ChunkFailedError, dbt_build_range, plan_chunks
from tests.helpers.sandbox import Pipeline


def test_chunks_cover_the_range_exactly_once() -> None:
    chunks = plan_chunks("2024-01-01", "2024-01-10", 4)
    assert chunks == [
        {"start_date": "2024-01-01", "end_date": "2024-01-04"},
        {"start_date": "2024-01-05", "end_date": "2024-01-08"},
        {"start_date": "2024-01-09", "end_date": "2024-01-10"},
    ]
    assert plan_chunks("2024-02-28", "2024-03-01", 31) == [{"start_date": "2024-02-28", "end_date": "2024-03-01"}]


@pytest.mark.parametrize(
    ("start", "end", "days", "message"),
    [
        ("2024-01-05", "2024-01-01", 3, "before"),
        ("2024-01-01", "2024-01-05", 0, "chunk_days"),
        ("2024-01-01'; --", "2024-01-05", 3, "YYYY-MM-DD"),
        ("2000-01-01", "2024-01-01", 31, "at most"),
    ],
)
def test_bad_plans_are_refused(start: str, end: str, days: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_chunks(start, end, days)


def test_a_bad_date_fails_its_chunk_naming_it_and_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", "2024-01-02", "2024-01-03", rows=200)
    dbt_build_range("2024-01-01", "2024-01-02")
    before = fingerprints(pipeline.warehouse)
    (pipeline.raw_dir / "2024-01-03" / "transactions.csv").write_text("transaction_id,price\n1,2\n")
    with pytest.raises(ChunkFailedError, match=r"2024-01-03.*missing required column"):
        dbt_build_range("2024-01-02", "2024-01-03")
    assert fingerprints(pipeline.warehouse) == before
