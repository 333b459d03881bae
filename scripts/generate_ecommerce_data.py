"""Generate daily raw partitions: ``<output-dir>/YYYY-MM-DD/transactions.csv``.

Examples::

    python scripts/generate_ecommerce_data.py --date 2024-01-15
    python scripts/generate_ecommerce_data.py --start-date 2024-01-01 --end-date 2024-01-07 --rows 5000
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecompipe.core.dates import InvalidDateError, date_range  # noqa: E402
from ecompipe.pipeline.generator import generate_partition  # noqa: E402
from ecompipe.settings import raw_dir  # noqa: E402


def main(
    execution_date: str | date,
    output_dir: str | Path | None = None,
    rows: int = 1000,
    seed: int = 42,
    force: bool = False,
) -> dict[str, object]:
    """Generate one day. Returns ``{"date", "path", "num_transactions", "skipped"}``.

    An existing partition is left alone (``num_transactions`` is None, ``skipped`` True) unless
    ``force`` is set: raw data is the system of record and is never silently replaced.
    """
    return generate_partition(execution_date, Path(output_dir) if output_dir else raw_dir(), rows, seed, force)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", help="one day, YYYY-MM-DD")
    when.add_argument("--start-date", help="first day of a range, YYYY-MM-DD (needs --end-date)")
    parser.add_argument("--end-date", help="last day of the range, included")
    parser.add_argument("--rows", type=int, default=1000, help="raw rows per day (default 1000)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: $PIPELINE_DATA_DIR/raw")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--force", action="store_true", help="overwrite partitions that already exist")
    args = parser.parse_args(argv)
    if args.start_date and not args.end_date:
        parser.error("--start-date needs --end-date")
    if args.end_date and not args.start_date:
        parser.error("--end-date needs --start-date")
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def cli(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        days = [args.date] if args.date else [d.isoformat() for d in date_range(args.start_date, args.end_date)]
    except InvalidDateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    written = 0
    for position, day in enumerate(days, start=1):
        result = main(day, args.output_dir, args.rows, args.seed, args.force)
        if result["skipped"]:
            status = "exists, kept (use --force to overwrite)"
        else:
            written += 1
            status = f"{result['num_transactions']:,} rows"
        print(f"[{position}/{len(days)}] {day}: {status} -> {result['path']}", flush=True)
    elapsed = time.perf_counter() - started
    print(f"done: {written} partition(s) written, {len(days) - written} kept, in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
