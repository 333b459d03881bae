"""The dbt docs site: generate it (``ecompipe docs generate``) and serve it (``ecompipe docs serve``).

``dbt docs generate --static`` runs in a build folder (``dbt_project/target/docs_build``, so it never
rewrites the ``target/manifest.json`` the DAG is rendered from), then the four files of the site are
published, each atomically, to ``dbt_project/target/docs``: ``index.html``, ``manifest.json``,
``catalog.json`` and ``static_index.html`` (the whole site in one file, readable without a server).
That folder is what ``ecompipe docs serve`` serves and what Cosmos shows in the Airflow UI.

The catalog (column types) comes from the warehouse. When there is no warehouse yet, or another
process holds its lock (a pipeline task writing, a ``make sql`` shell), the docs are generated
against a throwaway empty warehouse with ``--empty-catalog``: every description is there, the
column types are not; nothing is created or waited for at ``DUCKDB_PATH``. And since compiling the
models in full scope checks every raw file on disk, a file that fails those checks would fail the
docs: then they are generated from the parsed project (``--no-compile``), without the compiled SQL.
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
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ecompipe.core.files import atomic_write
from ecompipe.core.warehouse import WarehouseLockedError, connect
from ecompipe.settings import DBT_PROJECT_DIR, get_settings, pipeline_env

SITE_FILES = ("index.html", "manifest.json", "catalog.json", "static_index.html")
# The address printed for a server bound to every interface (0.0.0.0): a browser on this machine reaches it there.
DEFAULT_HOST = "127.0.0.1"


def docs_dir() -> Path:
    """Where the published site lives (served by ``ecompipe docs serve`` and by Cosmos in Airflow)."""
    return DBT_PROJECT_DIR / "target" / "docs"


def build_dir() -> Path:
    """dbt's target path for ``docs generate`` (keeps its partial-parse file between runs)."""
    return DBT_PROJECT_DIR / "target" / "docs_build"


def default_port() -> int:
    """``DBT_DOCS_PORT``, else ``settings.DEFAULT_DOCS_PORT``: derived from the checkout's path, in 35000-39999.

    Never 8080, and outside the 20000-34999 band the Airflow ports of ``make airflow`` come from.
    """
    return get_settings().dbt_docs_port


def default_host() -> str:
    """``DBT_DOCS_HOST``, else 127.0.0.1."""
    return get_settings().dbt_docs_host


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
    try:
        # The same read-write open dbt-duckdb does; closed at once.
        connect(warehouse, wait_seconds=wait_seconds).close()
    except WarehouseLockedError as exc:
        holder = re.search(r"Conflicting lock is held in (\S+) \(PID (\d+)\)", str(exc.__cause__))
        who = f"{Path(holder.group(1)).name}, PID {holder.group(2)}" if holder else str(exc.__cause__).splitlines()[0]
        return f"another process holds the warehouse ({who}): a pipeline task or a `make sql` shell"
    return None


def _dbt_executable() -> str:
    return str(Path(sys.executable).parent / "dbt")


def _dbt(target: Path, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [_dbt_executable(), *args, "--target-path", str(target), "--log-path", str(target / "logs")]
    return subprocess.run(command, cwd=DBT_PROJECT_DIR, env=dict(env), capture_output=True, text=True, check=False)


def _run_dbt_docs(
    target: Path, env: Mapping[str, str], empty_catalog: bool, compile_nodes: bool
) -> subprocess.CompletedProcess[str]:
    flags = ["--empty-catalog"] if empty_catalog else []
    if not compile_nodes:
        # --no-compile documents the manifest already in the target path: parse writes it.
        parsed = _dbt(target, env, "parse")
        if parsed.returncode != 0:
            return parsed
        flags.append("--no-compile")
    return _dbt(target, env, "docs", "generate", "--static", *flags)


def _output(completed: subprocess.CompletedProcess[str]) -> str:
    return f"{completed.stdout}\n{completed.stderr}"


def _error_summary(completed: subprocess.CompletedProcess[str]) -> str:
    """The error's first lines, on one line (dbt prints a banner, then the error indented)."""
    text = _output(completed)
    marker = text.find("Encountered an error")
    lines = [line.strip() for line in text[marker if marker >= 0 else 0 :].splitlines()[1:] if line.strip()]
    return " ".join(lines[:3])[:400] or "see dbt's log"


def _generate(build: Path, env: Mapping[str, str], empty_catalog: bool) -> tuple[subprocess.CompletedProcess[str], str]:
    """dbt docs generate; if compiling fails (models compile against the raw files on disk, and one bad
    file fails a full-scope compile), again without compiling: the docs lose the compiled SQL only."""
    completed = _run_dbt_docs(build, env, empty_catalog, compile_nodes=True)
    if completed.returncode == 0 or _is_lock_error(completed):
        return completed, ""
    retry = _run_dbt_docs(build, env, empty_catalog, compile_nodes=False)
    if retry.returncode != 0:
        return completed, ""
    return retry, f"; compiled SQL left out, compiling failed: {_error_summary(completed)}"


def _is_lock_error(completed: subprocess.CompletedProcess[str]) -> bool:
    return completed.returncode != 0 and "Could not set lock" in _output(completed)


def _failure(completed: subprocess.CompletedProcess[str]) -> RuntimeError:
    return RuntimeError(f"dbt docs generate failed:\n{completed.stdout[-4000:]}\n{completed.stderr[-2000:]}")


def _publish(build: Path, site: Path) -> None:
    site.mkdir(parents=True, exist_ok=True)
    for name in SITE_FILES:
        with atomic_write(site / name) as staged:
            shutil.copyfile(build / name, staged)


def generate_docs(
    site: Path | None = None, build: Path | None = None, env: Mapping[str, str] | None = None
) -> GeneratedDocs:
    """``dbt docs generate --static``, published to ``site``; falls back to an empty catalog (see module doc)."""
    site = site or docs_dir()
    build = build or build_dir()
    base_env = dict(env) if env is not None else {**os.environ, **pipeline_env()}
    warehouse = Path(base_env["DUCKDB_PATH"])
    # The cluster profile's dbt target reads the lake, which no reader or writer locks.
    problem = None if get_settings().pipeline_profile == "cluster" else warehouse_problem(warehouse)
    if problem is None:
        completed, caveat = _generate(build, base_env, empty_catalog=False)
        if completed.returncode == 0:
            _publish(build, site)
            return GeneratedDocs(site, catalog=True, note=f"catalog from {warehouse}{caveat}")
        if not _is_lock_error(completed):
            raise _failure(completed)
        problem = "another process locked the warehouse while dbt read it"
    with tempfile.TemporaryDirectory(prefix="dbt_docs_") as scratch:
        # Same file name, so the relations keep their database name (`warehouse.main.<model>`).
        fallback_env = {**base_env, "DUCKDB_PATH": str(Path(scratch) / warehouse.name)}
        completed, caveat = _generate(build, fallback_env, empty_catalog=True)
    if completed.returncode != 0:
        raise _failure(completed)
    _publish(build, site)
    return GeneratedDocs(site, catalog=False, note=f"no catalog (column types): {problem}{caveat}")


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

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # One line per request is noise (the dbt docs app also asks for a few bogus URLs): server errors only.
        if str(int(code) if isinstance(code, int) else code).startswith("5"):
            super().log_request(code, size)

    def log_error(self, format: str, *args: object) -> None:
        pass  # a 404 for a file outside the site is expected; log_request reports server errors


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
    """``python -m ecompipe.reports.docs_site [generate]``: generate and publish the docs site."""
    parser = argparse.ArgumentParser(prog="python -m ecompipe.reports.docs_site", description=main.__doc__)
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
