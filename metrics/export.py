"""The monthly KPI report of SPEC §5, computed from a store for any time range.

The JSON form is the single source of the numbers; CSV (here) and XLSX/HTML/PDF (``reports``)
are drawn from it. Month and day boundaries are taken in the configured time zone. A KPI whose
denominator is zero has the value ``None`` ("no data"), never 0 or 1.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hotline_kpi.config import Settings, Targets
from hotline_kpi.errors import UsageError
from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics.fold import (
    ABANDONED_FACT,
    ANSWERED_FACT,
    DROPPED,
    HANDLED,
    SHORT_ABANDON,
    TICKET_DUE,
    TICKET_ON_TIME,
    US,
    WITHIN_THRESHOLD,
    TicketFact,
    ticket_facts,
)
from hotline_kpi.metrics.store import SqlStore, open_existing_store

KPI_KEYS: tuple[str, ...] = (
    "manual_connection_rate",
    "drop_rate",
    "timeliness",
    "answer_accuracy",
    "service_level",
    "abandon_rate",
    "average_speed_of_answer",
    "average_handle_time",
    "satisfaction_rate",
    "satisfaction_mean",
)
# SPEC §6: the direction of each target is fixed.
BELOW_TARGET = frozenset({"drop_rate"})

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

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


def parse_month(month: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); anything else is a one-line :class:`UsageError`."""
    match = _MONTH.match(month)
    if match is None:
        raise UsageError(f"--month must look like 2026-10 (YYYY-MM), got {month!r}")
    return int(match.group(1)), int(match.group(2))


def month_bounds(month: str, zone: ZoneInfo) -> tuple[int, int]:
    """The month's [start, end) in epoch microseconds, boundaries at local midnight."""
    year, number = parse_month(month)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return epoch_us(start), epoch_us(end)


def previous_month(month: str) -> str:
    """The month before ``month``."""
    year, number = parse_month(month)
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def day_bounds(month: str, zone: ZoneInfo) -> list[tuple[str, int, int]]:
    """Each local day of ``month`` as (YYYY-MM-DD, start, end) in epoch microseconds."""
    year, number = parse_month(month)
    day = date(year, number, 1)
    days = []
    while day.month == number:
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        following = day + timedelta(days=1)
        end = datetime(following.year, following.month, following.day, tzinfo=zone)
        days.append((day.isoformat(), epoch_us(start), epoch_us(end)))
        day = following
    return days


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


def kpi(
    numerator: float, denominator: int, target: float | None = None, key: str = ""
) -> dict[str, Any]:
    """One KPI entry: numerator, denominator, value (None without data), target and met."""
    value = numerator / denominator if denominator else None
    entry: dict[str, Any] = {"value": value, "numerator": numerator, "denominator": denominator}
    if target is not None:
        entry["target"] = target
        if value is None:
            entry["met"] = None
        elif key in BELOW_TARGET:
            entry["met"] = value < target
        else:
            entry["met"] = value >= target
    return entry


@dataclass(slots=True)
class Tallies:
    """Additive counts from which every KPI of one scope (overall or a queue) follows."""

    queued: int = 0
    answered: int = 0
    within_threshold: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    dropped: int = 0
    handled: int = 0
    wait_us: int = 0
    handle_us: int = 0
    qa_reviews: int = 0
    qa_accurate: int = 0
    surveys: int = 0
    satisfied: int = 0
    score_sum: int = 0
    tickets_settled: int = 0
    tickets_on_time: int = 0

    def add(self, other: Tallies) -> None:
        """Add another scope's counts into this one."""
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def kpis(self, targets: Targets) -> dict[str, dict[str, Any]]:
        """Every KPI of SPEC §3, keyed as in SPEC §5."""
        counted = self.queued - self.short_abandoned  # SPEC §3: short abandons are excluded
        t = targets
        return {
            "manual_connection_rate": kpi(
                self.answered, counted, t.manual_connection_rate, "manual_connection_rate"
            ),
            "drop_rate": kpi(self.dropped, self.answered, t.drop_rate, "drop_rate"),
            "timeliness": kpi(self.tickets_on_time, self.tickets_settled, t.timeliness),
            "answer_accuracy": kpi(self.qa_accurate, self.qa_reviews, t.answer_accuracy),
            "service_level": kpi(self.within_threshold, counted, t.service_level),
            "abandon_rate": kpi(self.abandoned - self.short_abandoned, counted),
            "average_speed_of_answer": kpi(self.wait_us / US, self.answered),
            "average_handle_time": kpi(self.handle_us / US, self.handled),
            "satisfaction_rate": kpi(self.satisfied, self.surveys),
            "satisfaction_mean": kpi(self.score_sum, self.surveys),
        }

    def volumes(self) -> dict[str, int]:
        """Plain counts for the report's volume table."""
        return {
            "queued": self.queued,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "dropped": self.dropped,
            "qa_reviews": self.qa_reviews,
            "surveys": self.surveys,
            "tickets_settled": self.tickets_settled,
        }


def _bit(mask: int) -> str:
    return f"SUM((facts / {mask}) % 2)"


_CALLS_SQL = f"""
    SELECT {{group}}, COUNT(*), {_bit(ANSWERED_FACT)}, {_bit(WITHIN_THRESHOLD)},
           {_bit(ABANDONED_FACT)}, {_bit(SHORT_ABANDON)}, {_bit(DROPPED)}, {_bit(HANDLED)},
           SUM(CASE WHEN (facts / {ANSWERED_FACT}) % 2 = 1 THEN outcome_at - queued_at
                    ELSE 0 END),
           SUM(CASE WHEN (facts / {HANDLED}) % 2 = 1 THEN ended_at - outcome_at ELSE 0 END)
    FROM calls WHERE queued_at >= ? AND queued_at < ? {{where}} GROUP BY {{group}}
"""


class Report:
    """KPI computations over one store for one time zone, thresholds and targets."""

    def __init__(self, store: SqlStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.zone = settings.zone

    def scopes(
        self, lo: int, hi: int, kinds: dict[str, Tallies] | None = None
    ) -> tuple[Tallies, dict[str, Tallies]]:
        """Overall and per-queue tallies for events attributed to [lo, hi).

        With ``kinds``, settled work orders are also tallied per ticket kind there, in the same
        pass over the tickets.
        """
        queues: dict[str, Tallies] = defaultdict(Tallies)
        overall = Tallies()
        for row in self.store.query(_CALLS_SQL.format(group="queue", where=""), (lo, hi)):
            tally = queues[row[0]]
            (
                tally.queued,
                tally.answered,
                tally.within_threshold,
                tally.abandoned,
                tally.short_abandoned,
                tally.dropped,
                tally.handled,
                tally.wait_us,
                tally.handle_us,
            ) = (int(value or 0) for value in row[1:])
            overall.add(tally)
        reviews = self.store.query(
            "SELECT COALESCE(r.queue, c.queue), COUNT(*), SUM(r.accurate) FROM reviews r "
            "LEFT JOIN calls c ON c.call_id = r.call_id WHERE r.ts >= ? AND r.ts < ? "
            "GROUP BY COALESCE(r.queue, c.queue)",
            (lo, hi),
        )
        for queue, count, accurate in reviews:
            for target in (overall, queues[queue]) if queue is not None else (overall,):
                target.qa_reviews += int(count)
                target.qa_accurate += int(accurate or 0)
        satisfied = self.settings.thresholds.satisfied_score
        surveys = self.store.query(
            "SELECT COALESCE(s.queue, c.queue), COUNT(*), "
            "SUM(CASE WHEN s.score >= ? THEN 1 ELSE 0 END), SUM(s.score) FROM surveys s "
            "LEFT JOIN calls c ON c.call_id = s.call_id WHERE s.ts >= ? AND s.ts < ? "
            "GROUP BY COALESCE(s.queue, c.queue)",
            (satisfied, lo, hi),
        )
        for queue, count, happy, score_sum in surveys:
            for target in (overall, queues[queue]) if queue is not None else (overall,):
                target.surveys += int(count)
                target.satisfied += int(happy or 0)
                target.score_sum += int(score_sum or 0)
        for ticket, facts in self._tickets(lo, hi):
            if not facts & TICKET_DUE:
                continue
            on_time = 1 if facts & TICKET_ON_TIME else 0
            targets = [overall, queues[ticket.queue]] if ticket.queue else [overall]
            if kinds is not None:
                targets.append(kinds.setdefault(ticket.kind or "unknown", Tallies()))
            for target in targets:
                target.tickets_settled += 1
                target.tickets_on_time += on_time
        return overall, dict(sorted(queues.items()))

    def _tickets(self, lo: int, hi: int) -> Iterable[tuple[TicketFact, int]]:
        watermark = self.store.watermark()
        rows = self.store.query(
            "SELECT ticket_id, opened_at, due, kind, queue, call_id, closed_at, counted "
            "FROM tickets WHERE due >= ? AND due < ?",
            (lo, hi),
        )
        for row in rows:
            ticket = TicketFact(*row)
            yield ticket, ticket_facts(ticket, watermark)

    def agents(self, lo: int, hi: int) -> list[dict[str, Any]]:
        """Every agent with any figure in [lo, hi), by agent id (SPEC §5 attribution)."""
        figures: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        rows = self.store.query(
            _CALLS_SQL.format(group="agent_id", where="AND outcome = 1"), (lo, hi)
        )
        for agent, _, answered, within, _, _, dropped, handled, wait_us, handle_us in rows:
            if agent is None:
                continue
            entry = figures[agent]
            entry["answered"] += int(answered or 0)
            entry["answered_within_threshold"] += int(within or 0)
            entry["dropped"] += int(dropped or 0)
            entry["handled"] += int(handled or 0)
            entry["wait_us"] += int(wait_us or 0)
            entry["handle_us"] += int(handle_us or 0)
        for agent, count, accurate in self.store.query(
            "SELECT agent_id, COUNT(*), SUM(accurate) FROM reviews WHERE ts >= ? AND ts < ? "
            "GROUP BY agent_id",
            (lo, hi),
        ):
            figures[agent]["qa_reviews"] += int(count)
            figures[agent]["qa_accurate"] += int(accurate or 0)
        for agent, count, happy, score_sum in self.store.query(
            "SELECT COALESCE(s.agent_id, c.agent_id), COUNT(*), "
            "SUM(CASE WHEN s.score >= ? THEN 1 ELSE 0 END), SUM(s.score) FROM surveys s "
            "LEFT JOIN calls c ON c.call_id = s.call_id WHERE s.ts >= ? AND s.ts < ? "
            "GROUP BY COALESCE(s.agent_id, c.agent_id)",
            (self.settings.thresholds.satisfied_score, lo, hi),
        ):
            if agent is None:
                continue
            figures[agent]["surveys"] += int(count)
            figures[agent]["satisfied"] += int(happy or 0)
            figures[agent]["score_sum"] += int(score_sum or 0)
        return [_agent_entry(agent, figures[agent]) for agent in sorted(figures)]

    def offered(self, lo: int, hi: int) -> int:
        """Calls that reached the hotline in [lo, hi), by ``call.offered`` time."""
        rows = self.store.query(
            "SELECT COUNT(*) FROM calls WHERE offered_at >= ? AND offered_at < ?", (lo, hi)
        )
        return int(rows[0][0])

    def as_of(self) -> str | None:
        """The watermark as a local RFC 3339 time, or None for an empty store."""
        watermark = self.store.watermark()
        if watermark is None:
            return None
        moment = datetime.fromtimestamp(watermark // US, tz=self.zone) + timedelta(
            microseconds=watermark % US
        )
        return moment.isoformat()

    def export(self, month: str) -> dict[str, Any]:
        """The month's figures with their daily KPIs and ``revision``: what every format shows."""
        return with_revision(self.month(month, daily=True))

    def month(self, month: str, *, daily: bool = False) -> dict[str, Any]:
        """The whole monthly report of SPEC §5 for ``month`` (YYYY-MM)."""
        lo, hi = month_bounds(month, self.zone)
        targets = self.settings.targets
        kinds: dict[str, Tallies] = {}
        overall, queues = self.scopes(lo, hi, kinds)
        overall_volumes = overall.volumes()
        overall_volumes["offered"] = self.offered(lo, hi)
        report: dict[str, Any] = {
            "month": month,
            "timezone": self.settings.timezone,
            "as_of": self.as_of(),
            "thresholds": self.settings.thresholds.model_dump(),
            "overall": overall.kpis(targets),
            "queues": {name: tally.kpis(targets) for name, tally in queues.items()},
            "agents": self.agents(lo, hi),
            "ticket_kinds": {
                kind: kpi(tally.tickets_on_time, tally.tickets_settled, targets.timeliness)
                for kind, tally in sorted(kinds.items())
            },
            "volumes": {
                "overall": overall_volumes,
                "queues": {name: tally.volumes() for name, tally in queues.items()},
            },
        }
        if daily:
            report["daily"] = {
                day: self.scopes(start, end)[0].kpis(targets)
                for day, start, end in day_bounds(month, self.zone)
            }
        return report


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


def _agent_entry(agent: str, f: Mapping[str, float]) -> dict[str, Any]:
    def ratio(numerator: float, denominator: float) -> float | None:
        return numerator / denominator if denominator else None

    answered = int(f.get("answered", 0))
    handled = int(f.get("handled", 0))
    qa_reviews = int(f.get("qa_reviews", 0))
    surveys = int(f.get("surveys", 0))
    return {
        "agent_id": agent,
        "answered": answered,
        "answered_within_threshold": int(f.get("answered_within_threshold", 0)),
        "dropped": int(f.get("dropped", 0)),
        "handled": handled,
        "handle_seconds": f.get("handle_us", 0) / US,
        "wait_seconds": f.get("wait_us", 0) / US,
        "qa_reviews": qa_reviews,
        "qa_accurate": int(f.get("qa_accurate", 0)),
        "surveys": surveys,
        "satisfied": int(f.get("satisfied", 0)),
        "score_sum": int(f.get("score_sum", 0)),
        "drop_rate": ratio(f.get("dropped", 0), answered),
        "average_speed_of_answer": ratio(f.get("wait_us", 0) / US, answered),
        "average_handle_time": ratio(f.get("handle_us", 0) / US, handled),
        "answer_accuracy": ratio(f.get("qa_accurate", 0), qa_reviews),
        "satisfaction_rate": ratio(f.get("satisfied", 0), surveys),
        "satisfaction_mean": ratio(f.get("score_sum", 0), surveys),
    }


# Per-agent KPIs in the CSV: key -> (numerator field, denominator field) of the JSON entry.
_AGENT_CSV = {
    "answer_accuracy": ("qa_accurate", "qa_reviews"),
    "average_handle_time": ("handle_seconds", "handled"),
    "satisfaction_mean": ("score_sum", "surveys"),
    "drop_rate": ("dropped", "answered"),
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
    stamp = [report["as_of"] or "", report.get("revision", "")]

    def rows(scope: str, name: str, kpis: Mapping[str, Mapping[str, Any]]) -> None:
        for key, entry in kpis.items():
            writer.writerow(
                [
                    scope,
                    csv_text(name),
                    key,
                    entry["numerator"],
                    entry["denominator"],
                    "" if entry["value"] is None else entry["value"],
                    entry.get("target", ""),
                    "" if entry.get("met") is None else entry["met"],
                    *stamp,
                ]
            )

    rows("overall", "", report["overall"])
    for queue, kpis in report["queues"].items():
        rows("queue", queue, kpis)
    for kind, entry in report["ticket_kinds"].items():
        rows("ticket_kind", kind, {"timeliness": entry})
    for agent in report["agents"]:
        for key, (numerator, denominator) in _AGENT_CSV.items():
            value = agent[key]
            writer.writerow(
                [
                    "agent",
                    csv_text(agent["agent_id"]),
                    key,
                    agent[numerator],
                    agent[denominator],
                    "" if value is None else value,
                    "",
                    "",
                    *stamp,
                ]
            )
    return out.getvalue()


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


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """``hotline-kpi export``: the monthly report in the requested format."""
    parse_month(args.month)
    if args.format in ("xlsx", "pdf") and args.output == "-" and sys.stdout.isatty():
        raise UsageError(f"--format {args.format} is binary: give --output FILE")
    store = open_existing_store(settings.store)
    try:
        report = Report(store, settings)
        if args.format == "csv":
            data: str | bytes = to_csv(report.export(args.month))
        else:
            # The month with its daily figures and the report extras; xlsx/html/pdf from it.
            from hotline_kpi.reports import build_report, export_document

            if args.format == "json":
                full = build_report(report, args.month)
                data = json.dumps(full, ensure_ascii=False, indent=2) + "\n"
            else:
                data = export_document(report, args.month, args.format, args.lang)
    finally:
        store.close()
    write_output(data, args.output)
    return 0
