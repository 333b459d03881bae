"""Airflow Assets the pipeline publishes, shared by the producing and the consuming DAGs.

``FEATURES_ASSET`` stands for the ``fct_transaction_features`` table. The daily DAG emits an event on it
after every successful run (its last task, once the dbt tests have passed), the bulk DAG after every
chunk. Each event's ``extra`` says which dates changed, because asset-triggered runs have no logical
date of their own:

``{"run_dates": ["2024-01-15", ...], "status": "success" | "skipped", "source_dag": "..."}``
"""

from __future__ import annotations

from airflow.sdk import Asset

FEATURES_ASSET = Asset(
    name="fct_transaction_features",
    uri="duckdb://warehouse/main/fct_transaction_features",
    group="ecommerce",
    extra={"model": "model.ecommerce.fct_transaction_features"},
)


def features_event_extra(run_dates: list[str], status: str, source_dag: str) -> dict[str, object]:
    """The ``extra`` of an event on ``FEATURES_ASSET`` (see the module docstring)."""
    return {"run_dates": sorted(run_dates), "status": status, "source_dag": source_dag}
