"""Run this repo's Airflow: start, stop, status, backfill with progress, rerun a date.

python scripts/airflow_local.py start|stop|status
python scripts/airflow_local.py backfill START END [--max-active-runs N] [--reprocess none|failed|completed]
python scripts/airflow_local.py rerun DATE
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecompipe import local_airflow as af  # noqa: E402
from ecompipe.core.dates import InvalidDateError  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start scheduler, dag-processor, triggerer and api-server")
    commands.add_parser("stop", help="stop exactly the processes `start` started")
    commands.add_parser("status", help="which components run, and where the UI is")
    backfill = commands.add_parser("backfill", help="backfill a date range and follow it")
    backfill.add_argument("start")
    backfill.add_argument("end")
    backfill.add_argument("--max-active-runs", type=int, default=3)
    backfill.add_argument("--reprocess", default="none", choices=["none", "failed", "completed"])
    rerun = commands.add_parser("rerun", help="reprocess one date in a fresh manual run (one dbt build)")
    rerun.add_argument("date")
    bulk = commands.add_parser("backfill-bulk", help="bulk backfill: a range in chunks, one dbt build per chunk")
    bulk.add_argument("start")
    bulk.add_argument("end")
    bulk.add_argument("--chunk-days", type=int, default=31)
    demo = commands.add_parser("demo", help="start Airflow, backfill the range, pause the DAG, stop Airflow")
    demo.add_argument("start")
    demo.add_argument("end")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "start":
            af.start()
        elif args.command == "stop":
            af.stop()
        elif args.command == "status":
            running = af.running_components()
            for component in af.COMPONENTS:
                state = f"running (pid {running[component]})" if component in running else "stopped"
                print(f"{component:<14} {state}")
            if running:
                print(f"UI: {af.api_url()}  login: {af.ADMIN_USER} / {af.admin_password()}")
        elif args.command == "backfill":
            return af.backfill(args.start, args.end, args.max_active_runs, args.reprocess)
        elif args.command == "backfill-bulk":
            return af.bulk_backfill(args.start, args.end, args.chunk_days)
        elif args.command == "demo":
            return af.demo(args.start, args.end)
        elif args.command == "rerun":
            return af.rerun(args.date)
    except (InvalidDateError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
