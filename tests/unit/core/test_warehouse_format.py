"""A warehouse file the project creates is in one storage format, whoever creates it first."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from ecompipe.core.warehouse import STORAGE_VERSION, connect
from ecompipe.settings import DBT_PROJECT_DIR


def _storage_version(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(
            "select tags['storage_version'] from duckdb_databases() where database_name = current_database()"
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_new_file_opened_for_writing_takes_the_project_format(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        con.execute("create table t as select 1 as x")
    assert _storage_version(path) == f"{STORAGE_VERSION}+"


def test_an_existing_file_keeps_its_format(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:  # DuckDB's default format
        con.execute("create table t as select 1 as x")
    before = _storage_version(path)
    with connect(path) as con:
        con.execute("insert into t values (2)")
    assert _storage_version(path) == before != f"{STORAGE_VERSION}+"


def test_dbt_creates_the_warehouse_in_the_same_format() -> None:
    # profiles.yml is Jinja around YAML; the format is a literal in the dev target.
    profile = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())
    dev = profile["ecommerce"]["outputs"]["dev"]
    assert dev["config_options"] == {"storage_compatibility_version": STORAGE_VERSION}
