"""Generate daily raw partitions: ``<output-dir>/YYYY-MM-DD/transactions.csv``.

The same command as ``ecompipe generate`` (``ecompipe generate --help``). Examples::

    python scripts/generate_ecommerce_data.py --date 2024-01-15
    python scripts/generate_ecommerce_data.py --start-date 2024-01-01 --end-date 2024-01-07 --rows 5000

``main(execution_date, output_dir=None, rows=1000, seed=42, force=False)`` generates one day from Python.
"""

from __future__ import annotations

import sys

from ecompipe.cli import generate, run
from ecompipe.cli import generate_day as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run(generate))
