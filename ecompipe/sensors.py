"""The daily DAG's sensor: production runs wait for their raw partition without holding a worker slot.

``mode="reschedule"``: between pokes the task instance is ``up_for_reschedule`` and holds neither a
worker slot nor a pool slot. A timeout fails the task for good (``AirflowSensorTimeout`` is never
retried) with a message naming the date and the missing file.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from ecompipe.dates import InvalidDateError, parse_date

# The checks live in ecompipe.ingest, imported when a poke runs: parsing the DAG stays cheap.


def positive_seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment variable ``name`` (> 0), else ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {text!r}: fix or unset it.")
    return value


def sensor_poke_seconds() -> float:
    """How often production runs look for their raw partition (``PIPELINE_SENSOR_POKE_SECONDS``, 5 min)."""
    return positive_seconds("PIPELINE_SENSOR_POKE_SECONDS", 300.0)


def sensor_timeout_seconds() -> float:
    """How long production runs wait for their raw partition (``PIPELINE_SENSOR_TIMEOUT_SECONDS``, 6 h)."""
    return positive_seconds("PIPELINE_SENSOR_TIMEOUT_SECONDS", 6 * 3600.0)


class RawPartitionSensor(BaseSensorOperator):
    """Wait for ``raw/<run_date>/transactions.csv``; succeed at once in demo mode.

    ``poke_interval`` and ``timeout`` come from the DAG (environment); the params
    ``sensor_poke_seconds`` / ``sensor_timeout_seconds`` override them for one run.
    """

    template_fields = ("run_date",)

    def __init__(self, *, run_date: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.run_date = run_date

    def execute(self, context: Any) -> Any:
        self._apply_run_overrides(context.get("params") or {})
        try:
            parse_date(self.run_date, "run_date")
        except InvalidDateError as exc:
            raise AirflowFailException(f"{exc}: trigger with param run_date=YYYY-MM-DD.") from None
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            from ecompipe.ingest import partition_timeout_message

            raise AirflowSensorTimeout(partition_timeout_message(self.run_date, self.timeout)) from None

    def _apply_run_overrides(self, params: dict[str, Any]) -> None:
        if params.get("sensor_poke_seconds"):
            self.poke_interval = float(params["sensor_poke_seconds"])
        if params.get("sensor_timeout_seconds"):
            self.timeout = float(params["sensor_timeout_seconds"])

    def poke(self, context: Any) -> bool:
        from ecompipe.ingest import demo_mode_enabled, partition_arrived

        params = context.get("params") or {}
        return partition_arrived(self.run_date, demo_mode_enabled(params.get("generate_if_missing")))
