"""RFC 3339 ``date-time`` text to epoch microseconds, exactly as SPEC §2 reads it.

One parser for both decoding paths (msgspec's and pydantic's), so they cannot disagree on what a
timestamp is: ``T`` or ``t`` between date and time, seconds required, ``Z``, ``z`` or ``±HH:MM``
(no space, no ``+0800``), ASCII digits only. A leap second (second ``60``) is read as
``59.999999``; digits finer than a microsecond are truncated. The date must exist (no
2026-02-30) and the year must be one Python's ``datetime`` can hold (0001–9999). The instant
itself must lie a day inside those bounds (0001-01-02 to 9999-12-30, UTC), so that it has a
local date in every time zone: ``0001-01-01T00:00:00+23:59`` is a valid text but no instant any
report could show.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_PATTERN = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_US = 1_000_000

# A stream's timestamps share a few dates and one or two offsets: both are read once and kept
# (bounded: the caches are emptied when they grow past _CACHE_LIMIT entries).
_CACHE_LIMIT = 4096
_dates: dict[str, int] = {}
_offsets: dict[str, int] = {}
_hours: dict[str, int] = {}


class TimestampError(ValueError):
    """The text is not an RFC 3339 date-time with an offset."""


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _date(text: str) -> int:
    """Days since the epoch of ``YYYY-MM-DD``, checked to exist."""
    known = _dates.get(text)
    if known is not None:
        return known
    year, month, day = int(text[:4]), int(text[5:7]), int(text[8:10])
    if year < 1 or not 1 <= month <= 12:
        raise TimestampError("no such date")
    last = 29 if month == 2 and _leap(year) else _DAYS_IN_MONTH[month]
    if not 1 <= day <= last:
        raise TimestampError("no such date")
    if len(_dates) >= _CACHE_LIMIT:
        _dates.clear()
    known = _dates[text] = _days_from_civil(year, month, day)
    return known


def _offset(text: str) -> int:
    """Seconds east of UTC of ``Z``, ``z`` or ``±HH:MM`` (hours 00–23, minutes 00–59)."""
    known = _offsets.get(text)
    if known is not None:
        return known
    offset = 0
    if text not in ("Z", "z"):
        hours, minutes = int(text[1:3]), int(text[4:6])
        if hours > 23 or minutes > 59:
            raise TimestampError("offset out of range")
        offset = (hours * 3600 + minutes * 60) * (-1 if text[0] == "-" else 1)
    if len(_offsets) >= _CACHE_LIMIT:
        _offsets.clear()
    _offsets[text] = offset
    return offset


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST_US = _days_from_civil(1, 1, 2) * 86_400 * _US
_LATEST_US = _days_from_civil(9999, 12, 30) * 86_400 * _US


def _hour(prefix: str) -> int:
    """Local seconds since the epoch of ``YYYY-MM-DDTHH`` (checked), remembered."""
    hour = int(prefix[11:13])
    if hour > 23:
        raise TimestampError("no such time")
    seconds = _date(prefix[:10]) * 86_400 + hour * 3600
    if len(_hours) >= _CACHE_LIMIT:
        _hours.clear()
    _hours[prefix] = seconds
    return seconds


# The minutes and seconds of a valid text, ``:00:00`` to ``:59:59``, in seconds (a leap second
# goes the long way).
_MINUTES_SECONDS = {
    f":{minute:02d}:{second:02d}": minute * 60 + second
    for minute in range(60)
    for second in range(60)
}
# What follows the seconds in texts already read (fraction and offset) -> (µs, offset seconds).
_suffixes: dict[str, tuple[int, int]] = {}


def epoch_us(text: str) -> int:
    """Microseconds since the Unix epoch of an RFC 3339 date-time (exact integer arithmetic).

    The hot path of decoding. A text is its hour (``YYYY-MM-DDTHH``), its minutes and seconds
    (``:MM:SS``, one of 3,600) and its suffix (fraction and offset): a stream's texts share few
    hours and few suffixes, so each is checked and read once (by :func:`_read`, which remembers
    them) and a text whose three parts are all known is read by three look-ups. Every hour and
    suffix is remembered only from a text that matched the whole pattern, and the pattern fixes
    the positions up to the seconds, so known parts make a valid text.
    """
    hour = _hours.get(text[:13])
    seconds = _MINUTES_SECONDS.get(text[13:19])
    suffix = _suffixes.get(text[19:])
    if hour is None or seconds is None or suffix is None:
        return _read(text)
    instant = (hour + seconds - suffix[1]) * _US + suffix[0]
    if not _EARLIEST_US <= instant < _LATEST_US:
        raise TimestampError("outside the instants a date can hold in every time zone")
    return instant


def _read(text: str) -> int:
    """:func:`epoch_us` of a text with a part not seen yet: checked whole, its parts kept."""
    if _PATTERN.fullmatch(text) is None:
        raise TimestampError("not an RFC 3339 date-time with a UTC offset")
    hour = _hours.get(text[:13])
    if hour is None:
        hour = _hour(text[:13])
    minute = int(text[14:16])
    if minute > 59:
        raise TimestampError("no such time")
    second = int(text[17:19])
    if text[-1] in "Zz":
        zone, fraction = text[-1], text[20:-1]
    else:
        zone, fraction = text[-6:], text[20:-6]
    micro = int((fraction + "00000")[:6]) if fraction else 0
    offset = _offsets.get(zone)
    if offset is None:
        offset = _offset(zone)
    if second >= 60:
        if second > 60:
            raise TimestampError("no such time")
        second, micro = 59, 999_999  # a leap second, as in fields()
    elif text[19:] not in _suffixes:
        if len(_suffixes) >= _CACHE_LIMIT:
            _suffixes.clear()
        _suffixes[text[19:]] = (micro, offset)
    instant = (hour + minute * 60 + second - offset) * _US + micro
    if not _EARLIEST_US <= instant < _LATEST_US:
        raise TimestampError("outside the instants a date can hold in every time zone")
    return instant


def to_datetime(text: str) -> datetime:
    """The aware datetime an RFC 3339 date-time names, read by :func:`epoch_us` (so with the
    same checks and the same leap second), in the text's own offset."""
    instant = epoch_us(text)
    offset = _offset(text[-1] if text[-1] in "Zz" else text[-6:])
    zone = UTC if offset == 0 else timezone(timedelta(seconds=offset))
    return (_EPOCH + timedelta(microseconds=instant)).astimezone(zone)
