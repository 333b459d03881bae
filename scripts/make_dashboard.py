"""Write the pipeline dashboard: one self-contained HTML page and its PNG plots, from the warehouse.

python scripts/make_dashboard.py [--warehouse PATH] [--out DIR]

Defaults: DUCKDB_PATH and $PIPELINE_DATA_DIR/dashboard/. The warehouse is opened read-only; a missing
or half-built warehouse gives a page saying what is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402

from ecompipe.reports.dashboard import dashboard_dir, write_dashboard  # noqa: E402
from ecompipe.settings import duckdb_path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the pipeline dashboard (index.html + PNGs).")
    parser.add_argument("--warehouse", type=Path, default=None, help=f"DuckDB file (default {duckdb_path()})")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {dashboard_dir()})")
    args = parser.parse_args(argv)
    try:
        index = write_dashboard(args.warehouse, args.out)
    except duckdb.IOException as exc:
        print(f"error: cannot read the warehouse: {str(exc).splitlines()[0]}", file=sys.stderr)
        print("A pipeline task may be writing it: try again in a moment.", file=sys.stderr)
        return 1
    print(f"Dashboard: {index}")
    print(f"Open it: file://{index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
