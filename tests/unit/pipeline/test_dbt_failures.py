"""Which failed dbt builds are built again: dbt's JSON log read by ``failed_data_tests``, ecompipe-dbt's reasons."""

from __future__ import annotations

import json

from ecompipe.pipeline.lake_dbt import DATA_TESTS_REASON, RETRY_MARK, RetryPolicy, failed_data_tests, retry_reason

AUDIT_TEST = "test.ecommerce.assert_unusable_share_below_half.1a2b"


def _finished(unique_id: str, status: str) -> str:
    """A dbt result log line (--log-format json), as Cosmos's producer receives it."""
    resource_type = unique_id.split(".")[0]
    name = "LogTestResult" if resource_type == "test" else "LogModelResult"
    node_info = {"unique_id": unique_id, "node_status": status, "resource_type": resource_type}
    return json.dumps({"info": {"name": name, "level": "info"}, "data": {"node_info": node_info}})


def test_a_build_failing_only_on_data_tests_names_them() -> None:
    lines = [
        _finished("model.ecommerce.stg_raw__transactions", "success"),
        "a line that is not JSON",
        _finished(AUDIT_TEST, "fail"),
        _finished("model.ecommerce.fct_transactions", "skipped"),
    ]
    assert failed_data_tests(lines) == [AUDIT_TEST]


def test_an_error_anywhere_means_a_new_build_may_succeed() -> None:
    lines = [_finished(AUDIT_TEST, "fail"), _finished("model.ecommerce.fct_transactions", "error")]
    assert failed_data_tests(lines) == []
    assert failed_data_tests([_finished("model.ecommerce.fct_transactions", "error")]) == []
    assert failed_data_tests(["dbt was killed"]) == []  # no result at all: a killed or crashed build


def test_only_the_last_attempt_of_the_cluster_wrapper_counts() -> None:
    conflict = _finished("model.ecommerce.fct_transactions", "error")
    retried = f"{RETRY_MARK} transaction conflict: `dbt retry` again in 1.2 s (attempt 2)"
    assert failed_data_tests([conflict, retried, _finished(AUDIT_TEST, "fail")]) == [AUDIT_TEST]
    assert failed_data_tests([_finished(AUDIT_TEST, "fail"), retried, conflict]) == []


BUILD = ["build", "--vars", "{run_date: '2024-01-05'}", "--log-format", "json", "--target", "cluster"]
DATES = ["2024-01-05"]


def _none_doubled(dates: list[str]) -> int:
    return 0


def _doubled(dates: list[str]) -> int:
    return 3


def test_a_build_whose_test_caught_doubled_rolling_rows_is_built_again() -> None:
    failed = _finished(AUDIT_TEST, "fail")
    reason, _ = retry_reason(1, failed, BUILD, DATES, _doubled, tests_rebuilt=True)
    assert reason.startswith("rolling window rows doubled")
    assert retry_reason(0, "", BUILD, DATES, _doubled)[0].startswith("rolling window rows doubled")
    assert retry_reason(0, "", BUILD, DATES, _none_doubled) == ("", BUILD)


def test_failed_data_tests_are_built_once_more_then_stand() -> None:
    failed = _finished(AUDIT_TEST, "fail")
    reason, command = retry_reason(1, failed, BUILD, DATES, _none_doubled)
    assert reason.startswith("data tests failed") and command == BUILD
    assert retry_reason(1, failed, BUILD, DATES, _none_doubled, tests_rebuilt=True) == ("", BUILD)
    errored = _finished("model.ecommerce.fct_transactions", "error")  # no conflict in it: not retried
    assert retry_reason(1, errored, BUILD, DATES, _none_doubled) == ("", BUILD)


def test_tests_failing_after_a_conflict_get_their_one_rebuild() -> None:
    """A conflict, then the `dbt retry` fails a cross-date test (another date committed meanwhile):
    the whole build runs again once; the same failure after that stands."""
    conflict = 'Transaction conflict - attempting to insert into table with index "2"'
    policy = RetryPolicy(BUILD, DATES, _none_doubled)
    assert policy.after(1, conflict)[1][0] == "retry"
    assert policy.after(1, _finished(AUDIT_TEST, "fail")) == (DATA_TESTS_REASON, BUILD)
    assert policy.after(1, conflict)[1][0] == "retry"  # conflicts are retried whatever came before
    assert policy.after(1, _finished(AUDIT_TEST, "fail")) == ("", BUILD)


def test_a_conflict_reruns_what_failed_and_a_failed_hook_the_whole_command() -> None:
    conflict = 'Transaction conflict - attempting to insert into table with index "2"'
    reason, command = retry_reason(1, conflict, BUILD, DATES, _none_doubled)
    assert reason == "transaction conflict" and command[0] == "retry"
    reason, command = retry_reason(1, conflict + "\non-run-end failed", BUILD, DATES, _none_doubled)
    assert command == BUILD
