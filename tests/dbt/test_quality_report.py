"""The per-date JSON quality report and dq_daily."""

from __future__ import annotations

import json

from ecompipe.pipeline.quality import report_path, write_report
from tests.helpers.sandbox import Pipeline


def test_report_lists_checks_and_row_accounting_and_is_idempotent(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", rows=300)
    pipeline.build("2024-01-01")
    path = write_report("2024-01-01")
    assert path == report_path("2024-01-01") == pipeline.data_dir / "logs/data_quality/2024-01-01/report.json"
    report = json.loads(path.read_text())
    assert report["date"] == "2024-01-01" and report["status"] == "pass"
    rows = report["rows"]
    assert rows["raw_rows"] == 300 and rows["unaccounted_rows"] == 0
    outcomes = rows["kept_rows"] + rows["duplicate_rows"] + rows["negative_price_rows"] + rows["price_above_max_rows"]
    assert outcomes + rows["non_positive_quantity_rows"] + rows["quarantined_rows"] + rows["rejected_rows"] == 300
    names = {check["check_name"] for check in report["checks"]}
    assert "row_conservation" in names and any(name.startswith("unique_fct_transactions") for name in names)
    first_bytes = path.read_bytes()

    pipeline.build("2024-01-01")  # rerun: same outcome, same report bytes
    assert write_report("2024-01-01").read_bytes() == first_bytes


def test_report_of_an_unprocessed_date_says_so(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", rows=200)
    pipeline.build("2024-01-01")
    report = json.loads(write_report("2024-01-09").read_text())
    assert report["status"] == "not_processed" and report["checks"] == []
