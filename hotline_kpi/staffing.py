"""``hotline-kpi staffing``: how many agents each queue needs, per interval, from a month's calls.

Reads the month's queued calls from the store (:meth:`SqlStore.queued_calls`), hands them to the
Erlang A analysis of ``metrics/staffing.py`` and prints the advice (or, with ``--backtest``, how
well the model reproduced what happened with the agents observed). The monthly report draws its
shortfall heat map from the same calls and settings (``reports/data.py``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json

from rich.console import Console
from rich.table import Table

from hotline_kpi.config import Settings
from hotline_kpi.metrics.months import month_bounds, month_period
from hotline_kpi.metrics.records import QueuedCall
from hotline_kpi.metrics.staffing import View, analyse_staffing, staffing_settings
from hotline_kpi.metrics.store import open_existing_store

__all__ = ["month_calls", "month_facts", "month_period", "run_staffing", "staffing_settings"]


def month_calls(
    location: str, settings: Settings, month: str, queue: str | None
) -> list[QueuedCall]:
    """The queued calls of ``month`` (local time) in the store at ``location``."""
    lo, hi = month_bounds(month, settings.zone)
    store = open_existing_store(location)
    try:
        return store.queued_calls(lo, hi, queue)
    finally:
        store.close()


month_facts = month_calls
"""Compatibility: the name the tests of the report used before issue 13."""


def run_staffing(settings: Settings, args: argparse.Namespace) -> int:
    """Print the staffing advice or the backtest for a month."""
    period = month_period(args.month)
    analysis_settings = staffing_settings(settings)
    calls = month_calls(settings.store, settings, args.month, args.queue)
    report = analyse_staffing(calls, analysis_settings, period=period)
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
