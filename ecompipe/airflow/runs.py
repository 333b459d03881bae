"""What a running task can ask Airflow about the DAG's other runs (through the task SDK, at run time)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
IN_FLIGHT = ["queued", "running"]


def partition_run_in_flight(task_instance: Any, dag_id: str) -> Callable[[str], bool]:
    """``is_in_flight(date)``: is the run of partition ``date`` (logical date ``date`` 00:00 UTC) queued or
    running? A late file of such a date is left to its own run (loading it twice is correct, only slow)."""

    def is_in_flight(day: str) -> bool:
        logical = datetime.fromisoformat(day).replace(tzinfo=UTC)
        try:
            return task_instance.get_dr_count(dag_id=dag_id, logical_dates=[logical], states=IN_FLIGHT) > 0
        except Exception as exc:  # no execution API here (e.g. called outside a task): load it anyway
            log.info("Could not ask Airflow whether %s has a run in flight (%s): loading it", day, exc)
            return False

    return is_in_flight
