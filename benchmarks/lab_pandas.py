"""What a user of the lab would run: its pandas cleaning and features, then the two Parquet files.

The cleaning and feature functions are the lab's (``tests/lab_reference.py``, the behaviour spec the
warehouse is tested against); this adds only writing the files where the pipeline writes them.

    python benchmarks/lab_pandas.py --csv data/raw/2024-01-15/transactions.csv --date 2024-01-15 --out /tmp/x

Prints {"clean_rows": ..., "feature_rows": ...} as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.lab_reference import lab_clean, lab_features  # noqa: E402


def output_paths(out_dir: Path, day: str) -> tuple[Path, Path]:
    return (
        out_dir / "processed" / f"date={day}" / "transactions_clean.parquet",
        out_dir / "features" / "daily" / f"date={day}" / "features.parquet",
    )


def run(csv: Path, day: str, out_dir: Path) -> dict[str, int]:
    clean_path, features_path = output_paths(out_dir, day)
    clean = lab_clean(csv)
    features = lab_features(clean)
    for frame, path in ((clean, clean_path), (features, features_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, compression="zstd", index=False)
    return {"clean_rows": len(clean), "feature_rows": len(features)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.csv, args.date, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
