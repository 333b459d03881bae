"""What a user of the lab would run: its pandas cleaning and features, then the two Parquet files.

The cleaning and feature functions are the lab's (``tests/helpers/lab_reference.py``, the behaviour spec
the warehouse is tested against); this adds only writing the files where the pipeline writes them.

    python benchmarks/lab_pandas.py --csv data/raw/2024-01-15/transactions.csv --date 2024-01-15 --out /tmp/x

Prints {"clean_rows": ..., "feature_rows": ...} as JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bare_duckdb import main, output_paths  # noqa: E402
from tests.helpers.lab_reference import lab_clean, lab_features  # noqa: E402


def run(csv: Path, day: str, out_dir: Path) -> dict[str, int]:
    clean = lab_clean(csv)
    features = lab_features(clean)
    for frame, path in zip((clean, features), output_paths(out_dir, day), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, compression="zstd", index=False)
    return {"clean_rows": len(clean), "feature_rows": len(features)}


if __name__ == "__main__":
    raise SystemExit(main(run_day=run))
