"""The Airflow plugin of this package: registers the daily partition timetable.

Airflow deserializes a DAG's timetable only if its class is registered by a plugin; this one is
found through the ``airflow.plugins`` entry point in pyproject.toml (no file in AIRFLOW_HOME/plugins).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from ecompipe.airflow.timetable import DailyPartitionTimetable


class EcompipePlugin(AirflowPlugin):
    name = "ecompipe"
    timetables = [DailyPartitionTimetable]
