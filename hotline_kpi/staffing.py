"""``hotline-kpi staffing``: how many agents each queue needs, per interval, from a month's calls.

Reads the month's call facts from the store, hands them to the Erlang A analysis of
``metrics/staffing.py`` and prints the advice (or, with ``--backtest``, how well the model
reproduced what happened with the agents observed).
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
from hotline_kpi.metrics.export import _open_existing, month_bounds, parse_month
from hotline_kpi.metrics.fold import ABANDONED, ANSWERED
from hotline_kpi.metrics.staffing import CallFact, StaffingSettings, analyse_staffing

_OUTCOMES = {ANSWERED: "answered", ABANDONED: "abandoned"}


def month_facts(location: str, settings: Settings, month: str, queue: str | None) -> list[CallFact]:
    """The queued calls of ``month`` (local time) as the staffing analysis takes them."""
    lo, hi = month_bounds(month, settings.zone)
    store = _open_existing(location)
    try:
        sql = (
            "SELECT queue, queued_at, outcome, outcome_at, agent_id, ended_at FROM calls "
            "WHERE queued_at >= ? AND queued_at < ?"
        )
        params: list[object] = [lo, hi]
        if queue is not None:
            sql += " AND queue = ?"
            params.append(queue)
        rows = store.query(sql, params)
    finally:
        store.close()
    return [
        (q, queued, _OUTCOMES.get(outcome), outcome_at, agent, ended)  # type: ignore[misc]
        for q, queued, outcome, outcome_at, agent, ended in rows
    ]


def run_staffing(settings: Settings, args: argparse.Namespace) -> int:
    """Print the staffing advice or the backtest for a month."""
    year, number = parse_month(args.month)
    first = date(year, number, 1)
    last = date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)
    try:
        analysis_settings = StaffingSettings(
            interval_minutes=settings.interval_minutes,
            timezone=settings.zone,
            short_abandon_seconds=settings.thresholds.short_abandon_seconds,
            service_level_seconds=settings.thresholds.service_level_seconds,
            target_manual_connection_rate=settings.targets.manual_connection_rate,
            target_service_level=settings.targets.service_level,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    facts = month_facts(settings.store, settings, args.month, args.queue)
    report = analyse_staffing(facts, analysis_settings, period=(first, last))
    if report.empty:
        what = f"queue {args.queue}" if args.queue else "any queue"
        print(f"no calls for {what} in {args.month}: {report.message}")
        return 0
    view = "backtest" if args.backtest else args.view
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
