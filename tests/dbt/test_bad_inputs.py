"""The bad-input catalogue: each case gets a clear error or a quarantine, and loses nothing else.

A baseline warehouse holds three good days (2024-01-01..03). Each case copies it, breaks one
partition (a re-delivery of 2024-01-03, or a new 2024-01-04), runs that date, and checks the outcome
AND that every other date's rows and Parquet exports are byte-for-byte unchanged (for a refused
date: that date's already-published rows too).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ecompipe.core.warehouse import MART_TABLES
from tests.helpers.sandbox import Pipeline

GOOD_DATES = ["2024-01-01", "2024-01-02", "2024-01-03"]
TARGET = "2024-01-03"
NEW_DATE = "2024-01-04"
ROWS = 400


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("baseline")
    pipeline = Pipeline(data_dir=root / "data", work_dir=root / "work")
    pipeline.generate(*GOOD_DATES, rows=ROWS)
    pipeline.dbt("build", variables={"start_date": GOOD_DATES[0], "end_date": GOOD_DATES[-1]})
    return pipeline


@pytest.fixture
def sandbox(baseline: Pipeline, tmp_path: Path) -> Pipeline:
    shutil.copytree(baseline.data_dir, tmp_path / "data")
    return Pipeline(data_dir=tmp_path / "data", work_dir=tmp_path / "work")


def per_date_state(pipeline: Pipeline) -> dict[tuple[str, str], object]:
    """(table or export, date) -> a fingerprint of that date's rows or the file's bytes."""
    state: dict[tuple[str, str], object] = {}
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        for table in MART_TABLES:
            column = "transaction_date" if table.startswith("agg_customer_") else "partition_date"
            query = f"select {column}::varchar, count(*), sum(hash(t)::hugeint) from {table} t group by 1"
            for day, count, digest in con.execute(query).fetchall():
                state[(table, day)] = (count, int(digest))
    for path in [
        *pipeline.data_dir.glob("processed/*/*.parquet"),
        *pipeline.data_dir.glob("features/daily/*/*.parquet"),
    ]:
        state[(str(path.relative_to(pipeline.data_dir).parent.parent), path.parent.name[5:])] = path.read_bytes()
    return state


def unchanged_except(before: dict, after: dict, day: str | None) -> list[tuple[str, str]]:
    keys = {key for key in before.keys() | after.keys() if key[1] != day}
    return sorted(key for key in keys if before.get(key) != after.get(key))


def accounting(pipeline: Pipeline, day: str) -> dict[str, object]:
    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        cursor = con.execute("select * from int_partitions__row_accounting where partition_date = ?", [day])
        row = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], row, strict=True)) if row else {}


def raw_path(pipeline: Pipeline, day: str) -> Path:
    path = pipeline.raw_dir / day / "transactions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def good_lines(pipeline: Pipeline, day: str = TARGET) -> list[str]:
    return raw_path(pipeline, day).read_text().splitlines()


def write_lines(pipeline: Pipeline, day: str, lines: list[str], newline: str = "\n") -> None:
    raw_path(pipeline, day).write_text(newline.join(lines) + newline)


def replace_field(lines: list[str], column: str, value: str, rows: range) -> list[str]:
    header = lines[0].split(",")
    index = [name.strip('"') for name in header].index(column)
    out = list(lines)
    for i in rows:
        fields = out[i].split(",")
        fields[index] = value
        out[i] = ",".join(fields)
    return out


# --------------------------------------------------------------------------------------------------
# Refused dates: a clear error naming date, file and problem; nothing published changes.


@dataclass(frozen=True)
class Refusal:
    name: str
    day: str
    breaks: Callable[[Pipeline], None] | None
    expected: tuple[str, ...]


def _drop_column(column: str) -> Callable[[Pipeline], None]:
    def breaks(pipeline: Pipeline) -> None:
        frame = pd.read_csv(raw_path(pipeline, TARGET))
        frame.drop(columns=[column]).to_csv(raw_path(pipeline, TARGET), index=False)

    return breaks


def _duplicate_heavy(pipeline: Pipeline) -> None:
    lines = good_lines(pipeline)
    write_lines(pipeline, TARGET, lines + lines[1:61])  # 60 repeated of 460 rows: 13 %


def _mostly_garbage(pipeline: Pipeline) -> None:
    lines = good_lines(pipeline)
    write_lines(pipeline, TARGET, [lines[0]] + [f"{line},junk,more" for line in lines[1:300]] + lines[300:])


def _mixed_line_endings(first: str, then: str) -> Callable[[Pipeline], None]:
    def breaks(pipeline: Pipeline) -> None:
        lines = good_lines(pipeline)
        raw_path(pipeline, TARGET).write_text(first.join(lines[:200]) + first + then.join(lines[200:]) + then)

    return breaks


def _carriage_return_inside_a_line(pipeline: Pipeline) -> None:
    lines = replace_field(good_lines(pipeline), "price", "12\r.50", range(150, 151))  # price is unquoted
    write_lines(pipeline, TARGET, lines)


REFUSALS = [
    Refusal(
        "missing partition file",
        NEW_DATE,
        None,
        ("Raw partition missing", NEW_DATE, f"raw/{NEW_DATE}/transactions.csv"),
    ),
    Refusal(
        "empty file", TARGET, lambda p: raw_path(p, TARGET).write_bytes(b""), (TARGET, "is empty (no header line)")
    ),
    Refusal(
        "header only",
        TARGET,
        lambda p: write_lines(p, TARGET, good_lines(p)[:1]),
        (TARGET, "has 0 data row(s), at least 100"),
    ),
    Refusal("missing required column", TARGET, _drop_column("price"), (TARGET, "missing required column(s) price")),
    Refusal(
        "CRLF line endings, then LF",
        TARGET,
        _mixed_line_endings("\r\n", "\n"),
        (f"Refusing to load: {TARGET}", "mixes line endings (200 line(s) end in CRLF, ", " in LF alone)"),
    ),
    Refusal(
        "LF line endings, then CRLF",
        TARGET,
        _mixed_line_endings("\n", "\r\n"),
        (f"Refusing to load: {TARGET}", "line(s) end in CRLF, 200 in LF alone)", "Re-deliver the file"),
    ),
    Refusal(
        "carriage return inside a line",
        TARGET,
        _carriage_return_inside_a_line,
        (f"Refusing to load: {TARGET}", "has 1 carriage return(s) (\\r) that end no line", "Nothing was published"),
    ),
    Refusal("over 10 % duplicates", TARGET, _duplicate_heavy, ("duplicate_share", "configured to fail if >1000")),
    Refusal("mostly garbage", TARGET, _mostly_garbage, ("unusable_share",)),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.name)
def test_refused_partition_changes_nothing(sandbox: Pipeline, case: Refusal) -> None:
    before = per_date_state(sandbox)
    if case.breaks:
        case.breaks(sandbox)
    completed = sandbox.build(case.day, check=False)
    output = completed.stdout
    assert completed.returncode != 0, output[-3000:]
    for text in case.expected:
        assert text in output, f"{text!r} not in dbt output:\n{output[-3000:]}"
    if case.day == TARGET and case.name not in ("over 10 % duplicates", "mostly garbage"):
        assert str(raw_path(sandbox, TARGET)) in output, "the error must name the file"
    assert unchanged_except(before, per_date_state(sandbox), None) == []


def test_a_range_names_the_date_whose_file_mixes_line_endings(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    _mixed_line_endings("\r\n", "\n")(sandbox)
    completed = sandbox.dbt("build", variables={"start_date": GOOD_DATES[0], "end_date": TARGET}, check=False)
    assert completed.returncode != 0
    assert f"Refusing to load: {TARGET}: {raw_path(sandbox, TARGET)} mixes line endings" in completed.stdout
    assert f"Refusing to load: {GOOD_DATES[0]}" not in completed.stdout
    assert unchanged_except(before, per_date_state(sandbox), None) == []


def test_a_file_too_large_to_count_is_named_with_both_causes(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    _carriage_return_inside_a_line(sandbox)
    completed = sandbox.dbt("build", variables={"run_date": TARGET, "line_ending_count_max_bytes": "1000"}, check=False)
    assert completed.returncode != 0
    named = f"Refusing to load: {TARGET}: {raw_path(sandbox, TARGET)} mixes line endings (CRLF and LF) or"
    assert named in completed.stdout
    assert "not counted: the file is over 1000 bytes" in completed.stdout
    assert unchanged_except(before, per_date_state(sandbox), None) == []


@pytest.mark.parametrize(
    "value", ["2024-01-01' or 1=1 --", "../../etc", "2024-01-03; drop table fct_transactions", "2024-1-3"]
)
def test_hostile_run_date_is_refused(sandbox: Pipeline, value: str) -> None:
    before = per_date_state(sandbox)
    completed = sandbox.dbt("build", variables={"run_date": value}, check=False)
    assert completed.returncode != 0 and "Invalid var run_date" in completed.stdout
    assert unchanged_except(before, per_date_state(sandbox), None) == []


# --------------------------------------------------------------------------------------------------
# Quarantined or tolerated: the date loads, the bad rows are accounted for, other dates unchanged.


def _assert_loaded_and_isolated(sandbox: Pipeline, before: dict) -> dict[str, object]:
    completed = sandbox.build(TARGET, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert unchanged_except(before, per_date_state(sandbox), TARGET) == []
    row = accounting(sandbox, TARGET)
    assert row["unaccounted_rows"] == 0
    return row


def test_extra_column_is_tolerated_and_reported(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    frame = pd.read_csv(raw_path(sandbox, TARGET))
    frame["coupon_code"] = "X1"
    frame.to_csv(raw_path(sandbox, TARGET), index=False)
    row = _assert_loaded_and_isolated(sandbox, before)
    assert row["extra_columns"] == "coupon_code"
    assert per_date_state(sandbox)[("fct_transactions", TARGET)] == before[("fct_transactions", TARGET)]


def test_reordered_columns_give_the_same_rows(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    frame = pd.read_csv(raw_path(sandbox, TARGET), dtype=str, keep_default_na=False)
    frame[list(reversed(frame.columns))].to_csv(raw_path(sandbox, TARGET), index=False)
    _assert_loaded_and_isolated(sandbox, before)
    after = per_date_state(sandbox)
    assert after[("fct_transaction_features", TARGET)] == before[("fct_transaction_features", TARGET)]


def test_crlf_line_endings_give_the_same_rows(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    write_lines(sandbox, TARGET, good_lines(sandbox), newline="\r\n")
    _assert_loaded_and_isolated(sandbox, before)
    assert per_date_state(sandbox)[("fct_transactions", TARGET)] == before[("fct_transactions", TARGET)]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("price", "twelve", "unparseable price: twelve"),
        ("timestamp", "yesterday-ish", "unparseable timestamp: yesterday-ish"),
        ("timestamp", "2024-01-05T10:00:00Z", "timestamp outside partition date: 2024-01-05T10:00:00Z"),
    ],
)
def test_unusable_values_are_quarantined(sandbox: Pipeline, column: str, value: str, reason: str) -> None:
    before = per_date_state(sandbox)
    write_lines(sandbox, TARGET, replace_field(good_lines(sandbox), column, value, range(10, 15)))
    row = _assert_loaded_and_isolated(sandbox, before)
    assert row["quarantined_rows"] == 5
    with duckdb.connect(str(sandbox.warehouse), read_only=True) as con:
        reasons = con.execute(
            "select distinct parse_error from stg_raw__transactions "
            "where partition_date = ? and parse_error is not null",
            [TARGET],
        ).fetchall()
    assert reasons == [(reason,)]


def test_non_utf8_lines_are_rejected_with_line_numbers(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    data = raw_path(sandbox, TARGET).read_bytes().split(b"\n")
    for i in (5, 6, 7):
        data[i] = data[i].replace(b"TXN", b"TX\xff\xfe")
    raw_path(sandbox, TARGET).write_bytes(b"\n".join(data))
    row = _assert_loaded_and_isolated(sandbox, before)
    assert row["rejected_rows"] == 3
    with duckdb.connect(str(sandbox.warehouse), read_only=True) as con:
        rejects = con.execute(
            "select distinct line, error_type from stg_raw__rejects where partition_date = ? order by line", [TARGET]
        ).fetchall()
    assert rejects == [(6, "INVALID ENCODING"), (7, "INVALID ENCODING"), (8, "INVALID ENCODING")]


def test_wrong_field_count_is_rejected(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    lines = good_lines(sandbox)
    lines[20] = lines[20] + ",unexpected"
    lines[21] = ",".join(lines[21].split(",")[:4])
    write_lines(sandbox, TARGET, lines)
    row = _assert_loaded_and_isolated(sandbox, before)
    assert row["rejected_rows"] == 2


def test_empty_lines_are_skipped_and_lines_of_spaces_rejected(sandbox: Pipeline) -> None:
    # An empty line is no data line; a line of spaces is one, with too few fields: the parser sets it
    # aside and the line count counts it, so the date's rows still add up.
    before = per_date_state(sandbox)
    lines = good_lines(sandbox)
    write_lines(sandbox, TARGET, [*lines[:100], "", "   ", *lines[100:], ""])
    row = _assert_loaded_and_isolated(sandbox, before)
    assert (row["raw_rows"], row["rejected_rows"]) == (ROWS + 1, 1)
    with duckdb.connect(str(sandbox.warehouse), read_only=True) as con:
        rejects = con.execute(
            "select distinct line, error_type from stg_raw__rejects where partition_date = ?", [TARGET]
        ).fetchall()
    assert rejects == [(102, "MISSING COLUMNS")]
    assert per_date_state(sandbox)[("fct_transactions", TARGET)] == before[("fct_transactions", TARGET)]


def test_duplicate_header_line_is_quarantined(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    lines = good_lines(sandbox)
    write_lines(sandbox, TARGET, lines[:200] + [lines[0]] + lines[200:])
    row = _assert_loaded_and_isolated(sandbox, before)
    assert row["quarantined_rows"] == 1 and row["raw_rows"] == ROWS + 1


def test_absurd_values_are_dropped_by_the_cleaning_rules(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    lines = replace_field(good_lines(sandbox), "price", "1e12", range(30, 33))
    lines = replace_field(lines, "quantity", "-5", range(40, 42))
    write_lines(sandbox, TARGET, lines)
    row = _assert_loaded_and_isolated(sandbox, before)
    with duckdb.connect(str(sandbox.warehouse), read_only=True) as con:
        kept_absurd = con.execute(
            "select count(*) from fct_transactions where partition_date = ? and (price > 10000 or quantity <= 0)",
            [TARGET],
        ).fetchone()[0]
    assert kept_absurd == 0
    assert row["price_above_max_rows"] >= 3 and row["non_positive_quantity_rows"] >= 2


def test_a_resent_transaction_keeps_its_first_occurrence_in_file_order(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    lines = good_lines(sandbox)
    ids = [line.split(",")[0] for line in lines]
    first = next(n for n in range(10, len(lines)) if ids.count(ids[n]) == 1)  # a transaction sent once
    # Sent again twice, later in the file, with other prices: the first in file order wins.
    resent = [replace_field([lines[0], lines[first]], "price", price, range(1, 2))[1] for price in ("1.11", "2.22")]
    write_lines(sandbox, TARGET, lines[:150] + [resent[0]] + lines[150:300] + [resent[1]] + lines[300:])
    row = _assert_loaded_and_isolated(sandbox, before)
    assert row["duplicate_rows"] >= 2
    with duckdb.connect(str(sandbox.warehouse), read_only=True) as con:
        classified = con.execute(
            "select source_row_number, cast(price as varchar), row_status from int_transactions__classified "
            "where partition_date = ? and transaction_id = ? order by source_row_number",
            [TARGET, ids[first].strip('"')],
        ).fetchall()
        published = con.execute(
            "select cast(price as varchar) from fct_transactions where partition_date = ? and transaction_id = ?",
            [TARGET, ids[first].strip('"')],
        ).fetchall()
    # Data rows are numbered from 1 after the header: the copies landed at 150 and 301.
    assert [(number, status) for number, _, status in classified] == [
        (first, "kept"),
        (150, "duplicate"),
        (301, "duplicate"),
    ]
    assert [price for _, price, _ in classified[1:]] == ["1.11", "2.22"]
    assert published == [(classified[0][1],)] and classified[0][1] not in ("1.11", "2.22")


def test_padded_values_and_time_zone_offsets_are_read_as_meant(sandbox: Pipeline) -> None:
    before = per_date_state(sandbox)
    lines = good_lines(sandbox)
    ids = [line.split(",")[0].strip('"') for line in lines]
    padded, shifted, next_day = [n for n in range(10, len(lines)) if ids.count(ids[n]) == 1][:3]  # sent once each
    # Spaces around every value (blank payment method: 'unknown'), inside and outside the quotes.
    for column, value in {
        "transaction_id": f'" {ids[padded]}  "',
        "customer_id": '"CUST-00001 "',
        "price": " 12.50 ",
        "quantity": '" 3"',
        "payment_method": '"   "',
        "timestamp": '" 2024-01-03T09:15:00Z "',
    }.items():
        lines = replace_field(lines, column, value, range(padded, padded + 1))
    # An offset is applied: 12:00 at +02:00 is 10:00 UTC; 23:30 at -02:00 is the next day in UTC.
    lines = replace_field(lines, "timestamp", '"2024-01-03T12:00:00+02:00"', range(shifted, shifted + 1))
    lines = replace_field(lines, "timestamp", '"2024-01-03T23:30:00-02:00"', range(next_day, next_day + 1))
    write_lines(sandbox, TARGET, lines)
    _assert_loaded_and_isolated(sandbox, before)
    with duckdb.connect(str(sandbox.warehouse), read_only=True) as con:
        published = dict(
            (row[0], row[1:])
            for row in con.execute(
                "select transaction_id, customer_id, cast(price as varchar), quantity, payment_method,"
                " cast(transaction_at as varchar) from fct_transactions where partition_date = ?",
                [TARGET],
            ).fetchall()
        )
        set_aside = con.execute(
            "select parse_error from stg_raw__transactions where partition_date = ? and transaction_id = ?",
            [TARGET, ids[next_day]],
        ).fetchall()
    assert published[ids[padded]] == ("CUST-00001", "12.50", 3, "unknown", "2024-01-03 09:15:00")
    assert published[ids[shifted]][-1] == "2024-01-03 10:00:00"
    assert ids[next_day] not in published
    assert set_aside == [("timestamp outside partition date: 2024-01-03T23:30:00-02:00",)]


def test_a_data_folder_named_with_a_quote_and_a_space_loads_and_counts_every_line(tmp_path: Path) -> None:
    # Paths reach SQL as quoted literals: a quote in a folder name must neither break nor leak.
    pipeline = Pipeline(data_dir=tmp_path / "o'brien data", work_dir=tmp_path / "work")
    pipeline.generate(NEW_DATE, rows=ROWS)
    path = raw_path(pipeline, NEW_DATE)
    data = path.read_bytes().split(b"\n")
    data[5] = data[5].replace(b"TXN", b"TX\xff\xfe")  # one line that is not UTF-8: counted, rejected
    path.write_bytes(b"\n".join(data))
    for args, variables in ((["build"], {"run_date": NEW_DATE}), (["build", "--full-refresh"], None)):
        pipeline.dbt(*args, variables=variables)
        row = accounting(pipeline, NEW_DATE)
        assert row["source_file"] == str(path)
        assert (row["raw_rows"], row["rejected_rows"], row["unaccounted_rows"]) == (ROWS, 1, 0)
        clean_file = pipeline.data_dir.joinpath("processed", f"date={NEW_DATE}", "transactions_clean.parquet")
        with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
            logged = con.execute(
                "select path, row_count from export_daily_parquet where partition_date = ? and dataset = 'processed'",
                [NEW_DATE],
            ).fetchall()
            written = con.execute("select count(*) from read_parquet(?)", [str(clean_file)]).fetchone()[0]
        assert logged == [(str(clean_file.resolve()), written)]  # the export log names the real file
