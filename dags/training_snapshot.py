"""Training snapshot: the last N days of `fct_transaction_features` as one Parquet file + manifest.

Scheduled on the Airflow Asset `fct_transaction_features`: it runs after every successful daily run
(`end_to_end_data_pipeline.record_run`) and every successful bulk chunk, which emit an event only once
the dbt tests have passed and the run is recorded. Asset-triggered runs have no logical date: the
window ends at the latest date named in the triggering events' `run_dates` (a manual run: param
`as_of`, else the latest successful date in the run registry). Only dates whose registry verdict is
success are read; the manifest lists the others with the reason.

Output: `$PIPELINE_DATA_DIR/features/training/<id>/{features.parquet,manifest.json}` and
`features/training/latest.json`. The read takes the one-slot `duckdb_warehouse` pool, like every task
touching the warehouse. By hand: `make training-snapshot DAYS=30 [AS_OF=YYYY-MM-DD]`.

Airflow DAG file: configuration only; no work at parse time.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from ecompipe.airflow.assets import FEATURES_ASSET
from ecompipe.airflow.task_defaults import WAREHOUSE_POOL, common_dag_args
from ecompipe.settings import MAX_SNAPSHOT_DAYS, get_settings

with DAG(
    dag_id="training_snapshot",
    description="Last N days of fct_transaction_features -> one Parquet file + manifest, on each features update",
    schedule=[FEATURES_ASSET],
    tags=["training", "features", "asset-triggered", "duckdb"],
    params={
        "days": Param(
            get_settings().pipeline_snapshot_days,
            type="integer",
            minimum=1,
            maximum=MAX_SNAPSHOT_DAYS,
            description="Window length N.",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="Manual runs: last date of the window (default: the events' dates, else the registry).",
        ),
    },
    doc_md=__doc__,
    **common_dag_args(),
) as dag:

    @task
    def read_trigger(triggering_asset_events: object = None) -> list[dict[str, object]]:
        # The dates come from the events (asset-triggered runs have no logical date; {{ ds }} fails).
        from dataclasses import asdict

        from ecompipe.pipeline.training_snapshot import events_from_airflow

        events = events_from_airflow(triggering_asset_events.get(FEATURES_ASSET, []))  # type: ignore[union-attr]
        return [asdict(event) for event in events]

    @task(pool=WAREHOUSE_POOL)
    def build_training_snapshot(
        events: list[dict[str, object]], params: dict | None = None, run_id: str | None = None
    ) -> dict[str, object]:
        from ecompipe.pipeline.training_snapshot import TriggerEvent, build_snapshot

        values = params or {}
        triggers = [TriggerEvent(**{**event, "run_dates": tuple(event["run_dates"])}) for event in events]  # type: ignore[arg-type]
        result = build_snapshot(values.get("as_of"), int(values["days"]), events=triggers, run_id=run_id)
        return result.summary()

    build_training_snapshot(read_trigger())
