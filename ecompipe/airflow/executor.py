"""The embedded profile's executor: Airflow's LocalExecutor, its worker processes forked with dbt loaded.

LocalExecutor forks its workers from the scheduler, and each task's process from a worker, so what
the scheduler has imported before the fork costs a task nothing. Airflow and Cosmos are there already;
dbt is not, and importing it is most of a `dbt build`'s fixed cost (~1.5 s of CPU, more than the
build of a day's models at demo size). With dbt imported here, the DAG's producer runs `dbt build` in
its own task process (Cosmos's ``InvocationMode.DBT_RUNNER``, see ``dbt_invocation_mode``) and starts
at once. Set by ``ecompipe.local_airflow`` unless AIRFLOW__CORE__EXECUTOR says otherwise.
"""

from __future__ import annotations

import importlib
import logging

from airflow.executors.local_executor import LocalExecutor

# dbt's command-line runner and the DuckDB adapter with its dependencies, and the Cosmos operators
# that call them.
PRELOADED = ("dbt.cli.main", "dbt.adapters.duckdb.impl", "cosmos.operators.watcher")

log = logging.getLogger(__name__)


def preload(modules: tuple[str, ...] = PRELOADED) -> list[str]:
    """Import ``modules``; returns those that could not be (an optimisation only: never fatal)."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 -- whatever fails here fails again, with its own message, in the task
            log.warning("Could not preload %s for the task processes", name, exc_info=True)
            missing.append(name)
    return missing


class PreloadingLocalExecutor(LocalExecutor):
    """LocalExecutor whose workers (forked on first use) start with dbt imported."""

    def start(self) -> None:
        preload()
        super().start()
