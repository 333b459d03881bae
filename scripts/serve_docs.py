"""Serve the generated dbt docs site on 127.0.0.1 (``make docs`` generates it first).

python scripts/serve_docs.py [--dir DIR] [--host HOST] [--port PORT]

Defaults: the site in dbt_project/target/docs, DBT_DOCS_HOST (127.0.0.1) and DBT_DOCS_PORT (derived
from the checkout's path, 35000-39999; never 8080). ``--port 0`` takes a free port; the address is
printed either way. Only the site's files are served (index.html, manifest.json, catalog.json,
static_index.html), never the rest of dbt's target folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecompipe.reports.docs_site import default_host, default_port, docs_dir, serve  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the generated dbt docs site.")
    parser.add_argument("--dir", type=Path, default=None, help=f"site folder (default {docs_dir()})")
    parser.add_argument("--host", default=None, help=f"address to bind (default DBT_DOCS_HOST or {default_host()})")
    parser.add_argument("--port", type=int, default=None, help=f"port (default DBT_DOCS_PORT or {default_port()})")
    args = parser.parse_args(argv)
    return serve(site=args.dir, host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
