"""The monthly KPI report of SPEC §5, computed from a store for any time range.

The store's read side gives the measure counts of each scope (overall, queue, agent, ticket
kind); every KPI entry is the catalogue's ratio of them (``metrics/catalogue.py``), its target the
configured one and ``met`` the catalogue's direction. The JSON form is the single source of the
numbers; CSV (here) and XLSX/HTML/PDF (``reports``, which build on this module) are drawn from it.
Month and day boundaries are taken in the configured time zone (``metrics/months.py``). A KPI
whose denominator is zero has the value ``None`` ("no data"), never 0 or 1.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from hotline_kpi.config import Settings, Targets
from hotline_kpi.errors import UsageError
from hotline_kpi.metrics.catalogue import (
    AGENT_CSV_ORDER,
    AGENT_ORDER,
    BLOCKED_BY_REASON,
    CATALOGUE,
    KPI_KEYS,
    LEFT_BY_REASON,
    Kpi,
    Measure,
    Scope,
    Sum,
    kpi,
    met,
    target_of,
)
from hotline_kpi.metrics.fold import US
from hotline_kpi.metrics.months import (
    BY,
    day_bounds,
    local_time,
    month_bounds,
    month_period,
    parse_day,
    parse_month,
    period_edges,
    previous_month,
)
from hotline_kpi.metrics.records import PeriodCounts
from hotline_kpi.metrics.rolled import reader_for
from hotline_kpi.metrics.states import STATES, state_measures
from hotline_kpi.metrics.store import StoreReader

__all__ = [
    "KPI_KEYS",
    "KpiFigures",
    "MeasureCounts",
    "RangeRequest",
    "Report",
    "Tallies",
    "day_bounds",
    "kpi_entries",
    "kpi_entry",
    "month_bounds",
    "parse_month",
    "previous_month",
    "range_request",
    "to_csv",
    "to_range_csv",
]

# Characters no export may carry in a text cell: C0 controls, DEL, C1 controls, lone surrogates
# and the two XML non-characters. openpyxl refuses most of them (IllegalCharacterError, which
# failed a whole month's workbook), XML cannot hold them, and a reader cannot see them. Ids are
# refused at decoding (SPEC §3 Numbers), but older stores and free text (category, factor
# names) may still hold them.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"
# A text cell starting with one of these is a formula, or turns into one, in a spreadsheet
# (OWASP, "CSV Injection"): =, +, -, @, tab and carriage return.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def clean_text(value: str) -> str:
    """``value`` with every unprintable character (controls, surrogates) replaced by U+FFFD."""
    return _UNPRINTABLE.sub(REPLACEMENT, value)


def looks_like_formula(value: str) -> bool:
    """Whether a spreadsheet would read the text ``value`` as a formula (OWASP's list)."""
    return value.startswith(FORMULA_TRIGGERS)


def csv_text(value: str) -> str:
    """A text field for the CSV: cleaned, and a leading formula character escaped with ``'``.

    As OWASP advises for CSV injection: a name such as ``=HYPERLINK(…)`` is written
    ``'=HYPERLINK(…)``, so that a spreadsheet opening the file shows it as text.
    """
    text = clean_text(value)
    return "'" + text if looks_like_formula(text) else text


def ratio(entry: Kpi, counts: Mapping[Measure, int]) -> float | None:
    """A KPI's value over one scope's counts; None ("no data") when its denominator is 0."""
    numerator, denominator = entry.value(counts)
    return numerator / denominator if denominator else None


def kpi_entry(entry: Kpi, counts: Mapping[Measure, int], targets: Targets) -> dict[str, Any]:
    """One KPI of the export: numerator, denominator, value (None without data), and for a KPI
    with a target, the target and whether it is met (None without data)."""
    numerator, denominator = entry.value(counts)
    value = numerator / denominator if denominator else None
    figures: dict[str, Any] = {"value": value, "numerator": numerator, "denominator": denominator}
    target = target_of(entry, targets)
    if target is not None:
        figures["target"] = target
        figures["met"] = met(entry, value, target)
    return figures


def kpi_entries(
    counts: Mapping[Measure, int], targets: Targets, scope: Scope = Scope.OVERALL
) -> dict[str, dict[str, Any]]:
    """Every KPI of the catalogue reported in ``scope``, over one scope's counts, keyed as in
    SPEC §5 (the caller-key KPIs are overall only, state time is overall and per agent)."""
    return {
        entry.key: kpi_entry(entry, counts, targets)
        for entry in CATALOGUE
        if scope in entry.scopes or (scope is Scope.QUEUE and Scope.KIND in entry.scopes)
    }


# The volume table of a scope (overall, a queue): its name in the export, and its measure.
VOLUMES: tuple[tuple[str, Measure], ...] = (
    ("requests", Measure.REQUESTS),
    ("answered", Measure.ANSWERED),
    ("abandoned", Measure.ABANDONED),
    ("short_abandoned", Measure.SHORT_ABANDONED),
    ("blocked", Measure.BLOCKED),
    ("left", Measure.LEFT),
    ("dropped", Measure.DROPPED),
    ("transferred", Measure.TRANSFERRED),
    ("qa_reviews", Measure.QA_REVIEWS),
    ("surveys", Measure.SURVEYS),
    ("tickets_due", Measure.TICKETS_SETTLED),
    ("contacts", Measure.CONTACTS),
)


class MeasureCounts(Counter[Measure]):
    """The measure counts of one scope (overall, a queue, a ticket kind): what its KPIs divide.

    A missing measure counts 0. Keyword names are measures (``MeasureCounts(answered=3)``).
    """

    def __init__(self, counts: Mapping[Measure, int] | None = None, /, **named: int) -> None:
        super().__init__()
        if counts:
            self.update(counts)
        for name, amount in named.items():
            # "queued" is the name the export's volume table (and older callers) give requests.
            self[Measure.REQUESTS if name == "queued" else Measure(name)] += amount

    def add(self, other: Mapping[Measure, int]) -> None:
        """Add another scope's counts into this one."""
        self.update(other)

    def kpis(self, targets: Targets, scope: Scope = Scope.OVERALL) -> dict[str, dict[str, Any]]:
        """Every KPI of SPEC §3 reported in ``scope`` over these counts, keyed as in SPEC §5."""
        return kpi_entries(self, targets, scope)

    def volumes(self, *, offered: bool = False) -> dict[str, Any]:
        """Plain counts for the report's volume table, blocked and left legs by reason; with
        ``offered``, a queue's offered calls: the contacts whose first request was there (one
        ``call.offered`` per contact, SPEC §5)."""
        found: dict[str, Any] = {name: self[measure] for name, measure in VOLUMES}
        if offered:
            found["offered"] = self[Measure.CONTACTS]
        found["blocked_by_reason"] = {r: self[m] for r, m in BLOCKED_BY_REASON.items()}
        found["left_by_reason"] = {r: self[m] for r, m in LEFT_BY_REASON.items()}
        return found

    @property
    def queued(self) -> int:
        """Agent requests (人工请求), short abandons included."""
        return self[Measure.REQUESTS]


Tallies = MeasureCounts
"""Compatibility: the name ``hotline_kpi/demo.py`` imports until it reads :class:`MeasureCounts`."""

# SPEC §5 ``ticket_kinds``: per ticket kind, the one KPI the catalogue reports per kind.
(_KIND_KPI,) = (entry for entry in CATALOGUE if Scope.KIND in entry.scopes)


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """What ``export`` is asked for when it is a range (SPEC §5 ``--from --to --by --queue``)."""

    first: date
    last: date
    by: str = "day"
    queue: str | None = None
    month: str | None = None  # the range was given as --month


def range_request(
    month: str | None,
    start: str | None,
    end: str | None,
    by: str | None,
    queue: str | None,
    today: date,
) -> RangeRequest | None:
    """The export's range from its options, or None for the month export of ``--month`` alone
    (whose output stays what it always was). ``today`` is the local date ``today`` and
    ``yesterday`` are relative to. A wrong combination is a one-line :class:`UsageError`.
    """
    if queue is not None and not queue.strip():
        raise UsageError("--queue is empty: give a queue name")
    if by is not None and by not in BY:
        raise UsageError(f"--by must be one of {', '.join(BY)}, got {by!r}")
    if month is not None:
        if start is not None or end is not None:
            raise UsageError(
                "--month and --from/--to both give the range: give --month YYYY-MM or "
                "--from YYYY-MM-DD --to YYYY-MM-DD"
            )
        if by is None and queue is None:
            return None
        first, last = month_period(month)
        return RangeRequest(first, last, by or "day", queue, month)
    if start is None and end is None:
        raise UsageError("give --month YYYY-MM, or --from YYYY-MM-DD --to YYYY-MM-DD")
    if start is None or end is None:
        given, missing = ("--from", "--to") if end is None else ("--to", "--from")
        raise UsageError(f"{given} needs {missing} too (both local days, --to inclusive)")
    first, last = parse_day(start, "--from", today), parse_day(end, "--to", today)
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}: give --to on or after --from")
    return RangeRequest(first, last, by or "day", queue)


@dataclass(frozen=True, slots=True)
class _DayStates:
    """A month's agent state time per local day: ``index`` maps each day's start (and the
    month's end) to its day number, ``by_day`` a day number to each agent's microseconds."""

    index: dict[int, int]
    by_day: dict[int, dict[str, dict[str, int]]]


class KpiFigures:
    """The SPEC §5 figures of one store, for one configuration (zone, thresholds, targets).

    Reads the store only through its typed read side; every KPI comes from the catalogue.
    """

    def __init__(self, store: StoreReader, settings: Settings) -> None:
        # Measures come from the interval rollups when they were built for these settings.
        self.store = reader_for(store, settings)
        self._days: _DayStates | None = None
        self.settings = settings
        self.zone = settings.zone

    def scopes(
        self, lo: int, hi: int, kinds: dict[str, MeasureCounts] | None = None
    ) -> tuple[MeasureCounts, dict[str, MeasureCounts]]:
        """Overall and per-queue counts of what is attributed to [lo, hi) (SPEC §5).

        With ``kinds``, settled work orders are also counted per ticket kind there, in the same
        pass over the tickets.
        """
        queues: dict[str, MeasureCounts] = defaultdict(MeasureCounts)
        overall = MeasureCounts()
        satisfied = self.settings.thresholds.satisfied_score
        groups = [
            *self.store.call_counts(lo, hi, "queue"),
            *self.store.review_counts(lo, hi, "queue"),
            *self.store.survey_counts(lo, hi, "queue", satisfied),
        ]
        for group in groups:
            overall.update(group.counts)
            if group.group is not None:
                queues[group.group].update(group.counts)
        for counted in self._contacts([lo, hi]):
            overall.update(counted.counts)
            if counted.group is not None:
                queues[counted.group].update(counted.counts)
        for seconds in self._state_time([lo, hi]).values():
            overall.update(state_measures(seconds))
        for due in self.store.ticket_counts([lo, hi], self.store.watermark()):
            settled = {
                Measure.TICKETS_SETTLED: due.settled,
                Measure.TICKETS_ON_TIME: due.on_time,
            }
            scopes = [overall, queues[due.queue]] if due.queue else [overall]
            if kinds is not None:
                scopes.append(kinds.setdefault(due.kind, MeasureCounts()))
            for scope in scopes:
                scope.update(settled)
        return overall, dict(sorted(queues.items()))

    def agents(self, lo: int, hi: int) -> list[dict[str, Any]]:
        """Every agent with any figure in [lo, hi), by agent id (SPEC §5 attribution)."""
        figures: dict[str, MeasureCounts] = defaultdict(MeasureCounts)
        satisfied = self.settings.thresholds.satisfied_score
        groups = [
            *self.store.call_counts(lo, hi, "agent"),
            *self.store.review_counts(lo, hi, "agent"),
            *self.store.survey_counts(lo, hi, "agent", satisfied),
        ]
        for group in groups:
            if group.group is not None:
                figures[group.group].update(group.counts)
        return self._agent_entries(figures, (lo, hi))

    def _agent_entries(
        self, figures: dict[str, MeasureCounts], span: tuple[int, int] | None
    ) -> list[dict[str, Any]]:
        """The export's agent entries from their counts, with their state time in ``span``
        (None: none, as for one queue: agent states name no queue). An agent only logged out
        all period is listed only if it has other figures."""
        states = {}
        if span is not None:
            whole = self._state_time(list(span)).items()
            states = {agent: seconds for (_, agent), seconds in whole}
        for agent, seconds in states.items():
            if _logged_in(seconds) or agent in figures:
                figures[agent].update(state_measures(seconds))
        return [
            _agent_entry(agent, figures[agent], states.get(agent, {})) for agent in sorted(figures)
        ]

    def _windows_us(self) -> tuple[int, int]:
        """The repeat contact window W and the repeat complaint window, in microseconds."""
        thresholds = self.settings.thresholds
        return (
            round(thresholds.repeat_window_hours * 3600 * US),
            round(thresholds.repeat_complaint_days * 86_400 * US),
        )

    def _contacts(self, edges: list[int], queue: str | None = None) -> list[PeriodCounts]:
        """Contacts and the caller-key measures of each period (SPEC §3), at "now"."""
        window, complaints = self._windows_us()
        return self.store.period_contacts(edges, self.store.watermark(), window, complaints, queue)

    def _state_time(self, edges: list[int]) -> dict[tuple[int, str], dict[str, int]]:
        """Agent state microseconds per (period, agent) (SPEC §3), up to "now".

        While :meth:`month` runs, periods made of its days are summed from the state time it
        computed once per day (the timeline grows with the agents' state changes, which may be
        several per call: read once, not once per day and again for the month and the agents).
        """
        days = self._days
        if days is not None and all(edge in days.index for edge in edges):
            summed: dict[tuple[int, str], dict[str, int]] = {}
            for period in range(len(edges) - 1):
                for day in range(days.index[edges[period]], days.index[edges[period + 1]]):
                    for agent, seconds in days.by_day.get(day, {}).items():
                        into = summed.setdefault((period, agent), {})
                        for state, amount in seconds.items():
                            into[state] = into.get(state, 0) + amount
            return summed
        return self.store.state_time(edges, self.store.watermark())

    def offered(self, lo: int, hi: int) -> int:
        """Calls that reached the hotline in [lo, hi), by ``call.offered`` time."""
        return self.store.offered_count(lo, hi)

    def as_of(self) -> str | None:
        """The watermark as a local RFC 3339 time, or None for an empty store."""
        watermark = self.store.watermark()
        return None if watermark is None else local_time(watermark, self.zone)

    def export(self, month: str) -> dict[str, Any]:
        """The month's figures with their daily KPIs and ``revision``: what every format shows."""
        return with_revision(self.month(month, daily=True))

    def month(self, month: str, *, daily: bool = False) -> dict[str, Any]:
        """The whole monthly report of SPEC §5 for ``month`` (YYYY-MM)."""
        edges = [start for _, start, _ in day_bounds(month, self.zone)]
        edges.append(month_bounds(month, self.zone)[1])
        by_day: dict[int, dict[str, dict[str, int]]] = defaultdict(dict)
        for (day, agent), seconds in self._state_time(edges).items():
            by_day[day][agent] = seconds
        self._days = _DayStates({edge: index for index, edge in enumerate(edges)}, by_day)
        try:
            return self._month(month, daily=daily)
        finally:
            self._days = None

    def _month(self, month: str, *, daily: bool) -> dict[str, Any]:
        lo, hi = month_bounds(month, self.zone)
        targets = self.settings.targets
        kinds: dict[str, MeasureCounts] = {}
        overall, queues = self.scopes(lo, hi, kinds)
        overall_volumes = overall.volumes()
        overall_volumes["offered"] = self.offered(lo, hi)
        report: dict[str, Any] = {
            "month": month,
            "timezone": self.settings.timezone,
            "as_of": self.as_of(),
            "thresholds": self.settings.thresholds.model_dump(),
            "overall": overall.kpis(targets),
            "queues": {name: counts.kpis(targets, Scope.QUEUE) for name, counts in queues.items()},
            "agents": self.agents(lo, hi),
            "ticket_kinds": {
                kind: kpi_entry(_KIND_KPI, counts, targets)
                for kind, counts in sorted(kinds.items())
            },
            "volumes": {
                "overall": overall_volumes,
                "queues": {name: counts.volumes(offered=True) for name, counts in queues.items()},
            },
        }
        if daily:
            report["daily"] = {
                day: self.scopes(start, end)[0].kpis(targets)
                for day, start, end in day_bounds(month, self.zone)
            }
        return report

    def range_report(
        self,
        first: date,
        last: date,
        by: str = "day",
        queue: str | None = None,
        *,
        month: str | None = None,
    ) -> dict[str, Any]:
        """The report of the local days ``first`` … ``last`` (inclusive) with its ``periods``
        (SPEC §5 ``export --from --to --by --queue``), and its ``revision``.

        The shape, kept stable for the XLSX/HTML/PDF renderers (keys in this order)::

            {"from": "2026-11-01", "to": "2026-11-01",   # the local days, --to inclusive
             "month": null,              # "YYYY-MM" when asked as --month, else null
             "by": "hour",               # "day" | "hour" | "interval"
             "interval_minutes": 15,     # the configured interval (the periods of "interval")
             "queue": null,              # the --queue every scope is limited to, or null
             "timezone": "America/New_York", "as_of": "…", "revision": "…",
             "thresholds": {…},
             # the whole range, exactly as the month export shows a month:
             "overall": {kpi: {"value", "numerator", "denominator"[, "target", "met"]}},
             "queues": {queue: {kpi: {…}}},
             "agents": [{"agent_id": …, …}],   # as in the month export
             "ticket_kinds": {kind: {…}},
             "volumes": {"overall": {…, "offered": n}, "queues": {queue: {…}}},
             # one entry per period, in time order:
             "periods": [{"start": "2026-11-01T01:00:00-05:00",   # RFC 3339 with offset
                          "end": "2026-11-01T02:00:00-05:00",
                          "overall": {kpi: {…}},
                          "queues": {queue: {kpi: {…}}},      # every queue of "queues"
                          "volumes": {"overall": {…, "offered": n},
                                      "queues": {queue: {…}}}}]}

        Periods follow the configured zone: a day of 23 or 25 hours has 23 or 25 hourly
        periods, a repeated hour appears twice (same wall time, two offsets). Every period lists
        every queue of the range (a KPI without data is null), so a chart's series have one
        point per period. With ``queue``, every scope holds only that queue's legs (its agents'
        legs there) and the reviews, surveys and tickets that count in it. The whole range's
        figures are the sums of its periods' counts; ``agents`` and ``ticket_kinds`` are not cut
        into periods. Counts come from one grouped pass per table
        (:meth:`~hotline_kpi.metrics.store.StoreReader.period_counts`).
        """
        edges = period_edges(first, last, by, self.zone, self.settings.interval_minutes)
        count = len(edges) - 1
        targets = self.settings.targets
        satisfied = self.settings.thresholds.satisfied_score
        overall = [MeasureCounts() for _ in range(count)]
        queues: list[dict[str, MeasureCounts]] = [defaultdict(MeasureCounts) for _ in range(count)]
        for group in [
            *self.store.period_counts(edges, "queue", satisfied, queue),
            *self._contacts(edges, queue),
        ]:
            overall[group.period].update(group.counts)
            if group.group is not None:
                queues[group.period][group.group].update(group.counts)
        if queue is None:
            for (period, _), seconds in self._state_time(edges).items():
                overall[period].update(state_measures(seconds))
        kinds: dict[str, MeasureCounts] = {}
        for due in self.store.ticket_counts(edges, self.store.watermark(), queue):
            settled = {
                Measure.TICKETS_SETTLED: due.settled,
                Measure.TICKETS_ON_TIME: due.on_time,
            }
            scopes = [overall[due.period], kinds.setdefault(due.kind, MeasureCounts())]
            if due.queue:
                scopes.append(queues[due.period][due.queue])
            for scope in scopes:
                scope.update(settled)
        offered = self.store.period_offered(edges, queue)
        total = MeasureCounts()
        by_queue: dict[str, MeasureCounts] = defaultdict(MeasureCounts)
        for index in range(count):
            total.add(overall[index])
            for name, counts in queues[index].items():
                by_queue[name].add(counts)
        names = sorted(by_queue)
        total_volumes = total.volumes()
        total_volumes["offered"] = sum(offered.values())
        agents: dict[str, MeasureCounts] = defaultdict(MeasureCounts)
        for group in self.store.period_counts([edges[0], edges[-1]], "agent", satisfied, queue):
            if group.group is not None:
                agents[group.group].update(group.counts)
        span = (edges[0], edges[-1]) if queue is None else None
        agent_entries = self._agent_entries(agents, span)
        periods = []
        for index in range(count):
            scoped = {name: queues[index].get(name, MeasureCounts()) for name in names}
            volumes = overall[index].volumes()
            volumes["offered"] = offered.get(index, 0)
            periods.append(
                {
                    "start": local_time(edges[index], self.zone),
                    "end": local_time(edges[index + 1], self.zone),
                    "overall": overall[index].kpis(targets),
                    "queues": {
                        name: counts.kpis(targets, Scope.QUEUE) for name, counts in scoped.items()
                    },
                    "volumes": {
                        "overall": volumes,
                        "queues": {
                            name: counts.volumes(offered=True) for name, counts in scoped.items()
                        },
                    },
                }
            )
        report: dict[str, Any] = {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "month": month,
            "by": by,
            "interval_minutes": self.settings.interval_minutes,
            "queue": queue,
            "timezone": self.settings.timezone,
            "as_of": self.as_of(),
            "thresholds": self.settings.thresholds.model_dump(),
            "overall": total.kpis(targets),
            "queues": {name: by_queue[name].kpis(targets, Scope.QUEUE) for name in names},
            "agents": agent_entries,
            "ticket_kinds": {
                kind: kpi_entry(_KIND_KPI, counts, targets)
                for kind, counts in sorted(kinds.items())
            },
            "volumes": {
                "overall": total_volumes,
                "queues": {name: by_queue[name].volumes(offered=True) for name in names},
            },
            "periods": periods,
        }
        return with_revision(report)

    def month_range(self, month: str, by: str = "day", queue: str | None = None) -> dict[str, Any]:
        """:meth:`range_report` over the local days of ``month`` (YYYY-MM)."""
        first, last = month_period(month)
        return self.range_report(first, last, by, queue, month=month)


def _logged_in(seconds: Mapping[str, int]) -> bool:
    """Whether an agent was logged in at all: one only logged out is not listed for it."""
    return any(seconds.get(state, 0) for state in STATES if state != "logged_out")


Report = KpiFigures
"""Compatibility: the name ``hotline_kpi/demo.py`` imports until it reads :class:`KpiFigures`."""


# Keys that say when or which, not what: left out of the revision's hash.
_NOT_FIGURES = ("as_of", "revision")


def revision(figures: Mapping[str, Any]) -> str:
    """A short hash of a report's figures, everything but ``as_of`` and ``revision`` itself.

    Derived from the data only (never the wall clock), so a replay of the same events gives
    the same revision, while a late event that changes any figure of the month changes it.
    Two copies of a month's export with the same revision show the same figures.
    """
    canonical = json.dumps(
        {key: value for key, value in figures.items() if key not in _NOT_FIGURES},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:12]


def with_revision(figures: Mapping[str, Any]) -> dict[str, Any]:
    """``figures`` with ``revision`` (see :func:`revision`) placed right after ``as_of``."""
    stamped: dict[str, Any] = {}
    for key, value in figures.items():
        if key == "revision":
            continue
        stamped[key] = value
        if key == "as_of":
            stamped["revision"] = revision(figures)
    return stamped


# An agent's counts in the export, under these names and in this order (times in seconds), then
# the KPIs of AGENT_ORDER.
_AGENT_FIELDS: Mapping[Measure, str] = {
    Measure.ANSWERED: "answered",
    Measure.WITHIN_THRESHOLD: "answered_within_threshold",
    Measure.DROPPED: "dropped",
    Measure.HANDLED: "handled",
    Measure.HANDLE_US: "handle_seconds",
    Measure.WAIT_US: "wait_seconds",
    Measure.QA_REVIEWS: "qa_reviews",
    Measure.QA_ACCURATE: "qa_accurate",
    Measure.SURVEYS: "surveys",
    Measure.SATISFIED: "satisfied",
    Measure.SCORE_SUM: "score_sum",
    Measure.TRANSFERRED: "transferred",
    Measure.HOLD_US: "hold_seconds",
    Measure.WRAPPED: "wrapped",
    Measure.WRAP_US: "after_call_work_seconds",
}
_MICROSECONDS = frozenset({Measure.HANDLE_US, Measure.WAIT_US, Measure.HOLD_US, Measure.WRAP_US})
# Per agent, these KPIs are objects with their seconds (SPEC §5), not bare values.
_AGENT_STATE_KPIS = ("occupancy", "utilisation", "not_ready_share")


def _agent_entry(
    agent: str, counts: Mapping[Measure, int], seconds: Mapping[str, int]
) -> dict[str, Any]:
    """One agent of the export: its counts, KPI values, and state time (SPEC §5)."""
    entry: dict[str, Any] = {"agent_id": agent}
    for measure, name in _AGENT_FIELDS.items():
        amount = counts.get(measure, 0)
        entry[name] = amount / US if measure in _MICROSECONDS else amount
    entry.update((key, ratio(kpi(key), counts)) for key in AGENT_ORDER)
    entry["logged_in_seconds"] = counts.get(Measure.LOGGED_IN_US, 0) / US
    entry["state_seconds"] = {state: seconds.get(state, 0) / US for state in STATES}
    entry["not_ready_reasons"] = {
        key.split(":", 1)[1]: amount / US
        for key, amount in sorted(seconds.items())
        if key.startswith("not_ready:")
    }
    for key in _AGENT_STATE_KPIS:
        numerator, denominator = kpi(key).value(counts)
        entry[key] = {
            "value": numerator / denominator if denominator else None,
            "numerator": numerator,
            "denominator": denominator,
        }
    return entry


def _agent_field(measures: Sum) -> str:
    (measure,) = measures.plus
    return _AGENT_FIELDS[measure]


# Per-agent KPIs in the CSV: key -> (numerator field, denominator field) of the JSON entry;
# the state-time KPIs (SPEC §5: objects with their seconds) follow, read from their objects.
_AGENT_CSV = {
    key: (_agent_field(kpi(key).numerator), _agent_field(kpi(key).denominator))
    for key in AGENT_CSV_ORDER
}

CSV_COLUMNS = (
    "scope",
    "name",
    "kpi",
    "numerator",
    "denominator",
    "value",
    "target",
    "met",
    "as_of",
    "revision",
)


def to_csv(report: Mapping[str, Any]) -> str:
    """The report as long-format CSV: one row per scope × KPI, agents' figures included.

    Every row carries the report's ``as_of`` and ``revision``, so that a row read on its own
    still says which figures it belongs to. Names from the data (queues, kinds, agent ids) are
    text fields made safe for spreadsheets (:func:`csv_text`).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_rows(report))
    return out.getvalue()


def _csv_rows(report: Mapping[str, Any]) -> Iterator[list[Any]]:
    """The rows of :func:`to_csv` for the whole of ``report``, stamp included."""
    stamp = [report["as_of"] or "", report.get("revision", "")]
    scopes = [("overall", "", report["overall"])]
    scopes += [("queue", queue, kpis) for queue, kpis in report["queues"].items()]
    scopes += [
        ("ticket_kind", kind, {_KIND_KPI.key: entry})
        for kind, entry in report["ticket_kinds"].items()
    ]
    for scope, name, kpis in scopes:
        for key, entry in kpis.items():
            yield [scope, csv_text(name), key, *_csv_figures(entry), *stamp]
    for agent in report["agents"]:
        name = csv_text(agent["agent_id"])
        for key, (numerator, denominator) in _AGENT_CSV.items():
            value = agent[key]
            yield [
                "agent",
                name,
                key,
                agent[numerator],
                agent[denominator],
                "" if value is None else value,
                "",
                "",
                *stamp,
            ]
        for key in _AGENT_STATE_KPIS:
            if key in agent:
                yield ["agent", name, key, *_csv_figures(agent[key]), *stamp]


RANGE_CSV_COLUMNS = ("period", "start", "end", *CSV_COLUMNS)


def to_range_csv(report: Mapping[str, Any]) -> str:
    """A range report (:meth:`KpiFigures.range_report`) as long-format CSV.

    The columns of :func:`to_csv` after ``period``, ``start`` and ``end``: first the whole
    range's rows (``period`` is ``range``; overall, queues, ticket kinds and agents, as the month
    CSV has them), then one row per period × scope × KPI (``period`` is ``day``, ``hour`` or
    ``interval``; scopes overall and each queue), periods in time order. ``start`` and ``end``
    are RFC 3339 with the offset, so a repeated daylight-saving hour is two distinct rows.
    """
    periods = report["periods"]
    first = periods[0]["start"] if periods else ""
    last = periods[-1]["end"] if periods else ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RANGE_CSV_COLUMNS)
    writer.writerows(["range", first, last, *row] for row in _csv_rows(report))
    stamp = [report["as_of"] or "", report.get("revision", "")]
    for period in periods:
        where = [report["by"], period["start"], period["end"]]
        scopes = [("overall", "", period["overall"])]
        scopes += [("queue", name, kpis) for name, kpis in period["queues"].items()]
        for scope, name, kpis in scopes:
            for key, entry in kpis.items():
                writer.writerow([*where, scope, csv_text(name), key, *_csv_figures(entry), *stamp])
    return out.getvalue()


def _csv_figures(entry: Mapping[str, Any]) -> list[Any]:
    """numerator, denominator, value, target, met of one KPI entry as CSV fields."""
    return [
        entry["numerator"],
        entry["denominator"],
        "" if entry["value"] is None else entry["value"],
        entry.get("target", ""),
        "" if entry.get("met") is None else entry["met"],
    ]


def write_output(data: str | bytes, output: str) -> None:
    """Write to a file path, or to stdout for ``-``."""
    if output == "-":
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
        return
    path = Path(output)
    if not path.parent.exists():
        raise UsageError(f"cannot write {output}: directory {path.parent} does not exist")
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
