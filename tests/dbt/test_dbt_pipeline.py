"""The dbt project on real DuckDB files: correctness against the lab, idempotency, re-delivery, scope."""

from __future__ import annotations

import sys

import duckdb
import pandas as pd
import pytest

from ecompipe.core.warehouse import MART_TABLES, MODEL_TABLES, STORAGE_VERSION, fingerprints
from tests.helpers.lab_reference import lab_clean, lab_features
from tests.helpers.sandbox import Pipeline


@pytest.fixture(scope="module")
def loaded_day(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """One warehouse with 2024-01-01 loaded, shared by tests whose runs must change nothing."""
    return Pipeline.with_one_day(tmp_path_factory.mktemp("loaded_day"), "2024-01-01", rows=200)


def _query(pipeline: Pipeline, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        return con.sql(sql).df()


def _dates_in(pipeline: Pipeline, table: str, column: str = "partition_date") -> list[str]:
    frame = _query(pipeline, f"select distinct {column} as d from {table} order by d")
    return [str(d)[:10] for d in frame["d"]]


def _exports(pipeline: Pipeline) -> dict[str, bytes]:
    files = sorted([*pipeline.data_dir.glob("processed/*/*.parquet"), *pipeline.data_dir.glob("features/daily/*/*")])
    return {str(path.relative_to(pipeline.data_dir)): path.read_bytes() for path in files}


def test_one_day_matches_the_lab_pandas_rules(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-15", rows=3000)
    pipeline.build("2024-01-15")
    expected = lab_features(lab_clean(pipeline.raw_dir / "2024-01-15" / "transactions.csv"))
    actual = _query(pipeline, "select * from fct_transaction_features order by transaction_id")
    expected = expected.sort_values("transaction_id").reset_index(drop=True)

    assert len(actual) == len(expected)
    assert actual["transaction_id"].tolist() == expected["transaction_id"].tolist()
    assert actual["payment_method"].tolist() == expected["payment_method"].tolist()
    assert actual["hour"].tolist() == expected["hour"].tolist()
    assert actual["day_of_week"].tolist() == expected["day_of_week"].tolist()
    assert actual["customer_num_purchases"].tolist() == expected["customer_num_purchases"].tolist()
    for column in ("total_amount", "customer_total_spent", "customer_avg_order_value"):
        assert actual[column].astype(float).round(6).tolist() == pytest.approx(expected[column].round(6).tolist())
    # Customer aggregates as in the lab, one row per customer and day.
    daily = _query(pipeline, "select count(*) as n, sum(total_spent) as s from agg_customer_daily")
    assert daily["n"][0] == expected["customer_id"].nunique()
    assert float(daily["s"][0]) == pytest.approx(expected["total_amount"].sum())


def test_exports_are_hive_partitioned_and_match_the_marts(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-15", "2024-01-16", rows=500)
    pipeline.dbt("build", variables={"start_date": "2024-01-15", "end_date": "2024-01-16"})
    with duckdb.connect() as con:
        exported = con.sql(
            f"select date, count(*) as n from read_parquet('{pipeline.data_dir}/processed/*/*.parquet', "
            "hive_partitioning = true) group by date order by date"
        ).fetchall()
        features = con.sql(
            f"select count(*) from read_parquet('{pipeline.data_dir}/features/daily/*/*.parquet', "
            "hive_partitioning = true) where customer_num_purchases is not null"
        ).fetchone()[0]
    marts = _query(pipeline, "select partition_date, count(*) as n from fct_transactions group by 1 order by 1")
    assert [(str(d), n) for d, n in exported] == [(str(d)[:10], n) for d, n in marts.itertuples(index=False)]
    assert features == marts["n"].sum()


def test_each_file_holds_its_dates_mart_rows_sorted_by_transaction_id(pipeline: Pipeline) -> None:
    # Rows for several Parquet row groups (122,880 rows each), read and written on every thread: the
    # clean file is read back from the sorted features file, and must keep its order across them.
    pipeline.generate("2024-01-15", rows=300_000)
    pipeline.build("2024-01-15")
    clean_file = pipeline.data_dir / "processed/date=2024-01-15/transactions_clean.parquet"
    features_file = pipeline.data_dir / "features/daily/date=2024-01-15/features.parquet"
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        expected = con.sql(
            "select * from fct_transactions where partition_date = date '2024-01-15' order by transaction_id"
        ).fetchall()
        columns = ", ".join(con.sql("select * from fct_transactions limit 0").columns)
        row_groups = con.sql(f"select max(row_group_id) + 1 from parquet_metadata('{clean_file}')").fetchone()[0]
        # The files sit in date=D folders: no hive column added to what is compared.
        clean = con.sql(f"select * from read_parquet('{clean_file}', hive_partitioning = false)").fetchall()
        features = con.sql(
            f"select {columns} from read_parquet('{features_file}', hive_partitioning = false)"
        ).fetchall()
        unjoined = con.sql(
            f"select count(*) from read_parquet('{features_file}') where customer_num_purchases is null"
        ).fetchone()[0]
    assert row_groups >= 2 and len(expected) > 250_000
    assert clean == expected
    assert features == expected
    assert unjoined == 0


# dbt under a probe that prints, as the process exits, which of these modules it had loaded.
_LOADED_MODULES_PROBE = """
import atexit, sys
atexit.register(lambda: print("loaded:", [name for name in ("pandas", "pyarrow.dataset") if name in sys.modules]))
from dbt.cli.main import cli
cli()
"""


def test_a_build_loads_neither_pandas_nor_pyarrow_dataset(pipeline: Pipeline) -> None:
    # Loading them cost ~0.5 s of every build, however small the day: the export model hands dbt a
    # DuckDB relation (an Arrow table makes dbt-duckdb import pyarrow.dataset) and binds no Python
    # query parameters (DuckDB imports pandas to convert them).
    pipeline.generate("2024-01-15", rows=200)
    completed = pipeline.dbt(
        "build", variables={"run_date": "2024-01-15"}, launcher=[sys.executable, "-c", _LOADED_MODULES_PROBE]
    )
    logged = _query(pipeline, "select dataset, row_count from export_daily_parquet order by dataset")
    assert logged["dataset"].tolist() == ["features", "processed"]
    assert logged["row_count"].min() > 0
    assert "loaded: []" in completed.stdout, completed.stdout[-2000:]


def test_running_a_date_twice_equals_once(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", "2024-01-02", rows=500)
    pipeline.build("2024-01-01")
    pipeline.build("2024-01-02")
    once, exports_once = fingerprints(pipeline.warehouse), _exports(pipeline)
    pipeline.build("2024-01-02")
    assert fingerprints(pipeline.warehouse) == once
    assert _exports(pipeline) == exports_once


def test_redelivered_partition_replaces_that_day_exactly(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", "2024-01-02", rows=800)
    pipeline.build("2024-01-01")
    pipeline.build("2024-01-02")
    day_one = _query(pipeline, "select * from fct_transactions where partition_date = '2024-01-01' order by all")
    export_day_one = (pipeline.data_dir / "processed/date=2024-01-01/transactions_clean.parquet").read_bytes()

    pipeline.generate("2024-01-02", rows=300, seed=99, force=True)  # smaller re-delivery
    pipeline.build("2024-01-02")
    expected = lab_clean(pipeline.raw_dir / "2024-01-02" / "transactions.csv")
    actual = _query(pipeline, "select transaction_id from fct_transactions where partition_date = '2024-01-02'")
    assert sorted(actual["transaction_id"]) == sorted(expected["transaction_id"])
    assert len(_query(pipeline, "select * from stg_raw__transactions where partition_date = '2024-01-02'")) == 300
    # The other day is untouched, in the warehouse and on disk.
    pd.testing.assert_frame_equal(
        day_one, _query(pipeline, "select * from fct_transactions where partition_date = '2024-01-01' order by all")
    )
    assert (pipeline.data_dir / "processed/date=2024-01-01/transactions_clean.parquet").read_bytes() == export_day_one


def test_redelivery_with_zero_valid_rows_empties_that_day(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", rows=500)
    pipeline.build("2024-01-01")
    raw = pipeline.raw_dir / "2024-01-01" / "transactions.csv"
    frame = pd.read_csv(raw)
    # Every row invalid (a cancelled day, say): quantity 0 is dropped by the cleaning rules and, unlike
    # mass negative prices, is not a data-quality alarm, so the date loads with no valid row.
    frame["quantity"] = 0
    frame.to_csv(raw, index=False)
    pipeline.build("2024-01-01")
    assert _query(pipeline, "select count(*) as n from fct_transactions")["n"][0] == 0
    assert _query(pipeline, "select count(*) as n from agg_customer_daily")["n"][0] == 0
    statuses = _query(pipeline, "select distinct row_status from int_transactions__classified")
    assert "kept" not in set(statuses["row_status"]) and "non_positive_quantity" in set(statuses["row_status"])
    empty = pd.read_parquet(pipeline.data_dir / "processed/date=2024-01-01/transactions_clean.parquet")
    assert len(empty) == 0 and "transaction_id" in empty.columns


def _text_compression(pipeline: Pipeline) -> dict[tuple[str, str], set[str]]:
    """The storage compressions of the text columns of the two tables that hold every row."""
    query = (
        "select table_name, column_name, list(distinct compression) from ("
        "  select 'stg_raw__transactions' as table_name, * from pragma_storage_info('main.stg_raw__transactions')"
        "  union all"
        "  select 'fct_transactions' as table_name, * from pragma_storage_info('main.fct_transactions')"
        ") where segment_type = 'VARCHAR' and compression not in ('Constant', 'Empty Validity', 'Roaring') "
        "and column_name in ('transaction_id', 'customer_id', 'category') group by all"
    )
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        return {(table, column): set(methods) for table, column, methods in con.sql(query).fetchall()}


def _assert_transaction_id_in_zstd(pipeline: Pipeline) -> None:
    """transaction_id (unique values) in zstd, as its models' config says; columns of few values left
    to DuckDB (a dictionary)."""
    compression = _text_compression(pipeline)
    for table in ("stg_raw__transactions", "fct_transactions"):
        assert compression[(table, "transaction_id")] == {"ZSTD"}, compression
        for column in ("customer_id", "category"):
            assert "ZSTD" not in compression[(table, column)], compression


def test_range_vars_equal_day_by_day_runs_and_full_refresh(pipeline: Pipeline, tmp_path) -> None:
    dates = ["2024-01-01", "2024-01-02", "2024-01-03"]
    pipeline.generate(*dates, rows=400)
    # The middle day delivered with its columns reversed and one more: a range reads it apart from
    # the others (files are read together by header), with the same result.
    middle = pipeline.raw_dir / dates[1] / "transactions.csv"
    frame = pd.read_csv(middle, dtype=str, keep_default_na=False)
    frame = frame[list(reversed(frame.columns))]
    frame["coupon_code"] = "X1"
    frame.to_csv(middle, index=False)
    for day in dates:
        pipeline.build(day)
    daily, daily_exports = fingerprints(pipeline.warehouse), _exports(pipeline)
    assert _dates_in(pipeline, "fct_transactions") == dates
    _assert_transaction_id_in_zstd(pipeline)  # tables made by the first date, filled by the next ones

    # Same raw files, a second warehouse, one invocation for the whole range.
    ranged = Pipeline(data_dir=pipeline.data_dir, work_dir=tmp_path / "ranged_work", warehouse_name="ranged.duckdb")
    ranged.dbt("build", variables={"start_date": dates[0], "end_date": dates[-1]})
    assert fingerprints(ranged.warehouse) == daily
    assert _exports(ranged) == daily_exports
    _assert_transaction_id_in_zstd(ranged)

    pipeline.dbt("build", "--full-refresh")
    assert fingerprints(pipeline.warehouse, MART_TABLES) == {t: daily[t] for t in MART_TABLES}
    assert fingerprints(pipeline.warehouse) == daily
    assert _exports(pipeline) == daily_exports
    _assert_transaction_id_in_zstd(pipeline)


def test_a_run_only_touches_its_own_dates(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", "2024-01-02", "2024-01-03", rows=300)
    pipeline.build("2024-01-01")
    pipeline.build("2024-01-03")
    before = _query(pipeline, "select * from fct_transaction_features order by all")
    pipeline.build("2024-01-02")
    after = _query(pipeline, "select * from fct_transaction_features where partition_date <> '2024-01-02' order by all")
    pd.testing.assert_frame_equal(before, after)
    assert _dates_in(pipeline, "fct_transactions") == ["2024-01-01", "2024-01-02", "2024-01-03"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"run_date": "2024-01-01' or 1=1 --"}, "Invalid var run_date"),
        ({"run_date": "../../etc"}, "Invalid var run_date"),
        ({"run_date": "2024-02-30"}, "real calendar date"),
        ({"start_date": "2024-01-05", "end_date": "2024-01-01"}, "before start_date"),
        ({"start_date": "2024-01-05"}, "needs both start_date and end_date"),
        ({}, "No run date given"),
    ],
)
def test_bad_run_scope_is_refused_before_any_sql(loaded_day: Pipeline, variables: dict, message: str) -> None:
    pipeline = loaded_day
    before = fingerprints(pipeline.warehouse)
    completed = pipeline.dbt("build", variables=variables, check=False)
    assert completed.returncode != 0
    assert message in completed.stdout
    assert "START sql" not in completed.stdout, "no model may start"
    assert fingerprints(pipeline.warehouse) == before


def test_bad_run_date_from_the_environment_is_refused_before_any_sql(loaded_day: Pipeline) -> None:
    pipeline = loaded_day
    before = fingerprints(pipeline.warehouse)
    completed = pipeline.dbt("build", check=False, extra_env={"PIPELINE_RUN_DATE": "2024-01-01/../../etc"})
    assert completed.returncode != 0
    assert "Invalid environment variable PIPELINE_RUN_DATE" in completed.stdout
    assert "START sql" not in completed.stdout, "no model may start"
    assert fingerprints(pipeline.warehouse) == before


def test_a_date_from_the_environment_builds_what_the_var_builds_with_one_parse(
    pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Airflow hands dbt the date as PIPELINE_RUN_DATE: the same tables and files as --vars run_date,
    and dbt parses the project only when something else changed, not once per date."""
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    by_vars = Pipeline.with_one_day(tmp_path_factory.mktemp("by_vars"), days[0], rows=300)
    pipeline.generate(*days, rows=300)
    pipeline.build(days[0])
    outputs = []
    for day in days[1:]:
        by_vars.generate(day, rows=300)
        by_vars.build(day)
        outputs.append(pipeline.dbt("build", extra_env={"PIPELINE_RUN_DATE": day}).stdout)
    # The first build without vars follows one with them: a full parse. The next date needs none.
    assert "Unable to do partial parsing" in outputs[0]
    assert "Unable to do partial parsing" not in outputs[1], outputs[1][:2000]
    assert _dates_in(pipeline, "fct_transactions") == days
    # The marts (the staging tables name each sandbox's own raw file paths).
    assert fingerprints(pipeline.warehouse, MART_TABLES) == fingerprints(by_vars.warehouse, MART_TABLES)
    assert _exports(pipeline) == _exports(by_vars)


def test_missing_partition_fails_naming_date_and_file(loaded_day: Pipeline) -> None:
    pipeline = loaded_day
    before = fingerprints(pipeline.warehouse)
    completed = pipeline.build("2024-01-09", check=False)
    assert completed.returncode != 0
    assert "Raw partition missing" in completed.stdout and "2024-01-09" in completed.stdout
    assert str(pipeline.raw_dir / "2024-01-09" / "transactions.csv") in completed.stdout
    assert fingerprints(pipeline.warehouse) == before


def test_the_unique_test_fails_on_each_repeated_key_and_ignores_nulls(pipeline: Pipeline) -> None:
    """The project's two-step `unique` (hashes first) fails on exactly the values dbt's own would."""
    pipeline.generate("2024-01-15", rows=300)
    pipeline.build("2024-01-15")
    copy_row = (
        "insert into fct_transactions select * replace (? as transaction_id) from fct_transactions "
        "where transaction_id = ?"
    )
    with duckdb.connect(str(pipeline.warehouse)) as con:
        ids = con.sql("select transaction_id from fct_transactions order by 1 limit 2").fetchall()
        first, second = (row[0] for row in ids)
        # first: 3 rows in all, second: 2, and two rows without an id (not_null's failure, not unique's).
        for key in (first, first, second, None, None):
            con.execute(copy_row, [key, second])
    result = pipeline.dbt(
        "test", "--select", "fct_transactions,test_name:unique", variables={"run_date": "2024-01-15"}, check=False
    )
    assert result.returncode != 0, result.stdout[-2000:]
    assert "unique_fct_transactions_transaction_id" in result.stdout and "Got 2 results" in result.stdout
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        failures = con.sql(
            "select unique_field, n_records from main_dq_failures.unique_fct_transactions_transaction_id order by 1"
        ).fetchall()
    assert failures == [(first, 3), (second, 2)]


def test_the_line_number_grain_test_fails_on_a_repeated_or_missing_number_per_date(pipeline: Pipeline) -> None:
    """Staging's grain, checked with a bitmap of line numbers per date, fails each date where a line
    number repeats or is missing, and no other date."""
    days = ("2024-01-14", "2024-01-15", "2024-01-16")
    pipeline.generate(*days, rows=300)
    pipeline.dbt("build", variables={"start_date": days[0], "end_date": days[-1]})
    with duckdb.connect(str(pipeline.warehouse)) as con:
        counts = con.sql("select partition_date::varchar, count(*) from stg_raw__transactions group by 1")
        staged = dict(counts.fetchall())
        # 2024-01-15: line 1 twice; 2024-01-16: a line without its number.
        con.execute(
            "insert into stg_raw__transactions select * replace (1 as source_row_number) from stg_raw__transactions "
            "where partition_date = '2024-01-15' and source_row_number = 2"
        )
        con.execute(
            "update stg_raw__transactions set source_row_number = null "
            "where partition_date = '2024-01-16' and source_row_number = 3"
        )
    result = pipeline.dbt(
        "test",
        "--select",
        "stg_raw__transactions,test_name:unique_combination_of_columns",
        variables={"start_date": days[0], "end_date": days[-1]},
        check=False,
    )
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Got 2 results" in result.stdout, result.stdout[-2000:]
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        (table,) = con.sql(
            "select table_name from information_schema.columns "
            "where table_schema = 'main_dq_failures' and column_name = 'distinct_line_numbers'"
        ).fetchone()
        columns = "partition_date::varchar, occurrences, distinct_line_numbers"
        failures = con.sql(f'select {columns} from main_dq_failures."{table}" order by 1').fetchall()
    assert failures == [
        ("2024-01-15", staged["2024-01-15"] + 1, staged["2024-01-15"]),
        ("2024-01-16", staged["2024-01-16"], staged["2024-01-16"] - 1),
    ]


def test_every_model_table_exists_after_a_build(pipeline: Pipeline) -> None:
    pipeline.generate("2024-01-01", rows=200)
    pipeline.build("2024-01-01")
    tables = set(_query(pipeline, "select table_name from information_schema.tables")["table_name"])
    assert set(MODEL_TABLES) | {"export_daily_parquet", "dbt_test_results"} <= tables
    results = _query(pipeline, "select status from dbt_test_results where scope_start = '2024-01-01'")
    assert len(results) >= 15 and set(results["status"]) == {"pass"}
    # The warehouse file dbt created is in the storage format the project chose (its faster writes).
    version = _query(
        pipeline, "select tags['storage_version'] as v from duckdb_databases() where database_name = current_database()"
    )
    assert version["v"].tolist() == [f"{STORAGE_VERSION}+"]


def _pandas_rolling(pipeline: Pipeline, dates: list[str]) -> pd.DataFrame:
    """The rolling features from the raw files with pandas' own time-based windows (the lab's way)."""
    clean = pd.concat([lab_clean(pipeline.raw_dir / day / "transactions.csv") for day in dates])
    clean["transaction_date"] = pd.to_datetime(clean["timestamp"]).dt.normalize()
    daily = (
        clean.groupby(["customer_id", "transaction_date"])["total_amount"]
        .agg(num_purchases="count", total_spent="sum")
        .reset_index()
        .sort_values(["customer_id", "transaction_date"])
        .set_index("transaction_date")
    )
    grouped = daily.groupby("customer_id")[["num_purchases", "total_spent"]]
    windows = {days: grouped.rolling(f"{days}D").sum() for days in (7, 30)}
    result = pd.concat(
        {
            "purchases_7d": windows[7]["num_purchases"],
            "spent_7d": windows[7]["total_spent"],
            "purchases_30d": windows[30]["num_purchases"],
            "spent_30d": windows[30]["total_spent"],
        },
        axis=1,
    ).reset_index()
    result["transaction_date"] = result["transaction_date"].dt.strftime("%Y-%m-%d")
    return result.sort_values(["customer_id", "transaction_date"]).reset_index(drop=True)


def _rolling(pipeline: Pipeline) -> pd.DataFrame:
    frame = _query(
        pipeline,
        "select customer_id, strftime(transaction_date, '%Y-%m-%d') as transaction_date, purchases_7d, "
        "spent_7d, purchases_30d, spent_30d, avg_order_value_7d, avg_order_value_30d "
        "from agg_customer_rolling order by customer_id, transaction_date",
    )
    return frame


def test_rolling_features_match_pandas_whatever_the_run_order(pipeline: Pipeline) -> None:
    # 40 days, so that 30-day windows fill up and roll; processed newest first, the worst order for a
    # trailing window (each day's window is still empty when it is first computed).
    dates = [f"2024-01-{day:02d}" for day in range(1, 32)] + [f"2024-02-{day:02d}" for day in range(1, 10)]
    pipeline.generate(*dates, rows=120)
    for chunk_end in range(len(dates), 0, -10):
        chunk = dates[max(0, chunk_end - 10) : chunk_end]
        pipeline.dbt("build", variables={"start_date": chunk[0], "end_date": chunk[-1]})

    actual, expected = _rolling(pipeline), _pandas_rolling(pipeline, dates)
    assert actual[["customer_id", "transaction_date"]].values.tolist() == (
        expected[["customer_id", "transaction_date"]].values.tolist()
    )
    for column in ("purchases_7d", "purchases_30d"):
        assert actual[column].tolist() == expected[column].astype(int).tolist(), column
    for column in ("spent_7d", "spent_30d"):
        assert actual[column].astype(float).tolist() == pytest.approx(expected[column].tolist()), column
    aov = (expected["spent_30d"] / expected["purchases_30d"]).tolist()
    assert actual["avg_order_value_30d"].tolist() == pytest.approx(aov)
    # Windows really roll: some customer has more purchases in 30 days than in the last 7.
    assert (actual["purchases_30d"] > actual["purchases_7d"]).any()


def test_late_redelivery_updates_the_rolling_windows_after_it(pipeline: Pipeline, tmp_path) -> None:
    dates = [f"2024-03-{day:02d}" for day in range(1, 7)]
    pipeline.generate(*dates, rows=150)
    for day in dates:
        pipeline.build(day)
    before = _rolling(pipeline)

    pipeline.generate("2024-03-03", rows=400, seed=7, force=True)  # late, bigger re-delivery
    pipeline.build("2024-03-03")
    after = _rolling(pipeline)
    # Later days' 7- and 30-day windows include the re-delivered day and changed with it ...
    changed = before.merge(after, on=["customer_id", "transaction_date"], suffixes=("_before", "_after"))
    later = changed[changed["transaction_date"] > "2024-03-03"]
    assert (later["purchases_30d_before"] != later["purchases_30d_after"]).any()

    # ... and the table equals a clean build of the current files.
    clean = Pipeline(data_dir=pipeline.data_dir, work_dir=tmp_path / "clean_work", warehouse_name="clean.duckdb")
    clean.dbt("build", variables={"start_date": dates[0], "end_date": dates[-1]})
    assert fingerprints(pipeline.warehouse, MART_TABLES) == fingerprints(clean.warehouse, MART_TABLES)
