"""Raw partitions (generated once, cached) and sandboxes: a data dir and a warehouse per scenario.

The generator is deterministic, so a (rows, date) partition is generated once into
``<work>/raw-cache/rows=N/`` and every sandbox links to it: ``<sandbox>/data/raw/<date>`` is a
symlink to the cached folder. Exports and warehouses stay inside the sandbox.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Self

from benchmarks.common import fresh_dir, iso, pipeline_env
from ecompipe.pipeline.generator import generate_partition
from ecompipe.settings import RAW_FILE_NAME


def cache_dir(work_dir: Path, rows: int) -> Path:
    return work_dir / "raw-cache" / f"rows={rows}"


def ensure_raw(work_dir: Path, day: date, rows: int) -> Path:
    """The cached raw CSV of ``day`` with ``rows`` lines, generated if missing."""
    folder = cache_dir(work_dir, rows)
    generate_partition(day, folder, rows=rows)
    return folder / iso(day) / RAW_FILE_NAME


@dataclass
class Sandbox:
    """One scenario's ``PIPELINE_DATA_DIR`` (raw links, exports) and its warehouse."""

    root: Path
    work_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @classmethod
    def create(cls, root: Path, work_dir: Path) -> Self:
        fresh_dir(root)
        (root / "data" / "raw").mkdir(parents=True)
        return cls(root=root, work_dir=work_dir)

    def link(self, days: Iterable[date], rows: int) -> None:
        """Make the cached partitions of ``days`` (``rows`` lines each) visible in this sandbox."""
        for day in days:
            ensure_raw(self.work_dir, day, rows)
            link = self.data_dir / "raw" / iso(day)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(cache_dir(self.work_dir, rows) / iso(day), target_is_directory=True)

    def raw_file(self, day: date) -> Path:
        return self.data_dir / "raw" / iso(day) / RAW_FILE_NAME

    def env(self, warehouse: Path | None = None) -> dict[str, str]:
        return pipeline_env(self.data_dir, warehouse or self.warehouse)

    def snapshot(self, name: str) -> Path:
        """Copy the warehouse aside (to restore the same state before every repetition)."""
        target = self.root / f"{name}.duckdb"
        shutil.copyfile(self.warehouse, target)
        return target

    def restore(self, snapshot: Path) -> None:
        shutil.copyfile(snapshot, self.warehouse)
        wal = self.warehouse.with_name(self.warehouse.name + ".wal")
        wal.unlink(missing_ok=True)

    def reset_warehouse(self) -> None:
        self.warehouse.unlink(missing_ok=True)
        self.warehouse.with_name(self.warehouse.name + ".wal").unlink(missing_ok=True)
