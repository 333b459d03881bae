"""Deterministic, vectorised generator of one day of raw e-commerce transactions.

Same (date, seed, rows) gives a byte-identical CSV. The file carries realistic dirt at stable small
rates so the cleaning rules have something to do, and customers are drawn from one fixed population
with a skewed (Zipf-like) popularity so the same customers come back day after day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ecompipe.core.dates import parse_date
from ecompipe.core.files import atomic_write
from ecompipe.settings import raw_partition_path

COLUMNS = (
    "transaction_id",
    "customer_id",
    "product_id",
    "category",
    "price",
    "quantity",
    "payment_method",
    "timestamp",
)
CATEGORIES = ("electronics", "clothing", "home", "books", "sports", "beauty", "toys", "grocery")
PAYMENT_METHODS = ("credit_card", "debit_card", "paypal", "apple_pay", "bank_transfer")
NUM_CUSTOMERS = 5_000
NUM_PRODUCTS = 500


@dataclass(frozen=True)
class DirtRates:
    """Share of rows that get each kind of dirt (independent draws)."""

    duplicate: float = 0.01
    negative_price: float = 0.01
    huge_price: float = 0.002
    bad_quantity: float = 0.01
    empty_payment: float = 0.02


def _rng(day: date, seed: int) -> np.random.Generator:
    # Seeding with (seed, day) makes every partition independent of which other dates were generated.
    return np.random.default_rng([seed, day.toordinal()])


def _prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def build_transactions(day: date, rows: int, seed: int, dirt: DirtRates = DirtRates()) -> pa.Table:
    """One day of transactions, ``rows`` lines in file order, duplicates included."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = _rng(day, seed)
    num_duplicates = int(rows * dirt.duplicate)
    num_unique = rows - num_duplicates

    # Skewed customer popularity: a Zipf draw folded into the fixed population.
    customers = (rng.zipf(1.3, num_unique) - 1) % NUM_CUSTOMERS + 1
    products = rng.integers(0, NUM_PRODUCTS, num_unique)
    prices = np.round(rng.lognormal(mean=3.6, sigma=0.9, size=num_unique), 2)
    prices = np.where(rng.random(num_unique) < dirt.negative_price, -prices, prices)
    huge = rng.random(num_unique) < dirt.huge_price
    prices = np.where(huge, np.round(rng.uniform(10_000.01, 100_000, num_unique), 2), prices)
    quantities = rng.choice([1, 1, 1, 2, 2, 3, 4, 5], num_unique)
    bad_quantity = rng.random(num_unique) < dirt.bad_quantity
    quantities = np.where(bad_quantity, rng.integers(-3, 1, num_unique), quantities)
    payment_index = rng.integers(0, len(PAYMENT_METHODS), num_unique)
    payment_empty = rng.random(num_unique) < dirt.empty_payment
    seconds = np.sort(rng.integers(0, 86_400, num_unique))

    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    timestamps = pa.array(midnight + seconds, pa.int64()).cast(pa.timestamp("s", tz="UTC"))
    table = pa.table(
        {
            "transaction_id": _prefixed_ids(f"TXN-{day:%Y%m%d}-", np.arange(1, num_unique + 1), 7),
            "customer_id": _prefixed_ids("CUST-", customers, 5),
            "product_id": _prefixed_ids("PROD-", products + 1, 4),
            "category": pa.array(np.array(CATEGORIES)[products % len(CATEGORIES)]),
            "price": pa.array(prices, pa.float64()),
            "quantity": pa.array(quantities, pa.int64()),
            "payment_method": pa.array(np.array(PAYMENT_METHODS)[payment_index], mask=payment_empty),
            "timestamp": pc.strftime(timestamps, format="%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    if num_duplicates:
        # A re-sent row appears again right after its original, as a retrying client would produce.
        originals = np.sort(rng.choice(num_unique, num_duplicates, replace=False))
        order = np.sort(np.concatenate([np.arange(num_unique), originals]), kind="stable")
        table = table.take(pa.array(order))
    return table


def write_csv_atomically(table: pa.Table, path: Path) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a partition."""
    with atomic_write(path) as tmp:
        pacsv.write_csv(table, str(tmp), pacsv.WriteOptions(quoting_style="needed"))


def generate_partition(
    execution_date: str | date,
    output_dir: Path,
    rows: int = 1000,
    seed: int = 42,
    force: bool = False,
) -> dict[str, object]:
    """Write ``<output_dir>/<date>/transactions.csv`` unless it exists (or ``force``)."""
    day = parse_date(execution_date, "execution_date")
    path = raw_partition_path(day.isoformat(), Path(output_dir))
    if path.exists() and not force:
        return {"date": day.isoformat(), "path": str(path), "num_transactions": None, "skipped": True}
    table = build_transactions(day, rows, seed)
    write_csv_atomically(table, path)
    return {
        "date": day.isoformat(),
        "path": str(path),
        "num_transactions": table.num_rows,
        "skipped": False,
    }
