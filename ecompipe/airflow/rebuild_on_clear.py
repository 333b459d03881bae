"""A cleared run builds once again: Cosmos WATCHER's producer and sensors, aware of Airflow's clears.

Cosmos 1.15's WATCHER producer skips every try after the first ("does not support Airflow retries"),
and its model sensors then fall back to one dbt process per model. That is right for an automatic
retry (the build already ran), but a run cleared in the UI or with ``airflow tasks clear`` is a new
request: with the stock classes it costs ~3x a fresh run (22 dbt processes instead of one).

Airflow tells the two apart: clearing a task sets ``max_tries = try_number + retries``, so the first
try of a clear cycle is ``max_tries - retries + 1`` while automatic retries come after it, and each
clear of a run increments ``dag_run.clear_number``. Here:

* the producer runs its ``dbt build`` again on the first try of a clear cycle (Cosmos's skip for real
  retries is kept), and records the cycle it built in (XCom ``clear_cycle``);
* a model sensor on the first try of a clear cycle reads the producer's results as on a first run when
  the producer built in this cycle; otherwise (a sensor cleared on its own, an automatic retry, a
  skipped producer) Cosmos's fallback runs dbt for that one model.

The DAG's sensors start once the producer is done (``sensors_report_after_the_build``), so they never
read the results of an earlier cycle. Relies on Cosmos internals (``_handle_retry``): the DAG-integrity
and real-scheduler tests pin the behaviour to the installed Cosmos.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.state import get_xcom_val, safe_xcom_push
from cosmos.operators.watcher import DbtProducerWatcherOperator

CLEAR_CYCLE_KEY = "clear_cycle"


def first_try_of_clear_cycle(task_instance: Any, task: Any) -> bool:
    """Is this try the first after a clear (or of a new run), not an automatic retry?"""
    return int(task_instance.try_number) == int(task_instance.max_tries) - int(task.retries or 0) + 1


def _clear_number(context: Any) -> int:
    return int(getattr(context["dag_run"], "clear_number", 0) or 0)


class RebuildOnClearProducer(DbtProducerWatcherOperator):
    """Cosmos's producer, building again on the first try of a clear cycle."""

    def execute(self, context: Any, **kwargs: Any) -> Any:
        task_instance = context["ti"]
        safe_xcom_push(task_instance=task_instance, key=CLEAR_CYCLE_KEY, value=_clear_number(context))
        if task_instance.try_number > 1 and first_try_of_clear_cycle(task_instance, self):
            actual = task_instance.try_number
            task_instance.try_number = 1  # Cosmos skips any try > 1: this one is a clear, not a retry
            try:
                return super().execute(context, **kwargs)
            finally:
                task_instance.try_number = actual
        return super().execute(context, **kwargs)


class ClearAwareSensorMixin:
    """For Cosmos's consumer sensors: on a clear cycle, read the producer's new build."""

    producer_task_id: str

    def _handle_retry(self, try_number: int, producer_task_state: str | None, context: Any) -> bool | None:
        task_instance = context["ti"]
        if first_try_of_clear_cycle(task_instance, self) and producer_task_state == "success":
            built_in = get_xcom_val(task_instance, self.producer_task_id, CLEAR_CYCLE_KEY)
            if built_in == _clear_number(context):
                return None  # the producer built in this cycle: its XComs are this cycle's results
        return super()._handle_retry(try_number, producer_task_state, context)  # type: ignore[misc]


_SENSOR_CLASSES: dict[type, type] = {}


def rebuild_on_clear(tasks: Iterable[Any], group_id: str) -> int:
    """Give the WATCHER producer and sensors of ``group_id`` the clear-aware behaviour; returns how many.

    Cosmos picks its operator classes itself (no option to pass ours), so the instances are re-classed
    after ``DbtTaskGroup(...)``: same fields, one overridden method each.
    """
    changed = 0
    for task in tasks:
        if not task.task_id.startswith(f"{group_id}."):
            continue
        if type(task) is DbtProducerWatcherOperator:
            task.__class__ = RebuildOnClearProducer
            changed += 1
        elif isinstance(task, BaseConsumerSensor) and not isinstance(task, ClearAwareSensorMixin):
            base = type(task)
            if base not in _SENSOR_CLASSES:
                _SENSOR_CLASSES[base] = type(f"ClearAware{base.__name__}", (ClearAwareSensorMixin, base), {})
            task.__class__ = _SENSOR_CLASSES[base]
            changed += 1
    return changed
