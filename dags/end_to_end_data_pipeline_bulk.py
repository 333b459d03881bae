"""Bulk backfill of the e-commerce pipeline: a long date range in chunks, one dbt build per chunk.

Trigger it with params ``start_date``, ``end_date`` (inclusive) and ``chunk_days``
(``make backfill-bulk START=... END=... CHUNK_DAYS=...``). Each chunk (a mapped task) makes sure its
raw partitions exist (demo mode), runs the whole dbt graph once for the chunk's dates, which writes
the Parquet exports, then writes each date's data-quality report. Chunks take the same one-slot
``duckdb_warehouse`` pool as the daily DAG's tasks, so neither ever writes the warehouse beside the
other. The result equals the daily runs of the same dates, table by table.

Airflow DAG file: configuration only; no work at parse time.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from ecompipe.airflow.assets import FEATURES_ASSET, features_event_extra
from ecompipe.airflow.task_defaults import WAREHOUSE_POOL, common_dag_args

with DAG(
    dag_id="end_to_end_data_pipeline_bulk",
    description="Backfill a date range in chunks: one dbt build per chunk, identical to the daily runs",
    schedule=None,
    tags=["backfill", "bulk", "dbt", "duckdb"],
    params={
        "start_date": Param("2024-01-01", type="string", pattern=r"^\d{4}-\d{2}-\d{2}$", description="First date."),
        "end_date": Param(
            "2024-01-31", type="string", pattern=r"^\d{4}-\d{2}-\d{2}$", description="Last date, included."
        ),
        "chunk_days": Param(31, type="integer", minimum=1, maximum=366, description="Dates per dbt build."),
        "generate_if_missing": Param(
            None, type=["null", "boolean"], description="Demo mode: generate missing raw partitions."
        ),
    },
    doc_md=__doc__,
    **common_dag_args(),
) as dag:

    @task
    def plan(params: dict | None = None) -> list[dict[str, str]]:
        from ecompipe.pipeline.bulk import plan_chunks

        values = params or {}
        return plan_chunks(values["start_date"], values["end_date"], values["chunk_days"])

    @task(pool=WAREHOUSE_POOL, max_active_tis_per_dag=1, outlets=[FEATURES_ASSET])
    def build_chunk(
        chunk: dict[str, str], params: dict | None = None, run_id: str | None = None, outlet_events: object = None
    ) -> dict[str, object]:
        from ecompipe.core.dates import date_range
        from ecompipe.pipeline.bulk import run_chunk
        from ecompipe.pipeline.ingest import demo_mode_enabled

        result = run_chunk(chunk, demo_mode_enabled((params or {}).get("generate_if_missing")), run_id or "manual")
        # A chunk that raised emits nothing; a finished one tells downstream DAGs which dates changed.
        dates = [day.isoformat() for day in date_range(chunk["start_date"], chunk["end_date"])]
        outlet_events[FEATURES_ASSET].extra = features_event_extra(dates, "success", dag.dag_id)  # type: ignore[index]
        return result

    build_chunk.expand(chunk=plan())
