"""`make sql` is the real DuckDB shell on the warehouse dbt built, read-only; the example queries run in it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.helpers.sandbox import DBT_PROJECT, REPO_ROOT, VENV_BIN, Pipeline

DUCKDB_CLI = VENV_BIN / "duckdb"
ANALYSES = sorted((DBT_PROJECT / "analyses").glob("*.sql"))
EXAMPLES = {"top_customers", "revenue_by_day_and_category", "data_quality_trend", "parquet_exports"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """Two days loaded by dbt (one range build), Parquet exports included."""
    root = tmp_path_factory.mktemp("sql_shell")
    pipeline = Pipeline(data_dir=root / "data", work_dir=root / "work")
    pipeline.generate("2024-01-01", "2024-01-02", rows=150)
    pipeline.dbt("build", variables={"start_date": "2024-01-01", "end_date": "2024-01-02"})
    return pipeline


def shell(warehouse: Path, *args: str, data_dir: Path | None = None, stdin: str | None = None) -> list[dict]:
    """The DuckDB CLI, read-only, JSON output (what `make sql` runs, plus -json)."""
    command = [str(DUCKDB_CLI), "-readonly", "-json"]
    if data_dir is not None:
        command += ["-cmd", f"SET VARIABLE pipeline_data_dir = '{data_dir}'"]
    completed = subprocess.run([*command, str(warehouse), *args], input=stdin, capture_output=True, text=True)
    assert completed.returncode == 0 and not completed.stderr, completed.stderr
    return json.loads(completed.stdout or "[]")


def _comparable(value: object) -> object:
    """The CLI's JSON prints DECIMAL and HUGEINT as strings: compare numbers as numbers."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        value = Decimal(value)
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return round(float(value), 6)
    return None if value is None else str(value)


def test_the_cli_reads_the_same_storage_as_the_python_package() -> None:
    """duckdb-cli (PyPI) and the duckdb package dbt uses: same major.minor, so the same file format."""
    version = subprocess.run([str(DUCKDB_CLI), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.split()[0].lstrip("v").split(".")[:2] == duckdb.__version__.split(".")[:2]


def test_the_shell_opens_the_warehouse_dbt_built(built: Pipeline) -> None:
    rows = shell(built.warehouse, "-c", "select count(*) as n from fct_transactions")
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        expected = con.execute("select count(*) from fct_transactions").fetchone()[0]
    assert expected > 0 and rows == [{"n": expected}]
    # The same through stdin, as an interactive session reads it.
    assert shell(built.warehouse, stdin="select count(*) as n from agg_customer_daily;\n")[0]["n"] > 0


def test_the_shell_is_read_only(built: Pipeline) -> None:
    completed = subprocess.run(
        [str(DUCKDB_CLI), "-readonly", str(built.warehouse), "-c", "create table scratch (a int)"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode != 0 and "read-only" in completed.stderr.lower()


def test_every_example_query_is_there() -> None:
    assert {path.stem for path in ANALYSES} >= EXAMPLES


@pytest.mark.parametrize("query", ANALYSES, ids=lambda path: path.stem)
def test_example_query_runs_in_the_shell_and_agrees_with_python(built: Pipeline, query: Path) -> None:
    rows = shell(built.warehouse, "-c", f".read {query}", data_dir=built.data_dir)
    assert rows, f"{query.name} returned no row"
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        con.execute("set variable pipeline_data_dir = ?", [str(built.data_dir)])
        cursor = con.execute(query.read_text())
        names = [column[0] for column in cursor.description]
        expected = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert [{k: _comparable(v) for k, v in row.items()} for row in rows] == [
        {k: _comparable(v) for k, v in row.items()} for row in expected
    ]


def test_the_parquet_example_reads_the_exports_not_the_warehouse(built: Pipeline) -> None:
    rows = shell(
        built.warehouse, "-c", f".read {DBT_PROJECT / 'analyses' / 'parquet_exports.sql'}", data_dir=built.data_dir
    )
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        per_day = dict(
            con.execute("select partition_date::varchar, count(*) from fct_transactions group by 1").fetchall()
        )
    assert {row["date"]: row["transactions"] for row in rows} == per_day


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(built: Pipeline, target: str, stdin: str) -> subprocess.CompletedProcess:
    """``make <target>`` from the repo root on the test's warehouse, ``stdin`` typed into it; must succeed."""
    env = {**built.env(), "PATH": f"{VENV_BIN}:/usr/bin:/bin"}
    completed = subprocess.run(
        # -o: never (re)install the venv from a test.
        ["make", "--no-print-directory", "-s", "-o", ".venv/.installed", target],
        cwd=REPO_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    return completed


@needs_make
def test_make_sql_prints_a_hint_then_opens_the_shell_read_only(built: Pipeline) -> None:
    completed = make(
        built, "sql", "select count(*) as n from fct_transactions;\n.read dbt_project/analyses/parquet_exports.sql\n"
    )
    hint, *output = completed.stdout.splitlines()
    assert str(built.warehouse) in hint and "read-only" in hint and "dbt_project/analyses" in hint
    printed = "\n".join(output)
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        count = con.execute("select count(*) from fct_transactions").fetchone()[0]
    assert re.search(rf"\b{count}\b", printed), printed
    assert "2024-01-02" in printed, "the Parquet example found the exports through pipeline_data_dir"


@needs_make
def test_make_sql_snapshot_opens_a_copy_that_blocks_nothing(built: Pipeline) -> None:
    completed = make(
        built,
        "sql-snapshot",
        "create table scratch as select count(*) as n from fct_transactions;\nselect n from scratch;\n",
    )
    with duckdb.connect(str(built.warehouse)) as con:  # the real warehouse is free for a writer again
        count = con.execute("select count(*) from fct_transactions").fetchone()[0]
        assert (
            con.execute("select count(*) from information_schema.tables where table_name = 'scratch'").fetchone()[0]
            == 0
        )
    assert re.search(rf"\b{count}\b", completed.stdout), completed.stdout
    assert (built.data_dir / "snapshot" / built.warehouse.name).exists()
