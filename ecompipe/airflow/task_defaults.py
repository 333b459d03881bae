"""What the DAG files share: the warehouse pool, task defaults, and how Cosmos's WATCHER sensors wait.

Imported at parse time: nothing here touches the warehouse, dbt or the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from ecompipe.settings import get_settings

# Embedded profile: DuckDB allows one writing process per file, so every task that writes the warehouse
# takes this 1-slot pool. Cluster profile: DuckLake takes concurrent writers (a build per date at once,
# conflicts retried by ecompipe-dbt), so the same tasks take Airflow's default pool and run in parallel.
EMBEDDED_WAREHOUSE_POOL = "duckdb_warehouse"
WAREHOUSE_POOL = "default_pool" if get_settings().pipeline_profile == "cluster" else EMBEDDED_WAREHOUSE_POOL
# Cosmos WATCHER sensors only read the producer's XComs on the normal path: Airflow's default pool.
SENSOR_POOL = "default_pool"


def default_task_args() -> dict[str, Any]:
    """Owner and retries of every task; tests shorten the delay through the environment."""
    return {
        "owner": "data-platform",
        "depends_on_past": False,
        "retries": 2,
        # Production keeps the lab's 5 minutes between tries.
        "retry_delay": timedelta(seconds=get_settings().pipeline_retry_delay_seconds),
    }


def common_dag_args() -> dict[str, Any]:
    """The DAG settings the DAG files share: first date, no catchup, one run at a time, the task defaults."""
    return {
        "start_date": datetime(2024, 1, 1),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_task_args(),
    }


def sensors_report_after_the_build(tasks: Iterable[Any], group_id: str) -> list[str]:
    """Make the Cosmos WATCHER sensors of ``group_id`` start once its producer (`dbt build`) is done, out
    of the warehouse pool. Returns the ids of the sensors that now wait for the producer's gate.

    Cosmos starts a DbtTaskGroup's root sensors beside the producer and lets them poke while it runs;
    in the one-slot warehouse pool they queue behind it and then run one at a time, each a worker
    process (about 1 s of a real scheduler per model: 20 s a date). Placed after the producer's gate,
    every sensor finds its model's result on its first poke and needs no pool, so they run in parallel
    and beside the next run's writers. Their fallback (a sensor's own retry, or a sensor cleared alone)
    runs dbt for one model outside the pool: dbt-duckdb waits for DuckDB's lock (profiles.yml
    `retries`), like the pipeline's own connections (ecompipe.core.warehouse.connect).

    Root sensors get ``all_done_min_one_success`` over (ingestion, gate): they run whether the build
    succeeded or failed (to show which model failed), and are upstream_failed when ingestion failed,
    skipped when it skipped (unchanged partition).
    """
    from airflow.sdk import TriggerRule
    from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID, PRODUCER_WATCHER_TASK_ID

    by_id = {task.task_id: task for task in tasks if task.task_id.startswith(f"{group_id}.")}
    producer = by_id.pop(f"{group_id}.{PRODUCER_WATCHER_TASK_ID}")
    gate = by_id.pop(f"{group_id}.{PRODUCER_WATCHER_DONE_TASK_ID}")
    roots = []
    for sensor in by_id.values():
        if getattr(sensor, "producer_task_id", None) != producer.task_id:
            continue
        sensor.pool = SENSOR_POOL
        if not any(upstream in by_id for upstream in sensor.upstream_task_ids):
            gate >> sensor
            sensor.trigger_rule = TriggerRule.ALL_DONE_MIN_ONE_SUCCESS
            roots.append(sensor.task_id)
    return sorted(roots)
