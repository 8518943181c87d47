"""``hotline-kpi staffing``: how many agents each queue needs, per interval, from a month's calls.

Reads the month's interval sums (:meth:`StoreReader.slot_sums`: from the interval rollups when
they were built for this configuration, else from the facts) and its agent state changes
(:meth:`SqlStore.state_changes`, v2 events), hands them to the Erlang A analysis of
``metrics/staffing.py`` and prints the advice (or, with ``--backtest``, how well the model
reproduced what happened with the agents observed: staffed agents when the month has agent
states, else the agents seen answering). The monthly report draws its
shortfall heat map from the same sums and settings (``reports/data.py``).

``--format csv|json`` print the analysis' machine rows unchanged. The default table is for a
supervisor (issue 16): per queue a day profile (interval in local time, calls per interval,
handle time in m:ss, agents needed for each target, agents on duty, the shortfall marked ▲) that
fits an 80-column terminal; ``--wide`` adds every measured column and widens the console to fit
rather than cut a header or value.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Iterator, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hotline_kpi.config import Settings
from hotline_kpi.metrics.months import month_bounds, month_period
from hotline_kpi.metrics.records import QueuedCall, SlotSums
from hotline_kpi.metrics.rolled import reader_for
from hotline_kpi.metrics.staffing import (
    AgentStates,
    BacktestInterval,
    BacktestSummary,
    SlotRow,
    StaffingReport,
    StaffingSettings,
    View,
    analyse_staffing,
    staffing_settings,
)
from hotline_kpi.metrics.store import open_existing_store

__all__ = [
    "month_calls",
    "month_facts",
    "month_period",
    "month_states",
    "month_sums",
    "print_staffing",
    "run_staffing",
    "staffing_settings",
    "staffing_tables",
]

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NONE = "—"
_SHORT = "▲"
"""Marks an interval short of agents, so that the shortfall reads without colour too."""


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


def month_sums(location: str, settings: Settings, month: str) -> SlotSums:
    """The staffing sums of ``month`` (local time) of every queue, in the configured zone and
    interval, from the store at ``location``: read from its rollups when they fit."""
    lo, hi = month_bounds(month, settings.zone)
    store = open_existing_store(location)
    try:
        reader = reader_for(store, settings)
        return reader.slot_sums(lo, hi, settings.timezone, settings.interval_minutes)
    finally:
        store.close()


def month_states(location: str, settings: Settings, month: str) -> AgentStates:
    """The agent state changes of ``month`` (with the changes that decide the state at its
    start) and the store's watermark ("now"), from the store at ``location``."""
    first, last = month_period(month)
    store = open_existing_store(location)
    try:
        return AgentStates.of_store(reader_for(store, settings), first, last, settings)
    finally:
        store.close()


def run_staffing(settings: Settings, args: argparse.Namespace) -> int:
    """Print the staffing advice or the backtest for a month."""
    period = month_period(args.month)
    analysis_settings = staffing_settings(settings)
    states = month_states(settings.store, settings, args.month)
    # Every queue's sums (staffed time is shared by answered legs in all of them); shows one.
    sums = month_sums(settings.store, settings, args.month)
    report = analyse_staffing(
        sums, analysis_settings, period=period, states=states, queue=args.queue
    )
    if report.empty:
        what = f"queue {args.queue}" if args.queue else "any queue"
        print(f"no calls for {what} in {args.month}: {report.message}")
        return 0
    view: View = "backtest" if args.backtest else args.view
    rows = report.to_rows(view)
    if not rows and args.format != "json":
        print(f"nothing to show in the {view} view of {args.month}: {_why_empty(view, report)}")
        return 0
    if args.format == "table":
        print_staffing(
            Console(),
            report,
            view,
            analysis_settings,
            month=args.month,
            wide=getattr(args, "wide", False),
        )
        return 0
    if args.format == "json":
        print(
            json.dumps(
                {"month": args.month, "view": view, "rows": rows}, ensure_ascii=False, indent=1
            )
        )
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        print(out.getvalue(), end="")
    return 0


def _why_empty(view: View, report: StaffingReport) -> str:
    """Why a month with calls has no row in ``view``, in words a user can act on."""
    if view == "hour_weekday":
        return (
            f"the hour x weekday view needs an interval_minutes that divides an hour, "
            f"got {report.interval_minutes}: use --view intervals"
        )
    return "no interval had both a handle time and a patience estimate to replay"


# --------------------------------------------------------------------------------------------
# The table for people
# --------------------------------------------------------------------------------------------


def print_staffing(
    console: Console,
    report: StaffingReport,
    view: View,
    settings: StaffingSettings,
    *,
    month: str,
    wide: bool = False,
) -> None:
    """Print the supervisor's tables of ``view`` on ``console``, one per queue (or one backtest).

    Without ``wide`` the tables are laid out for 80 columns. With it every column is shown, and a
    table wider than the console is printed at its own width rather than have rich cut its cells
    (lines then wrap in the terminal, or scroll in ``less -S``).
    """
    tables = staffing_tables(report, view, settings, month=month, wide=wide)
    unbounded = console.options.update_width(10_000)
    needed = max(console.measure(table, options=unbounded).maximum for table in tables)
    width = console.width
    if wide and needed > width:
        console.width = needed  # rich never prints wider than its console
    try:
        for table in tables:
            console.print(table)
            console.print()
        if report.unattributed:
            agents = len({item.agent_id for item in report.unattributed})
            console.print(
                f"Not in any queue: {report.unattributed_seconds / 3600:,.1f} staffed hours of "
                f"{agents} agent(s) on {len(report.unattributed)} agent-day(s) without an "
                "answered call (no queue to share them with)."
            )
    finally:
        console.width = width


def staffing_tables(
    report: StaffingReport,
    view: View,
    settings: StaffingSettings,
    *,
    month: str,
    wide: bool = False,
) -> list[Table]:
    """The tables of ``view``: a day profile per queue, or the backtest of every queue."""
    if view in ("backtest", "backtest_intervals"):
        return [_backtest_table(report, month, wide=wide)]
    rows = report.hour_weekday if view == "hour_weekday" else report.intervals
    queues = sorted({row.queue for row in rows})
    return [
        _profile_table(
            queue, [row for row in rows if row.queue == queue], report, settings, month, wide
        )
        for queue in queues
    ]


def _profile_table(
    queue: str,
    rows: Sequence[SlotRow],
    report: StaffingReport,
    settings: StaffingSettings,
    month: str,
    wide: bool,
) -> Table:
    days = rows[0].days if rows and rows[0].weekday is None else None
    per = f"{rows[0].minutes}-minute interval" if rows else "interval"
    over = f"mean of {days} days" if days is not None else "mean of that weekday's days"
    mcr = _percent_label(settings.target_manual_connection_rate)
    sl = f"{_percent_label(settings.target_service_level)}/{settings.service_level_seconds:g}s"
    short = [row for row in rows if _is_short(row.shortfall)]
    worst = max(short, key=lambda row: row.shortfall or 0.0, default=None)
    summary = (
        "no interval short of agents"
        if worst is None
        else f"short in {len(short)} of {len(rows)} intervals; worst {_slot(worst)} "
        f"({_signed(worst.shortfall)})"
    )
    table = _table(
        f"[bold]{queue}[/] · {month} · {report.timezone} · {summary}",
        f"Calls: calls queued per {per}, {over}. Needed: agents for the manual connection "
        f"rate target ({mcr}) and the service level target ({sl}: answered within "
        f"{settings.service_level_seconds:g} s), Erlang A. On duty: {_on_duty(report)}. "
        f"{_SHORT} shortfall: agents missing for the stricter target; negative: spare.",
    )
    table.add_column("Interval", no_wrap=True)
    if wide:
        _right(table, "Days")
        _right(table, "Calls\nin all")
    _right(table, "Calls")
    if wide:
        _right(table, "Calls\nan hour")
    _right(table, "Handle\ntime")
    if wide:
        _right(table, "Patience")
        _right(table, "Abandons")
        _right(table, "Load\n(Erlang)")
    _right(table, f"Needed\nMCR {mcr}")
    _right(table, f"Needed\nSL {sl}")
    if wide:
        _right(table, "Erlang C\nSL")
    _right(table, "On\nduty")
    if wide:
        _right(table, "Busy\nagents")
    _right(table, "Shortfall")
    for row in rows:
        cells: list[str | Text] = [_slot(row)]
        if wide:
            cells += [str(row.days), f"{row.arrivals:,}"]
        cells.append(_calls(row.arrivals / row.days if row.days else 0.0))
        if wide:
            cells.append(_calls(row.arrival_rate_per_hour))
        cells.append(_mss(row.mean_handle_seconds))
        if wide:
            cells += [
                _mss(row.mean_patience_seconds),
                str(row.abandons),
                _number(row.offered_load_erlangs, 2),
            ]
        cells += [_count(row.agents_needed_manual_connection_rate)]
        cells += [_count(row.agents_needed_service_level)]
        if wide:
            cells.append(_count(row.agents_needed_service_level_erlang_c))
        cells.append(_number(row.agents_observed, 1))
        if wide:
            cells.append(_number(row.agents_busy, 1))
        cells.append(_shortfall(row.shortfall))
        table.add_row(*cells)
    return table


def _on_duty(report: StaffingReport) -> str:
    """What the "on duty" figure counts, as the caption says it."""
    if report.agents_source == "states":
        return (
            "agents staffed (ready, busy or wrap-up), each agent's time shared among the queues "
            "it answered that day by its answered calls"
        )
    return "agents seen answering (a lower bound)"


def _backtest_table(report: StaffingReport, month: str, *, wide: bool) -> Table:
    states = report.agents_source == "states"
    table = _table(
        f"[bold]Backtest[/] · {month} · {report.timezone}",
        "Predicted by Erlang A with the "
        + ("agents staffed" if states else "agents seen answering")
        + " in each interval, against what "
        "the calls of the interval did; predicted and observed: mean over the intervals of "
        "the queue. Error: mean absolute "
        "error per interval, in percentage points; bias: mean of predicted − observed "
        "(+ on abandons: the model is pessimistic)."
        + (" Answering count: the error with the agents seen answering." if wide and states else "")
        + (" Busy count: the error with ⌈busy time ÷ interval⌉ agents." if wide else ""),
    )
    table.add_column("Queue", no_wrap=True)
    if wide:
        _right(table, "Intervals")
    _right(table, "Calls")
    table.add_column("Measure", no_wrap=True)
    _right(table, "Predicted")
    _right(table, "Observed")
    _right(table, "Error\n(pts)")
    _right(table, "Bias\n(pts)")
    if wide and states:
        _right(table, "Error, answering\ncount (pts)")
    if wide:
        _right(table, "Error, busy\ncount (pts)")
    for summary in report.backtest:
        mine = [row for row in report.backtest_intervals if row.queue == summary.queue]
        for first, measure in enumerate(_measures(summary, mine)):
            name, predicted, observed, error, bias, error_answered, error_busy = measure
            cells = [summary.queue if not first else ""]
            if wide:
                cells.append(f"{summary.intervals:,}" if not first else "")
            cells += [f"{summary.calls:,}" if not first else "", name]
            cells += [f"{predicted:.1%}", f"{observed:.1%}", f"{error * 100:.1f}"]
            cells.append(f"{bias * 100:+.1f}".replace("-", "−"))
            if wide and states:
                cells.append(f"{error_answered * 100:.1f}")
            if wide:
                cells.append(f"{error_busy * 100:.1f}")
            table.add_row(*cells, end_section=bool(first))
    return table


def _table(title: str, caption: str) -> Table:
    """An empty table in the look every staffing table shares: a rule under the header only,
    the caption flush left."""
    return Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        caption_justify="left",
        pad_edge=False,
    )


def _right(table: Table, header: str) -> None:
    """Add a column of figures: right-aligned, never wrapped."""
    table.add_column(header, justify="right", no_wrap=True)


Measure = tuple[str, float, float, float, float, float, float]


def _measures(summary: BacktestSummary, rows: Sequence[BacktestInterval]) -> Iterator[Measure]:
    """Abandon rate and service level: mean predicted, mean observed, MAE, bias, MAE with the
    agents answering, MAE with the busy count."""
    count = len(rows) or 1
    yield (
        "abandon rate",
        sum(row.predicted_abandon_rate for row in rows) / count,
        sum(row.actual_abandon_rate for row in rows) / count,
        summary.mae_abandon_rate,
        summary.bias_abandon_rate,
        summary.mae_abandon_rate_answered,
        summary.mae_abandon_rate_busy,
    )
    yield (
        "service level",
        sum(row.predicted_service_level for row in rows) / count,
        sum(row.actual_service_level for row in rows) / count,
        summary.mae_service_level,
        summary.bias_service_level,
        summary.mae_service_level_answered,
        summary.mae_service_level_busy,
    )


def _slot(row: SlotRow) -> str:
    """``08:00–08:15`` for an interval of day, ``Mon 08:00–09:00`` for weekday × hour."""
    start = int(row.start[:2]) * 60 + int(row.start[3:])
    end = (start + row.minutes) % 1440
    label = f"{row.start}–{end // 60:02d}:{end % 60:02d}"
    return label if row.weekday is None else f"{_WEEKDAYS[row.weekday - 1]} {label}"


def _mss(seconds: float | None) -> str:
    if seconds is None:
        return _NONE
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _calls(value: float) -> str:
    if value == 0:
        return "0"
    if value < 0.05:
        return "<0.1"
    return f"{value:,.1f}"


def _count(value: int | None) -> str:
    return _NONE if value is None else str(value)


def _number(value: float | None, places: int) -> str:
    return _NONE if value is None else f"{value:,.{places}f}"


def _percent_label(share: float) -> str:
    return f"{share * 100:g}%"


def _is_short(shortfall: float | None) -> bool:
    return shortfall is not None and round(shortfall, 1) > 0


def _signed(shortfall: float | None) -> str:
    if shortfall is None:
        return _NONE
    shown = round(shortfall, 1) + 0.0  # no "-0.0"
    return f"{shown:+.1f}".replace("-", "−") if shown else "0.0"


def _shortfall(shortfall: float | None) -> Text:
    """The shortfall, signed; a short interval carries ▲ (and red), a spare one is green."""
    text = _signed(shortfall)
    if _is_short(shortfall):
        return Text(f"{_SHORT} {text}", style="bold red")
    if shortfall is not None and round(shortfall, 1) < 0:
        return Text(text, style="green")
    return Text(text)
