"""The issue's targets, evaluated on a results dictionary (PASS / MISS, or n/a when not measured)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Target:
    key: str
    what: str
    goal: str
    value: float | None
    unit: str
    passed: bool | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _one_day_at(sections: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    by_rows = _get(sections, "one_day", "by_rows") or {}
    if not by_rows:
        return None, None
    key = "1000000" if "1000000" in by_rows else max(by_rows, key=int)
    return key, by_rows[key]


def _check(value: float | None, test: Callable[[float], bool]) -> bool | None:
    return None if value is None else bool(test(value))


def evaluate(sections: dict[str, Any]) -> list[Target]:
    rows, one_day = _one_day_at(sections)
    at = f"{int(rows):,} rows" if rows else "n/a"
    dbt_vs_bare = _get(one_day or {}, "ratios", "dbt_over_bare_wall")
    pandas_vs_dbt = _get(one_day or {}, "ratios", "pandas_over_dbt_wall")
    flat = _get(sections, "incremental", "ratios", "dayN_over_day1_wall")
    parse_s = _get(sections, "dag_parse", "dags", "parse_s")
    calls = _get(sections, "dag_parse", "dags", "subprocess_calls")
    airflow = _get(sections, "airflow", "ratios", "dag_run_net_over_dbt_wall")
    generator = _get(sections, "generator", "ratios", "throughput_vs_duckdb")
    days = _get(sections, "incremental", "history_days")
    return [
        Target("dbt_vs_bare", f"one day at {at}: dbt build / bare DuckDB", "<= 1.5x", dbt_vs_bare, "x",
               _check(dbt_vs_bare, lambda v: v <= 1.5)),
        Target("dbt_vs_pandas", f"one day at {at}: pandas / dbt build (speed-up)", ">= 5x", pandas_vs_dbt, "x",
               _check(pandas_vs_dbt, lambda v: v >= 5)),
        Target("incremental_flat", f"day {days + 1 if days else 'N+1'} (history {days} days) / day 1", "<= 1.2x",
               flat, "x", _check(flat, lambda v: v <= 1.2)),
        Target("dag_parse_time", "DagBag parse of dags/", "<= 2 s", parse_s, "s", _check(parse_s, lambda v: v <= 2)),
        Target("dag_parse_no_subprocess", "subprocesses started while parsing dags/", "0",
               None if calls is None else float(len(calls)), "", None if calls is None else not calls),
        Target("airflow_vs_dbt", "Airflow DAG run (its tasks, dags test) / plain dbt build", "<= 2x", airflow, "x",
               _check(airflow, lambda v: v <= 2)),
        Target("generator_vs_duckdb", "generator throughput / DuckDB generate+COPY", ">= 0.5x", generator, "x",
               _check(generator, lambda v: v >= 0.5)),
    ]  # fmt: skip
