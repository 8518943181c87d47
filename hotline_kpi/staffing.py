"""``hotline-kpi staffing``: how many agents each queue needs, per interval, from a month's calls.

Reads the month's call facts from the store, hands them to the Erlang A analysis of
``metrics/staffing.py`` and prints the advice (or, with ``--backtest``, how well the model
reproduced what happened with the agents observed). The monthly report draws its shortfall heat
map from the same facts and settings (:func:`call_facts`, :func:`staffing_settings`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import date, timedelta

from rich.console import Console
from rich.table import Table

from hotline_kpi.config import Settings
from hotline_kpi.errors import UsageError
from hotline_kpi.metrics.export import month_bounds, parse_month
from hotline_kpi.metrics.fold import ABANDONED, ANSWERED
from hotline_kpi.metrics.staffing import CallFact, StaffingSettings, View, analyse_staffing
from hotline_kpi.metrics.store import Store, open_existing_store

_OUTCOMES = {ANSWERED: "answered", ABANDONED: "abandoned"}


def call_facts(store: Store, lo: int, hi: int, queue: str | None = None) -> list[CallFact]:
    """The calls queued in ``[lo, hi)`` (epoch µs) as the staffing analysis takes them."""
    sql = (
        "SELECT queue, queued_at, outcome, outcome_at, agent_id, ended_at FROM calls "
        "WHERE queued_at >= ? AND queued_at < ?"
    )
    params: list[object] = [lo, hi]
    if queue is not None:
        sql += " AND queue = ?"
        params.append(queue)
    return [
        (q, queued, _OUTCOMES.get(outcome), outcome_at, agent, ended)
        for q, queued, outcome, outcome_at, agent, ended in store.query(sql, params)
    ]


def month_facts(location: str, settings: Settings, month: str, queue: str | None) -> list[CallFact]:
    """The queued calls of ``month`` (local time) in the store at ``location``."""
    lo, hi = month_bounds(month, settings.zone)
    store = open_existing_store(location)
    try:
        return call_facts(store, lo, hi, queue)
    finally:
        store.close()


def month_period(month: str) -> tuple[date, date]:
    """The first and last local date of ``YYYY-MM``."""
    year, number = parse_month(month)
    first = date(year, number, 1)
    return first, date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)


def staffing_settings(settings: Settings) -> StaffingSettings:
    """The analysis settings from the configuration: interval, zone, thresholds and targets."""
    try:
        return StaffingSettings(
            interval_minutes=settings.interval_minutes,
            timezone=settings.zone,
            short_abandon_seconds=settings.thresholds.short_abandon_seconds,
            service_level_seconds=settings.thresholds.service_level_seconds,
            target_manual_connection_rate=settings.targets.manual_connection_rate,
            target_service_level=settings.targets.service_level,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run_staffing(settings: Settings, args: argparse.Namespace) -> int:
    """Print the staffing advice or the backtest for a month."""
    period = month_period(args.month)
    analysis_settings = staffing_settings(settings)
    facts = month_facts(settings.store, settings, args.month, args.queue)
    report = analyse_staffing(facts, analysis_settings, period=period)
    if report.empty:
        what = f"queue {args.queue}" if args.queue else "any queue"
        print(f"no calls for {what} in {args.month}: {report.message}")
        return 0
    view: View = "backtest" if args.backtest else args.view
    rows = report.to_rows(view)
    if args.format == "json":
        print(
            json.dumps(
                {"month": args.month, "view": view, "rows": rows}, ensure_ascii=False, indent=1
            )
        )
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        print(out.getvalue(), end="")
    else:
        Console().print(_table(rows, f"{args.month} {view}"))
    return 0


def _table(rows: list[dict[str, object]], title: str) -> Table:
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            *(
                "—" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)
                for v in row.values()
            )
        )
    return table
