"""Training snapshot: the last N days of ``fct_transaction_features`` as one Parquet file with a manifest.

``$PIPELINE_DATA_DIR/features/training/<snapshot id>/`` holds ``features.parquet`` and
``manifest.json`` (window, dates included and excluded with the reason, rows per date, schema,
sha256 of the Parquet file, the asset events or registry runs it was built from);
``features/training/latest.json`` points at the newest snapshot (by end date; it never moves back).

The window ends at the latest date named by the triggering asset events (asset-triggered runs have
no logical date), else at ``as_of``, else at the latest date the run registry says was processed
successfully. A date is included only if its registry verdict is ``success`` (a ``skipped`` run
re-used an identical partition, so the verdict before it stands) and the warehouse holds exactly the
rows that run recorded: a failed, unprocessed or in-flight date is never read.

The snapshot id is ``<end date>_<N>d_<first 12 hex of the Parquet sha256>``: the same inputs give the
same id and the same bytes, and an existing snapshot is never rewritten. Snapshots are written in a
temporary folder renamed into place, so a reader sees a whole snapshot or none.

CLI: ``python -m ecompipe.pipeline.training_snapshot --days N [--as-of YYYY-MM-DD]`` (``make training-snapshot``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ecompipe.core.dates import InvalidDateError, date_range, parse_date
from ecompipe.core.files import current_umask, file_sha256, write_text_atomically
from ecompipe.core.warehouse import WarehouseLockedError
from ecompipe.core.warehouse import connect as connect_warehouse
from ecompipe.settings import MAX_SNAPSHOT_DAYS, data_dir, duckdb_path, get_settings

log = logging.getLogger(__name__)

FEATURES_TABLE = "fct_transaction_features"
PARQUET_NAME = "features.parquet"
MANIFEST_NAME = "manifest.json"
DAYS_ENV = "PIPELINE_SNAPSHOT_DAYS"
DEFAULT_DAYS = 30
MAX_DAYS = MAX_SNAPSHOT_DAYS
LOCK_TIMEOUT_ENV = "PIPELINE_SNAPSHOT_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 300.0


class SnapshotError(RuntimeError):
    """The snapshot cannot be built; the message says why and what to do."""


class WarehouseBusyError(SnapshotError):
    """Another process held the warehouse's write lock for longer than the timeout."""


@dataclass(frozen=True)
class TriggerEvent:
    """One event on the features asset, as far as the snapshot cares."""

    run_dates: tuple[str, ...]
    status: str
    source_dag: str | None = None
    source_run_id: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a date of the window goes into the snapshot, and why."""

    day: str
    included: bool
    reason: str
    run_id: str | None = None
    run_type: str | None = None
    ended_at: str | None = None
    rows: int = 0


@dataclass
class SnapshotResult:
    snapshot_id: str
    path: Path
    manifest: dict[str, object]
    created: bool
    latest_updated: bool

    def summary(self) -> dict[str, object]:
        return {
            "snapshot_id": self.snapshot_id,
            "path": str(self.path),
            "created": self.created,
            "latest_updated": self.latest_updated,
            "window": self.manifest["window"],
            "dates_included": self.manifest["dates_included"],
            "dates_excluded": self.manifest["dates_excluded"],
            "row_count": self.manifest["row_count"],
            "sha256": self.manifest["parquet"]["sha256"],  # type: ignore[index]
        }


# --------------------------------------------------------------------------------------------------
# Inputs


def training_dir() -> Path:
    return data_dir() / "features" / "training"


def latest_path() -> Path:
    return training_dir() / "latest.json"


def validate_days(value: object, what: str = "days") -> int:
    """N, the window's length in days: an integer in [1, MAX_DAYS]."""
    try:
        days = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} must be a whole number of days (1..{MAX_DAYS}), got {value!r}") from None
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"{what} must be between 1 and {MAX_DAYS}, got {days}")
    return days


def default_days() -> int:
    """N from ``PIPELINE_SNAPSHOT_DAYS`` (default 30)."""
    return get_settings().pipeline_snapshot_days


def lock_timeout() -> float:
    return get_settings().pipeline_snapshot_lock_timeout


def event_from_extra(
    extra: Mapping[str, object] | None,
    source_dag: str | None = None,
    source_run_id: str | None = None,
    timestamp: object = None,
) -> TriggerEvent:
    """An asset event's ``extra`` (see ecompipe.airflow.assets), with its dates validated."""
    extra = extra or {}
    raw_dates = extra.get("run_dates")
    if not isinstance(raw_dates, list | tuple) or not raw_dates:
        raise SnapshotError(
            f"Asset event from {source_dag or '?'} run {source_run_id or '?'} has no run_dates in its extra "
            f"({dict(extra)}): the producing task must set features_event_extra(...); trigger the snapshot "
            "by hand with an as_of date meanwhile."
        )
    dates = tuple(sorted({parse_date(str(day), "asset event run_dates").isoformat() for day in raw_dates}))
    return TriggerEvent(
        run_dates=dates,
        status=str(extra.get("status", "success")),
        source_dag=source_dag or (str(extra["source_dag"]) if extra.get("source_dag") else None),
        source_run_id=source_run_id,
        timestamp=str(timestamp) if timestamp is not None else None,
    )


def events_from_airflow(events: Iterable[object] | None) -> list[TriggerEvent]:
    """Airflow's triggering asset events (``context['triggering_asset_events'][asset]``) as TriggerEvents."""
    return [
        event_from_extra(
            getattr(event, "extra", None),
            getattr(event, "source_dag_id", None),
            getattr(event, "source_run_id", None),
            getattr(event, "timestamp", None),
        )
        for event in events or []
    ]


# --------------------------------------------------------------------------------------------------
# Reading the warehouse


def _connect_read_only(path: Path, timeout: float) -> duckdb.DuckDBPyConnection:
    """A read-only connection, waiting (``ecompipe.core.warehouse.connect``) while a writer holds the lock."""
    if not path.exists():
        raise SnapshotError(f"No warehouse at {path}: run the pipeline first (make demo, or make backfill).")
    try:
        return connect_warehouse(path, read_only=True, wait_seconds=timeout)
    except WarehouseLockedError as exc:
        raise WarehouseBusyError(
            f"The warehouse {path} stayed locked by another process for {timeout:.0f}s ({exc.__cause__}). "
            "A pipeline task or a `make sql` shell is writing or holding it: close the shell, or wait "
            f"for the run and retry (raise {LOCK_TIMEOUT_ENV} to wait longer; in Airflow the snapshot "
            "task takes the duckdb_warehouse pool and never collides with the pipeline's tasks)."
        ) from None


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_name from information_schema.tables where table_schema = 'main'").fetchall()
    return {str(row[0]) for row in rows}


DECISIVE_RUNS_SQL = """
select run_date::varchar, run_id, run_type, status, ended_at::varchar, rows_kept
from main.pipeline_runs
where status <> 'skipped' {window}
qualify row_number() over (partition by run_date order by ended_at desc nulls last, run_id desc) = 1
"""


def _decisive_runs(con: duckdb.DuckDBPyConnection, start: date | None, end: date | None) -> dict[str, tuple]:
    """Per date, its latest run that decided its contents (a skipped run changed nothing)."""
    if "pipeline_runs" not in _tables(con):
        return {}
    if start is None or end is None:
        rows = con.execute(DECISIVE_RUNS_SQL.format(window="")).fetchall()
    else:
        window = "and run_date between ?::date and ?::date"
        rows = con.execute(DECISIVE_RUNS_SQL.format(window=window), [start.isoformat(), end.isoformat()]).fetchall()
    return {str(row[0]): row for row in rows}


def latest_successful_date(con: duckdb.DuckDBPyConnection) -> date | None:
    successes = [day for day, row in _decisive_runs(con, None, None).items() if row[3] == "success"]
    return parse_date(max(successes)) if successes else None


def _feature_rows_per_date(con: duckdb.DuckDBPyConnection, start: date, end: date) -> dict[str, int]:
    rows = con.execute(
        f"select partition_date::varchar, count(*) from main.{FEATURES_TABLE} "
        "where partition_date between ?::date and ?::date group by 1",
        [start.isoformat(), end.isoformat()],
    ).fetchall()
    return {str(day): int(count) for day, count in rows}


def _verdict(day: str, run: tuple | None, rows: int | None) -> Verdict:
    if run is None:
        return Verdict(day, False, "no successful run recorded in the registry (not processed yet)")
    _, run_id, run_type, status, ended_at, rows_kept = run
    where = {"run_id": str(run_id), "run_type": str(run_type), "ended_at": ended_at}
    if status != "success":
        return Verdict(day, False, f"latest run {run_id} ended '{status}': the day may be half-written", **where)
    if rows_kept is not None and int(rows_kept) != (rows or 0):
        return Verdict(
            day,
            False,
            f"warehouse has {rows or 0} feature rows but run {run_id} recorded {rows_kept} kept rows: "
            "the day is being rewritten; it will be in the next snapshot",
            **where,
        )
    return Verdict(day, True, "success", rows=rows or 0, **where)


def judge_window(con: duckdb.DuckDBPyConnection, start: date, end: date) -> list[Verdict]:
    """One verdict per date of [start, end], from the registry and the features table."""
    if FEATURES_TABLE not in _tables(con):
        raise SnapshotError(f"The warehouse has no {FEATURES_TABLE} table yet: run the pipeline first (make demo).")
    runs = _decisive_runs(con, start, end)
    rows = _feature_rows_per_date(con, start, end)
    return [
        _verdict(day.isoformat(), runs.get(day.isoformat()), rows.get(day.isoformat()))
        for day in date_range(start, end)
    ]


def _read_features(con: duckdb.DuckDBPyConnection, days: list[str]) -> tuple[pa.Table, list[dict[str, str]]]:
    query = (
        f"select * from main.{FEATURES_TABLE} where list_contains(?::date[], partition_date) "
        "order by partition_date, transaction_id"
    )
    table = con.execute(query, [days]).to_arrow_table().combine_chunks()
    described = con.execute(f"describe select * from main.{FEATURES_TABLE}").fetchall()
    schema = [
        {"name": str(name), "duckdb_type": str(kind), "parquet_type": str(table.schema.field(str(name)).type)}
        for name, kind, *_ in described
    ]
    return table, schema


# --------------------------------------------------------------------------------------------------
# Writing


def _write_json_atomically(payload: object, path: Path) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _training_lock() -> Iterator[None]:
    """Serialises snapshot writers (the DAG, the CLI) on this data dir."""
    training_dir().mkdir(parents=True, exist_ok=True)
    with (training_dir() / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _existing_manifest(folder: Path, sha256: str) -> dict[str, object] | None:
    """The manifest of an already published, intact snapshot with these bytes, else None."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    intact = manifest.get("parquet", {}).get("sha256") == sha256 and file_sha256(folder / PARQUET_NAME) == sha256
    return manifest if intact else None


def _publish(staging: Path, target: Path) -> None:
    """Rename the finished staging folder into place (replacing a damaged folder of the same id)."""
    if target.exists():
        trash = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.replace(target, trash)
        os.replace(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, target)


def _update_latest(manifest: dict[str, object], trigger: str) -> bool:
    """Point latest.json at this snapshot unless it already points at a later end date."""
    current: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        current = json.loads(latest_path().read_text())
    if str(current.get("as_of", "")) > str(manifest["as_of"]):
        return False
    pointer = {
        "snapshot_id": manifest["snapshot_id"],
        "as_of": manifest["as_of"],
        "days": manifest["days"],
        "dir": manifest["snapshot_id"],
        "parquet": f"{manifest['snapshot_id']}/{PARQUET_NAME}",
        "manifest": f"{manifest['snapshot_id']}/{MANIFEST_NAME}",
        "row_count": manifest["row_count"],
        "sha256": manifest["parquet"]["sha256"],  # type: ignore[index]
        "updated_at": datetime.now(UTC).isoformat(),
        "updated_by": trigger,
    }
    _write_json_atomically(pointer, latest_path())
    return True


# --------------------------------------------------------------------------------------------------
# The snapshot


def _choose_end(as_of: str | None, events: list[TriggerEvent], con: duckdb.DuckDBPyConnection) -> tuple[date, str]:
    if as_of:
        return parse_date(as_of, "as_of"), "as_of"
    if events:
        return parse_date(max(day for event in events for day in event.run_dates)), "asset events"
    latest = latest_successful_date(con)
    if latest is None:
        raise SnapshotError(
            "No date has been processed successfully yet (run registry main.pipeline_runs is empty or has no "
            "success): load some dates first (make demo / make backfill), or pass --as-of YYYY-MM-DD."
        )
    return latest, "registry"


def _manifest(
    end: date, days: int, verdicts: list[Verdict], schema: list[dict[str, str]], trigger: dict[str, object]
) -> dict[str, object]:
    start = end - timedelta(days=days - 1)
    included = [v for v in verdicts if v.included]
    return {
        "as_of": end.isoformat(),
        "days": days,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "table": f"main.{FEATURES_TABLE}",
        "dates_included": [v.day for v in included],
        "dates_excluded": [{"date": v.day, "reason": v.reason} for v in verdicts if not v.included],
        "rows_per_date": {v.day: v.rows for v in included},
        "row_count": sum(v.rows for v in included),
        "schema": schema,
        "source": {
            **trigger,
            "registry_runs": {
                v.day: {"run_id": v.run_id, "run_type": v.run_type, "ended_at": v.ended_at} for v in included
            },
        },
        "created_at": datetime.now(UTC).isoformat(),
    }


def build_snapshot(
    as_of: str | None,
    days: int,
    events: list[TriggerEvent] | None = None,
    run_id: str | None = None,
    warehouse: Path | None = None,
    timeout: float | None = None,
    lake_version: int | None = None,
) -> SnapshotResult:
    """Build (or find) the snapshot of the ``days`` days ending at the chosen date; see the module doc.

    Cluster profile: reads the DuckLake catalog, at ``lake_version`` if given (time travel: the same
    version gives the same bytes), and records the lake snapshot id it read in the manifest."""
    days = validate_days(days)
    if as_of is not None and as_of != "":
        as_of = parse_date(as_of, "as_of").isoformat()
    events = list(events or [])
    on_lake = warehouse is None and get_settings().pipeline_profile == "cluster"
    if on_lake:
        from ecompipe.core import lake

        source = lake.connect(read_only=True, snapshot_version=lake_version)
    else:
        source = _connect_read_only(warehouse or duckdb_path(), lock_timeout() if timeout is None else timeout)
    with source as con:
        lake_snapshot = lake.current_snapshot(con) if on_lake else None
        end, chosen_by = _choose_end(as_of or None, events, con)
        verdicts = judge_window(con, end - timedelta(days=days - 1), end)
        included = [v.day for v in verdicts if v.included]
        if not included:
            reasons = "; ".join(f"{v.day}: {v.reason}" for v in verdicts[-5:])
            raise SnapshotError(
                f"No usable date in the {days} day(s) ending {end} ({reasons}). Load or fix those dates "
                "(make backfill / make rerun DATE=...), or choose another --as-of."
            )
        table, schema = _read_features(con, included)
    trigger = {
        "chosen_by": chosen_by,
        "snapshot_run_id": run_id or "cli",
        "asset": FEATURES_TABLE,
        "asset_events": [asdict(event) for event in events],
        **({"lake_snapshot_id": lake_snapshot} if lake_snapshot is not None else {}),
    }
    manifest = _manifest(end, days, verdicts, schema, trigger)
    return _write_snapshot(table, manifest, f"{chosen_by}, run {run_id or 'cli'}")


def _write_snapshot(table: pa.Table, manifest: dict[str, object], trigger: str) -> SnapshotResult:
    root = training_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=root))
    staging.chmod(0o777 & ~current_umask())
    try:
        parquet = staging / PARQUET_NAME
        pq.write_table(table, parquet, compression="zstd")
        digest = file_sha256(parquet)
        snapshot_id = f"{manifest['as_of']}_{manifest['days']}d_{digest[:12]}"
        manifest = {
            "snapshot_id": snapshot_id,
            **manifest,
            "parquet": {"file": PARQUET_NAME, "sha256": digest, "bytes": parquet.stat().st_size},
        }
        target = root / snapshot_id
        with _training_lock():
            existing = _existing_manifest(target, digest)
            created = existing is None
            if created:
                _write_json_atomically(manifest, staging / MANIFEST_NAME)
                _publish(staging, target)
            else:
                manifest = existing  # type: ignore[assignment]
            latest_updated = _update_latest(manifest, trigger)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = SnapshotResult(snapshot_id, target, manifest, created, latest_updated)
    log.info("Training snapshot %s: %s", "written" if created else "already there", json.dumps(result.summary()))
    return result


# --------------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ecompipe.pipeline.training_snapshot",
        description="Write the last N days of fct_transaction_features as one Parquet file with a manifest.",
    )
    parser.add_argument("--days", default=None, help=f"window length N (default ${DAYS_ENV} or {DEFAULT_DAYS})")
    parser.add_argument("--as-of", default=None, help="last date of the window (default: latest successful date)")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = _parser().parse_args(argv)
    try:
        days = default_days() if args.days is None else validate_days(args.days, "--days")
        result = build_snapshot(args.as_of, days)
    except (InvalidDateError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.summary(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
