"""The dbt docs site: generate it (``python -m ecompipe.docs_site``) and serve it (``scripts/serve_docs.py``).

``dbt docs generate --static`` runs in a build folder (``dbt_project/target/docs_build``, so it never
rewrites the ``target/manifest.json`` the DAG is rendered from), then the four files of the site are
published, each atomically, to ``dbt_project/target/docs``: ``index.html``, ``manifest.json``,
``catalog.json`` and ``static_index.html`` (the whole site in one file, readable without a server).
That folder is what ``scripts/serve_docs.py`` serves and what Cosmos shows in the Airflow UI.

The catalog (column types) comes from the warehouse. When there is no warehouse yet, or another
process holds its lock (a pipeline task writing, a ``make sql`` shell), the docs are generated
against a throwaway empty warehouse with ``--empty-catalog``: every description is there, the
column types are not; nothing is created or waited for at ``DUCKDB_PATH``.
"""

from __future__ import annotations

import argparse
import errno
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb

from ecompipe.settings import DBT_PROJECT_DIR, REPO_ROOT, pipeline_env

SITE_FILES = ("index.html", "manifest.json", "catalog.json", "static_index.html")
DEFAULT_HOST = "127.0.0.1"


def docs_dir() -> Path:
    """Where the published site lives (served by scripts/serve_docs.py and by Cosmos in Airflow)."""
    return DBT_PROJECT_DIR / "target" / "docs"


def build_dir() -> Path:
    """dbt's target path for ``docs generate`` (keeps its partial-parse file between runs)."""
    return DBT_PROJECT_DIR / "target" / "docs_build"


def default_port() -> int:
    """``DBT_DOCS_PORT``, else a port derived from the checkout's path in 35000-39999.

    Never 8080, and outside the 20000-34999 band the Airflow ports of ``make airflow`` come from.
    """
    configured = os.environ.get("DBT_DOCS_PORT")
    if configured:
        return int(configured)
    return 35_000 + zlib.crc32(str(REPO_ROOT).encode()) % 5_000


def default_host() -> str:
    return os.environ.get("DBT_DOCS_HOST", DEFAULT_HOST)


# --------------------------------------------------------------------------------------------------
# Generate


@dataclass(frozen=True)
class GeneratedDocs:
    site_dir: Path
    catalog: bool
    note: str


def warehouse_problem(warehouse: Path, wait_seconds: float = 10.0) -> str | None:
    """Why dbt cannot build a catalog from ``warehouse`` now, or None if it can.

    A pipeline task holds the file for seconds: wait up to ``wait_seconds`` for it. A ``make sql``
    shell holds it until it quits: then give up and say who holds it.
    """
    if not warehouse.exists():
        return f"no warehouse yet at {warehouse}"
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            # The same read-write open dbt-duckdb does; closed at once.
            duckdb.connect(str(warehouse)).close()
            return None
        except duckdb.IOException as exc:
            if time.monotonic() >= deadline:
                holder = re.search(r"Conflicting lock is held in (\S+) \(PID (\d+)\)", str(exc))
                who = f"{Path(holder.group(1)).name}, PID {holder.group(2)}" if holder else str(exc).splitlines()[0]
                return f"another process holds the warehouse ({who}): a pipeline task or a `make sql` shell"
        time.sleep(1.0)


def _dbt_executable() -> str:
    return str(Path(sys.executable).parent / "dbt")


def _run_dbt_docs(target: Path, env: Mapping[str, str], empty_catalog: bool) -> subprocess.CompletedProcess[str]:
    command = [
        _dbt_executable(),
        "docs",
        "generate",
        "--static",
        "--target-path",
        str(target),
        "--log-path",
        str(target / "logs"),
    ]
    if empty_catalog:
        command.append("--empty-catalog")
    return subprocess.run(command, cwd=DBT_PROJECT_DIR, env=dict(env), capture_output=True, text=True, check=False)


def _publish(build: Path, site: Path) -> None:
    site.mkdir(parents=True, exist_ok=True)
    for name in SITE_FILES:
        staged = site / f".{name}.tmp"
        shutil.copyfile(build / name, staged)
        os.replace(staged, site / name)


def generate_docs(
    site: Path | None = None, build: Path | None = None, env: Mapping[str, str] | None = None
) -> GeneratedDocs:
    """``dbt docs generate --static``, published to ``site``; falls back to an empty catalog (see module doc)."""
    site = site or docs_dir()
    build = build or build_dir()
    base_env = dict(env) if env is not None else {**os.environ, **pipeline_env()}
    warehouse = Path(base_env["DUCKDB_PATH"])
    problem = warehouse_problem(warehouse)
    if problem is None:
        completed = _run_dbt_docs(build, base_env, empty_catalog=False)
        if completed.returncode == 0:
            _publish(build, site)
            return GeneratedDocs(site, catalog=True, note=f"catalog from {warehouse}")
        if "lock" not in completed.stdout + completed.stderr:
            raise RuntimeError(f"dbt docs generate failed:\n{completed.stdout[-4000:]}\n{completed.stderr[-2000:]}")
        problem = "the warehouse was locked by another process while dbt read it"
    with tempfile.TemporaryDirectory(prefix="dbt_docs_") as scratch:
        # Same file name, so the relations keep their database name (`warehouse.main.<model>`).
        fallback_env = {**base_env, "DUCKDB_PATH": str(Path(scratch) / warehouse.name)}
        completed = _run_dbt_docs(build, fallback_env, empty_catalog=True)
    if completed.returncode != 0:
        raise RuntimeError(f"dbt docs generate failed:\n{completed.stdout[-4000:]}\n{completed.stderr[-2000:]}")
    _publish(build, site)
    return GeneratedDocs(site, catalog=False, note=f"no catalog (column types): {problem}")


# --------------------------------------------------------------------------------------------------
# Serve


class DocsRequestHandler(SimpleHTTPRequestHandler):
    """Serves the site's files only (never the rest of dbt's target folder), uncached."""

    def do_GET(self) -> None:
        if not self._allowed():
            self.send_error(HTTPStatus.NOT_FOUND, "Not part of the dbt docs site")
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if not self._allowed():
            self.send_error(HTTPStatus.NOT_FOUND, "Not part of the dbt docs site")
            return
        super().do_HEAD()

    def _allowed(self) -> bool:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        return path == "/" or path.lstrip("/") in SITE_FILES

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        # Successful requests are not worth a line each; errors are.
        if args and str(args[1]) not in ("200", "304"):
            super().log_message(format, *args)


def make_server(site: Path, host: str, port: int) -> ThreadingHTTPServer:
    handler = functools.partial(DocsRequestHandler, directory=str(site))
    return ThreadingHTTPServer((host, port), handler)


def serve(site: Path | None = None, host: str | None = None, port: int | None = None) -> int:
    site = site or docs_dir()
    host = host or default_host()
    port = default_port() if port is None else port
    if not (site / "index.html").exists():
        print(f"error: no dbt docs in {site}: generate them first (make docs, or make docs-generate)", file=sys.stderr)
        return 1
    try:
        server = make_server(site, host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"error: port {port} on {host} is in use: choose another with DBT_DOCS_PORT=...", file=sys.stderr)
            return 1
        raise
    bound_port = server.server_address[1]
    shown_host = DEFAULT_HOST if host in ("0.0.0.0", "") else host
    print(f"dbt docs: http://{shown_host}:{bound_port}/  (serving {site}; Ctrl-C stops)", flush=True)
    if host in ("0.0.0.0", ""):
        print("Listening on every interface (DBT_DOCS_HOST=0.0.0.0).", flush=True)
    print(f"Single-file site, no server needed: {site / 'static_index.html'}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m ecompipe.docs_site [generate]``: generate and publish the docs site."""
    parser = argparse.ArgumentParser(prog="python -m ecompipe.docs_site", description=main.__doc__)
    parser.add_argument("command", nargs="?", default="generate", choices=["generate"])
    parser.parse_args(argv)
    print("Generating the dbt docs (dbt docs generate --static)...", flush=True)
    try:
        result = generate_docs()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"dbt docs: {result.site_dir} ({result.note})")
    if not result.catalog:
        print("Generate them again once the pipeline has run and is idle: make docs-generate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
