"""Staffing analysis: measured load per queue and interval, Erlang A advice, and a backtest.

A pure core (issue 10): the store's queued calls (:class:`QueuedCall`, with the facts the fold
computed) in, frozen dataclasses out; no store, no clock, no configuration reading. The caller
(the ``staffing`` command, the monthly report) reads the calls of a month from the store, passes
the configured thresholds, targets, interval and time zone (:func:`staffing_settings`), and
prints or exports :meth:`StaffingReport.to_rows` / :meth:`StaffingReport.to_json`.

What is measured, per queue and local interval (``interval_minutes``, default 15):

- calls queued (SPEC §3, attributed to ``queued_at``) and so the arrival rate ``λ``; which of
  them were short abandons or answered within the threshold is the fold's stored fact, never
  re-derived here;
- mean handle time (``ended − answered``) and so ``μ = 1/AHT``;
- caller patience, the exponential maximum-likelihood estimate with censoring:
  ``θ̂ = abandons / Σ waits``, where the waits of abandoned calls are observed patience times and
  those of answered calls are censored (the caller was still patient when answered);
- agents observed: distinct agents who answered a call in the interval, and their summed busy
  time (``answered … ended`` overlapping the interval) ÷ interval length. Both are lower bounds of
  the agents logged in: an idle agent leaves no trace in call facts.

Per queue × interval of day (and hour × weekday) the days of the period are pooled: the arrival
rate is the mean over the days of the period (days without a call count as zero), the agents
observed are the mean over those days. Handle time and patience of a slot are used by the model
when the slot has at least :data:`MIN_SAMPLE` handled calls (resp. abandons); otherwise the
queue's pooled figure over the whole period is used, so that a quiet slot does not get a wild
estimate.

Agents needed come from :mod:`hotline_kpi.metrics.erlang` (Erlang A, with the SPEC §3 forms of
the manual connection rate and service level, see ``docs/staffing.md``), with the Erlang C figure
for the service level beside it.

The backtest replays each real interval with its own arrival rate and the agents observed in it,
predicts the SPEC §3 abandon rate and service level, and compares them with what the calls of
that interval did. Parameters are estimated on the same period (in-sample); small intervals are
noisy, so part of the error is sampling noise, not model error.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from hotline_kpi.config import Settings
from hotline_kpi.errors import UsageError
from hotline_kpi.metrics.erlang import Kpi as StaffedKpi
from hotline_kpi.metrics.erlang import (
    agents_needed,
    erlang_a,
    erlang_c_agents_needed,
    model_abandon_rate,
    model_service_level,
)
from hotline_kpi.metrics.records import QueuedCall

__all__ = [
    "MIN_SAMPLE",
    "BacktestInterval",
    "BacktestSummary",
    "SlotRow",
    "StaffingReport",
    "StaffingSettings",
    "analyse_staffing",
    "staffing_settings",
]

MIN_SAMPLE = 10
"""Handled calls (for the handle time) or abandons (for patience) a slot needs for its own
estimate to be used by the model; below it the queue's pooled estimate is used."""

_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

View = Literal["intervals", "hour_weekday", "backtest", "backtest_intervals"]


@dataclass(frozen=True, slots=True)
class StaffingSettings:
    """Thresholds (SPEC §3), targets (SPEC §6), interval and time zone of the analysis."""

    interval_minutes: int = 15
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    short_abandon_seconds: float = 5.0
    service_level_seconds: float = 20.0
    target_manual_connection_rate: float = 0.90
    target_service_level: float = 0.80

    def __post_init__(self) -> None:
        """Reject values the analysis cannot use, naming the offending one."""
        if self.interval_minutes <= 0 or 1440 % self.interval_minutes:
            raise ValueError(
                f"interval_minutes must divide a day (1440), got {self.interval_minutes}"
            )
        for name in ("short_abandon_seconds", "service_level_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("target_manual_connection_rate", "target_service_level"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")


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


@dataclass(frozen=True, slots=True)
class SlotRow:
    """Measured load and advice for one queue and one slot (interval of day, or weekday × hour).

    ``weekday`` is ISO (1 = Monday) in the hour × weekday view and ``None`` in the interval view.
    Rates are per hour, times in seconds; ``None`` means "cannot be estimated from these calls".
    ``shortfall`` = agents needed for the stricter target − agents observed (negative: surplus).
    """

    queue: str
    weekday: int | None
    start: str
    minutes: int
    days: int
    arrivals: int
    arrival_rate_per_hour: float
    mean_handle_seconds: float | None
    mean_patience_seconds: float | None
    abandons: int
    offered_load_erlangs: float | None
    agents_observed: float
    agents_busy: float
    agents_needed_manual_connection_rate: int | None
    agents_needed_service_level: int | None
    agents_needed_service_level_erlang_c: int | None
    shortfall: float | None


@dataclass(frozen=True, slots=True)
class BacktestInterval:
    """One real interval: what the model predicted with the agents observed, and what happened.

    ``*_busy`` predictions use ``⌈summed busy time ÷ interval⌉`` agents instead of the distinct
    agents who answered.
    """

    queue: str
    start: str  # local ISO date-time of the interval start
    arrivals: int
    agents_observed: int
    agents_busy: float
    predicted_abandon_rate: float
    actual_abandon_rate: float
    predicted_service_level: float
    actual_service_level: float
    predicted_abandon_rate_busy: float
    predicted_service_level_busy: float


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    """Mean absolute error (and mean signed error, predicted − actual) per queue.

    ``*_busy`` use ``⌈summed busy time ÷ interval⌉`` as the agent count instead of the distinct
    agents answering; comparing both tells which observation of staffing fits better.
    """

    queue: str
    intervals: int
    calls: int
    mae_abandon_rate: float
    mae_service_level: float
    bias_abandon_rate: float
    bias_service_level: float
    mae_abandon_rate_busy: float
    mae_service_level_busy: float


@dataclass(frozen=True, slots=True)
class StaffingReport:
    """The analysis of one period; empty (with :attr:`message`) when there was nothing to see."""

    timezone: str
    interval_minutes: int
    period: tuple[date, date] | None
    intervals: tuple[SlotRow, ...]
    hour_weekday: tuple[SlotRow, ...]
    backtest: tuple[BacktestSummary, ...]
    backtest_intervals: tuple[BacktestInterval, ...]

    @property
    def empty(self) -> bool:
        """True when no queued call fell in the period."""
        return not self.intervals

    @property
    def message(self) -> str | None:
        """A one-line explanation for an empty report, else ``None``."""
        if not self.empty:
            return None
        if self.period is None:
            return "no queued calls: nothing to analyse"
        return f"no queued calls between {self.period[0]} and {self.period[1]}: nothing to analyse"

    def to_rows(self, view: View = "intervals") -> list[dict[str, object]]:
        """Flat rows (one dict per row, JSON-friendly values) for a table, CSV or spreadsheet."""
        rows: tuple[SlotRow, ...] | tuple[BacktestSummary, ...] | tuple[BacktestInterval, ...]
        if view == "intervals":
            rows = self.intervals
        elif view == "hour_weekday":
            rows = self.hour_weekday
        elif view == "backtest":
            rows = self.backtest
        elif view == "backtest_intervals":
            rows = self.backtest_intervals
        else:
            raise ValueError(f"unknown view {view!r}: use intervals, hour_weekday or backtest")
        return [asdict(row) for row in rows]

    def to_json(self) -> dict[str, object]:
        """The whole report as JSON-friendly data (dates as ISO strings)."""
        return {
            "timezone": self.timezone,
            "interval_minutes": self.interval_minutes,
            "period": None
            if self.period is None
            else [self.period[0].isoformat(), self.period[1].isoformat()],
            "empty": self.empty,
            "message": self.message,
            "intervals": self.to_rows("intervals"),
            "hour_weekday": self.to_rows("hour_weekday"),
            "backtest": self.to_rows("backtest"),
        }


# --------------------------------------------------------------------------------------------
# Accumulation
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _SlotLoad:
    """What the calls queued in one interval did (SPEC §3 attribution), and their agents."""

    arrivals: int = 0
    answered: int = 0
    abandoned: int = 0
    short: int = 0
    within: int = 0
    wait_seconds: float = 0.0
    handle_seconds: float = 0.0
    handled: int = 0
    agents: set[str] = field(default_factory=set)
    busy_seconds: float = 0.0

    def add(self, other: _SlotLoad) -> None:
        """Pool another tally into this one (agents are pooled by the caller as needed)."""
        self.arrivals += other.arrivals
        self.answered += other.answered
        self.abandoned += other.abandoned
        self.short += other.short
        self.within += other.within
        self.wait_seconds += other.wait_seconds
        self.handle_seconds += other.handle_seconds
        self.handled += other.handled
        self.busy_seconds += other.busy_seconds


Key = tuple[str, date, int]  # queue, local date, slot index within the day


class _Clock:
    """Local wall-clock slots of epoch microseconds in one time zone.

    :meth:`slot` runs once per call, so the zone's offset is looked up once per quarter hour of
    UTC (offsets change only on such boundaries) and the rest is integer arithmetic.
    """

    _QUARTER_US = 900 * _US

    def __init__(self, tz: ZoneInfo, slot_us: int) -> None:
        self.tz = tz
        self.slot_us = slot_us
        self._offsets: dict[int, int] = {}
        self._days: dict[int, date] = {}

    def local(self, us: int) -> datetime:
        return (_EPOCH + timedelta(microseconds=us)).astimezone(self.tz)

    def slot(self, us: int) -> tuple[date, int, int]:
        """(local date, slot index, epoch µs at which this slot ends)."""
        quarter = us // self._QUARTER_US
        offset = self._offsets.get(quarter)
        if offset is None:
            moment = self.local(quarter * self._QUARTER_US)
            offset = (moment.utcoffset() or timedelta(0)) // timedelta(microseconds=1)
            self._offsets[quarter] = offset
        day_number, into_day = divmod(us + offset, 86_400 * _US)
        day = self._days.get(day_number)
        if day is None:
            day = self._days[day_number] = _EPOCH.date() + timedelta(days=day_number)
        index = into_day // self.slot_us
        end = us + (index + 1) * self.slot_us - into_day
        return day, index, end


def _accumulate(calls: Iterable[QueuedCall], clock: _Clock) -> dict[Key, _SlotLoad]:
    tallies: dict[Key, _SlotLoad] = defaultdict(_SlotLoad)
    for call in calls:
        queue, queued_at, outcome_at = call.queue, call.queued_at, call.outcome_at
        agent_id, ended_at = call.agent_id, call.ended_at
        day, index, _ = clock.slot(queued_at)
        tally = tallies[(queue, day, index)]
        tally.arrivals += 1
        if outcome_at is None or not (call.answered or call.abandoned):
            continue
        wait = max(0, outcome_at - queued_at)
        if call.abandoned:
            tally.abandoned += 1
            tally.short += call.short_abandon
            tally.wait_seconds += wait / _US
            continue
        tally.answered += 1
        tally.within += call.within_threshold
        tally.wait_seconds += wait / _US
        if ended_at is not None and ended_at >= outcome_at:
            tally.handle_seconds += (ended_at - outcome_at) / _US
            tally.handled += 1
        # Agent side: attributed to when the agent worked, not to when the call was queued.
        a_day, a_index, a_end = clock.slot(outcome_at)
        if agent_id is not None:
            tallies[(queue, a_day, a_index)].agents.add(agent_id)
        if ended_at is None:
            continue
        start = outcome_at
        while start < ended_at:
            piece_end = min(ended_at, a_end)
            tallies[(queue, a_day, a_index)].busy_seconds += (piece_end - start) / _US
            start = piece_end
            if start < ended_at:
                a_day, a_index, a_end = clock.slot(start)
    return tallies


# --------------------------------------------------------------------------------------------
# Estimation and advice
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Estimates:
    handle: float | None  # seconds
    patience_rate: float | None  # per second; 0 = no abandons seen


def _estimates(tally: _SlotLoad, pooled: _Estimates | None) -> _Estimates:
    """Slot estimates, falling back to the pooled queue figures when the slot sample is small."""
    handle = tally.handle_seconds / tally.handled if tally.handled else None
    theta: float | None
    if tally.wait_seconds > 0:
        theta = tally.abandoned / tally.wait_seconds
    else:
        theta = 0.0 if tally.abandoned == 0 and tally.answered > 0 else None
    if pooled is None:
        return _Estimates(handle, theta)
    return _Estimates(
        handle if tally.handled >= MIN_SAMPLE else pooled.handle,
        theta if tally.abandoned >= MIN_SAMPLE else pooled.patience_rate,
    )


def _slot_row(
    queue: str,
    weekday: int | None,
    start_minute: int,
    minutes: int,
    days: int,
    tally: _SlotLoad,
    agents_observed: float,
    pooled: _Estimates,
    settings: StaffingSettings,
) -> tuple[SlotRow, _Estimates]:
    own = _estimates(tally, None)
    model = _estimates(tally, pooled)
    seconds = days * minutes * 60
    lam = tally.arrivals / seconds
    load = lam * model.handle if model.handle else None
    need_mcr = need_sl = need_c = None
    if model.handle and model.patience_rate is not None:
        mu = 1.0 / model.handle
        goals: tuple[tuple[StaffedKpi, float], ...] = (
            ("manual_connection_rate", settings.target_manual_connection_rate),
            ("service_level", settings.target_service_level),
        )
        need_mcr, need_sl = (
            agents_needed(
                lam,
                mu,
                model.patience_rate,
                kpi=key,
                target=target,
                short_abandon=settings.short_abandon_seconds,
                service_level_threshold=settings.service_level_seconds,
            )
            for key, target in goals
        )
        need_c = erlang_c_agents_needed(
            lam,
            mu,
            target_service_level=settings.target_service_level,
            service_level_threshold=settings.service_level_seconds,
        )
    shortfall = (
        None
        if need_mcr is None or need_sl is None
        else round(max(need_mcr, need_sl) - agents_observed, 3)
    )
    row = SlotRow(
        queue=queue,
        weekday=weekday,
        start=f"{start_minute // 60:02d}:{start_minute % 60:02d}",
        minutes=minutes,
        days=days,
        arrivals=tally.arrivals,
        arrival_rate_per_hour=round(lam * 3600, 3),
        mean_handle_seconds=None if own.handle is None else round(own.handle, 1),
        mean_patience_seconds=(
            None if not own.patience_rate else round(1.0 / own.patience_rate, 1)
        ),
        abandons=tally.abandoned,
        offered_load_erlangs=None if load is None else round(load, 3),
        agents_observed=round(agents_observed, 3),
        agents_busy=round(tally.busy_seconds / seconds, 3),
        agents_needed_manual_connection_rate=need_mcr,
        agents_needed_service_level=need_sl,
        agents_needed_service_level_erlang_c=need_c,
        shortfall=shortfall,
    )
    return row, model


def _days(period: tuple[date, date]) -> list[date]:
    first, last = period
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def analyse_staffing(
    calls: Iterable[QueuedCall],
    settings: StaffingSettings | None = None,
    *,
    period: tuple[date, date] | None = None,
) -> StaffingReport:
    """Measured load, Erlang A advice and backtest per queue (see the module docstring).

    ``period`` is the inclusive range of local dates analysed (a month for the ``staffing``
    command); calls queued outside it are ignored. Without it, the range spans the local dates of
    the calls. No calls give an empty report whose :attr:`StaffingReport.message` says so.
    """
    settings = settings or StaffingSettings()
    minutes = settings.interval_minutes
    clock = _Clock(settings.timezone, minutes * 60 * _US)
    tallies = _accumulate(calls, clock)
    queued = [key for key, tally in tallies.items() if tally.arrivals]
    if period is None and queued:
        dates = [key[1] for key in queued]
        period = (min(dates), max(dates))
    if period is not None and period[1] < period[0]:
        raise ValueError(f"period ends ({period[1]}) before it starts ({period[0]})")
    in_period = {
        key: tally
        for key, tally in tallies.items()
        if period is not None and period[0] <= key[1] <= period[1]
    }
    if not any(t.arrivals for t in in_period.values()) or period is None:
        return StaffingReport(settings.timezone.key, minutes, period, (), (), (), ())

    days = _days(period)
    queues = sorted({key[0] for key, t in in_period.items() if t.arrivals})
    per_hour = 60 // minutes if minutes <= 60 and 60 % minutes == 0 else None

    interval_rows: list[SlotRow] = []
    hour_rows: list[SlotRow] = []
    backtest_rows: list[BacktestInterval] = []
    summaries: list[BacktestSummary] = []
    slots_per_day = 1440 // minutes
    for queue in queues:
        mine = {key: t for key, t in in_period.items() if key[0] == queue}
        pooled_tally = _SlotLoad()
        for t in mine.values():
            pooled_tally.add(t)
        pooled = _estimates(pooled_tally, None)

        models: dict[int, _Estimates] = {}
        for index in range(slots_per_day):
            slot_tally = _SlotLoad()
            agents = 0
            for day in days:
                found = mine.get((queue, day, index))
                if found is not None:
                    slot_tally.add(found)
                    agents += len(found.agents)
            if not slot_tally.arrivals and not slot_tally.busy_seconds:
                continue
            row, model = _slot_row(
                queue,
                None,
                index * minutes,
                minutes,
                len(days),
                slot_tally,
                agents / len(days),
                pooled,
                settings,
            )
            interval_rows.append(row)
            models[index] = model

        if per_hour is not None:
            hour_rows.extend(_hour_weekday_rows(queue, mine, days, per_hour, pooled, settings))

        bt = _backtest(queue, mine, models, clock, settings)
        backtest_rows.extend(bt)
        if bt:
            summaries.append(_summarise(queue, bt))

    return StaffingReport(
        timezone=settings.timezone.key,
        interval_minutes=minutes,
        period=period,
        intervals=tuple(interval_rows),
        hour_weekday=tuple(hour_rows),
        backtest=tuple(summaries),
        backtest_intervals=tuple(backtest_rows),
    )


def _hour_weekday_rows(
    queue: str,
    mine: dict[Key, _SlotLoad],
    days: list[date],
    per_hour: int,
    pooled: _Estimates,
    settings: StaffingSettings,
) -> list[SlotRow]:
    rows: list[SlotRow] = []
    for weekday in range(1, 8):
        these = [day for day in days if day.isoweekday() == weekday]
        if not these:
            continue
        for hour in range(24):
            tally = _SlotLoad()
            agents = 0
            for day in these:
                names: set[str] = set()
                for index in range(hour * per_hour, (hour + 1) * per_hour):
                    t = mine.get((queue, day, index))
                    if t is not None:
                        tally.add(t)
                        names |= t.agents
                agents += len(names)
            if not tally.arrivals and not tally.busy_seconds:
                continue
            row, _ = _slot_row(
                queue,
                weekday,
                hour * 60,
                60,
                len(these),
                tally,
                agents / len(these),
                pooled,
                settings,
            )
            rows.append(row)
    return rows


def _backtest(
    queue: str,
    mine: dict[Key, _SlotLoad],
    models: dict[int, _Estimates],
    clock: _Clock,
    settings: StaffingSettings,
) -> list[BacktestInterval]:
    rows: list[BacktestInterval] = []
    seconds = settings.interval_minutes * 60
    s, t = settings.short_abandon_seconds, settings.service_level_seconds
    for (_, day, index), tally in sorted(mine.items()):
        counted = tally.arrivals - tally.short
        estimate = models.get(index)
        if counted <= 0 or estimate is None or not estimate.handle:
            continue
        if estimate.patience_rate is None:
            continue
        lam = tally.arrivals / seconds
        mu = 1.0 / estimate.handle
        predictions = []
        busy_agents = math.ceil(tally.busy_seconds / seconds - 1e-9)
        for n in (len(tally.agents), busy_agents):
            model = erlang_a(n, lam, mu, estimate.patience_rate)
            predictions.append((model_abandon_rate(model, s), model_service_level(model, t, s)))
        start = datetime.combine(day, datetime.min.time(), settings.timezone) + timedelta(
            minutes=index * settings.interval_minutes
        )
        rows.append(
            BacktestInterval(
                queue=queue,
                start=start.isoformat(),
                arrivals=tally.arrivals,
                agents_observed=len(tally.agents),
                agents_busy=round(tally.busy_seconds / seconds, 3),
                predicted_abandon_rate=round(predictions[0][0], 4),
                actual_abandon_rate=round((tally.abandoned - tally.short) / counted, 4),
                predicted_service_level=round(predictions[0][1], 4),
                actual_service_level=round(tally.within / counted, 4),
                predicted_abandon_rate_busy=round(predictions[1][0], 4),
                predicted_service_level_busy=round(predictions[1][1], 4),
            )
        )
    return rows


def _summarise(queue: str, rows: list[BacktestInterval]) -> BacktestSummary:
    count = len(rows)
    return BacktestSummary(
        queue=queue,
        intervals=count,
        calls=sum(row.arrivals for row in rows),
        mae_abandon_rate=round(
            sum(abs(r.predicted_abandon_rate - r.actual_abandon_rate) for r in rows) / count, 4
        ),
        mae_service_level=round(
            sum(abs(r.predicted_service_level - r.actual_service_level) for r in rows) / count, 4
        ),
        bias_abandon_rate=round(
            sum(r.predicted_abandon_rate - r.actual_abandon_rate for r in rows) / count, 4
        ),
        bias_service_level=round(
            sum(r.predicted_service_level - r.actual_service_level for r in rows) / count, 4
        ),
        mae_abandon_rate_busy=round(
            sum(abs(r.predicted_abandon_rate_busy - r.actual_abandon_rate) for r in rows) / count,
            4,
        ),
        mae_service_level_busy=round(
            sum(abs(r.predicted_service_level_busy - r.actual_service_level) for r in rows) / count,
            4,
        ),
    )
