"""The daily partition timetable: the run for partition D has logical date D.

Run for partition D (a UTC calendar day):

* logical date ``D 00:00 UTC`` (so ``{{ ds }}`` is D, as the course's "execution date = the date being
  processed" expects), data interval ``[D 00:00, D+1 00:00)``;
* it fires ``lag`` after the day has ended (02:00 UTC on D+1 by default), when the day's file is due;
* ``airflow backfill create --from-date A --to-date B`` creates the runs of partitions A..B inclusive.

No built-in timetable gives all three: CronDataIntervalTimetable("0 2 * * *") has logical date D 02:00
(a backfill to B stops at B-1); CronTriggerTimetable with an interval ends the interval at the fire
time; CronPartitionTimetable's runs have no logical date. A custom timetable must be registered by an
Airflow plugin (``ecompipe.airflow.plugin``, an ``airflow.plugins`` entry point of this package) so
that the scheduler, the dag-processor and the api-server can deserialize the DAG.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

DAY = timedelta(days=1)
# When partition D is due: its file lands during the night, the run starts at 02:00 UTC on D+1.
RUN_LAG = timedelta(hours=2)


def _day_start(moment: datetime) -> pendulum.DateTime:
    """00:00 UTC of the day ``moment`` falls in."""
    return pendulum.instance(moment).in_timezone("UTC").start_of("day")


def _next_day_start(moment: datetime) -> pendulum.DateTime:
    """``moment`` if it is 00:00 UTC, else the following 00:00 UTC."""
    start = _day_start(moment)
    return start if start == pendulum.instance(moment) else start + DAY


class DailyPartitionTimetable(Timetable):
    """One run per UTC day D: logical date D 00:00, interval [D, D+1), fires at D+1 00:00 + ``lag``."""

    def __init__(self, lag: timedelta = RUN_LAG) -> None:
        if lag < timedelta(0):
            raise ValueError(f"lag must not be negative, got {lag}")
        self.lag = lag
        self.description = f"Daily: partition D (UTC day), run at {self._lag_text} after D ends"

    @property
    def _lag_text(self) -> str:
        hours, rest = divmod(int(self.lag.total_seconds()), 3600)
        return f"{hours:02d}:{rest // 60:02d}"

    @property
    def summary(self) -> str:
        return f"daily, D+1 {self._lag_text} UTC"

    def serialize(self) -> dict[str, Any]:
        return {"lag_seconds": self.lag.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(timedelta(seconds=data["lag_seconds"]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DailyPartitionTimetable) and other.lag == self.lag

    def __hash__(self) -> int:
        return hash(self.lag)

    def run_info(self, partition_start: datetime) -> DagRunInfo:
        start = _day_start(partition_start)
        return DagRunInfo(run_after=start + DAY + self.lag, data_interval=DataInterval(start, start + DAY))

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        # The UI and REST API pass the logical date the user typed: the partition containing it.
        start = _day_start(run_after)
        return DataInterval(start, start + DAY)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            start = _day_start(last_automated_data_interval.start) + DAY
        elif restriction.earliest is not None:
            start = _next_day_start(restriction.earliest)
        else:
            return None  # no start_date: nothing to schedule
        if restriction.earliest is not None:
            start = max(start, _next_day_start(restriction.earliest))
        if not restriction.catchup:
            # Without catchup, the next run is at most the latest partition whose run is already due.
            start = max(start, _day_start(pendulum.now("UTC") - self.lag) - DAY)
        if restriction.latest is not None and start > restriction.latest:
            return None
        return self.run_info(start)
