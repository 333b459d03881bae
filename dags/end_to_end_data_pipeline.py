"""Daily e-commerce pipeline: raw CSV partition -> dbt on DuckDB (rendered by Cosmos) -> Parquet.

Date semantics: the run of partition D has logical date D (``{{ ds }}`` = D) and data interval
[D 00:00, D+1 00:00) UTC; it fires at 02:00 UTC on D+1, once the day has ended (DailyPartitionTimetable).
`airflow backfill create --from-date A --to-date B` loads A..B inclusive; `airflow dags trigger
--logical-date D` loads D. A run without a logical date names its date with the param ``run_date``.

Docs: the dbt docs site is in this Airflow UI under Browse > dbt Docs (ecommerce)
(`/cosmos/ecommerce/dbt_docs`); every model, column and test is described there. Data quality per
date: `$PIPELINE_DATA_DIR/logs/data_quality/D/report.json` and the `dq_daily` view.

Airflow DAG file: configuration only. Parsing reads dbt's manifest (``make manifest``), never runs dbt.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Airflow before Cosmos: a Cosmos-first import is circular on Airflow 3.
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, Param, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from ecompipe.airflow.assets import FEATURES_ASSET, features_event_extra
from ecompipe.airflow.deadlines import deadline_interval_after_logical_date, record_deadline_miss, under_dags_test
from ecompipe.airflow.sensors import RawPartitionSensor, sensor_poke_seconds, sensor_timeout_seconds
from ecompipe.airflow.task_defaults import WAREHOUSE_POOL, default_task_args, sensors_report_after_the_build
from ecompipe.airflow.timetable import DailyPartitionTimetable
from ecompipe.airflow.watcher_tries import build_on_every_try
from ecompipe.settings import DBT_PROJECT_DIR, RUN_DATE_ENV, dbt_executable, dbt_target, get_settings, pipeline_env

DAG_ID = "end_to_end_data_pipeline"
# The partition: the param run_date if given (reruns: runs without a logical date), else the logical date.
# A run with neither renders '' and ingestion refuses it, naming run_date.
RUN_DATE = "{{ params.run_date or (ds if ds is defined else '') }}"


def _schedule_end_date() -> datetime | None:
    day = get_settings().pipeline_schedule_end_date
    return datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC) if day else None


with DAG(
    dag_id=DAG_ID,
    description="Daily raw CSV partition -> dbt (DuckDB) -> Parquet exports, with dbt tests as the gate",
    schedule=DailyPartitionTimetable(),
    start_date=datetime(2024, 1, 1),
    # Demos and tests stop the schedule at their last date, so that unpausing the DAG for a backfill
    # does not also schedule "yesterday" (with catchup off, Airflow runs the latest interval at once).
    end_date=_schedule_end_date(),
    catchup=False,
    max_active_runs=1,
    default_args=default_task_args(),
    tags=["production", "end-to-end", "scheduled", "dbt", "duckdb"],
    # A scheduled run must finish PIPELINE_DEADLINE_MINUTES (default 120) after it is due (D+1 02:00).
    # Airflow 3.3 has no "run due" reference: logical date (D 00:00) + 1 day + 2 h + N.
    # On a miss the triggerer runs the callback: it logs the miss and records it in the run registry.
    # None under `airflow dags test`, which crashes on a DAG with a deadline (apache/airflow#73428).
    deadline=None
    if under_dags_test()
    else DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=deadline_interval_after_logical_date(),
        callback=AsyncCallback(record_deadline_miss),
        name="partition loaded within the deadline after its interval",
    ),
    params={
        "run_date": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="Process this date instead of the run's data interval (YYYY-MM-DD).",
        ),
        "force": Param(
            False,
            type="boolean",
            description="Process the partition even if it is byte-identical to the one already processed.",
        ),
        "lookback_days": Param(
            get_settings().pipeline_lookback_days,
            type="integer",
            minimum=0,
            maximum=31,
            description="Reprocess previous days whose raw file changed since.",
        ),
        "generate_if_missing": Param(
            None,
            type=["null", "boolean"],
            description="Demo mode: generate a missing raw partition. Default: PIPELINE_MODE=demo in the environment.",
        ),
        "sensor_poke_seconds": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            description="Production mode: seconds between looks for the raw partition. "
            "Default: PIPELINE_SENSOR_POKE_SECONDS (300).",
        ),
        "sensor_timeout_seconds": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            description="Production mode: give up waiting for the raw partition after this many seconds. "
            "Default: PIPELINE_SENSOR_TIMEOUT_SECONDS (21600).",
        ),
    },
    doc_md=__doc__,
) as dag:

    @task(pool=WAREHOUSE_POOL)
    def reprocess_late_partitions(
        run_date: str, params: dict | None = None, run_id: str | None = None, ti: object = None
    ) -> list:
        # Late files: previous days whose raw file changed since it was loaded, or was never loaded.
        from ecompipe.airflow.runs import partition_run_in_flight
        from ecompipe.pipeline.ingest import reprocess_late_partitions as reprocess

        lookback = int((params or {}).get("lookback_days") or 0)
        return reprocess(run_date, lookback, run_id or "manual", partition_run_in_flight(ti, DAG_ID))

    @task(pool=WAREHOUSE_POOL)
    def ingest_raw_partition(run_date: str, params: dict | None = None, dag_run: object = None) -> dict[str, object]:
        from ecompipe.pipeline.ingest import demo_mode_enabled, ensure_raw_partition

        values = params or {}
        conf = getattr(dag_run, "conf", None) or {}
        # A cleared run (UI, `airflow tasks clear`) is a request to process the date again: even when its
        # file is byte-identical to the one loaded, it is not skipped.
        cleared = int(getattr(dag_run, "clear_number", 0) or 0) > 0
        force = bool(values.get("force")) or bool(conf.get("force")) or cleared
        return ensure_raw_partition(run_date, demo_mode_enabled(values.get("generate_if_missing")), force=force)

    transform = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=DBT_PROJECT_DIR / "target" / "manifest.json",
            install_dbt_deps=False,
            # The date reaches dbt in the environment, not as --vars: dbt's partial parsing then
            # survives from one date to the next (new vars force a full parse, ~2 s a build).
            env_vars={**pipeline_env(), RUN_DATE_ENV: RUN_DATE},
        ),
        profile_config=ProfileConfig(
            profile_name="ecommerce",
            target_name=dbt_target(),  # dev: the DuckDB file; cluster: DuckLake (PIPELINE_PROFILE)
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        # WATCHER: one `dbt build` of the date, tests included (task dbt.dbt_producer_watcher), and a
        # sensor task per model (`<model>_run`) that reports what that build did for the model and its
        # tests, read from the producer's XComs. Tests gate downstream models inside the build. A model's
        # task runs dbt itself only when cleared on its own: `dbt build` of its one model.
        # The sensors start once the build is done, outside the warehouse pool (sensors_report_after_the_build).
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            # A dbt subprocess: dbt-duckdb keeps the file open in-process after a dbtRunner call, which
            # would lock out the next task when tasks share a process (`airflow dags test`).
            invocation_mode=InvocationMode.SUBPROCESS,
            # dbt, or on the cluster profile ecompipe-dbt: a per-date build lock and conflict retries.
            dbt_executable_path=dbt_executable(),
        ),
        # No per-model Airflow assets: the run's one asset event is record_run's (FEATURES_ASSET).
        # No test tasks: each model's task reports its tests (build_on_every_try below). A task per
        # model's tests made a run 30 tasks instead of 18: ~5 CPU seconds a date, a fifth of it.
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.NONE, emit_datasets=False
        ),
        operator_args={
            "append_env": True,
            # The producer's pool; the sensors are moved to the default pool below. Reschedule mode:
            # deferrable sensors would wait inside `airflow dags test` for a producer that never starts.
            "pool": WAREHOUSE_POOL,
            "deferrable": False,
            "mode": "reschedule",
            "poke_interval": 5,
        },
    )

    @task(pool=WAREHOUSE_POOL, trigger_rule="all_done", outlets=[FEATURES_ASSET])
    def record_run(run_date: str, **context: object) -> dict[str, object]:
        # Runs whatever happened upstream: writes the quality report and the run registry, then fails
        # if an upstream task failed, so that the run's state stays true. Only a successful run gets
        # here without raising, so only it emits the features asset event (downstream DAGs start on it).
        from ecompipe.pipeline.ingest import record_run_outcome

        outcome = record_run_outcome(run_date, context)
        changed = [run_date, *[str(d) for d in outcome.get("reprocessed_dates", [])]]
        context["outlet_events"][FEATURES_ASSET].extra = features_event_extra(  # type: ignore[index]
            changed, str(outcome.get("status", "success")), DAG_ID
        )
        return outcome

    # Production mode waits for the day's file, deferred to the triggerer (no worker or pool slot while
    # waiting); demo mode goes straight on (ingestion generates the file). Late data is reprocessed meanwhile.
    wait_for_raw_partition = RawPartitionSensor(
        task_id="wait_for_raw_partition",
        run_date=RUN_DATE,
        poke_interval=sensor_poke_seconds(),
        timeout=sensor_timeout_seconds(),
    )
    ingest = ingest_raw_partition(RUN_DATE)
    wait_for_raw_partition >> ingest
    reprocess_late_partitions(RUN_DATE) >> ingest >> transform >> record_run(RUN_DATE)
    # After the wiring above, so that the sensors keep ingestion upstream.
    sensors_report_after_the_build(dag.tasks, transform.group_id)
    # A retried or cleared producer runs one dbt build again (tests included), not one dbt per model
    # (data-test failures are not retried: the same file fails the same tests); each model's task
    # fails, for good, when its model or its tests failed or dbt did not build it.
    build_on_every_try(dag.tasks, transform.group_id)
