"""Where everything lives.

Every path derives from two environment variables, resolved the same way by the generator, dbt
(``dbt_project/profiles.yml`` uses the same defaults), the DAGs and the tests, whatever the working
directory:

* ``PIPELINE_DATA_DIR`` (default ``<repo>/data``): raw partitions, exports, logs.
* ``DUCKDB_PATH`` (default ``$PIPELINE_DATA_DIR/warehouse.duckdb``): the warehouse file.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
RAW_FILE_NAME = "transactions.csv"


def data_dir() -> Path:
    """Root of all generated data (``PIPELINE_DATA_DIR``), absolute."""
    configured = os.environ.get("PIPELINE_DATA_DIR")
    return Path(configured).expanduser().resolve() if configured else REPO_ROOT / "data"


def duckdb_path() -> Path:
    """The DuckDB warehouse file (``DUCKDB_PATH``), absolute."""
    configured = os.environ.get("DUCKDB_PATH")
    return Path(configured).expanduser().resolve() if configured else data_dir() / "warehouse.duckdb"


def raw_dir() -> Path:
    return data_dir() / "raw"


def raw_partition_path(partition_date: str, base_dir: Path | None = None) -> Path:
    """``<raw>/YYYY-MM-DD/transactions.csv``; callers validate the date first."""
    return (base_dir or raw_dir()) / partition_date / RAW_FILE_NAME


def processed_dir() -> Path:
    return data_dir() / "processed"


def features_dir() -> Path:
    return data_dir() / "features" / "daily"


def logs_dir() -> Path:
    return data_dir() / "logs"


def pipeline_env() -> dict[str, str]:
    """The two variables, resolved, for handing to a subprocess (dbt, airflow)."""
    return {"PIPELINE_DATA_DIR": str(data_dir()), "DUCKDB_PATH": str(duckdb_path())}
