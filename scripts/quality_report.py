"""Write the data-quality report(s) of a date or range as JSON and print a one-line verdict per date.

python scripts/quality_report.py 2024-01-15 [2024-01-20]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecompipe.core.dates import InvalidDateError, date_range  # noqa: E402
from ecompipe.pipeline.quality import build_report, write_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        days = [day.isoformat() for day in date_range(args[0], args[-1])]
    except InvalidDateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    worst = 0
    for day in days:
        path = write_report(day)
        report = build_report(day)
        print(f"{day}: {report['status']:<13} {report['summary']}  -> {path}")
        worst = max(worst, 1 if report["status"] in ("fail", "not_processed") else 0)
    return worst


if __name__ == "__main__":
    sys.exit(main())
