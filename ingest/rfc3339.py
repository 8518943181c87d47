"""RFC 3339 ``date-time`` text to epoch microseconds, exactly as SPEC §2 reads it.

One parser for both decoding paths (msgspec's and pydantic's), so they cannot disagree on what a
timestamp is: ``T`` or ``t`` between date and time, seconds required, ``Z``, ``z`` or ``±HH:MM``
(no space, no ``+0800``), ASCII digits only. A leap second (second ``60``) is read as
``59.999999``; digits finer than a microsecond are truncated. The date must exist (no
2026-02-30) and the year must be one Python's ``datetime`` can hold (0001–9999).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_PATTERN = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_US = 1_000_000


class TimestampError(ValueError):
    """The text is not an RFC 3339 date-time with an offset."""


Fields = tuple[int, int, int, int, int, int, int, int]
"""year, month, day, hour, minute, second, microsecond, offset in seconds east of UTC."""


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def fields(text: str) -> Fields:
    """The parts of an RFC 3339 date-time; raises :class:`TimestampError` when it is not one."""
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise TimestampError("not an RFC 3339 date-time with a UTC offset")
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, sign, off_h, off_m = (
        match.groups()
    )
    year, month, day = int(year_s), int(month_s), int(day_s)
    hour, minute, second = int(hour_s), int(minute_s), int(second_s)
    if year < 1 or not 1 <= month <= 12:
        raise TimestampError("no such date")
    last = 29 if month == 2 and _leap(year) else _DAYS_IN_MONTH[month]
    if not 1 <= day <= last or hour > 23 or minute > 59 or second > 60:
        raise TimestampError("no such date or time")
    micro = int((fraction + "00000")[:6]) if fraction else 0
    if second == 60:  # a leap second: the last representable instant of the minute before
        second, micro = 59, 999_999
    offset = 0
    if sign is not None:
        offset_hours, offset_minutes = int(off_h), int(off_m)
        if offset_hours > 23 or offset_minutes > 59:
            raise TimestampError("offset out of range")
        offset = (offset_hours * 3600 + offset_minutes * 60) * (-1 if sign == "-" else 1)
    return year, month, day, hour, minute, second, micro, offset


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def epoch_us(text: str) -> int:
    """Microseconds since the Unix epoch of an RFC 3339 date-time (exact integer arithmetic)."""
    year, month, day, hour, minute, second, micro, offset = fields(text)
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return (seconds - offset) * _US + micro


def to_datetime(text: str) -> datetime:
    """The aware datetime an RFC 3339 date-time names (same reading as :func:`epoch_us`)."""
    year, month, day, hour, minute, second, micro, offset = fields(text)
    zone = UTC if offset == 0 else timezone(timedelta(seconds=offset))
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
