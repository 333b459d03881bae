"""One dbt build per try, one task per model reporting it: Cosmos WATCHER, made to gate and to retry.

The DAG renders no test tasks (``TestBehavior.NONE``): a run of 18 tasks instead of 30 (a test task
per model), about 5 of the 24 CPU seconds a date costs through Airflow on 2 cores. The quality gate
stays where it was, in the one ``dbt build`` of the date (a model's failed tests stop everything
downstream of it), and each model's task reports its model *and its tests*, as Cosmos's
``TestBehavior.BUILD`` does in other execution modes. So here:

* the producer runs ``dbt build`` with the data tests (Cosmos drops them from the build when no test
  tasks are rendered; the unit tests stay out: ``SCHEDULED_BUILD_EXCLUDES``) and on every try (Cosmos
  1.15 skips every try after the first, and its model sensors then fall back to one dbt process per
  model). A try that failed for a passing reason (a DuckLake commit conflict, a lock timeout, a
  killed worker) is retried as one build of the date; every model is idempotent per date. A build
  that failed only because data tests failed is not retried (``AirflowFailException``): the same raw
  file would fail the same tests;
* a model's task reports what that build did: success when the model was built and its tests passed;
  failed, for good, when its tests failed, when it failed, or when dbt did not build it because
  something upstream failed (Cosmos's own sensor would retry, and its retry runs dbt for that model
  alone: past the quality gate). A retry of a model's task (a killed worker) reads the same results;
* the producer records the clear cycle it built in (XCom ``clear_cycle``): a run cleared in the UI or
  with ``airflow tasks clear`` builds again and its model tasks report the new build; a model's task
  cleared on its own runs ``dbt build`` for its model alone (the model and its tests).

Airflow counts clears in ``dag_run.clear_number``. Relies on Cosmos internals (its try-number check,
``_handle_retry``, ``_handle_no_dbt_node_status``, its XCom keys): the DAG-integrity and
real-scheduler tests pin the behaviour to the installed Cosmos.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.state import DbtTestStatus, ProducerTaskState, get_xcom_val, safe_xcom_push
from cosmos.operators.watcher import DbtProducerWatcherOperator

from ecompipe.pipeline.lake_dbt import failed_data_tests
from ecompipe.settings import RUN_DATE_ENV, SCHEDULED_BUILD_EXCLUDES

CLEAR_CYCLE_KEY = "clear_cycle"
# Cosmos narrows the producer's build to models, seeds and snapshots when it renders no test tasks.
_RESOURCE_TYPE_FLAG = "--resource-type"


def _clear_number(context: Any) -> int:
    return int(getattr(context["dag_run"], "clear_number", 0) or 0)


def scheduled_build_flags(flags: list[str]) -> list[str]:
    """The producer's dbt flags without Cosmos's ``--resource-type X`` pairs (its build runs the data
    tests: the quality gate) and without the unit tests."""
    kept: list[str] = []
    pending_value = False
    for flag in flags:
        if pending_value:
            pending_value = False
        elif flag == _RESOURCE_TYPE_FLAG:
            pending_value = True
        else:
            kept.append(flag)
    return kept if SCHEDULED_BUILD_EXCLUDES[0] in kept else [*kept, *SCHEDULED_BUILD_EXCLUDES]


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


class BuildReportSensorMixin:
    """For Cosmos's model sensors: report the model and its tests from this clear cycle's build."""

    producer_task_id: str
    model_unique_id: str
    # A model's task cleared on its own runs its model alone: `dbt build`, so that its tests run too.
    base_cmd = ["build"]

    def _built_in_this_cycle(self, context: Any) -> bool:
        built_in = get_xcom_val(context["ti"], self.producer_task_id, CLEAR_CYCLE_KEY)
        return built_in is not None and int(built_in) == _clear_number(context)

    def _model_name(self) -> str:
        return self.model_unique_id.split(".")[-1]

    def _stopped(self, context: Any, what: str) -> AirflowFailException:
        run_date = (getattr(self, "env", None) or {}).get(RUN_DATE_ENV) or "this run"
        return AirflowFailException(
            f"{self._model_name()} ({run_date}): {what}. Not retried and not run alone: dbt would build it "
            f"past the quality gate. See the log of task {self.producer_task_id} and the date's quality "
            "report, mend the cause (for failed data tests: the raw file), then rerun the date."
        )

    def _handle_retry(self, try_number: int, producer_task_state: str | None, context: Any) -> bool | None:
        if producer_task_state in (ProducerTaskState.SUCCESS, ProducerTaskState.FAILED) and self._built_in_this_cycle(
            context
        ):
            return None  # a retry (a killed worker) reports the same build, like the first try
        return super()._handle_retry(try_number, producer_task_state, context)  # type: ignore[misc]

    def _handle_no_dbt_node_status(self, producer_task_state: str | None, try_number: int, context: Any) -> bool:
        if producer_task_state == ProducerTaskState.FAILED and self._built_in_this_cycle(context):
            raise self._stopped(context, "the run's dbt build failed before it reached this model")
        return super()._handle_no_dbt_node_status(producer_task_state, try_number, context)  # type: ignore[misc]

    def poke(self, context: Any) -> bool:
        try:
            done = super().poke(context)  # type: ignore[misc]
        except (AirflowFailException, AirflowSkipException):
            raise
        except AirflowException as error:
            if self._built_in_this_cycle(context):
                raise self._stopped(
                    context, "not built by the run's dbt build (it failed, or a model or test upstream failed)"
                ) from error
            raise
        if done and self._built_in_this_cycle(context):
            self._check_tests(context)
        return bool(done)

    def _check_tests(self, context: Any) -> None:
        if not (getattr(self, "extra_context", {}).get("dbt_node_config") or {}).get("has_test"):
            return
        status = get_xcom_val(context["ti"], self.producer_task_id, get_tests_status_xcom_key(self.model_unique_id))
        if status == DbtTestStatus.FAIL:
            raise self._stopped(context, "built, but its data tests failed, so nothing downstream of it was built")
        if status is None and self._get_producer_task_status(context) != ProducerTaskState.SUCCESS:  # type: ignore[attr-defined]
            raise self._stopped(context, "built, but the run's dbt build stopped before its tests finished")


_SENSOR_CLASSES: dict[type, type] = {}


def build_on_every_try(tasks: Iterable[Any], group_id: str) -> int:
    """Give the WATCHER producer and model sensors of ``group_id`` the behaviour above; returns how many.

    Cosmos picks its operator classes itself (no option to pass ours), so the instances are re-classed
    after ``DbtTaskGroup(...)``: same fields, a few overridden methods.
    """
    changed = 0
    for task in tasks:
        if not task.task_id.startswith(f"{group_id}."):
            continue
        if type(task) is DbtProducerWatcherOperator:
            task.__class__ = RebuildingProducer
            task.dbt_cmd_flags = scheduled_build_flags(task.dbt_cmd_flags)
            changed += 1
        elif isinstance(task, BaseConsumerSensor) and not isinstance(task, BuildReportSensorMixin):
            base = type(task)
            if base not in _SENSOR_CLASSES:
                _SENSOR_CLASSES[base] = type(f"BuildReporting{base.__name__}", (BuildReportSensorMixin, base), {})
            task.__class__ = _SENSOR_CLASSES[base]
            changed += 1
    return changed
