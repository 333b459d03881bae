"""The floor: one day's cleaning, aggregates, features and Parquet export as one bare DuckDB script.

Same rules and output as the dbt project's marts (``fct_transactions`` -> transactions_clean.parquet,
``fct_transaction_features`` -> features.parquet): values typed with try_cast, rows that cannot be
used dropped, duplicate transaction_ids dropped keeping the first in file order, price outside
[0, 10000] and quantity <= 0 dropped, empty payment method -> 'unknown'. No warehouse, no tests,
no bookkeeping: what DuckDB alone needs to turn the CSV into the two files.

    python benchmarks/bare_duckdb.py --csv data/raw/2024-01-15/transactions.csv --date 2024-01-15 --out /tmp/x

Prints {"clean_rows": ..., "feature_rows": ...} as JSON. Standalone on purpose (run as a user would).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

MAX_VALID_PRICE = 10000

CLEAN_SQL = """
create temp table clean as
with
source as (
    -- DuckDB keeps file order for a CSV scan: a row number over it is the line order.
    select *, row_number() over () as line
    from read_csv($csv, header = true, all_varchar = true)
),
typed as (
    select
        line,
        nullif(trim(transaction_id), '') as transaction_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(product_id), '') as product_id,
        nullif(trim(category), '') as category,
        try_cast(trim(price) as decimal(18, 2)) as price,
        try_cast(trim(quantity) as integer) as quantity,
        nullif(trim(payment_method), '') as payment_method,
        cast(try_cast(trim("timestamp") as timestamptz) at time zone 'UTC' as timestamp) as transaction_at,
    from source
),
first_seen as (
    select * from typed
    qualify row_number() over (partition by transaction_id order by line) = 1
)
select
    transaction_id,
    customer_id,
    product_id,
    category,
    price,
    quantity,
    coalesce(payment_method, 'unknown') as payment_method,
    cast(price * quantity as decimal(18, 2)) as total_amount,
    transaction_at,
    cast(transaction_at as date) as transaction_date,
    cast(hour(transaction_at) as integer) as hour,
    cast(isodow(transaction_at) - 1 as integer) as day_of_week,
    cast($day as date) as partition_date,
from first_seen
where transaction_id is not null
  and customer_id is not null
  and product_id is not null
  and transaction_at is not null
  and cast(transaction_at as date) = cast($day as date)
  and price between 0 and $max_price
  and quantity > 0
"""

FEATURES_SQL = """
create temp table features as
with customer_daily as (
    select
        customer_id,
        transaction_date,
        count(*) as num_purchases,
        cast(sum(total_amount) as decimal(18, 2)) as total_spent,
        cast(avg(total_amount) as double) as avg_order_value,
    from clean
    group by customer_id, transaction_date
)
select
    clean.*,
    customer_daily.num_purchases as customer_num_purchases,
    customer_daily.total_spent as customer_total_spent,
    customer_daily.avg_order_value as customer_avg_order_value,
from clean
left join customer_daily
    on clean.customer_id = customer_daily.customer_id
    and clean.transaction_date = customer_daily.transaction_date
"""


def output_paths(out_dir: Path, day: str) -> tuple[Path, Path]:
    """The two files, laid out like the pipeline's exports."""
    return (
        out_dir / "processed" / f"date={day}" / "transactions_clean.parquet",
        out_dir / "features" / "daily" / f"date={day}" / "features.parquet",
    )


def _copy(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    target = str(path).replace("'", "''")
    con.execute(
        f"copy (select * from {table} order by transaction_id) to '{target}' (format parquet, compression zstd)"
    )


def run(csv: Path, day: str, out_dir: Path) -> dict[str, int]:
    date.fromisoformat(day)  # refuse anything but a date before it reaches SQL
    clean_path, features_path = output_paths(out_dir, day)
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(CLEAN_SQL, {"csv": str(csv), "day": day, "max_price": MAX_VALID_PRICE})
        con.execute(FEATURES_SQL)
        _copy(con, "clean", clean_path)
        _copy(con, "features", features_path)
        clean_rows = con.execute("select count(*) from clean").fetchone()[0]
        feature_rows = con.execute("select count(*) from features").fetchone()[0]
    return {"clean_rows": int(clean_rows), "feature_rows": int(feature_rows)}


def main(argv: list[str] | None = None, run_day: Callable[[Path, str, Path], dict[str, int]] = run) -> int:
    """The command line of this script and of lab_pandas.py (which passes its own ``run_day``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(run_day(args.csv, args.date, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
