"""Months, days and instants in the configured time zone (SPEC §3: boundaries at local midnight).

Every export, report and analysis that cuts time into months or days, or prints an instant, takes
it from here; times are epoch microseconds, as the fold and the store keep them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hotline_kpi.errors import UsageError
from hotline_kpi.ingest.events import epoch_us

US = 1_000_000
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
    # Through UTC: adding the microseconds to a local time would drop its ``fold``, and print
    # the second of two repeated wall times (daylight saving ends) with the first one's offset.
    moment = (_UTC_EPOCH + timedelta(microseconds=moment_us)).astimezone(zone)
    return moment.isoformat(timespec=timespec)


# --------------------------------------------------------------------------------------------
# Ranges of local days and their periods (SPEC §5 ``export --from --to --by``).

BY = ("day", "hour", "interval")
"""How a range is cut into periods: local days, local hours, or the configured interval."""

# A range cut into more periods than this is refused: a year by the quarter hour is 35,040
# periods a scope, more than any reader can use (and a JSON of hundreds of megabytes).
MAX_PERIODS = 10_000
# Cron-friendly names of a day, relative to the wall clock in the configured zone.
RELATIVE_DAYS = {"today": 0, "yesterday": 1}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 11, 30)


def today_in(zone: ZoneInfo, now_us: int) -> date:
    """The local date in ``zone`` at the instant ``now_us`` (epoch microseconds): what
    ``today`` means; the caller passes the wall clock, tests a fixed instant."""
    return datetime.fromtimestamp(now_us // US, tz=zone).date()


def parse_day(text: str, option: str, today: date) -> date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (relative to ``today``) → a local date.

    Anything else, or a date outside 1970-01-01 … 9999-11-30, is a one-line :class:`UsageError`
    naming ``option``.
    """
    if text in RELATIVE_DAYS:
        return today - timedelta(days=RELATIVE_DAYS[text])
    try:
        if _DAY.match(text) is None:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} must be a date YYYY-MM-DD, today or yesterday, got {text!r}"
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise UsageError(
            f"{option} {text} is out of range: give a day from {FIRST_DAY} to {LAST_DAY}"
        )
    return day


def range_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[int, int]:
    """The local days ``first`` … ``last`` (inclusive) as [start, end) in epoch microseconds."""
    return day_start(first, zone), day_start(last + timedelta(days=1), zone)


def period_minutes(by: str, interval_minutes: int) -> int:
    """The length in local wall-clock minutes of a period cut ``by`` (a day: 1440)."""
    return {"day": 1440, "hour": 60, "interval": interval_minutes}[by]


def period_edges(
    first: date, last: date, by: str, zone: ZoneInfo, interval_minutes: int
) -> list[int]:
    """The edges of the periods of the local days ``first`` … ``last``, in epoch microseconds.

    Period ``i`` is [edges[i], edges[i + 1]). A period starts at every instant whose local wall
    time is a multiple of the period's minutes past midnight (a day's periods start at local
    midnight): so a day that springs forward has 23 hourly periods, one that falls back has 25,
    the repeated hour twice (same wall time, two offsets), and a wall time that never happened
    starts no period. A range of more than :data:`MAX_PERIODS` periods is a :class:`UsageError`.
    """
    if by not in BY:
        raise UsageError(f"--by must be one of {', '.join(BY)}, got {by!r}")
    step = period_minutes(by, interval_minutes)
    days = (last - first).days + 1
    estimate = days * (1440 // step if step < 1440 else 1)
    if estimate > MAX_PERIODS:
        raise UsageError(
            f"--from {first} --to {last} --by {by} gives {estimate} periods, at most "
            f"{MAX_PERIODS}: shorten the range or give a longer --by"
        )
    edges: list[int] = []
    day = first
    while day <= last:
        start = day_start(day, zone)
        following = day + timedelta(days=1)
        end = day_start(following, zone)
        found = {start}
        # Minute 0 too: where clocks go back at 01:00 to 00:00, midnight's hour happens twice.
        for minute in range(0, 1440, step) if step < 1440 else ():
            hour, rest = divmod(minute, 60)
            for fold in (0, 1):
                wall = datetime(day.year, day.month, day.day, hour, rest, tzinfo=zone, fold=fold)
                moment = epoch_us(wall)
                # A wall time skipped by a spring-forward gap converts to another wall time.
                if start < moment < end and _wall(moment, zone) == (hour, rest):
                    found.add(moment)
        edges.extend(sorted(found))
        day = following
    edges.append(day_start(day, zone))
    return edges


def _wall(moment_us: int, zone: ZoneInfo) -> tuple[int, int]:
    local = datetime.fromtimestamp(moment_us // US, tz=zone)
    return local.hour, local.minute
