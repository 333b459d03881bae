"""Every try of a run builds: Cosmos WATCHER's producer and sensors, aware of Airflow's retries and clears.

Cosmos 1.15's WATCHER producer skips every try after the first ("does not support Airflow retries"),
and its model sensors then fall back to one dbt process per model (22 here). That guards against
a second build running beside the model tasks of the first; in this DAG it cannot happen: the sensors
start only once the producer is final (``sensors_report_after_the_build``). So here:

* the producer runs its ``dbt build`` on every try. A try that failed for a passing reason (a
  DuckLake commit conflict, a lock timeout, a killed worker) is retried as one build of the date
  (every model is idempotent per date) instead of 22 fallbacks with retry delays;
* a build that failed only because data tests failed is not retried (``AirflowFailException``): the
  same raw file would fail the same tests. The model tasks show which tests failed, as on any run;
* the producer records the clear cycle it built in (XCom ``clear_cycle``); a model sensor on the
  first try of a clear cycle reads the producer's results as on a first run when the producer built
  in this cycle (a run cleared in the UI or with ``airflow tasks clear``); otherwise (a sensor cleared
  on its own, a sensor's automatic retry) Cosmos's fallback runs dbt for that one model.

Airflow tells retries and clears apart: clearing a task sets ``max_tries = try_number + retries``,
so the first try of a clear cycle is ``max_tries - retries + 1``; each clear of a run increments
``dag_run.clear_number``. Relies on Cosmos internals (its try-number check, ``_handle_retry``): the
DAG-integrity and real-scheduler tests pin the behaviour to the installed Cosmos.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.state import get_xcom_val, safe_xcom_push
from cosmos.operators.watcher import DbtProducerWatcherOperator

from ecompipe.pipeline.lake_dbt import failed_data_tests
from ecompipe.settings import RUN_DATE_ENV

CLEAR_CYCLE_KEY = "clear_cycle"


def first_try_of_clear_cycle(task_instance: Any, task: Any) -> bool:
    """Is this try the first after a clear (or of a new run), not an automatic retry?"""
    return int(task_instance.try_number) == int(task_instance.max_tries) - int(task.retries or 0) + 1


def _clear_number(context: Any) -> int:
    return int(getattr(context["dag_run"], "clear_number", 0) or 0)


class RebuildingProducer(DbtProducerWatcherOperator):
    """Cosmos's producer, running its ``dbt build`` on every try (see the module's docstring)."""

    def execute(self, context: Any, **kwargs: Any) -> Any:
        task_instance = context["ti"]
        safe_xcom_push(task_instance=task_instance, key=CLEAR_CYCLE_KEY, value=_clear_number(context))
        if task_instance.try_number == 1:
            return super().execute(context, **kwargs)
        actual = task_instance.try_number
        task_instance.try_number = 1  # Cosmos skips any try > 1; here every try builds
        try:
            return super().execute(context, **kwargs)
        finally:
            task_instance.try_number = actual

    def handle_exception_subprocess(self, result: Any) -> None:
        if result.exit_code != 0:
            tests = failed_data_tests(result.full_output)
            if tests:
                self.log.error("\n".join(result.full_output))
                run_date = (self.env or {}).get(RUN_DATE_ENV) or "this run"
                names = ", ".join(test.split(".")[2] if test.count(".") >= 2 else test for test in tests)
                raise AirflowFailException(
                    f"The dbt build of {run_date} failed data tests: {names}. Not retried: a new build "
                    "would read the same raw file. See the model tasks and the quality report, mend the "
                    "file, then rerun the date."
                )
        super().handle_exception_subprocess(result)


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


def build_on_every_try(tasks: Iterable[Any], group_id: str) -> int:
    """Give the WATCHER producer and sensors of ``group_id`` the behaviour above; returns how many.

    Cosmos picks its operator classes itself (no option to pass ours), so the instances are re-classed
    after ``DbtTaskGroup(...)``: same fields, a few overridden methods.
    """
    changed = 0
    for task in tasks:
        if not task.task_id.startswith(f"{group_id}."):
            continue
        if type(task) is DbtProducerWatcherOperator:
            task.__class__ = RebuildingProducer
            changed += 1
        elif isinstance(task, BaseConsumerSensor) and not isinstance(task, ClearAwareSensorMixin):
            base = type(task)
            if base not in _SENSOR_CLASSES:
                _SENSOR_CLASSES[base] = type(f"ClearAware{base.__name__}", (ClearAwareSensorMixin, base), {})
            task.__class__ = _SENSOR_CLASSES[base]
            changed += 1
    return changed
