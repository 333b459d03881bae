"""Strict date handling: every date that reaches SQL or a file path passes through here first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class InvalidDateError(ValueError):
    """A value that should be a calendar date in YYYY-MM-DD form is not."""


def parse_date(value: str | date, what: str = "date") -> date:
    """Return ``value`` as a date, refusing anything but a real ``YYYY-MM-DD`` calendar date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    if not text:
        # An Airflow run with neither a logical date nor the param run_date renders its date empty.
        raise InvalidDateError(
            f"{what} is empty: name the date to process, YYYY-MM-DD (in Airflow: trigger with "
            '--logical-date YYYY-MM-DD, or --conf \'{"run_date": "YYYY-MM-DD"}\')'
        )
    if not _ISO_DATE.fullmatch(text):
        raise InvalidDateError(f"{what} must be a date in YYYY-MM-DD form, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidDateError(f"{what} {text!r} is not a real calendar date ({exc})") from None


def date_range(start: str | date, end: str | date) -> Iterator[date]:
    """Every date from ``start`` to ``end``, both included."""
    first, last = parse_date(start, "start date"), parse_date(end, "end date")
    if last < first:
        raise InvalidDateError(f"end date {last} is before start date {first}")
    for offset in range((last - first).days + 1):
        yield first + timedelta(days=offset)
