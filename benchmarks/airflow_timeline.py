"""Per-task timeline of an `airflow dags test` run, read from its output.

`dags test` runs the tasks one after another in one process and logs every line with a timestamp;
Cosmos relays the dbt subprocess's output. For each task this gives: Airflow and Cosmos before dbt
(``pre_s``), dbt's start-up (imports), its parse, its execution, its exit, and Airflow/Cosmos after
dbt (``post_s``: outlets, assets, state updates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

LINE_TS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)")
TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
NEW_STATE = re.compile(r"Task instance state updated.*new_state=(\w+)")
# The execution API's answer to a task's start: in `dags test` that API runs in-process, built on first use.
API_TASK_STARTED = "Task started"
MARKERS = {
    "spawn": "Running command: [",
    "dbt_started": "Running with dbt=",
    "dbt_parsed": re.compile(r"Found \d+ models"),
    "dbt_finished": "Finished running ",
    "dbt_exited": "Command exited with return code",
}


@dataclass
class TaskTimes:
    task_id: str
    start: float
    end: float | None = None
    state: str | None = None
    marks: dict[str, float] = field(default_factory=dict)

    def phases(self) -> dict[str, float]:
        total = (self.end or self.start) - self.start
        phases = {"total_s": total}
        m = self.marks
        if all(key in m for key in MARKERS) and self.end is not None:
            phases.update(
                {
                    "pre_s": m["spawn"] - self.start,
                    "dbt_startup_s": m["dbt_started"] - m["spawn"],
                    "dbt_parse_s": m["dbt_parsed"] - m["dbt_started"],
                    "dbt_execute_s": m["dbt_finished"] - m["dbt_parsed"],
                    "dbt_exit_s": m["dbt_exited"] - m["dbt_finished"],
                    "post_s": self.end - m["dbt_exited"],
                }
            )
        return phases


def _matches(marker: str | re.Pattern[str], line: str) -> bool:
    return bool(marker.search(line)) if isinstance(marker, re.Pattern) else marker in line


def parse(output: str) -> list[TaskTimes]:
    """The tasks of one `dags test` output, in run order."""
    tasks: list[TaskTimes] = []
    current: TaskTimes | None = None
    for line in output.splitlines():
        stamp = LINE_TS.match(line)
        if not stamp:
            continue
        ts = datetime.fromisoformat(stamp.group(1).replace("Z", "+00:00")).timestamp()
        if started := TASK_START.search(line):
            current = TaskTimes(task_id=started.group(1), start=ts)
            tasks.append(current)
        elif (ended := TASK_END.search(line)) and current and current.task_id == ended.group(1):
            current.end = ts
        elif current is not None and (state := NEW_STATE.search(line)):
            current.state = state.group(1)
        elif current is not None and API_TASK_STARTED in line and "execution_api" in line:
            current.marks.setdefault("api_started", ts)
        elif current is not None:
            for name, marker in MARKERS.items():
                if name not in current.marks and _matches(marker, line):
                    current.marks[name] = ts
    return tasks


def inprocess_api_warmup_s(tasks: list[TaskTimes]) -> float:
    """The one-off start of `dags test`'s in-process execution API, paid by whichever task runs first.

    A task's start is acknowledged by that API; the first acknowledgement waits for the API to be
    built. Its delay beyond the median delay of the other tasks is that start-up: `dags test` only (a
    scheduler's tasks talk to the running API server), so not part of a DAG run's cost.
    """
    from benchmarks.measure import median

    delays = [task.marks["api_started"] - task.start for task in tasks if "api_started" in task.marks]
    if len(delays) < 2:
        return 0.0
    return max(delays[0] - median(delays[1:]), 0.0)


def failed_tasks(tasks: list[TaskTimes]) -> list[str]:
    """Tasks whose last attempt did not end in success."""
    last = {task.task_id: task for task in tasks}
    return sorted(task_id for task_id, task in last.items() if task.end is None or task.state != "success")


def summarize(runs: list[list[TaskTimes]]) -> list[dict[str, object]]:
    """Median phases per task over several runs (task order of the first run)."""
    from benchmarks.measure import median

    if not runs:
        return []
    rows = []
    for task in runs[0]:
        per_run = [next((t for t in run if t.task_id == task.task_id), None) for run in runs]
        phase_sets = [t.phases() for t in per_run if t is not None]
        keys = list(phase_sets[0]) if phase_sets else []
        rows.append({"task_id": task.task_id, **{key: median(p[key] for p in phase_sets if key in p) for key in keys}})
    return rows
