"""The daily DAG's sensor: production runs wait for their raw partition without holding a worker slot.

Deferrable: the task looks once; if the file is not there it defers to Airflow's ``FileTrigger``,
which looks every ``poke_interval`` seconds inside the triggerer, and the task holds neither a worker
slot nor a pool slot until the file arrives. A timeout fails the task for good
(``AirflowSensorTimeout`` is never retried) with a message naming the date and the missing file.

Why not ``mode="reschedule"``: in Airflow 3.2-3.3 a rescheduled sensor can be failed by the scheduler
when the executor's success event of one poke arrives after the next poke was queued
(apache/airflow#71172); it happened here with short poke intervals. Deferral has the same race when
the trigger fires within seconds of the deferral (the resumed task is failed, then retried), so the
trigger waits one poke interval before its first look: the task has just looked itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.providers.standard.triggers.file import FileTrigger
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout
from airflow.triggers.base import TriggerEvent

from ecompipe.core.dates import InvalidDateError, parse_date
from ecompipe.settings import get_settings, raw_partition_path

# The checks live in ecompipe.pipeline.ingest, imported when the task runs: parsing the DAG stays cheap.


def sensor_poke_seconds() -> float:
    """How often production runs look for their raw partition (``PIPELINE_SENSOR_POKE_SECONDS``, 5 min)."""
    return get_settings().pipeline_sensor_poke_seconds


def sensor_timeout_seconds() -> float:
    """How long production runs wait for their raw partition (``PIPELINE_SENSOR_TIMEOUT_SECONDS``, 6 h)."""
    return get_settings().pipeline_sensor_timeout_seconds


class DelayedFileTrigger(FileTrigger):
    """Airflow's ``FileTrigger``, first looking one ``poke_interval`` after it starts (see above)."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.DelayedFileTrigger", super().serialize()[1]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.sleep(self.poke_interval)
        async for event in super().run():
            yield event
            return


class RawPartitionSensor(BaseSensorOperator):
    """Wait for ``raw/<run_date>/transactions.csv`` in the triggerer; succeed at once in demo mode.

    ``poke_interval`` and ``timeout`` come from the DAG (environment); the params
    ``sensor_poke_seconds`` / ``sensor_timeout_seconds`` override them for one run.
    """

    template_fields = ("run_date",)
    deferrable = True  # always: the waiting happens in the triggerer (FileTrigger)

    def __init__(self, *, run_date: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_date = run_date

    def execute(self, context: Any) -> str:
        day = self._prepare(context)
        if self.poke(context):
            return str(raw_partition_path(day))
        self.log.info(
            "Deferring: the triggerer looks for the file every %ss, for up to %ss", self.poke_interval, self.timeout
        )
        self.defer(
            trigger=DelayedFileTrigger(filepath=str(raw_partition_path(day)), poke_interval=self.poke_interval),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: Any = None) -> str:
        path = raw_partition_path(parse_date(self.run_date, "run_date").isoformat())
        self.log.info("Raw partition for %s has arrived: %s", self.run_date, path)
        return str(path)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        self._prepare(context)
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout:  # the deferral's timeout
            from ecompipe.pipeline.ingest import partition_timeout_message

            raise AirflowSensorTimeout(partition_timeout_message(self.run_date, self.timeout)) from None

    def _prepare(self, context: Any) -> str:
        """Apply the run's overrides and validate the date (before it reaches a path)."""
        params = context.get("params") or {}
        if params.get("sensor_poke_seconds"):
            self.poke_interval = float(params["sensor_poke_seconds"])
        if params.get("sensor_timeout_seconds"):
            self.timeout = float(params["sensor_timeout_seconds"])
        try:
            return parse_date(self.run_date, "run_date").isoformat()
        except InvalidDateError as exc:
            raise AirflowFailException(f"{exc}: trigger with param run_date=YYYY-MM-DD.") from None

    def poke(self, context: Any) -> bool:
        from ecompipe.pipeline.ingest import demo_mode_enabled, partition_arrived

        params = context.get("params") or {}
        return partition_arrived(self.run_date, demo_mode_enabled(params.get("generate_if_missing")))
