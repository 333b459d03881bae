"""The floor: one day's cleaning, aggregates, features and Parquet export as one bare DuckDB script.

Same rules and output as the dbt project's marts (``fct_transactions`` -> transactions_clean.parquet,
``fct_transaction_features`` -> features.parquet): values typed with try_cast, rows that cannot be
used set aside, duplicate transaction_ids set aside keeping the first in file order, price outside
[0, 10000] and quantity <= 0 set aside, empty payment method -> 'unknown'. The rows set aside are kept
for inspection with their reason (``rejected/date=D/rows.parquet``), as the warehouse keeps them. No
warehouse, no tests, no bookkeeping: what DuckDB alone needs to turn the CSV into the files.

    python benchmarks/bare_duckdb.py --csv data/raw/2024-01-15/transactions.csv --date 2024-01-15 --out /tmp/x

Prints {"clean_rows": ..., "feature_rows": ..., "rejected": {reason: rows}} as JSON. Standalone on
purpose (run as a user would).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

MAX_VALID_PRICE = 10000

# The raw text into memory, read on every core. DuckDB keeps a CSV scan's order and insertion order,
# so a row's rowid in this new table is its line order (a row_number() over the scan would run on one
# thread). Read 32 MB at a time, as the pipeline's staging reads (quicker than DuckDB's default for
# large files).
SOURCE_SQL = """
create temp table source as
select * from read_csv($csv, header = true, all_varchar = true, hive_partitioning = false, buffer_size = 33554432)
"""


def text(column: str) -> str:
    """SQL for a trimmed text value, null if blank: only padded values go through trim(), which
    copies every value it is given. (DuckDB's casts skip surrounding spaces themselves.)"""
    return f"nullif(case when prefix({column}, ' ') or suffix({column}, ' ') then trim({column}) else {column} end, '')"


CLASSIFIED_SQL = f"""
create temp table classified as
with
typed as (
    select
        rowid + 1 as line,
        {text("transaction_id")} as transaction_id,
        {text("customer_id")} as customer_id,
        {text("product_id")} as product_id,
        {text("category")} as category,
        try_cast(price as decimal(18, 2)) as price,
        try_cast(quantity as integer) as quantity,
        {text("payment_method")} as payment_method,
        make_timestamp(epoch_us(try_cast("timestamp" as timestamptz))) as transaction_at,
        price as price_text,
        quantity as quantity_text,
        "timestamp" as timestamp_text,
    from source
),
-- The later lines of a transaction_id, found by ranking two columns and joined back: ranking the
-- typed rows themselves, every column carried through the window, costs ~1.3 s more at 10M rows.
-- Only the lines whose transaction_id hash repeats are ranked (equal values, equal hashes).
hashed as not materialized (
    select rowid + 1 as line, {text("transaction_id")} as transaction_id, hash({text("transaction_id")}) as h
    from source
),
repeated_hashes as (select h from hashed group by h having count(*) > 1),
repeats as (
    select line from hashed semi join repeated_hashes using (h)
    qualify row_number() over (partition by transaction_id order by line) > 1
),
ranked as (
    select typed.*, repeats.line is not null as is_repeat
    from typed
    left join repeats on typed.line = repeats.line
)
select
    * exclude (is_repeat, price_text, quantity_text, timestamp_text),
    -- Why a row is not used (null: kept): the same vocabulary as the warehouse's row_status.
    case
        when transaction_id is null or customer_id is null or product_id is null or price is null
            or quantity is null or transaction_at is null or cast(transaction_at as date) <> cast($day as date)
            then 'quarantined'
        when is_repeat then 'duplicate'
        when price < 0 then 'negative_price'
        when price > $max_price then 'price_above_max'
        when quantity <= 0 then 'non_positive_quantity'
    end as reason,
    -- The warehouse's parse_error messages, written again on purpose: this script is an independent
    -- implementation of the rules, and the benchmark checks it sets aside the same rows.
    case
        when transaction_id is null then 'missing transaction_id'
        when customer_id is null then 'missing customer_id'
        when product_id is null then 'missing product_id'
        when price is null then 'unparseable price: ' || coalesce(price_text, '<empty>')
        when quantity is null then 'unparseable quantity: ' || coalesce(quantity_text, '<empty>')
        when transaction_at is null then 'unparseable timestamp: ' || coalesce(timestamp_text, '<empty>')
        when cast(transaction_at as date) <> cast($day as date)
            then 'timestamp outside partition date: ' || timestamp_text
    end as parse_error,
from ranked
"""

CLEAN_SQL = """
create temp table clean as
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
from classified
where reason is null
"""

FEATURES_SQL = """
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


def rejected_path(out_dir: Path, day: str) -> Path:
    return out_dir / "rejected" / f"date={day}" / "rows.parquet"


def output_paths(out_dir: Path, day: str) -> tuple[Path, Path]:
    """The two files, laid out like the pipeline's exports."""
    return (
        out_dir / "processed" / f"date={day}" / "transactions_clean.parquet",
        out_dir / "features" / "daily" / f"date={day}" / "features.parquet",
    )


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy ({query}) to {_literal(path)} (format parquet, compression zstd, dictionary_size_limit 8192)")


def run(csv: Path, day: str, out_dir: Path) -> dict[str, int]:
    date.fromisoformat(day)  # refuse anything but a date before it reaches SQL
    clean_path, features_path = output_paths(out_dir, day)
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(SOURCE_SQL, {"csv": str(csv)})
        con.execute(CLASSIFIED_SQL, {"day": day, "max_price": MAX_VALID_PRICE})
        con.execute(CLEAN_SQL, {"day": day})
        # One sort: the features file is written sorted, and the clean file is its columns less the
        # customer ones, read back in the file's order (DuckDB keeps a single file's order). Sorting
        # the clean rows into a table of their own cost more than reading the file back.
        _copy(con, f"{FEATURES_SQL} order by transaction_id", features_path)
        clean_columns = ", ".join(con.table("clean").columns)
        features_file = f"read_parquet({_literal(features_path)}, hive_partitioning = false)"
        _copy(con, f"select {clean_columns} from {features_file}", clean_path)
        _copy(con, "select * from classified where reason is not null order by line", rejected_path(out_dir, day))
        clean_rows = con.execute("select count(*) from clean").fetchone()[0]
        written = con.execute("select count(*) from read_parquet($file)", {"file": str(features_path)})
        feature_rows = written.fetchone()[0]
        reasons = con.execute("select reason, count(*) from classified where reason is not null group by all")
        rejected = {str(reason): int(rows) for reason, rows in sorted(reasons.fetchall())}
    return {"clean_rows": int(clean_rows), "feature_rows": int(feature_rows), "rejected": rejected}


def main(argv: list[str] | None = None, run_day: Callable[[Path, str, Path], dict[str, int]] = run) -> int:
    """The command line of this script and of lab_pandas.py (which passes its own ``run_day``)."""
    # The help says what the running script is: the docstring of the module that holds ``run_day``.
    summary = (sys.modules[run_day.__module__].__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(run_day(args.csv, args.date, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
