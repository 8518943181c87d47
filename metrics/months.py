"""Months, days and instants in the configured time zone (SPEC §3: boundaries at local midnight).

Every export, report and analysis that cuts time into months or days, or prints an instant, takes
it from here; times are epoch microseconds, as the fold and the store keep them.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hotline_kpi.errors import UsageError
from hotline_kpi.ingest.events import epoch_us

US = 1_000_000
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(month: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); anything else is a one-line :class:`UsageError`."""
    match = _MONTH.match(month)
    if match is None:
        raise UsageError(f"--month must look like 2026-10 (YYYY-MM), got {month!r}")
    return int(match.group(1)), int(match.group(2))


def month_period(month: str) -> tuple[date, date]:
    """The first and last local date of ``YYYY-MM``."""
    year, number = parse_month(month)
    first = date(year, number, 1)
    return first, date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)


def day_start(day: date, zone: ZoneInfo) -> int:
    """Local midnight at the start of ``day``, in epoch microseconds."""
    return epoch_us(datetime(day.year, day.month, day.day, tzinfo=zone))


def month_bounds(month: str, zone: ZoneInfo) -> tuple[int, int]:
    """The month's [start, end) in epoch microseconds, boundaries at local midnight."""
    first, last = month_period(month)
    return day_start(first, zone), day_start(last + timedelta(days=1), zone)


def previous_month(month: str) -> str:
    """The month before ``month``."""
    year, number = parse_month(month)
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def day_bounds(month: str, zone: ZoneInfo) -> list[tuple[str, int, int]]:
    """Each local day of ``month`` as (YYYY-MM-DD, start, end) in epoch microseconds."""
    first, last = month_period(month)
    days = []
    day = first
    while day <= last:
        following = day + timedelta(days=1)
        days.append((day.isoformat(), day_start(day, zone), day_start(following, zone)))
        day = following
    return days


def local_time(moment_us: int, zone: ZoneInfo, timespec: str = "auto") -> str:
    """An instant in epoch microseconds as a local RFC 3339 time (exact to the microsecond)."""
    moment = datetime.fromtimestamp(moment_us // US, tz=zone) + timedelta(
        microseconds=moment_us % US
    )
    return moment.isoformat(timespec=timespec)
