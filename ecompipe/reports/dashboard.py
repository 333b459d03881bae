"""The pipeline dashboard: one self-contained HTML page (PNG plots inlined) and the PNGs, from the warehouse.

``python scripts/make_dashboard.py`` (``make dashboard``) writes ``$PIPELINE_DATA_DIR/dashboard/``:
``index.html`` and one PNG per plot. The warehouse is opened read-only, for a moment. Every table is
optional: an empty warehouse, a half-built one, or none at all gives a page that says what is missing.

Sections, all per date:

* runs per partition date and their success rate, and run durations (``main.pipeline_runs``, the run
  registry; "no run registry yet" when it is absent);
* dates missing in the processed range (between the first and the last date loaded or run);
* row accounting: raw rows, kept, duplicates, invalid, quarantined, rejected
  (``int_partitions__row_accounting`` when present, else ``int_transactions__classified.row_status``);
* revenue and active customers (``agg_customer_daily``);
* quality checks: the latest outcome of each dbt test per date, and the ones not passing
  (``dbt_test_results``; a result with a NULL scope, a full refresh, covers every date).

Every number on the page is also in ``<script type="application/json" id="dashboard-data">``.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.figure import Figure

from ecompipe.settings import data_dir, duckdb_path

Row = dict[str, Any]

ROW_PARTS = ("kept", "duplicate", "invalid", "quarantined", "rejected")
COLORS = {
    "kept": "#2e7d32",
    "duplicate": "#f9a825",
    "invalid": "#c62828",
    "quarantined": "#6a1b9a",
    "rejected": "#546e7a",
    "success": "#2e7d32",
    "failed": "#c62828",
    "skipped": "#9e9e9e",
    "pass": "#2e7d32",
    "warn": "#f9a825",
    "fail": "#c62828",
    "revenue": "#1565c0",
    "customers": "#ef6c00",
    "missing": "#c62828",
}
RECENT_RUNS = 30
NO_REGISTRY = "No run registry yet (table main.pipeline_runs does not exist)."


def dashboard_dir() -> Path:
    return data_dir() / "dashboard"


# --------------------------------------------------------------------------------------------------
# Reading the warehouse


def connect(warehouse: Path, wait_seconds: float = 15.0) -> duckdb.DuckDBPyConnection:
    """A read-only connection; waits for a pipeline task holding the file to finish."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(warehouse), read_only=True)
        except duckdb.IOException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_name from information_schema.tables"
        " where table_catalog = current_database() and table_schema = 'main'"
    ).fetchall()
    return {row[0] for row in rows}


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> list[Row]:
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return [{name: _json_value(value) for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]


ROWS_FROM_ACCOUNTING = """
select
    partition_date as date,
    raw_rows as raw,
    kept_rows as kept,
    duplicate_rows as duplicate,
    negative_price_rows + price_above_max_rows + non_positive_quantity_rows as invalid,
    quarantined_rows as quarantined,
    rejected_rows as rejected,
from int_partitions__row_accounting
order by partition_date
"""

ROWS_FROM_CLASSIFIED = """
select
    partition_date as date,
    count(*) as raw,
    count(*) filter (row_status = 'kept') as kept,
    count(*) filter (row_status = 'duplicate') as duplicate,
    count(*) filter (row_status in ('negative_price', 'price_above_max', 'non_positive_quantity')) as invalid,
    count(*) filter (row_status = 'quarantined') as quarantined,
    0 as rejected,
from int_transactions__classified
group by partition_date
order by partition_date
"""


def load_rows(con: duckdb.DuckDBPyConnection, tables: set[str]) -> tuple[str | None, list[Row]]:
    """(source table, per-date row accounting)."""
    if "int_partitions__row_accounting" in tables:
        return "int_partitions__row_accounting", fetch(con, ROWS_FROM_ACCOUNTING)
    if "int_transactions__classified" in tables:
        return "int_transactions__classified", fetch(con, ROWS_FROM_CLASSIFIED)
    return None, []


REVENUE_SQL = """
select
    transaction_date as date,
    cast(sum(total_spent) as decimal(18, 2)) as revenue,
    count(distinct customer_id) as active_customers,
    sum(num_purchases)::bigint as transactions,
from agg_customer_daily
group by transaction_date
order by transaction_date
"""


def load_revenue(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[Row]:
    return fetch(con, REVENUE_SQL) if "agg_customer_daily" in tables else []


LATEST_TESTS_SQL = """
with dates as (select unnest(?::date[]) as date),
latest as (
    select dates.date, results.test_name, results.model_name, results.severity, results.status,
           results.failures, results.message, results.recorded_at,
    from dates
    join main.dbt_test_results as results
        on dates.date between coalesce(results.scope_start, dates.date) and coalesce(results.scope_end, dates.date)
    qualify row_number() over (partition by dates.date, results.test_name order by results.recorded_at desc) = 1
)
select * from latest order by date, test_name
"""


def load_quality(con: duckdb.DuckDBPyConnection, tables: set[str], dates: list[str]) -> tuple[list[Row], list[Row]]:
    """(per date: tests passed / warned / failed, the latest results that did not pass)."""
    if "dbt_test_results" not in tables or not dates:
        return [], []
    latest = fetch(con, LATEST_TESTS_SQL, [dates])
    per_date: dict[str, Row] = {day: {"date": day, "pass": 0, "warn": 0, "fail": 0} for day in dates}
    for result in latest:
        outcome = "pass" if result["status"] == "pass" else "warn" if result["status"] == "warn" else "fail"
        per_date[result["date"]][outcome] += 1
    quality = [row for row in per_date.values() if row["pass"] + row["warn"] + row["fail"] > 0]
    not_passing = [row for row in latest if row["status"] != "pass"]
    return quality, not_passing


RUNS_SQL = """
select
    run_date, run_id, run_type, status, started_at, ended_at,
    epoch(ended_at - started_at) as duration_s,
    rows_in, rows_kept, rows_quarantined,
from main.pipeline_runs
order by started_at nulls last, run_id
"""


def load_runs(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[Row] | None:
    """Every registered run, oldest first; None without a run registry."""
    if "pipeline_runs" not in tables:
        return None
    return fetch(con, RUNS_SQL)


def runs_per_date(runs: list[Row]) -> list[Row]:
    """Per run_date: runs by status and the success rate, success / (success + failed); skipped runs don't count."""
    per_date: dict[str, Row] = {}
    for run in runs:
        if not run["run_date"]:
            continue  # counted in the totals, not per date
        day = per_date.setdefault(
            run["run_date"], {"date": run["run_date"], "runs": 0, "success": 0, "failed": 0, "skipped": 0, "other": 0}
        )
        day["runs"] += 1
        day[run["status"] if run["status"] in ("success", "failed", "skipped") else "other"] += 1
    for day in per_date.values():
        decided = day["success"] + day["failed"]
        day["success_rate"] = round(day["success"] / decided, 4) if decided else None
    return [per_date[key] for key in sorted(per_date)]


def run_totals(runs: list[Row]) -> Row:
    success = sum(run["status"] == "success" for run in runs)
    failed = sum(run["status"] == "failed" for run in runs)
    durations = [run["duration_s"] for run in runs if run["duration_s"] is not None]
    return {
        "runs": len(runs),
        "success": success,
        "failed": failed,
        "skipped": sum(run["status"] == "skipped" for run in runs),
        "success_rate": round(success / (success + failed), 4) if success + failed else None,
        "median_duration_s": statistics.median(durations) if durations else None,
        "max_duration_s": max(durations) if durations else None,
    }


def missing_dates(loaded: list[str], runs: list[Row] | None) -> tuple[list[str] | None, list[Row]]:
    """(processed range [first, last] over loaded and run dates, dates in it with no data loaded)."""
    run_dates = {run["run_date"] for run in runs or [] if run["run_date"]}
    known = sorted(set(loaded) | run_dates)
    if not known:
        return None, []
    first, last = dt.date.fromisoformat(known[0]), dt.date.fromisoformat(known[-1])
    have = set(loaded)
    latest_run = {run["run_date"]: run for run in runs or []}  # runs are sorted oldest first
    missing = []
    for offset in range((last - first).days + 1):
        day = (first + dt.timedelta(days=offset)).isoformat()
        if day not in have:
            run = latest_run.get(day)
            missing.append({"date": day, "latest_run_status": run["status"] if run else None})
    return [known[0], known[-1]], missing


def collect(warehouse: Path) -> Row:
    """Everything the page shows, JSON-ready."""
    data: Row = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "warehouse": str(warehouse),
        "warehouse_exists": warehouse.exists(),
        "tables": [],
        "rows_source": None,
        "rows": [],
        "revenue": [],
        "quality": [],
        "quality_not_passing": [],
        "runs": None,
        "runs_per_date": None,
        "run_totals": None,
        "processed_range": None,
        "missing_dates": [],
        "errors": {},
    }
    if not warehouse.exists():
        return data
    errors: dict[str, str] = data["errors"]

    def guarded(section: str, load: Callable[[], Any], fallback: Any) -> Any:
        # A table with an unexpected shape (a registry being developed, an old warehouse) costs its
        # section, not the page.
        try:
            return load()
        except duckdb.Error as exc:
            errors[section] = str(exc).splitlines()[0]
            return fallback

    with connect(warehouse) as con:
        tables = existing_tables(con)
        data["tables"] = sorted(tables)
        data["rows_source"], data["rows"] = guarded("rows", lambda: load_rows(con, tables), (None, []))
        data["revenue"] = guarded("revenue", lambda: load_revenue(con, tables), [])
        loaded = [row["date"] for row in data["rows"]]
        data["quality"], data["quality_not_passing"] = guarded(
            "quality", lambda: load_quality(con, tables, loaded), ([], [])
        )
        runs = guarded("runs", lambda: load_runs(con, tables), None)
    if runs is not None:
        data["runs"] = runs
        data["runs_per_date"] = runs_per_date(runs)
        data["run_totals"] = run_totals(runs)
    data["processed_range"], data["missing_dates"] = missing_dates(loaded, runs)
    return data


# --------------------------------------------------------------------------------------------------
# Plots (matplotlib's object API: no pyplot, no global backend state)


Span = tuple[dt.date, dt.date]


def _dates(rows: list[Row], key: str = "date") -> list[dt.date]:
    return [dt.date.fromisoformat(row[key]) for row in rows]


def _figure(height: float = 3.4) -> Figure:
    return Figure(figsize=(11, height), dpi=100, layout="constrained")


def _date_axis(ax: Any, span: Span) -> None:
    """One tick per day (or per few days on long ranges), the same x range on every plot."""
    first, last = span
    days = (last - first).days + 1
    margin = dt.timedelta(hours=14)  # bars are 0.8 day wide, centred on their date
    ax.set_xlim(dt.datetime.combine(first, dt.time()) - margin, dt.datetime.combine(last, dt.time()) + margin)
    locator = mdates.DayLocator(interval=max(1, -(-days // 14)))
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d" if first.year == last.year else "%Y-%m-%d"))
    _tidy(ax)


def _tidy(ax: Any) -> None:
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))


def _legend_right(ax: Any, handles: list[Any] | None = None, labels: list[str] | None = None) -> None:
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.06, 1.0), fontsize="small", frameon=False)


def _stacked_bars(ax: Any, rows: list[Row], parts: Sequence[tuple[str, str]], keep_empty: Sequence[str] = ()) -> None:
    days = _dates(rows)
    bottom = [0.0] * len(rows)
    for key, label in parts:
        heights = [row[key] for row in rows]
        if any(heights) or key in keep_empty:
            ax.bar(days, heights, bottom=bottom, width=0.8, color=COLORS[key], label=label)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]


def _line_over_span(rows: list[Row], key: str, span: Span, scale: float = 1.0) -> tuple[list[dt.date], list[float]]:
    """Every date of the span, NaN where ``rows`` has no value: the line breaks at a missing date."""
    values = {row["date"]: row[key] for row in rows if row[key] is not None}
    days = [span[0] + dt.timedelta(days=n) for n in range((span[1] - span[0]).days + 1)]
    return days, [values[day.isoformat()] * scale if day.isoformat() in values else math.nan for day in days]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def plot_runs(per_date: list[Row], span: Span) -> bytes:
    figure = _figure()
    ax = figure.add_subplot()
    _stacked_bars(ax, per_date, [("success", "success"), ("failed", "failed"), ("skipped", "skipped")], ["success"])
    ax.set_ylabel("runs")
    ax.set_title("Runs per partition date (run_date), and success rate")
    _date_axis(ax, span)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    rate = ax.twinx()
    rate.plot(*_line_over_span(per_date, "success_rate", span, 100), "o-", color="black", label="success rate")
    rate.set_ylim(0, 105)
    rate.set_ylabel("success rate, %")
    rate.spines[["top"]].set_visible(False)
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = rate.get_legend_handles_labels()
    _legend_right(rate, handles + more_handles, labels + more_labels)
    return _png(figure)


def plot_rows(rows: list[Row], missing: list[Row], span: Span) -> bytes:
    figure = _figure()
    ax = figure.add_subplot()
    _stacked_bars(ax, rows, [(part, part) for part in ROW_PARTS], ["kept"])
    ax.plot(_dates(rows), [row["raw"] for row in rows], "_", color="black", markersize=16, mew=2, label="raw rows")
    if missing:
        days = _dates(missing)
        ax.plot(days, [0] * len(days), "x", color=COLORS["missing"], markersize=10, mew=2, label="missing date")
    ax.set_ylabel("rows")
    ax.set_title("Raw rows per partition date: kept and dropped")
    ax.set_ylim(0, max([row["raw"] for row in rows] + [1]) * 1.1)
    _date_axis(ax, span)
    _legend_right(ax)
    return _png(figure)


def plot_revenue(revenue: list[Row], span: Span) -> bytes:
    figure = _figure(4.6)
    top, bottom = figure.subplots(2, 1, sharex=True)
    days = _dates(revenue)
    top.bar(days, [row["revenue"] for row in revenue], width=0.8, color=COLORS["revenue"], label="revenue")
    top.set_ylabel("revenue")
    top.set_title("Revenue and active customers per day")
    customers = _line_over_span(revenue, "active_customers", span)
    bottom.plot(*customers, "o-", color=COLORS["customers"], label="active customers")
    bottom.set_ylabel("active customers")
    bottom.set_ylim(0, max(row["active_customers"] for row in revenue) * 1.15 + 1)
    for ax in (top, bottom):
        _date_axis(ax, span)
        _legend_right(ax)
    return _png(figure)


def plot_quality(quality: list[Row], span: Span) -> bytes:
    figure = _figure()
    ax = figure.add_subplot()
    _stacked_bars(ax, quality, [("pass", "passed"), ("warn", "warned"), ("fail", "failed / error")], ["pass"])
    ax.set_ylabel("dbt tests")
    ax.set_title("Latest dbt test outcome per date")
    _date_axis(ax, span)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    _legend_right(ax)
    return _png(figure)


def plot_durations(runs: list[Row]) -> bytes:
    timed = [run for run in runs if run["duration_s"] is not None]
    figure = _figure()
    ax = figure.add_subplot()
    positions = list(range(len(timed)))
    for status in ("success", "failed", "skipped"):
        chosen = [(x, run) for x, run in zip(positions, timed, strict=True) if run["status"] == status]
        if chosen:
            heights = [run["duration_s"] for _, run in chosen]
            ax.bar([x for x, _ in chosen], heights, color=COLORS[status], label=status)
    step = max(1, -(-len(timed) // 20))
    labels = [f"{run['run_date']}\n{run['run_type'] or ''}" for run in timed]
    ax.set_xticks(positions[::step], labels[::step])
    ax.tick_params(axis="x", labelsize="small")
    ax.set_ylabel("seconds")
    ax.set_title("Run durations, oldest run first (label: run_date, run type)")
    _tidy(ax)
    _legend_right(ax)
    return _png(figure)


def make_plots(data: Row) -> dict[str, bytes]:
    """PNG bytes per file name, for the sections that have data."""
    if data["processed_range"] is None:
        return {}
    span = (dt.date.fromisoformat(data["processed_range"][0]), dt.date.fromisoformat(data["processed_range"][1]))
    plots: dict[str, Callable[[], bytes]] = {}
    if data["runs_per_date"]:
        plots["runs.png"] = lambda: plot_runs(data["runs_per_date"], span)
    if data["rows"]:
        plots["rows.png"] = lambda: plot_rows(data["rows"], data["missing_dates"], span)
    if data["revenue"]:
        plots["revenue.png"] = lambda: plot_revenue(data["revenue"], span)
    if data["quality"]:
        plots["quality.png"] = lambda: plot_quality(data["quality"], span)
    if data["runs"] and any(run["duration_s"] is not None for run in data["runs"]):
        plots["durations.png"] = lambda: plot_durations(data["runs"])
    return {name: draw() for name, draw in plots.items()}


# --------------------------------------------------------------------------------------------------
# HTML

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #212121;
       background: #f5f5f5; }
header { background: #263238; color: #fff; padding: 16px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #b0bec5; font-size: 13px; }
main { padding: 16px 32px 48px; max-width: 1200px; }
section { background: #fff; border-radius: 6px; padding: 16px 20px; margin: 16px 0;
          box-shadow: 0 1px 2px rgba(0,0,0,.1); }
h2 { font-size: 17px; margin: 0 0 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border-radius: 6px; padding: 10px 16px; min-width: 140px;
        box-shadow: 0 1px 2px rgba(0,0,0,.1); }
.card .value { font-size: 22px; font-weight: 600; }
.card .label { font-size: 12px; color: #616161; }
.empty { color: #616161; font-style: italic; }
.bad { color: #c62828; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e0e0e0; text-align: right; }
th { background: #fafafa; }
td.text, th.text { text-align: left; }
details summary { cursor: pointer; font-size: 13px; color: #1565c0; margin-top: 6px; }
"""

SCRIPT = """
(function () {
  var root = document.documentElement;
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);
  root.dataset.loadedDates = String(data.rows.length);
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    root.dataset.imagesOk = String(images.every(function (img) { return img.complete && img.naturalWidth > 0; }));
    root.dataset.rendered = "ok";
  });
})();
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _number(value: object, decimals: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, int | float):
        return f"{value:,.{decimals}f}"
    return _e(value)


def _card(label: str, value: str, metric: str) -> str:
    return (
        f'<div class="card" data-metric="{metric}"><div class="value">{value}</div>'
        f'<div class="label">{_e(label)}</div></div>'
    )


def _table(columns: list[tuple[str, str, int | None]], rows: list[Row], row_class: str = "") -> str:
    """columns: (key, header, decimals or None for text)."""
    head = "".join(f'<th class="{"text" if d is None else ""}">{_e(h)}</th>' for _, h, d in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="text">{_e(row[k])}</td>' if d is None else f"<td>{_number(row[k], d)}</td>"
            for k, _, d in columns
        )
        body.append(f'<tr class="{row_class}" data-date="{_e(row.get("date", ""))}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(name: str, images: dict[str, bytes], alt: str) -> str:
    if name not in images:
        return ""
    encoded = base64.b64encode(images[name]).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{_e(alt)}" data-file="{name}">'


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{_e(title)}</h2>{body}</section>'


def _errors(data: Row) -> str:
    if not data["errors"]:
        return ""
    items = "".join(f"<li><b>{_e(section)}</b>: {_e(error)}</li>" for section, error in sorted(data["errors"].items()))
    return _section("errors", "Could not read", f'<ul class="bad">{items}</ul>')


def _empty(message: str) -> str:
    return f'<p class="empty">{_e(message)}</p>'


def _details(summary: str, table: str) -> str:
    return f"<details><summary>{_e(summary)}</summary>{table}</details>"


def _cards(data: Row) -> str:
    rows, revenue, totals = data["rows"], data["revenue"], data["run_totals"]
    cards = [
        _card("dates loaded", _number(len(rows)), "dates_loaded"),
        _card("missing dates", _number(len(data["missing_dates"])), "missing_dates"),
        _card("raw rows", _number(sum(row["raw"] for row in rows)), "raw_rows"),
        _card("kept rows", _number(sum(row["kept"] for row in rows)), "kept_rows"),
        _card("revenue", _number(sum(row["revenue"] for row in revenue), 2), "revenue"),
        _card("tests not passing (latest)", _number(len(data["quality_not_passing"])), "tests_not_passing"),
    ]
    if totals:
        rate = totals["success_rate"]
        cards.append(_card("runs", _number(totals["runs"]), "runs"))
        cards.append(_card("run success rate", "–" if rate is None else f"{rate * 100:.1f} %", "success_rate"))
    return f'<div class="cards">{"".join(cards)}</div>'


def _no_registry(data: Row) -> str:
    if "runs" in data["errors"]:
        return f"The run registry (main.pipeline_runs) could not be read: {data['errors']['runs']}"
    return NO_REGISTRY


def _runs_section(data: Row, images: dict[str, bytes]) -> str:
    if data["runs"] is None:
        return _section("runs", "Runs", _empty(_no_registry(data)))
    if not data["runs"]:
        return _section("runs", "Runs", _empty("The run registry is empty: no run recorded yet."))
    table = _table(
        [("date", "run_date", None), ("runs", "runs", 0), ("success", "success", 0), ("failed", "failed", 0),
         ("skipped", "skipped", 0), ("success_rate", "success rate", 2)],
        data["runs_per_date"],
    )  # fmt: skip
    note = "<p>Success rate = success / (success + failed); skipped runs are not counted.</p>"
    return _section(
        "runs", "Runs per day", note + _image("runs.png", images, "runs per day") + _details("table", table)
    )


def _missing_section(data: Row) -> str:
    if data["processed_range"] is None:
        return _section("missing", "Missing dates", _empty("No data yet: no date loaded or run."))
    first, last = data["processed_range"]
    if not data["missing_dates"]:
        return _section(
            "missing", "Missing dates", f"<p>None: every date from {_e(first)} to {_e(last)} is loaded.</p>"
        )
    table = _table([("date", "date", None), ("latest_run_status", "latest run", None)], data["missing_dates"], "bad")
    intro = f'<p class="bad">{len(data["missing_dates"])} date(s) between {_e(first)} and {_e(last)} have no data:</p>'
    return _section("missing", "Missing dates", intro + table)


def _rows_section(data: Row, images: dict[str, bytes]) -> str:
    if not data["rows"]:
        return _section("rows", "Rows per date", _empty("No data yet: no partition has been processed."))
    table = _table(
        [("date", "date", None), ("raw", "raw", 0), ("kept", "kept", 0), ("duplicate", "duplicates", 0),
         ("invalid", "invalid", 0), ("quarantined", "quarantined", 0), ("rejected", "rejected", 0)],
        data["rows"],
    )  # fmt: skip
    note = (
        f"<p>From <code>{_e(data['rows_source'])}</code>. Invalid: negative price, price above the maximum or "
        "quantity &le; 0; quarantined: unusable values; rejected: malformed CSV lines.</p>"
    )
    return _section(
        "rows",
        "Rows per date: raw, kept, dropped",
        note + _image("rows.png", images, "rows") + _details("table", table),
    )


def _revenue_section(data: Row, images: dict[str, bytes]) -> str:
    if not data["revenue"]:
        return _section(
            "revenue", "Revenue and customers", _empty("No data yet: agg_customer_daily is empty or absent.")
        )
    table = _table(
        [("date", "date", None), ("revenue", "revenue", 2), ("active_customers", "active customers", 0),
         ("transactions", "transactions", 0)],
        data["revenue"],
    )  # fmt: skip
    body = _image("revenue.png", images, "revenue and customers") + _details("table", table)
    return _section("revenue", "Revenue and active customers per day", body)


def _quality_section(data: Row, images: dict[str, bytes]) -> str:
    if not data["quality"]:
        return _section("quality", "Quality checks", _empty("No dbt test results recorded yet (dbt_test_results)."))
    not_passing = data["quality_not_passing"]
    if not_passing:
        listing = _table(
            [("date", "date", None), ("test_name", "test", None), ("model_name", "model", None),
             ("severity", "severity", None), ("status", "status", None), ("failures", "failing rows", 0),
             ("message", "message", None)],
            not_passing,
            "bad",
        )  # fmt: skip
        listing = f'<p class="bad">{len(not_passing)} latest test result(s) not passing:</p>{listing}'
    else:
        listing = "<p>Every date's latest dbt test results pass.</p>"
    table = _table(
        [("date", "date", None), ("pass", "passed", 0), ("warn", "warned", 0), ("fail", "failed", 0)], data["quality"]
    )
    return _section(
        "quality",
        "Quality checks (dbt tests)",
        _image("quality.png", images, "quality") + listing + _details("table", table),
    )


def _durations_section(data: Row, images: dict[str, bytes]) -> str:
    if data["runs"] is None:
        return _section("durations", "Run durations", _empty(_no_registry(data)))
    if not data["runs"]:
        return _section("durations", "Run durations", _empty("No run recorded yet."))
    totals = data["run_totals"]
    summary = (
        f"<p>Median {_number(totals['median_duration_s'], 1)} s, longest {_number(totals['max_duration_s'], 1)} s. "
        f"The {min(RECENT_RUNS, len(data['runs']))} most recent runs:</p>"
    )
    recent = list(reversed(data["runs"]))[:RECENT_RUNS]
    table = _table(
        [("run_id", "run", None), ("run_date", "run_date", None), ("run_type", "type", None),
         ("status", "status", None), ("started_at", "started", None), ("duration_s", "seconds", 1),
         ("rows_in", "rows in", 0), ("rows_kept", "kept", 0), ("rows_quarantined", "quarantined", 0)],
        recent,
    )  # fmt: skip
    return _section("durations", "Run durations", _image("durations.png", images, "run durations") + summary + table)


def _data_block(data: Row) -> str:
    # `<` escaped: no "</script>" can end the block early, whatever a test message contains.
    payload = json.dumps(data, sort_keys=True).replace("<", "\\u003c")
    return f'<script type="application/json" id="dashboard-data">{payload}</script>'


def render_html(data: Row, images: dict[str, bytes]) -> str:
    if not data["warehouse_exists"]:
        sections = _section(
            "no-data",
            "No data yet",
            _empty(f"No warehouse at {data['warehouse']}: run the pipeline first (make demo, or make backfill)."),
        )
    else:
        notice = ""
        if data["processed_range"] is None:
            notice = _section(
                "no-data",
                "No data yet",
                _empty("The warehouse has no processed partition and no recorded run yet: run the pipeline first."),
            )
        sections = "".join(
            [
                notice,
                _errors(data),
                _cards(data),
                _runs_section(data, images),
                _missing_section(data),
                _rows_section(data, images),
                _revenue_section(data, images),
                _quality_section(data, images),
                _durations_section(data, images),
            ]
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Pipeline dashboard</title><style>{STYLE}</style></head><body>"
        f"<header><h1>E-commerce pipeline dashboard</h1><p>Generated {_e(data['generated_at'])} from "
        f"{_e(data['warehouse'])}</p></header><main>{sections}</main>"
        f"{_data_block(data)}<script>{SCRIPT}</script></body></html>\n"
    )


def _write_atomically(path: Path, content: bytes) -> None:
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_bytes(content)
    os.replace(staged, path)


def write_dashboard(warehouse: Path | None = None, out_dir: Path | None = None) -> Path:
    """Write ``index.html`` and the PNGs to ``out_dir``; returns the HTML file's path."""
    warehouse = warehouse or duckdb_path()
    out_dir = out_dir or dashboard_dir()
    data = collect(warehouse)
    images = make_plots(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in images.items():
        _write_atomically(out_dir / name, content)
    for stale in out_dir.glob("*.png"):
        if stale.name not in images:
            stale.unlink()
    index = out_dir / "index.html"
    _write_atomically(index, render_html(data, images).encode("utf-8"))
    return index
