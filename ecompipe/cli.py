"""``ecompipe``: the project's one command line (the make targets call it; ``ecompipe --help`` lists it all).

Also ``python -m ecompipe``. An error the project raises for its users (a bad date or setting, an
Airflow that cannot do what was asked, an error answer of Airflow's API) is printed without a
traceback and exits with 2; a command that ran but failed exits with 1.

The modules behind the commands are imported when a command runs: ``ecompipe generate`` does not pay
for the Airflow client, nor ``ecompipe airflow status`` for the generator.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path
from types import ModuleType

import click

from ecompipe.core.dates import date_range

HELP = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _user_error(error: Exception) -> str | None:
    """The message of an error the project raises for its users, or None (a bug: let it show its traceback)."""
    from ecompipe.core.lake import LakeError
    from ecompipe.core.warehouse import WarehouseLockedError

    # ValueError: the project's checks of what it was given (InvalidDateError, SettingsError, the
    # bulk plan's limits). The Airflow side's errors can only come once that module is loaded.
    if isinstance(error, ValueError | WarehouseLockedError | LakeError):
        return str(error)
    local_airflow = sys.modules.get("ecompipe.local_airflow")
    return local_airflow.describe_error(error) if local_airflow else None


def run(command: click.Command, argv: list[str] | None = None, prog_name: str | None = None) -> int:
    """Run a click command; the project's own errors become a one-line message and exit code 2."""
    try:
        result = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        click.echo(f"error: {message}", err=True)
        return 2
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> int:
    """The ``ecompipe`` console script (and ``python -m ecompipe``)."""
    return run(cli, argv)


@click.group(context_settings=HELP)
def cli() -> None:
    """The e-commerce pipeline: generate raw data, run it through a local Airflow, look at the results."""


# --------------------------------------------------------------------------------------------------
# Raw data


def generate_day(
    execution_date: str | date,
    output_dir: str | Path | None = None,
    rows: int = 1000,
    seed: int = 42,
    force: bool = False,
) -> dict[str, object]:
    """Generate one day. Returns ``{"date", "path", "num_transactions", "skipped"}``.

    An existing partition is left alone (``num_transactions`` is None, ``skipped`` True) unless
    ``force`` is set: raw data is the system of record and is never silently replaced.
    """
    from ecompipe.pipeline.generator import generate_partition
    from ecompipe.settings import raw_dir

    return generate_partition(execution_date, Path(output_dir) if output_dir else raw_dir(), rows, seed, force)


@cli.command(context_settings=HELP)
@click.option("--date", "day", metavar="YYYY-MM-DD", help="one day")
@click.option("--start-date", metavar="YYYY-MM-DD", help="first day of a range (needs --end-date)")
@click.option("--end-date", metavar="YYYY-MM-DD", help="last day of the range, included")
@click.option("--rows", type=int, default=1000, show_default=True, help="raw rows per day")
@click.option("--output-dir", type=click.Path(path_type=Path), help="default: $PIPELINE_DATA_DIR/raw")
@click.option("--seed", type=int, default=42, show_default=True, help="random seed")
@click.option("--force", is_flag=True, help="overwrite partitions that already exist")
def generate(
    day: str | None,
    start_date: str | None,
    end_date: str | None,
    rows: int,
    output_dir: Path | None,
    seed: int,
    force: bool,
) -> int:
    """Generate daily raw partitions of transactions.

    Each day goes to <output-dir>/YYYY-MM-DD/transactions.csv.

    \b
    ecompipe generate --date 2024-01-15
    ecompipe generate --start-date 2024-01-01 --end-date 2024-01-07 --rows 5000
    """
    if day and start_date:
        raise click.UsageError("--date and --start-date exclude each other")
    if not day and not start_date:
        raise click.UsageError("one of --date and --start-date is required")
    if start_date and not end_date:
        raise click.UsageError("--start-date needs --end-date")
    if end_date and not start_date:
        raise click.UsageError("--end-date needs --start-date")
    if rows < 1:
        raise click.UsageError("--rows must be at least 1")
    days = [day] if day else [d.isoformat() for d in date_range(str(start_date), str(end_date))]
    started = time.perf_counter()
    written = 0
    for position, one_day in enumerate(days, start=1):
        result = generate_day(one_day, output_dir, rows, seed, force)
        if result["skipped"]:
            status = "exists, kept (use --force to overwrite)"
        else:
            written += 1
            status = f"{result['num_transactions']:,} rows"
        print(f"[{position}/{len(days)}] {one_day}: {status} -> {result['path']}", flush=True)
    elapsed = time.perf_counter() - started
    print(f"done: {written} partition(s) written, {len(days) - written} kept, in {elapsed:.1f}s")
    return 0


# --------------------------------------------------------------------------------------------------
# The local Airflow


@cli.group(context_settings=HELP)
def airflow() -> None:
    """Run this repo's Airflow 3 locally: start, stop, status.

    The scheduler, dag-processor, triggerer and api-server run each in its own process group.
    """


@airflow.command("start")
def airflow_start() -> None:
    """Start the components and wait until the DAG is parsed.

    Migrates the metadata DB and creates the warehouse pool first (both idempotent).
    """
    from ecompipe import local_airflow

    local_airflow.start()


@airflow.command("stop")
def airflow_stop() -> None:
    """Stop exactly what `start` started (and its children)."""
    from ecompipe import local_airflow

    local_airflow.stop()


@airflow.command("status")
def airflow_status() -> None:
    """Which components run, and where the UI is."""
    from ecompipe import local_airflow

    local_airflow.status()


def _airflow_of_profile() -> ModuleType:
    """ecompipe.local_airflow, driving the cluster's Airflow (started if needed) on PIPELINE_PROFILE=cluster."""
    from ecompipe import local_airflow
    from ecompipe.settings import get_settings

    if get_settings().pipeline_profile == "cluster":
        from ecompipe import local_cluster

        local_cluster.ensure_up()
    return local_airflow


@cli.group(context_settings=HELP)
def cluster() -> None:
    """The cluster profile: PostgreSQL, Redis, Airflow with Celery workers, the warehouse on DuckLake.

    Everything lives under PIPELINE_CLUSTER_DIR (default <repo>/cluster) and listens on 127.0.0.1.
    """


@cluster.command("up")
def cluster_up() -> None:
    """Start PostgreSQL, Redis, Airflow (CeleryExecutor) and the workers; print the UI and login."""
    from ecompipe import local_cluster

    local_cluster.up()


@cluster.command("status")
def cluster_status() -> None:
    """Which parts of the cluster run (pids), the UI address and login."""
    from ecompipe import local_cluster

    local_cluster.status()


@cluster.command("down")
def cluster_down() -> None:
    """Stop the workers, Airflow, Redis and PostgreSQL; nothing of the cluster stays running."""
    from ecompipe import local_cluster

    local_cluster.down()


@cluster.command("demo")
@click.argument("start")
@click.argument("end")
def cluster_demo(start: str, end: str) -> int:
    """Backfill START..END on the cluster, three dates at a time on the Celery workers."""
    from ecompipe import local_cluster

    return local_cluster.demo(start, end)


@cluster.command("install-extensions")
def cluster_install_extensions() -> None:
    """Install DuckDB's ducklake and postgres extensions offline from the pinned packages."""
    from ecompipe.core import lake

    print(f"Installed into {lake.install_extensions()}")


@cli.command(context_settings=HELP)
@click.argument("start")
@click.argument("end")
def demo(start: str, end: str) -> int:
    """Backfill START..END on a local Airflow, then stop it and generate the dbt docs.

    Starts Airflow, backfills the dates on the scheduler (dates that have a run get a fresh one),
    pauses the DAG, and stops Airflow while the dbt docs are generated from the filled warehouse.
    """
    from ecompipe import local_airflow

    return local_airflow.demo(start, end)


@cli.command(context_settings=HELP)
@click.argument("start")
@click.argument("end")
@click.option("--max-active-runs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--reprocess",
    type=click.Choice(["none", "failed", "completed"]),
    default="none",
    show_default=True,
    help="dates whose latest run has this outcome are processed again, in a fresh run",
)
def backfill(start: str, end: str, max_active_runs: int, reprocess: str) -> int:
    """Process START..END through Airflow, with progress.

    Dates without a run go through Airflow's backfill; with --reprocess, dates whose latest run had
    that outcome get a fresh manual run. Airflow is started if it is not running.
    """
    local_airflow = _airflow_of_profile()
    return local_airflow.backfill(start, end, max_active_runs, reprocess)


@cli.command(context_settings=HELP)
@click.argument("day", metavar="DATE")
def rerun(day: str) -> int:
    """Process one DATE again in a fresh run (one dbt build)."""
    local_airflow = _airflow_of_profile()
    return local_airflow.rerun(day)


@cli.command("backfill-bulk", context_settings=HELP)
@click.argument("start")
@click.argument("end")
@click.option("--chunk-days", type=int, default=31, show_default=True, help="days per dbt build")
def backfill_bulk(start: str, end: str, chunk_days: int) -> int:
    """A long range fast: one dbt build per chunk of days.

    Triggers the bulk DAG for START..END and follows its chunks to the end.
    """
    local_airflow = _airflow_of_profile()
    return local_airflow.bulk_backfill(start, end, chunk_days)


# --------------------------------------------------------------------------------------------------
# Looking at the results


@cli.group(context_settings=HELP)
def docs() -> None:
    """The dbt docs site (dbt_project/target/docs)."""


@docs.command("generate")
def docs_generate() -> int:
    """dbt docs generate, published with a single-file static site."""
    from ecompipe.reports import docs_site

    return docs_site.main(["generate"])


@docs.command("serve")
@click.option("--dir", "site", type=click.Path(path_type=Path), help="site folder (default dbt_project/target/docs)")
@click.option("--host", help="address to bind (default DBT_DOCS_HOST or 127.0.0.1)")
@click.option("--port", type=int, help="port (default DBT_DOCS_PORT, else derived from the checkout; 0: any free)")
def docs_serve(site: Path | None, host: str | None, port: int | None) -> int:
    """Serve the generated site's files (only them) until Ctrl-C."""
    from ecompipe.reports import docs_site

    return docs_site.serve(site=site, host=host, port=port)


@cli.command(context_settings=HELP)
@click.option("--warehouse", type=click.Path(path_type=Path), help="DuckDB file (default DUCKDB_PATH)")
@click.option("--out", type=click.Path(path_type=Path), help="output folder (default $PIPELINE_DATA_DIR/dashboard)")
def dashboard(warehouse: Path | None, out: Path | None) -> int:
    """Write the pipeline dashboard (HTML page + PNG plots).

    The warehouse is opened read-only; a missing or half-built one gives a page saying what is missing.
    """
    import duckdb

    from ecompipe.reports.dashboard import write_dashboard

    try:
        index = write_dashboard(warehouse, out)
    except duckdb.IOException as exc:
        print(f"error: cannot read the warehouse: {str(exc).splitlines()[0]}", file=sys.stderr)
        print("A pipeline task may be writing it: try again in a moment.", file=sys.stderr)
        return 1
    print(f"Dashboard: {index}")
    print(f"Open it: file://{index}")
    return 0


@cli.command(context_settings=HELP)
@click.option("--days", help="window length N (default $PIPELINE_SNAPSHOT_DAYS or 30)")
@click.option("--as-of", metavar="YYYY-MM-DD", help="last date of the window (default: latest successful date)")
def snapshot(days: str | None, as_of: str | None) -> int:
    """Write a training snapshot of the last N days of features.

    One Parquet file and its manifest in $PIPELINE_DATA_DIR/features/training/<id>/.
    """
    from ecompipe.pipeline import training_snapshot

    return training_snapshot.main([*(["--days", days] if days else []), *(["--as-of", as_of] if as_of else [])])


@cli.command(context_settings=HELP)
@click.argument("start")
@click.argument("end")
def summary(start: str, end: str) -> int:
    """Per-date summary of the warehouse for START..END.

    Raw rows, kept rows, customers, revenue and dbt test results of each date.
    """
    from ecompipe.reports import summary as report

    return report.main([start, end])


@cli.command(context_settings=HELP)
@click.argument("start")
@click.argument("end")
def status(start: str, end: str) -> int:
    """Status of each partition of START..END: loaded, failed, no raw file, never run.

    Read from the raw files, the raw-file fingerprints and the run registry; says how to mend
    what is not loaded. Exit code 1 when a date failed.
    """
    from ecompipe.reports.status import FAILED, format_status, partition_status

    rows = partition_status(start, end)
    click.echo(format_status(rows))
    return 1 if any(row.status == FAILED for row in rows) else 0


@cli.command("quality-report", context_settings=HELP)
@click.argument("first", metavar="DATE")
@click.argument("end", required=False)
def quality_report(first: str, end: str | None) -> int:
    """Write the data-quality report of DATE or DATE..END.

    One JSON report per date, and a one-line verdict per date; exits 1 if one failed.
    """
    from ecompipe.pipeline.quality import build_report, write_report

    worst = 0
    for day in [d.isoformat() for d in date_range(first, end or first)]:
        path = write_report(day)
        report = build_report(day)
        print(f"{day}: {report['status']:<13} {report['summary']}  -> {path}")
        worst = max(worst, 1 if report["status"] in ("fail", "not_processed") else 0)
    return worst


@cli.command(context_settings=HELP)
def settings() -> int:
    """Print the settings in force (validated), as JSON."""
    from ecompipe.settings import main as print_settings

    return print_settings()
