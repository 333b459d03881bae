"""``ecompipe-dbt-run``: dbt's own command line, without Python's garbage collections at exit.

The pipeline runs dbt through this entry point (the DAGs' Cosmos ``dbt_executable_path``, bulk chunks,
and the cluster profile's ``ecompipe-dbt`` for each attempt); by hand, ``dbt`` is the same command.

Why: when a Python process exits, the interpreter runs full garbage collections over every object
still alive. A dbt process keeps its parsed project (the manifest, its nodes and compiled macros) to
the end, and those collections take 0.5-0.8 s on 2 cores after dbt has finished: about 7 % of a
100k-row date's build, paid again by every date the DAG builds. When dbt's command returns, dbt has
written its artifacts, logged its summary and closed its DuckDB connection (a checkpoint); the
objects still alive are then frozen (``gc.freeze``), so the exit no longer traverses them.
Everything else about the exit is Python's own: ``atexit`` handlers (logging closes its files), the
standard streams flushed, dbt's exit code.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    from dbt.cli.main import cli

    try:
        # dbt's command-line entry exits through SystemExit with its code, as the `dbt` script does.
        cli(prog_name="dbt")
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
