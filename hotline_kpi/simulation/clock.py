"""Simulated time: epoch milliseconds, the local hour and month of an instant, RFC 3339 text.

The ground truth cuts months here, not with ``metrics.months``: it must not share code with the
exports it checks. The command's window (local midnights) comes from ``metrics.months``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

MS = 1000  # microseconds per millisecond
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last instant a simulated event may have, and how long after its call the last one comes
# (a review up to 3 days, a work order closing late after a 48-hour deadline; with margin).
LAST_MS = (datetime(9999, 12, 31, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
FOLLOW_UP_MS = 30 * DAY_MS


def local(ms: int, zone: ZoneInfo) -> datetime:
    """The instant ``ms`` as a local time of ``zone``."""
    return (EPOCH + timedelta(milliseconds=ms)).astimezone(zone)


def local_hour(ms: int, zone: ZoneInfo) -> int:
    """The local hour (0-23) an instant falls in."""
    return local(ms, zone).hour


def local_month(ms: int, zone: ZoneInfo) -> str:
    """The local calendar month (``YYYY-MM``) an instant falls in."""
    return local(ms, zone).strftime("%Y-%m")


def iso(ms: int, zone: ZoneInfo | None) -> str:
    """RFC 3339 with milliseconds, in ``zone``'s offset (or ``Z`` for None), exactly."""
    moment = EPOCH + timedelta(milliseconds=ms)
    if zone is None:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.astimezone(zone).isoformat(timespec="milliseconds")


def next_month_ms(ms: int, zone: ZoneInfo) -> int:
    """Epoch ms of the first local midnight of the month after the one ``ms`` falls in: where
    the ground truth splits agents' state time."""
    moment = local(ms, zone)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    start = datetime(year, month, 1, tzinfo=zone)
    return (start - EPOCH) // timedelta(milliseconds=1)
