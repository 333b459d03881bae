"""The raw data generator: determinism, schema, dirt, atomic writes, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ecompipe.core import files
from ecompipe.pipeline import generator
from scripts.generate_ecommerce_data import main as generate_main

REPO_ROOT = Path(__file__).resolve().parents[3]


def _read(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True)


def test_same_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate_main("2024-01-15", tmp_path / "a", rows=2000, seed=7)
    second = generate_main("2024-01-15", tmp_path / "b", rows=2000, seed=7)
    assert Path(first["path"]).read_bytes() == Path(second["path"]).read_bytes()
    other_seed = generate_main("2024-01-15", tmp_path / "c", rows=2000, seed=8)
    assert Path(first["path"]).read_bytes() != Path(other_seed["path"]).read_bytes()


def test_schema_and_location(tmp_path: Path) -> None:
    result = generate_main("2024-01-15", tmp_path, rows=500)
    assert result["path"] == str(tmp_path / "2024-01-15" / "transactions.csv")
    assert result["num_transactions"] == 500
    frame = _read(result["path"])
    assert list(frame.columns) == list(generator.COLUMNS)
    assert len(frame) == 500
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    assert stamps.dt.date.astype(str).eq("2024-01-15").all(), "timestamps must fall inside the partition's date"
    assert frame["timestamp"].str.fullmatch(r"2024-01-15T\d{2}:\d{2}:\d{2}Z").all()


def test_dirt_is_present_at_small_rates(tmp_path: Path) -> None:
    frame = _read(generate_main("2024-01-15", tmp_path, rows=20_000)["path"])
    duplicated = frame[frame.duplicated("transaction_id", keep=False)]
    # A duplicate is the same row repeated, not a different row reusing the id.
    assert len(duplicated) > 0 and duplicated.drop_duplicates().shape[0] == duplicated["transaction_id"].nunique()
    rates = {
        "duplicate": frame.duplicated("transaction_id").mean(),
        "negative_price": (frame["price"] < 0).mean(),
        "huge_price": (frame["price"] > 10_000).mean(),
        "bad_quantity": (frame["quantity"] <= 0).mean(),
        "empty_payment": frame["payment_method"].isna().mean(),
    }
    for name, rate in rates.items():
        assert 0 < rate < 0.05, f"{name} rate {rate:.4f} outside (0, 5%)"


def test_transaction_ids_unique_across_dates_and_customers_recur(tmp_path: Path) -> None:
    days = [_read(generate_main(day, tmp_path, rows=2000)["path"]) for day in ("2024-01-01", "2024-01-02")]
    assert not set(days[0]["transaction_id"]) & set(days[1]["transaction_id"])
    shared_customers = set(days[0]["customer_id"]) & set(days[1]["customer_id"])
    assert len(shared_customers) > 50


def test_existing_partition_is_kept_unless_forced(tmp_path: Path) -> None:
    path = Path(generate_main("2024-01-15", tmp_path, rows=200)["path"])
    original = path.read_bytes()
    again = generate_main("2024-01-15", tmp_path, rows=300)
    assert again["skipped"] is True and path.read_bytes() == original
    forced = generate_main("2024-01-15", tmp_path, rows=300, force=True)
    assert forced["num_transactions"] == 300 and len(_read(path)) == 300


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(generate_main("2024-01-15", tmp_path, rows=200)["path"])
    original = path.read_bytes()

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)  # the one atomic-write helper renames last
    with pytest.raises(OSError, match="disk full"):
        generate_main("2024-01-15", tmp_path, rows=400, force=True)
    assert path.read_bytes() == original
    assert os.listdir(path.parent) == ["transactions.csv"], "the temp file must be cleaned up"


def test_invalid_date_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        generate_main("../../etc", tmp_path)
    assert list(tmp_path.iterdir()) == []


def _generator_cli(*args: str) -> subprocess.CompletedProcess:
    script = REPO_ROOT / "scripts" / "generate_ecommerce_data.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)


def test_cli_range_shows_progress_and_summary(tmp_path: Path) -> None:
    completed = _generator_cli(
        "--start-date", "2024-01-01", "--end-date", "2024-01-03", "--rows", "150", "--output-dir", str(tmp_path)
    )
    assert completed.returncode == 0, completed.stderr
    assert "[1/3] 2024-01-01: 150 rows" in completed.stdout
    assert "[3/3] 2024-01-03" in completed.stdout
    assert "3 partition(s) written" in completed.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_cli_rejects_bad_range(tmp_path: Path) -> None:
    completed = _generator_cli("--start-date", "2024-01-05", "--end-date", "2024-01-01", "--output-dir", str(tmp_path))
    assert completed.returncode == 2 and "before start date" in completed.stderr


def test_default_output_dir_follows_pipeline_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "elsewhere"))
    result = generate_main("2024-01-15", rows=100)
    assert result["path"] == str(tmp_path / "elsewhere" / "raw" / "2024-01-15" / "transactions.csv")
