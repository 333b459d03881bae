"""``make sql`` on the cluster profile: an SQL prompt on the DuckLake, read-only.

The pinned duckdb CLI (1.5.6) cannot load the 1.5.5 extensions DuckLake needs (an extension loads only
into the exact DuckDB version it was built for), so this prompt runs in the project's Python DuckDB.
It reads a snapshot of the lake: open as long as you like, it never blocks the pipeline's writers.
Statements end with ';'; ``.quit`` (or Ctrl-D) leaves.
"""

from __future__ import annotations

import sys

import duckdb

from ecompipe.core import lake


def run_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The result of one statement as DuckDB's box table (or an error line)."""
    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        return f"Error: {exc}"
    return "" if relation is None else str(relation)


def main() -> int:
    with lake.connect(read_only=True) as con:
        print(f"DuckLake {lake.libpq_dsn()}, snapshot {lake.current_snapshot(con)}, read-only. ';' ends a statement.")
        pending: list[str] = []
        while True:
            try:
                line = input("lake> " if not pending else "  ...> ")
            except EOFError:
                break
            if not pending and line.strip() in (".quit", ".exit"):
                break
            pending.append(line)
            if line.rstrip().endswith(";"):
                print(run_statement(con, "\n".join(pending)), flush=True)
                pending = []
    return 0


if __name__ == "__main__":
    sys.exit(main())
