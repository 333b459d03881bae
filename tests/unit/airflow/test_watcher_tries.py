"""Which failed builds the producer retries: dbt's JSON log read by ``failed_data_tests``."""

from __future__ import annotations

import json

from ecompipe.airflow.watcher_tries import WRAPPER_RETRY_MARK, failed_data_tests

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
    retried = f"{WRAPPER_RETRY_MARK} transaction conflict: `dbt retry` again in 1.2 s (attempt 2)"
    assert failed_data_tests([conflict, retried, _finished(AUDIT_TEST, "fail")]) == [AUDIT_TEST]
    assert failed_data_tests([_finished(AUDIT_TEST, "fail"), retried, conflict]) == []
