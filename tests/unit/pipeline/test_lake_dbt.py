"""ecompipe-dbt's reading of dbt command lines: which dates a command writes, what a retry reruns."""

from __future__ import annotations

import pytest

from ecompipe.core import lake
from ecompipe.core.dates import InvalidDateError
from ecompipe.pipeline.lake_dbt import CONFLICT, HOOK_FAILED, retry_command, scope_of

COSMOS = ["--log-format", "json", "--project-dir", "/tmp/p", "--profiles-dir", "/p", "--target", "cluster"]


def test_scope_of_a_cosmos_build_is_its_run_date() -> None:
    assert scope_of(["build", *COSMOS], {"PIPELINE_RUN_DATE": "2024-01-05"}) == ("dates", ["2024-01-05"])
    # A hand-run build's date vars win over the environment, as in dbt's run_scope macro.
    argv = ["build", "--vars", "run_date: '2024-01-07'\n", *COSMOS]
    assert scope_of(argv, {"PIPELINE_RUN_DATE": "2024-01-05"}) == ("dates", ["2024-01-07"])


def test_scope_of_a_range_is_every_date_and_of_a_full_refresh_everything() -> None:
    kind, days = scope_of(["build", "--vars", '{"start_date": "2024-02-27", "end_date": "2024-03-01"}'])
    assert (kind, days) == ("dates", ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"])
    assert scope_of(["build", "--full-refresh"]) == ("all", [])
    assert scope_of(["run", "--select", "x"], {}) == ("all", [])  # no scope: lock everything


def test_reading_commands_take_no_lock_and_bad_dates_are_refused() -> None:
    assert scope_of(["parse"]) == ("none", [])
    assert scope_of(["docs", "generate"]) == ("none", [])
    with pytest.raises(InvalidDateError):
        scope_of(["build", "--vars", "{run_date: '2024-02-30'}"])
    with pytest.raises(InvalidDateError):
        scope_of(["build"], {"PIPELINE_RUN_DATE": "2024-01-05/../x"})


def test_a_retry_keeps_where_and_how_but_not_the_selection() -> None:
    argv = ["build", "--vars", "{run_date: '2024-01-05'}", *COSMOS, "--select", "fct_transactions+"]
    assert retry_command(argv) == ["retry", "--vars", "{run_date: '2024-01-05'}", *COSMOS]


def test_conflicts_are_recognised() -> None:
    assert CONFLICT.search('Transaction conflict - attempting to insert into table with index "2"')
    assert CONFLICT.search('Catalog Error: Table with name "unique_x" already exists!')
    # DuckLake's own commit retries used up (seen with two workers building four dates at once).
    assert CONFLICT.search("Failed to commit DuckLake transaction.\nExceeded the maximum retry count of 10 set")
    assert not CONFLICT.search("Compilation Error in model x")
    assert HOOK_FAILED.search("1 of 1 ERROR hook: ecommerce.on-run-end.0")


def test_date_locks_are_sorted_and_distinct() -> None:
    keys = lake.date_lock_keys(["2024-01-03", "2024-01-01", "2024-01-03"])
    assert keys == [(lake.DATE_LOCK_NAMESPACE, 20240101), (lake.DATE_LOCK_NAMESPACE, 20240103)]
