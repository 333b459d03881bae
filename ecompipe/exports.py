"""Hive-style Parquet exports of the marts, one file per date, written atomically.

``processed/date=D/transactions_clean.parquet`` (fct_transactions) and
``features/daily/date=D/features.parquet`` (fct_transaction_features). A date with no valid rows
gets an empty file with the full schema, so a re-delivered day can shrink to nothing without a stale
file surviving. Rows are sorted by transaction_id so that the same rows give the same bytes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ecompipe.core.dates import parse_date
from ecompipe.core.files import file_sha256
from ecompipe.settings import features_dir, processed_dir


@dataclass(frozen=True)
class ExportTarget:
    dataset: str
    model: str
    file_name: str

    def path_for(self, partition_date: str) -> Path:
        base = processed_dir() if self.dataset == "processed" else features_dir()
        return base / f"date={partition_date}" / self.file_name


TARGETS = (
    ExportTarget("processed", "fct_transactions", "transactions_clean.parquet"),
    ExportTarget("features", "fct_transaction_features", "features.parquet"),
)


@dataclass(frozen=True)
class ExportRecord:
    partition_date: str
    dataset: str
    path: str
    row_count: int
    sha256: str


def write_parquet_atomically(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        pq.write_table(table, tmp_name, compression="zstd")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def export_date(rows: pa.Table, target: ExportTarget, partition_date: str) -> ExportRecord:
    """Write one date's rows (already filtered) for one target; returns what was written."""
    day = parse_date(partition_date, "partition_date").isoformat()
    path = target.path_for(day)
    ordered = rows.sort_by("transaction_id") if rows.num_rows else rows
    write_parquet_atomically(ordered, path)
    return ExportRecord(day, target.dataset, str(path), ordered.num_rows, file_sha256(path))


def records_as_columns(records: list[ExportRecord]) -> dict[str, list[object]]:
    columns: dict[str, list[object]] = {name: [] for name in ExportRecord.__dataclass_fields__}
    for record in records:
        for name, value in asdict(record).items():
            columns[name].append(value)
    return columns
