"""Training snapshot: window, exclusions, manifest vs Parquet, idempotence, atomicity, locking, and the
downstream DAG triggered through the features Asset on a real scheduler."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ecompipe.airflow.assets import FEATURES_ASSET
from ecompipe.core.dates import InvalidDateError
from ecompipe.pipeline import training_snapshot as ts
from ecompipe.pipeline.run_registry import RunRecord, record_run
from tests.helpers.sandbox import REPO_ROOT, Pipeline

DATES = ["2024-01-01", "2024-01-02", "2024-01-03"]
DAILY = "end_to_end_data_pipeline"


@pytest.fixture(scope="module")
def built_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days through real dbt, once per module; every test works on its own copy."""
    root = tmp_path_factory.mktemp("snapshot_source")
    pipeline = Pipeline(data_dir=root / "data", work_dir=root / "work")
    pipeline.data_dir.mkdir()
    pipeline.generate(*DATES, rows=200)
    pipeline.dbt("build", variables={"start_date": DATES[0], "end_date": DATES[-1]})
    return pipeline.data_dir


@pytest.fixture
def sandbox(built_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    data_dir = tmp_path / "data"
    shutil.copytree(built_data, data_dir)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DUCKDB_PATH", str(data_dir / "warehouse.duckdb"))
    return Pipeline(data_dir=data_dir, work_dir=tmp_path / "work")


def _record(day: str, status: str, minute: int, run_id: str | None = None) -> None:
    ended = f"2024-02-01T00:{minute:02d}:00"
    record_run(RunRecord(day, run_id or f"run-{day}-{minute}", "manual", ended, ended, status))


def _event(*days: str, run_id: str = "scheduled__x") -> ts.TriggerEvent:
    extra = {"run_dates": list(days), "status": "success", "source_dag": DAILY}
    return ts.event_from_extra(extra, DAILY, run_id, "2024-02-01T00:00:00+00:00")


def _warehouse_rows(warehouse: Path, days: list[str]) -> dict[str, tuple[int, int]]:
    """Per date: (rows, order-independent hash of the rows) of fct_transaction_features."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select partition_date::varchar, count(*), sum(hash(t)::hugeint) from fct_transaction_features t "
            "where list_contains(?::date[], partition_date) group by 1",
            [days],
        ).fetchall()
    return {day: (int(count), int(digest)) for day, count, digest in rows}


def _parquet_rows(path: Path) -> dict[str, tuple[int, int]]:
    with duckdb.connect() as con:
        rows = con.execute(
            "select partition_date::varchar, count(*), sum(hash(t)::hugeint) from read_parquet(?) t group by 1",
            [str(path)],
        ).fetchall()
    return {day: (int(count), int(digest)) for day, count, digest in rows}


def _check_manifest_against_files(snapshot: Path, warehouse: Path) -> dict[str, object]:
    manifest = json.loads((snapshot / "manifest.json").read_text())
    parquet = snapshot / "features.parquet"
    assert manifest["parquet"]["sha256"] == hashlib.sha256(parquet.read_bytes()).hexdigest()
    assert manifest["snapshot_id"] == snapshot.name and manifest["parquet"]["sha256"][:12] in snapshot.name
    table = pq.read_table(parquet)
    assert manifest["row_count"] == table.num_rows == sum(manifest["rows_per_date"].values())
    assert [(c["name"], c["parquet_type"]) for c in manifest["schema"]] == [(f.name, str(f.type)) for f in table.schema]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        described = con.execute("describe fct_transaction_features").fetchall()
    assert [(c["name"], c["duckdb_type"]) for c in manifest["schema"]] == [(r[0], r[1]) for r in described]
    # Exactly the warehouse's rows of the included dates, nothing else.
    in_file = _parquet_rows(parquet)
    assert sorted(in_file) == manifest["dates_included"]
    assert in_file == _warehouse_rows(warehouse, manifest["dates_included"])
    assert {day: count for day, (count, _) in in_file.items()} == manifest["rows_per_date"]
    return manifest


def test_window_ends_at_the_events_latest_date_and_keeps_only_successful_days(sandbox: Pipeline) -> None:
    _record("2024-01-01", "success", 1)
    _record("2024-01-02", "success", 2)
    _record("2024-01-02", "failed", 5)  # a later run of the day failed: it may be half-written
    _record("2024-01-03", "success", 3)
    _record("2024-01-03", "skipped", 6)  # identical partition: the success before it stands

    result = ts.build_snapshot(None, 4, events=[_event("2024-01-01"), _event("2024-01-03", run_id="r3")])

    manifest = _check_manifest_against_files(result.path, sandbox.warehouse)
    assert manifest["window"] == {"start": "2023-12-31", "end": "2024-01-03"}
    assert manifest["dates_included"] == ["2024-01-01", "2024-01-03"]
    excluded = {item["date"]: item["reason"] for item in manifest["dates_excluded"]}
    assert set(excluded) == {"2023-12-31", "2024-01-02"}
    assert "no successful run" in excluded["2023-12-31"]
    assert "failed" in excluded["2024-01-02"] and "run-2024-01-02-5" in excluded["2024-01-02"]
    assert manifest["source"]["chosen_by"] == "asset events"
    assert [e["source_run_id"] for e in manifest["source"]["asset_events"]] == ["scheduled__x", "r3"]
    assert manifest["source"]["registry_runs"]["2024-01-03"]["run_id"] == "run-2024-01-03-3"
    latest = json.loads(ts.latest_path().read_text())
    assert latest["snapshot_id"] == result.snapshot_id and (ts.training_dir() / latest["parquet"]).exists()


def test_without_events_the_registry_or_as_of_sets_the_window(sandbox: Pipeline) -> None:
    with pytest.raises(ts.SnapshotError, match="processed successfully"):
        ts.build_snapshot(None, 3)  # an empty registry: nothing to anchor the window on
    for minute, day in enumerate(DATES[:2]):
        _record(day, "success", minute)
    _record("2024-01-03", "failed", 9)

    by_registry = ts.build_snapshot(None, 2)
    assert by_registry.manifest["window"] == {"start": "2024-01-01", "end": "2024-01-02"}
    assert by_registry.manifest["dates_included"] == ["2024-01-01", "2024-01-02"]
    assert by_registry.manifest["source"]["chosen_by"] == "registry"

    cli = subprocess.run(
        [sys.executable, "-m", "ecompipe.pipeline.training_snapshot", "--days", "2", "--as-of", "2024-01-03"],
        env=sandbox.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    summary = json.loads(cli.stdout)
    assert summary["dates_included"] == ["2024-01-02"]
    assert summary["dates_excluded"][0]["date"] == "2024-01-03"
    _check_manifest_against_files(Path(summary["path"]), sandbox.warehouse)
    latest = json.loads(ts.latest_path().read_text())
    assert latest["as_of"] == "2024-01-03"

    with pytest.raises(ts.SnapshotError, match="No usable date"):
        ts.build_snapshot("2024-01-03", 1)  # its only day failed


def test_a_day_being_rewritten_is_left_out(sandbox: Pipeline) -> None:
    _record("2024-01-01", "success", 1)
    _record("2024-01-02", "success", 2)
    # A re-delivery of 2024-01-02 is being processed: dbt has run, the registry does not know yet.
    sandbox.generate("2024-01-02", rows=150, seed=9, force=True)
    sandbox.build("2024-01-02")
    result = ts.build_snapshot("2024-01-02", 2)
    assert result.manifest["dates_included"] == ["2024-01-01"]
    reason = result.manifest["dates_excluded"][0]
    assert reason["date"] == "2024-01-02" and "being rewritten" in reason["reason"]


def test_same_inputs_give_the_same_snapshot_and_latest_never_moves_back(sandbox: Pipeline) -> None:
    for minute, day in enumerate(DATES):
        _record(day, "success", minute)
    first = ts.build_snapshot(None, 2, events=[_event("2024-01-03")])
    manifest_text = (first.path / "manifest.json").read_text()
    parquet_bytes = (first.path / "features.parquet").read_bytes()

    again = ts.build_snapshot(None, 2, events=[_event("2024-01-03", run_id="another")])
    assert (again.snapshot_id, again.created, first.created) == (first.snapshot_id, False, True)
    assert (again.path / "manifest.json").read_text() == manifest_text, "a published snapshot is never rewritten"
    assert (again.path / "features.parquet").read_bytes() == parquet_bytes

    # Rebuilt from scratch, the same inputs give the same bytes and id.
    shutil.rmtree(ts.training_dir())
    rebuilt = ts.build_snapshot("2024-01-03", 2)
    assert rebuilt.snapshot_id == first.snapshot_id and rebuilt.created
    assert (rebuilt.path / "features.parquet").read_bytes() == parquet_bytes

    older = ts.build_snapshot("2024-01-02", 2)
    assert older.snapshot_id != first.snapshot_id and not older.latest_updated
    assert json.loads(ts.latest_path().read_text())["snapshot_id"] == first.snapshot_id


def test_a_failed_write_leaves_no_partial_snapshot(sandbox: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    for minute, day in enumerate(DATES):
        _record(day, "success", minute)
    good = ts.build_snapshot("2024-01-02", 2)
    before = sorted(p.relative_to(ts.training_dir()) for p in ts.training_dir().rglob("*"))
    latest = ts.latest_path().read_bytes()
    real_write = pq.write_table

    def crash_half_way(table: object, where: object, **kwargs: object) -> None:
        real_write(table, where, **kwargs)
        with open(where, "r+b") as handle:  # type: ignore[arg-type]
            handle.truncate(100)
        raise OSError("No space left on device")

    monkeypatch.setattr(ts.pq, "write_table", crash_half_way)
    with pytest.raises(OSError, match="No space left"):
        ts.build_snapshot("2024-01-03", 2)
    assert sorted(p.relative_to(ts.training_dir()) for p in ts.training_dir().rglob("*")) == before
    assert ts.latest_path().read_bytes() == latest
    assert good.path.exists()


def test_a_writer_holding_the_warehouse_is_waited_for_then_reported(sandbox: Pipeline) -> None:
    for minute, day in enumerate(DATES):
        _record(day, "success", minute)
    holder_code = (
        "import duckdb, sys, time\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "con.close()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(sandbox.warehouse), "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(ts.WarehouseBusyError, match=r"locked by another process.*make sql"):
            ts.build_snapshot("2024-01-03", 1, timeout=1)
        began = time.monotonic()
        waited = ts.build_snapshot("2024-01-03", 1, timeout=60)  # retries until the writer is gone
        assert waited.manifest["dates_included"] == ["2024-01-03"]
        assert holder.poll() is not None and time.monotonic() - began > 0.5
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    ("as_of", "days", "error", "message"),
    [
        (None, 0, ValueError, "between 1 and 366"),
        (None, 367, ValueError, "between 1 and 366"),
        (None, "30; drop table x", ValueError, "whole number of days"),
        ("2024-02-30", 3, InvalidDateError, "not a real calendar date"),
        ("../../etc", 3, InvalidDateError, "YYYY-MM-DD"),
        ("2024-01-01'; drop table pipeline_runs; --", 3, InvalidDateError, "YYYY-MM-DD"),
    ],
)
def test_bad_inputs_are_refused_before_anything_is_read(
    pipeline: Pipeline, as_of: str | None, days: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ts.build_snapshot(as_of, days)  # type: ignore[arg-type]
    assert not ts.training_dir().exists()


def test_bad_events_and_settings_say_what_to_do(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ts.SnapshotError, match="no run_dates.*as_of"):
        ts.event_from_extra({"status": "success"}, DAILY, "r1")
    with pytest.raises(InvalidDateError, match="run_dates"):
        ts.event_from_extra({"run_dates": ["2024-01-01/../x"]}, DAILY, "r1")
    monkeypatch.setenv(ts.DAYS_ENV, "a month")
    with pytest.raises(ValueError, match=ts.DAYS_ENV):
        ts.default_days()
    monkeypatch.delenv(ts.DAYS_ENV)  # one bad setting stops every reader of the settings, so: unset it
    with pytest.raises(ts.SnapshotError, match="No warehouse.*make demo"):
        ts.build_snapshot(None, 3)


def test_the_dag_is_scheduled_on_the_features_asset_and_reads_in_the_pool() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "training_snapshot.py"))
    assert bag.import_errors == {}
    dag = bag.dags["training_snapshot"]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert list(dag.timetable.asset_condition.objects) == [FEATURES_ASSET]
    assert dag.get_task("build_training_snapshot").pool == "duckdb_warehouse"
    assert dag.max_active_runs == 1 and "training" in dag.tags


# --------------------------------------------------------------------------------------------------
# Real Airflow: a daily run's asset event triggers the snapshot DAG.
