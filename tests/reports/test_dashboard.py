"""The pipeline dashboard: its numbers equal SQL on the warehouse; it renders in Chromium; empty states."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from ecompipe.reports.dashboard import write_dashboard
from tests.helpers.browser import console_messages, needs_chromium, run_chromium
from tests.helpers.sandbox import Pipeline

RUNS_DDL = """
create table main.pipeline_runs (
    run_date date, run_id varchar, run_type varchar, started_at timestamp, ended_at timestamp, status varchar,
    rows_in bigint, rows_kept bigint, rows_quarantined bigint, output_paths varchar, dbt_summary varchar
)
"""
# (run_date, run_id, run_type, started_at, ended_at, status): 01-02 never loaded (its one run failed),
# 01-03 failed then succeeded on a rerun.
RUNS = [
    ("2024-01-01", "scheduled__1", "scheduled", "2024-01-02 02:00:00", "2024-01-02 02:01:05", "success"),
    ("2024-01-02", "scheduled__2", "scheduled", "2024-01-03 02:00:00", "2024-01-03 02:00:20", "failed"),
    ("2024-01-03", "scheduled__3", "scheduled", "2024-01-04 02:00:00", "2024-01-04 02:00:30", "failed"),
    ("2024-01-03", "manual__3", "manual", "2024-01-04 09:00:00", "2024-01-04 09:01:40", "success"),
]


def _embedded_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', page, re.S)
    assert match, "the page carries its numbers as JSON"
    return json.loads(match.group(1))


def _card(page: str, metric: str) -> str:
    match = re.search(rf'data-metric="{metric}"><div class="value">([^<]*)</div>', page)
    assert match, metric
    return match.group(1)


def _sql(warehouse: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(query).fetchall()


@dataclass
class Built:
    pipeline: Pipeline
    index: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Two partitions with a gap, loaded by one full refresh (test results with a NULL scope cover both),
    a run registry filled by hand, and the dashboard written from that warehouse."""
    root = tmp_path_factory.mktemp("dashboard")
    pipeline = Pipeline(data_dir=root / "data", work_dir=root / "work")
    pipeline.generate("2024-01-01", "2024-01-03", rows=150)
    pipeline.dbt("build", "--full-refresh")
    with duckdb.connect(str(pipeline.warehouse)) as con:
        con.execute(RUNS_DDL)
        for run in RUNS:
            con.execute("insert into main.pipeline_runs values (?, ?, ?, ?, ?, ?, 150, 140, 0, null, null)", list(run))
    return Built(pipeline, write_dashboard(pipeline.warehouse, root / "dashboard"))


def test_dashboard_numbers_match_the_warehouse(built: Built) -> None:
    pipeline, index = built.pipeline, built.index
    page = index.read_text()
    data = _embedded_data(page)
    # Rows per date: the classification of every staged row, and nothing unaccounted.
    expected_rows = _sql(
        pipeline.warehouse,
        """select partition_date::varchar, count(*) filter (row_status = 'kept'),
                  count(*) filter (row_status = 'duplicate'),
                  count(*) filter (row_status in ('negative_price', 'price_above_max', 'non_positive_quantity')),
                  count(*) filter (row_status = 'quarantined')
           from int_transactions__classified group by all order by 1""",
    )
    shown_rows = [(r["date"], r["kept"], r["duplicate"], r["invalid"], r["quarantined"]) for r in data["rows"]]
    assert shown_rows == expected_rows
    assert [r["date"] for r in data["rows"]] == ["2024-01-01", "2024-01-03"]
    for row in data["rows"]:
        assert row["raw"] == sum(row[part] for part in ("kept", "duplicate", "invalid", "quarantined", "rejected"))
    assert _card(page, "raw_rows") == f"{sum(r['raw'] for r in data['rows']):,}"

    # Revenue and active customers per day, from the clean transactions.
    expected_revenue = _sql(
        pipeline.warehouse,
        "select transaction_date::varchar, sum(total_amount)::double, count(distinct customer_id)"
        " from fct_transactions group by all order by 1",
    )
    shown_revenue = [(r["date"], r["revenue"], r["active_customers"]) for r in data["revenue"]]
    assert [(d, round(v, 2), c) for d, v, c in shown_revenue] == [(d, round(v, 2), c) for d, v, c in expected_revenue]
    assert _card(page, "revenue") == f"{sum(v for _, v, _ in expected_revenue):,.2f}"

    # Missing dates: 2024-01-02 is in the processed range, never loaded, and its run failed.
    assert data["processed_range"] == ["2024-01-01", "2024-01-03"]
    assert data["missing_dates"] == [{"date": "2024-01-02", "latest_run_status": "failed"}]
    assert 'data-date="2024-01-02"' in page

    # Quality: every recorded test covers both dates (full refresh).
    (tests, failing) = _sql(
        pipeline.warehouse,
        "select count(distinct test_name), count(distinct test_name) filter (status in ('fail', 'error', 'warn'))"
        " from dbt_test_results",
    )[0]
    assert tests > 0
    for day in data["quality"]:
        assert day["pass"] + day["warn"] + day["fail"] == tests
        assert day["warn"] + day["fail"] == failing
    assert [day["date"] for day in data["quality"]] == ["2024-01-01", "2024-01-03"]

    # Runs: per run_date, success rate over success + failed, durations.
    per_date = {row["date"]: row for row in data["runs_per_date"]}
    assert (per_date["2024-01-03"]["runs"], per_date["2024-01-03"]["success_rate"]) == (2, 0.5)
    assert (per_date["2024-01-02"]["failed"], per_date["2024-01-02"]["success_rate"]) == (1, 0.0)
    assert data["run_totals"]["runs"] == 4 and data["run_totals"]["success_rate"] == 0.5
    assert _card(page, "success_rate") == "50.0 %"
    durations = _sql(pipeline.warehouse, "select epoch(ended_at - started_at) from pipeline_runs order by started_at")
    assert [run["duration_s"] for run in data["runs"]] == [row[0] for row in durations] == [65, 20, 30, 100]

    # The PNGs are written beside the page and embedded in it.
    pngs = sorted(path.name for path in index.parent.glob("*.png"))
    assert pngs == ["durations.png", "quality.png", "revenue.png", "rows.png", "runs.png"]
    for name in pngs:
        encoded = base64.b64encode((index.parent / name).read_bytes()).decode()
        assert f'src="data:image/png;base64,{encoded}"' in page
    assert not re.search(r'(src|href)="(?!data:)', page), "self-contained: no external resource"


@needs_chromium
def test_chromium_renders_the_dashboard_without_console_errors(built: Built) -> None:
    """The page's own script parses its JSON and checks every image decoded; the console stays silent."""
    work = built.index.parent.parent
    dom, log = run_chromium(built.index.as_uri(), work, screenshot=work / "dashboard.png", window="1400,3000")
    assert not console_messages(log), console_messages(log)
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-rendered="ok"' in root and 'data-images-ok="true"' in root and 'data-loaded-dates="2"' in root, root
    assert "2024-01-02" in dom and "Run durations" in dom


def test_no_warehouse_gives_a_no_data_page(tmp_path: Path) -> None:
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    index = write_dashboard(warehouse, tmp_path / "dashboard")
    page = index.read_text()
    assert "No data yet" in page and f"No warehouse at {warehouse}" in page
    assert _embedded_data(page)["warehouse_exists"] is False
    assert not warehouse.exists() and not list(index.parent.glob("*.png"))


def test_a_partly_built_warehouse_gives_clear_empty_sections(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create table dbt_test_results (scope_start date, scope_end date, test_name varchar, status varchar)"
        )
    out = tmp_path / "dashboard"
    out.mkdir()
    (out / "rows.png").write_bytes(b"stale")
    page = write_dashboard(warehouse, out).read_text()
    assert "No data yet" in page and "No run registry yet" in page and "No dbt test results recorded yet" in page
    assert not (out / "rows.png").exists(), "plots of a previous run that no longer apply are removed"


def test_an_empty_run_registry_is_said_so(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(RUNS_DDL)
    page = write_dashboard(warehouse, tmp_path / "dashboard").read_text()
    assert "The run registry is empty" in page and "No run registry yet" not in page


@needs_chromium
def test_make_dashboard_script_writes_the_empty_page_and_it_renders(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"PIPELINE_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    completed = subprocess.run([sys.executable, "-m", "ecompipe", "dashboard"], env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    index = data_dir / "dashboard" / "index.html"
    assert f"Dashboard: {index}" in completed.stdout
    dom, log = run_chromium(index.as_uri(), tmp_path, screenshot=tmp_path / "empty.png", window="1200,700")
    assert not console_messages(log), console_messages(log)
    assert 'data-rendered="ok"' in dom and "No data yet" in dom


def test_a_run_registry_of_another_shape_costs_its_section_only(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table main.pipeline_runs (run_date date, status varchar)")
    page = write_dashboard(warehouse, tmp_path / "dashboard").read_text()
    assert "The run registry (main.pipeline_runs) could not be read" in page
    assert "runs" in _embedded_data(page)["errors"]


def test_the_status_section_is_make_status_for_the_whole_range(pipeline: Pipeline, tmp_path: Path) -> None:
    """Each date from the first to the last one loaded, run or with a raw file, as `make status` gives
    it, with the command that mends the failed ones."""
    from ecompipe.pipeline.run_registry import RunRecord, record_run
    from ecompipe.reports.status import partition_status

    pipeline.generate("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-06", rows=120)
    pipeline.build("2024-01-01")
    record_run(RunRecord("2024-01-01", "scheduled__2024-01-01", "scheduled", None, None, "success"))
    record_run(RunRecord("2024-01-02", "scheduled__2024-01-02", "scheduled", None, None, "failed"))
    page = write_dashboard(pipeline.warehouse, tmp_path / "dashboard").read_text()
    data = _embedded_data(page)
    expected = [row.__dict__ for row in partition_status("2024-01-01", "2024-01-06", pipeline.warehouse)]
    assert data["partition_status"] == expected
    assert [(row["partition_date"], row["status"]) for row in expected] == [
        ("2024-01-01", "loaded"),
        ("2024-01-02", "failed"),
        ("2024-01-03", "never run"),
        ("2024-01-04", "no raw file"),
        ("2024-01-05", "no raw file"),
        ("2024-01-06", "never run"),
    ]
    assert data["status_counts"] == {"loaded": 1, "failed": 1, "no raw file": 2, "never run": 2}
    assert '<span data-status="failed">1 failed</span>' in page
    assert "make backfill START=2024-01-01 END=2024-01-06 REPROCESS=failed" in page
