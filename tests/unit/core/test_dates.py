from datetime import date

import pytest

from ecompipe.core.dates import InvalidDateError, date_range, parse_date


@pytest.mark.parametrize("value", ["2024-01-15", date(2024, 1, 15)])
def test_parse_date_accepts_real_dates(value: object) -> None:
    assert parse_date(value) == date(2024, 1, 15)


@pytest.mark.parametrize(
    "value",
    ["2024-02-30", "2024-13-01", "20240115", "2024-1-15", "2024-01-01' or 1=1 --", "../../etc", "", " 2024-01-15"],
)
def test_parse_date_refuses_anything_else(value: str) -> None:
    with pytest.raises(InvalidDateError, match="run_date"):
        parse_date(value, "run_date")


def test_date_range_is_inclusive_and_ordered() -> None:
    assert [d.isoformat() for d in date_range("2024-02-28", "2024-03-01")] == ["2024-02-28", "2024-02-29", "2024-03-01"]


def test_date_range_refuses_reversed_bounds() -> None:
    with pytest.raises(InvalidDateError, match="before"):
        list(date_range("2024-01-02", "2024-01-01"))


def test_an_empty_date_says_how_to_name_one_in_airflow() -> None:
    with pytest.raises(InvalidDateError, match=r"run_date is empty.*--logical-date YYYY-MM-DD"):
        parse_date("", "run_date")
