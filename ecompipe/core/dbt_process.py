"""``ecompipe-dbt-run``: dbt's own command line, with fewer of Python's garbage collections.

The pipeline runs dbt through this entry point (the DAGs' Cosmos ``dbt_executable_path``, bulk chunks,
and the cluster profile's ``ecompipe-dbt`` for each attempt); by hand, ``dbt`` is the same command.

Why: dbt builds a large graph of Python objects (its parsed project: the manifest, its nodes and
compiled macros) and keeps it to the end, and Python's cyclic garbage collector traverses it again
and again. On 2 cores that cost, on every build whatever its size:

* during the run, ~0.5-1 s of CPU: CPython's default thresholds (700, 10, 10) start a collection
  every 700 new objects, and an older generation's every 10 of those (a build of a 1,000-row day:
  ~750 collections, 4 of them full). With the first threshold at 200,000 (the later ones 30), that
  build collects twice; its peak memory grows by ~10 MB.
* at exit, 0.5-0.8 s of full collections after dbt has finished: about 7 % of a 100k-row date's
  build, paid again by every date the DAG builds. When dbt's command returns, dbt has written its
  artifacts, logged its summary and closed its DuckDB connection (a checkpoint); the objects still
  alive are then frozen (``gc.freeze``), so the exit no longer traverses them. Everything else
  about the exit is Python's own: ``atexit`` handlers (logging closes its files), the standard
  streams flushed, dbt's exit code.
"""

from __future__ import annotations

import gc
import sys

# gc.set_threshold's (first, second, third): see the module's docstring.
GC_THRESHOLDS = (200_000, 30, 30)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)  # before dbt's imports, which are part of every build too
    from dbt.cli.main import cli

    try:
        # dbt's command-line entry exits through SystemExit with its code, as the `dbt` script does.
        cli(prog_name="dbt")
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
