"""Checks that the compared implementations produced the same data (outside the timed runs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import duckdb


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _parquet(path: Path | Sequence[Path], hive_partitioning: bool | None) -> str:
    """``read_parquet(...)`` of one file or of several as one table (DuckDB's hive default unless told)."""
    source = _quoted(path) if isinstance(path, Path) else "[" + ", ".join(map(_quoted, path)) + "]"
    hive = "" if hive_partitioning is None else f", hive_partitioning = {str(hive_partitioning).lower()}"
    return f"read_parquet({source}{hive})"


def parquet_columns(path: Path | Sequence[Path], hive_partitioning: bool | None = None) -> list[str]:
    with duckdb.connect() as con:
        return [row[0] for row in con.execute(f"describe select * from {_parquet(path, hive_partitioning)}").fetchall()]


def fingerprint(
    path: Path | Sequence[Path], columns: list[str], hive_partitioning: bool | None = None
) -> tuple[int, int]:
    """(rows, order-independent hash of the rows restricted to ``columns``) of one file or several together."""
    selected = ", ".join(f'"{name}"' for name in columns)
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        count, total = con.execute(
            f"select count(*), coalesce(sum(hash(t)::hugeint), 0) from (select {selected} "
            f"from {_parquet(path, hive_partitioning)}) as t"
        ).fetchone()
    return int(count), int(total)


def row_count(path: Path) -> int:
    with duckdb.connect() as con:
        return int(con.execute(f"select count(*) from read_parquet({_quoted(path)})").fetchone()[0])


def compare_parquet(reference: Path, candidate: Path) -> dict[str, object]:
    """Same rows on the candidate's columns? (The reference may have more columns.)"""
    columns = parquet_columns(candidate)
    missing = [name for name in columns if name not in parquet_columns(reference)]
    if missing:
        return {"equal": False, "reason": f"columns missing in {reference.name}: {missing}"}
    ref, cand = fingerprint(reference, columns), fingerprint(candidate, columns)
    return {"equal": ref == cand, "rows_reference": ref[0], "rows_candidate": cand[0], "columns": len(columns)}


def last_json_line(log: Path) -> dict[str, object]:
    """The JSON summary a script printed last (its log may hold warnings before it)."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON summary in {log}")
