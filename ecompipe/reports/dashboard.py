"""The pipeline dashboard: one self-contained HTML page (PNG plots inlined) and the PNGs, from the warehouse.

``ecompipe dashboard`` (``make dashboard``) writes ``$PIPELINE_DATA_DIR/dashboard/``:
``index.html`` and one PNG per plot. The warehouse is opened read-only, for a moment. Every table is
optional: an empty warehouse, a half-built one, or none at all gives a page that says what is missing.

Sections, all per date:

* runs per partition date and their success rate, and run durations (``main.pipeline_runs``, the run
  registry; "no run registry yet" when it is absent);
* dates missing in the processed range (between the first and the last date loaded or run);
* each date's status, as ``make status`` gives it: loaded, changed since loaded, failed, no raw file,
  never run (from the first to the last date loaded, run or with a raw file), and what to do;
* row accounting: raw rows, kept, duplicates, invalid, quarantined, rejected
  (``int_partitions__row_accounting`` when present, else ``int_transactions__classified.row_status``);
* revenue and active customers (``agg_customer_daily``);
* quality checks: the latest outcome of each dbt test per date, and the ones not passing
  (``dbt_test_results``; a result with a NULL scope, a full refresh, covers every date).

Every number on the page is also in ``<script type="application/json" id="dashboard-data">``.

This module reads the numbers and draws the plots; the SQL is in ``queries/*.sql`` and the page in
``templates/dashboard.html.j2`` (Jinja2, autoescaped), both beside it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import io
import math
import statistics
from collections.abc import Callable, Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import jinja2
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.figure import Figure

from ecompipe.core.dates import date_range
from ecompipe.core.files import write_bytes_atomically
from ecompipe.core.warehouse import connect
from ecompipe.reports import status as partitions
from ecompipe.settings import data_dir, duckdb_path, get_settings

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
PAGE_TEMPLATE = "dashboard.html.j2"
# A pipeline task holds the warehouse for seconds: worth waiting for. A `make sql` shell holds it until
# it quits: then fail soon with the lock error rather than hang the command.
LOCK_WAIT_SECONDS = 15.0


def dashboard_dir() -> Path:
    return data_dir() / "dashboard"


# --------------------------------------------------------------------------------------------------
# Reading the warehouse


@functools.cache
def query(name: str) -> str:
    """The SQL of ``queries/<name>.sql`` (package data, so read through importlib.resources)."""
    return (resources.files(__package__) / "queries" / f"{name}.sql").read_text(encoding="utf-8")


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute(query("main_tables")).fetchall()}


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


def load_rows(con: duckdb.DuckDBPyConnection, tables: set[str]) -> tuple[str | None, list[Row]]:
    """(source table, per-date row accounting)."""
    if "int_partitions__row_accounting" in tables:
        return "int_partitions__row_accounting", fetch(con, query("rows_from_accounting"))
    if "int_transactions__classified" in tables:
        return "int_transactions__classified", fetch(con, query("rows_from_classified"))
    return None, []


def load_revenue(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[Row]:
    return fetch(con, query("revenue_per_day")) if "agg_customer_daily" in tables else []


def load_quality(con: duckdb.DuckDBPyConnection, tables: set[str], dates: list[str]) -> tuple[list[Row], list[Row]]:
    """(per date: tests passed / warned / failed, the latest results that did not pass)."""
    if "dbt_test_results" not in tables or not dates:
        return [], []
    latest = fetch(con, query("latest_tests_per_date"), [dates])
    per_date: dict[str, Row] = {day: {"date": day, "pass": 0, "warn": 0, "fail": 0} for day in dates}
    for result in latest:
        outcome = "pass" if result["status"] == "pass" else "warn" if result["status"] == "warn" else "fail"
        per_date[result["date"]][outcome] += 1
    quality = [row for row in per_date.values() if row["pass"] + row["warn"] + row["fail"] > 0]
    not_passing = [row for row in latest if row["status"] != "pass"]
    return quality, not_passing


def load_runs(con: duckdb.DuckDBPyConnection, tables: set[str]) -> list[Row] | None:
    """Every registered run, oldest first; None without a run registry."""
    if "pipeline_runs" not in tables:
        return None
    return fetch(con, query("pipeline_runs"))


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


def load_partition_status(con: duckdb.DuckDBPyConnection, loaded: list[str], runs: list[Row] | None) -> list[Row]:
    """Each date from the first to the last one loaded, run or with a raw file: its status (``make status``)."""
    known = sorted({*loaded, *(run["run_date"] for run in runs or [] if run["run_date"]), *partitions.raw_dates()})
    if not known:
        return []
    days = [day.isoformat() for day in date_range(known[0], known[-1])]
    return [dataclasses.asdict(row) for row in partitions.statuses(con, days)]


def status_counts(rows: list[Row]) -> dict[str, int]:
    """How many dates have each status, in ``partitions.STATUSES`` order, zeros left out."""
    counts = {name: sum(row["status"] == name for row in rows) for name in partitions.STATUSES}
    return {name: count for name, count in counts.items() if count}


def collect(warehouse: Path | None) -> Row:
    """Everything the page shows, JSON-ready. ``warehouse`` None: the cluster profile's DuckLake."""
    data: Row = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "warehouse": str(warehouse) if warehouse else "DuckLake (cluster profile)",
        "warehouse_exists": warehouse is None or warehouse.exists(),
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
        "partition_status": [],
        "status_counts": {},
        "status_next_steps": [],
        "errors": {},
    }
    if not data["warehouse_exists"]:
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

    with connect(warehouse, read_only=True, wait_seconds=LOCK_WAIT_SECONDS) as con:
        tables = existing_tables(con)
        data["tables"] = sorted(tables)
        data["rows_source"], data["rows"] = guarded("rows", lambda: load_rows(con, tables), (None, []))
        data["revenue"] = guarded("revenue", lambda: load_revenue(con, tables), [])
        loaded = [row["date"] for row in data["rows"]]
        data["quality"], data["quality_not_passing"] = guarded(
            "quality", lambda: load_quality(con, tables, loaded), ([], [])
        )
        runs = guarded("runs", lambda: load_runs(con, tables), None)
        data["partition_status"] = guarded("status", lambda: load_partition_status(con, loaded, runs), [])
    data["status_counts"] = status_counts(data["partition_status"])
    rows = [partitions.PartitionStatus(**row) for row in data["partition_status"]]
    data["status_next_steps"] = partitions.next_steps(rows)
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


def _counts_per_date(
    rows: list[Row], parts: Sequence[tuple[str, str]], keep_empty: Sequence[str], span: Span, ylabel: str, title: str
) -> tuple[Figure, Any]:
    """A figure of whole counts per date, stacked by ``parts``; returns it with its axes."""
    figure = _figure()
    ax = figure.add_subplot()
    _stacked_bars(ax, rows, parts, keep_empty)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _date_axis(ax, span)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    return figure, ax


def plot_runs(per_date: list[Row], span: Span) -> bytes:
    parts = [("success", "success"), ("failed", "failed"), ("skipped", "skipped")]
    title = "Runs per partition date (run_date), and success rate"
    figure, ax = _counts_per_date(per_date, parts, ["success"], span, "runs", title)
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
    parts = [("pass", "passed"), ("warn", "warned"), ("fail", "failed / error")]
    figure, ax = _counts_per_date(quality, parts, ["pass"], span, "dbt tests", "Latest dbt test outcome per date")
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
# HTML (the page itself is templates/dashboard.html.j2)


def format_number(value: object, decimals: int = 0) -> str:
    """Thousands separators; a dash for no value; anything else (a text) as it is."""
    if value is None:
        return "–"
    if isinstance(value, int | float):
        return f"{value:,.{decimals}f}"
    return str(value)


def format_percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def _or_blank(value: object) -> object:
    # Jinja would print None as "None"; an absent value is an empty cell.
    return "" if value is None else value


@functools.cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=True,  # test messages and error texts come from the warehouse: escape every value
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the render instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(number=format_number, percent=format_percent, or_blank=_or_blank)
    return environment


def render_html(data: Row, images: dict[str, bytes]) -> str:
    """The page: ``data`` from :func:`collect`, ``images`` from :func:`make_plots` (inlined as data URIs)."""
    encoded = {name: base64.b64encode(png).decode("ascii") for name, png in images.items()}
    return _templates().get_template(PAGE_TEMPLATE).render(data=data, images=encoded, recent_runs=RECENT_RUNS)


def write_dashboard(warehouse: Path | None = None, out_dir: Path | None = None) -> Path:
    """Write ``index.html`` and the PNGs to ``out_dir``; returns the HTML file's path."""
    if warehouse is None and get_settings().pipeline_profile != "cluster":
        warehouse = duckdb_path()  # the cluster profile reads the lake: connect(None) attaches it
    out_dir = out_dir or dashboard_dir()
    data = collect(warehouse)
    images = make_plots(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in images.items():
        write_bytes_atomically(out_dir / name, content)
    for stale in out_dir.glob("*.png"):
        if stale.name not in images:
            stale.unlink()
    index = out_dir / "index.html"
    # The page is written last: whoever has it open sees the new page only once its PNGs are in place.
    write_bytes_atomically(index, render_html(data, images).encode("utf-8"))
    return index
