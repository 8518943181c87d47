"""Staffing analysis: measured load per queue and interval, Erlang A advice, and a backtest.

A pure core (issue 10): the store's interval sums (:class:`SlotSums`: per queue and interval,
what the legs queued there did, with the facts the fold computed, and what each agent did there;
issue 17) in, frozen dataclasses out; no store, no clock, no configuration reading. The caller
(the ``staffing`` command, the monthly report) reads the sums of a month from the store
(``StoreReader.slot_sums``: the interval rollups when they fit, so the cost grows with
intervals, not calls), passes the configured thresholds, targets, interval and time zone
(:func:`staffing_settings`), and prints or exports :meth:`StaffingReport.to_rows` /
:meth:`StaffingReport.to_json`. Queued calls in hand (:class:`QueuedCall`) are summed the same
way first (:func:`slot_sums_of_calls`).

What is measured, per queue and local interval (``interval_minutes``, default 15):

- calls queued (SPEC §3, attributed to ``queued_at``) and so the arrival rate ``λ``; which of
  them were short abandons or answered within the threshold is the fold's stored fact, never
  re-derived here;
- mean handle time (``ended − answered``) and so ``μ = 1/AHT``;
- caller patience, the exponential maximum-likelihood estimate with censoring:
  ``θ̂ = abandons / Σ waits``, where the waits of abandoned calls are observed patience times and
  those of answered calls are censored (the caller was still patient when answered);
- agents observed: when the store has agent states for the period (issue 14, v2 events), the
  agents *staffed* (``ready``, ``busy`` or ``wrap_up``, SPEC §3 state time) in the interval. An
  ``agent.state`` names no queue, so an agent's staffed time in an interval is shared among the
  queues it answered that local day, in proportion to its answered legs there
  (:func:`attribute_staffed_time`): staffed agents of a queue and interval = Σ over agents of
  staffed seconds × that agent's share of answered legs in the queue that day ÷ interval seconds.
  An agent staffed on a day it answered no call gives its time to no queue; the report lists
  such time (:attr:`StaffingReport.unattributed`) rather than guess. Without states (v1 events),
  the distinct agents who answered a call in the interval, a lower bound of the agents logged in
  (an idle agent leaves no trace in call facts).
- busy agents: the agents' summed busy time (``answered … ended`` overlapping the interval) ÷
  interval length.

The agents' side (agents answering, busy time, the answered legs that share staffed time) is the
work *done* in the period, whenever its call was queued: an answer just after midnight on the 1st
of a call queued on the 30th counts in the new month (and its busy time in each interval it
overlaps). Before issue 17 it was the work on the calls *queued* in the period; the rollups keep
the agents' work by the interval in which it happened (``Grain.ANSWER``), and so does the read
from the facts. Times are summed as integer microseconds and divided once.

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
that interval did. A fractional staffed count ``n + f`` predicts ``(1 − f)`` × the model with
``n`` agents + ``f`` × the model with ``n + 1`` (an agent staffed for part of the interval). With
states, the errors with the distinct agents answering are kept beside (``*_answered``), so the two
observations of staffing can be compared; without states both are the same. Parameters are
estimated on the same period (in-sample); small intervals are noisy, so part of the error is
sampling noise, not model error.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from hotline_kpi.config import Settings
from hotline_kpi.errors import UsageError
from hotline_kpi.metrics.erlang import (
    ErlangA,
    agents_needed,
    erlang_a,
    erlang_c_agents_needed,
    model_abandon_rate,
    model_service_level,
)
from hotline_kpi.metrics.erlang import Kpi as StaffedKpi
from hotline_kpi.metrics.fold import (
    ABANDONED,
    ABANDONED_FACT,
    ANSWERED,
    ANSWERED_FACT,
    NO_OUTCOME,
    SHORT_ABANDON,
    WITHIN_THRESHOLD,
    CallFact,
    StateChange,
)
from hotline_kpi.metrics.months import period_edges
from hotline_kpi.metrics.records import QueuedCall, SlotSums
from hotline_kpi.metrics.rollups import Buckets, Sums, add_leg, slot_sums_of
from hotline_kpi.metrics.states import STAFFED, state_time

if TYPE_CHECKING:
    from hotline_kpi.metrics.store import StoreReader

__all__ = [
    "MIN_SAMPLE",
    "AgentStates",
    "BacktestInterval",
    "BacktestSummary",
    "SlotRow",
    "StaffedAgents",
    "StaffingReport",
    "StaffingSettings",
    "UnattributedTime",
    "analyse_staffing",
    "answered_legs",
    "attribute_staffed_time",
    "slot_sums_of_calls",
    "staffed_seconds",
    "staffing_settings",
]

MIN_SAMPLE = 10
"""Handled calls (for the handle time) or abandons (for patience) a slot needs for its own
estimate to be used by the model; below it the queue's pooled estimate is used."""

_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

View = Literal["intervals", "hour_weekday", "backtest", "backtest_intervals"]
AgentsSource = Literal["states", "answered"]
"""Where the agents observed come from: the state timeline (staffed agents), or call facts
(distinct agents answering) when the period has no agent states."""


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

    ``agents_observed`` is the count the main prediction uses: agents staffed (fractional) when
    the period has agent states, else the distinct agents who answered (``agents_answered``).
    ``*_answered`` predictions use the distinct agents who answered, ``*_busy`` predictions
    ``⌈summed busy time ÷ interval⌉`` agents.
    """

    queue: str
    start: str  # local ISO date-time of the interval start
    arrivals: int
    agents_observed: float
    agents_answered: int
    agents_busy: float
    predicted_abandon_rate: float
    actual_abandon_rate: float
    predicted_service_level: float
    actual_service_level: float
    predicted_abandon_rate_answered: float
    predicted_service_level_answered: float
    predicted_abandon_rate_busy: float
    predicted_service_level_busy: float


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    """Mean absolute error (and mean signed error, predicted − actual) per queue.

    The main figures use the agents observed (staffed agents when the period has agent states);
    ``*_answered`` use the distinct agents answering and ``*_busy`` ``⌈summed busy time ÷
    interval⌉``; comparing them tells which observation of staffing fits better.
    """

    queue: str
    intervals: int
    calls: int
    mae_abandon_rate: float
    mae_service_level: float
    bias_abandon_rate: float
    bias_service_level: float
    mae_abandon_rate_answered: float
    mae_service_level_answered: float
    bias_abandon_rate_answered: float
    bias_service_level_answered: float
    mae_abandon_rate_busy: float
    mae_service_level_busy: float


@dataclass(frozen=True, slots=True)
class UnattributedTime:
    """Staffed time of an agent on a local day it answered no call: no queue to give it to."""

    agent_id: str
    day: date
    staffed_seconds: float


@dataclass(frozen=True, slots=True)
class StaffedAgents:
    """Staffed agents per queue and interval, from the state timeline (see
    :func:`attribute_staffed_time`), and the staffed time no queue could take."""

    by_interval: Mapping[tuple[str, date, int], float]  # (queue, local day, slot) → agents
    unattributed: tuple[UnattributedTime, ...]


@dataclass(frozen=True, slots=True)
class AgentStates:
    """The state changes of a period, as ``SqlStore.state_changes(lo, hi)`` gives them (with each
    agent's changes before ``lo``), and "now" (the store's watermark): state time never runs
    past it (SPEC §3)."""

    changes: Sequence[StateChange]
    now: int | None
    # Or the state time already cut into the configured local intervals (the rollups give it
    # without reading the timeline): (interval start, agent) -> microseconds by state.
    pieces: Mapping[tuple[int, str], Mapping[str, int]] | None = None

    @classmethod
    def of_store(
        cls, store: StoreReader, first: date, last: date, settings: Settings
    ) -> AgentStates:
        """The state time of the local days ``first`` … ``last`` cut into the configured
        intervals, from ``store`` (its rollups when they fit), up to its watermark."""
        edges = period_edges(first, last, "interval", settings.zone, settings.interval_minutes)
        now = store.watermark()
        time = store.state_time(edges, now)
        pieces = {(edges[period], agent): secs for (period, agent), secs in time.items()}
        return cls((), now, pieces)


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
    agents_source: AgentsSource = "answered"
    unattributed: tuple[UnattributedTime, ...] = ()

    @property
    def unattributed_seconds(self) -> float:
        """Staffed seconds of agents on days they answered no call (given to no queue)."""
        return sum(item.staffed_seconds for item in self.unattributed)

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
            "agents_source": self.agents_source,
            "unattributed": [
                {
                    "agent_id": item.agent_id,
                    "day": item.day.isoformat(),
                    "staffed_seconds": item.staffed_seconds,
                }
                for item in self.unattributed
            ],
            "intervals": self.to_rows("intervals"),
            "hour_weekday": self.to_rows("hour_weekday"),
            "backtest": self.to_rows("backtest"),
        }


# --------------------------------------------------------------------------------------------
# Accumulation
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _SlotLoad:
    """What the calls queued in one interval did (SPEC §3 attribution), and what the agents did
    in it (answers and busy time by when they worked). Times are exact integer µs sums."""

    arrivals: int = 0
    answered: int = 0
    abandoned: int = 0
    short: int = 0
    within: int = 0
    wait_us: int = 0  # answered and abandoned waits
    handle_us: int = 0
    handled: int = 0
    agents: set[str] = field(default_factory=set)
    busy_us: int = 0
    staffed_agents: float = 0.0  # from the state timeline; summed over pooled intervals

    def add(self, other: _SlotLoad) -> None:
        """Pool another tally into this one (agents are pooled by the caller as needed)."""
        self.arrivals += other.arrivals
        self.answered += other.answered
        self.abandoned += other.abandoned
        self.short += other.short
        self.within += other.within
        self.wait_us += other.wait_us
        self.handle_us += other.handle_us
        self.handled += other.handled
        self.busy_us += other.busy_us
        self.staffed_agents += other.staffed_agents


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


def _accumulate(sums: SlotSums, clock: _Clock) -> dict[Key, _SlotLoad]:
    """Tallies per (queue, local day, slot) of the sums' intervals. The two intervals of a
    repeated hour (daylight saving ends) fall on one wall-clock slot, as their calls would."""
    tallies: dict[Key, _SlotLoad] = defaultdict(_SlotLoad)
    for load in sums.loads:
        day, index, _ = clock.slot(load.start)
        tally = tallies[(load.queue, day, index)]
        tally.arrivals += load.requests
        tally.answered += load.answered
        tally.abandoned += load.abandoned
        tally.short += load.short_abandoned
        tally.within += load.within_threshold
        tally.wait_us += load.wait_us + load.abandon_wait_us
        tally.handle_us += load.handle_us
        tally.handled += load.handled
    for work in sums.work:
        day, index, _ = clock.slot(work.start)
        tally = tallies[(work.queue, day, index)]
        if work.agent and work.answers > 0:
            tally.agents.add(work.agent)
        tally.busy_us += work.busy_us
    return tallies


def slot_sums_of_calls(calls: Iterable[QueuedCall], settings: StaffingSettings) -> SlotSums:
    """The :class:`SlotSums` of a list of queued calls, as the rollups would sum them
    (:func:`~hotline_kpi.metrics.rollups.add_leg`): the analysis of calls in hand (tests, a
    caller without a store). The agents' side is what these calls' agents did, whenever."""
    buckets = Buckets(settings.timezone, settings.interval_minutes)
    sums: Sums = {}
    for call in calls:
        facts = (
            (ANSWERED_FACT if call.answered else 0)
            | (ABANDONED_FACT if call.abandoned else 0)
            | (SHORT_ABANDON if call.short_abandon else 0)
            | (WITHIN_THRESHOLD if call.within_threshold else 0)
        )
        outcome = ANSWERED if call.answered else ABANDONED if call.abandoned else NO_OUTCOME
        leg = CallFact(
            "",
            queued_at=call.queued_at,
            queue=call.queue,
            outcome=outcome,
            outcome_at=call.outcome_at,
            agent_id=call.agent_id,
            ended_at=call.ended_at,
            facts=facts,
        )
        add_leg(sums, leg, buckets)
    return slot_sums_of(
        sums, -(1 << 63), (1 << 63) - 1, settings.timezone.key, settings.interval_minutes
    )


def _sums(calls: SlotSums | Iterable[QueuedCall], settings: StaffingSettings) -> SlotSums:
    """``calls`` as sums on the analysis' grid (its zone, and intervals that divide its own)."""
    if not isinstance(calls, SlotSums):
        return slot_sums_of_calls(calls, settings)
    minutes = settings.interval_minutes
    if calls.timezone != settings.timezone.key or minutes % calls.interval_minutes:
        raise ValueError(
            f"sums of {calls.interval_minutes}-minute intervals in {calls.timezone} cannot be "
            f"analysed in {minutes}-minute intervals of {settings.timezone.key}: read them with "
            "the analysis' zone and interval"
        )
    return calls


# --------------------------------------------------------------------------------------------
# Staffed agents from the state timeline (issue 14)
# --------------------------------------------------------------------------------------------


def answered_legs(
    calls: SlotSums | Iterable[QueuedCall], settings: StaffingSettings
) -> dict[tuple[str, date], dict[str, int]]:
    """Answered legs per (agent, local day of the answer) and queue: the weights with which an
    agent's staffed time that day is shared among queues (:func:`attribute_staffed_time`)."""
    clock = _Clock(settings.timezone, settings.interval_minutes * 60 * _US)
    legs: dict[tuple[str, date], dict[str, int]] = defaultdict(dict)
    for work in _sums(calls, settings).work:
        if not work.agent or work.answers <= 0:
            continue
        mine = legs[(work.agent, clock.slot(work.start)[0])]
        mine[work.queue] = mine.get(work.queue, 0) + work.answers
    return dict(legs)


def staffed_seconds(
    changes: Iterable[StateChange],
    now: int | None,
    period: tuple[date, date],
    settings: StaffingSettings,
    pieces: Mapping[tuple[int, str], Mapping[str, int]] | None = None,
) -> dict[tuple[str, date, int], float]:
    """Seconds each agent was staffed (``ready``, ``busy`` or ``wrap_up``) per local day and
    interval of ``period``, by the SPEC §3 state time (nothing past ``now``; none without it).

    The state time is cut at every quarter hour of UTC as well as at interval bounds (offsets of
    real time zones change only there), so each piece lies in one local interval. With
    ``pieces`` (state time already cut into the local intervals, see :class:`AgentStates`),
    the changes are not read.
    """
    slot_us = settings.interval_minutes * 60 * _US
    clock = _Clock(settings.timezone, slot_us)
    lo = _utc_us(datetime.combine(period[0], datetime.min.time(), settings.timezone))
    end = period[1] + timedelta(days=1)
    hi = _utc_us(datetime.combine(end, datetime.min.time(), settings.timezone))
    edges = [*range(lo, hi, math.gcd(slot_us, _Clock._QUARTER_US)), hi]
    found: dict[tuple[str, date, int], float] = defaultdict(float)
    cut: Iterable[tuple[int, str, Mapping[str, int]]]
    if pieces is not None:
        cut = ((start, agent, seconds) for (start, agent), seconds in pieces.items())
    else:
        cut = (
            (edges[piece], agent, seconds)
            for (piece, agent), seconds in state_time(changes, edges, now).items()
        )
    for start, agent, seconds in cut:
        staffed = sum(seconds.get(state, 0) for state in STAFFED)
        if staffed:
            day, index, _ = clock.slot(start)
            found[(agent, day, index)] += staffed / _US
    return dict(found)


def attribute_staffed_time(
    staffed: Mapping[tuple[str, date, int], float],
    legs: Mapping[tuple[str, date], Mapping[str, int]],
    interval_seconds: float,
) -> StaffedAgents:
    """Staffed agents per (queue, local day, interval) from each agent's staffed seconds.

    ``agent.state`` names no queue, so an agent's staffed seconds in an interval go to the
    queues it answered that local day, in proportion to its answered legs there (``legs``, see
    :func:`answered_legs`): agents = Σ over agents of staffed seconds × share of the agent's
    answered legs that day in the queue ÷ ``interval_seconds``. An agent staffed on a day it
    answered nothing gives its time to no queue (there is no evidence of which one it served);
    that time is returned in :attr:`StaffedAgents.unattributed`, per agent and day.
    """
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be > 0, got {interval_seconds}")
    by_interval: dict[tuple[str, date, int], float] = defaultdict(float)
    lost: dict[tuple[str, date], float] = defaultdict(float)
    for (agent, day, index), seconds in staffed.items():
        answered = legs.get((agent, day), {})
        total = sum(answered.values())
        if total <= 0:
            lost[(agent, day)] += seconds
            continue
        for queue, count in answered.items():
            if count > 0:
                by_interval[(queue, day, index)] += seconds * count / total / interval_seconds
    unattributed = tuple(
        UnattributedTime(agent, day, round(seconds, 6))
        for (agent, day), seconds in sorted(lost.items())
        if seconds > 0
    )
    return StaffedAgents(dict(by_interval), unattributed)


def _utc_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


# --------------------------------------------------------------------------------------------
# Estimation and advice
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Estimates:
    handle: float | None  # seconds
    patience_rate: float | None  # per second; 0 = no abandons seen


def _estimates(tally: _SlotLoad, pooled: _Estimates | None) -> _Estimates:
    """Slot estimates, falling back to the pooled queue figures when the slot sample is small."""
    # Integer µs sums divided once.
    handle = tally.handle_us / (tally.handled * _US) if tally.handled else None
    theta: float | None
    if tally.wait_us > 0:
        theta = tally.abandoned * _US / tally.wait_us
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
        agents_busy=round(tally.busy_us / (seconds * _US), 3),
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
    calls: SlotSums | Iterable[QueuedCall],
    settings: StaffingSettings | None = None,
    *,
    period: tuple[date, date] | None = None,
    states: AgentStates | None = None,
    queue: str | None = None,
) -> StaffingReport:
    """Measured load, Erlang A advice and backtest per queue (see the module docstring).

    ``calls`` are the sums a store reads for the period (``StoreReader.slot_sums``, in the
    analysis' zone and in intervals that divide its own), or queued calls in hand, summed the
    same way (:func:`slot_sums_of_calls`).

    ``period`` is the inclusive range of local dates analysed (a month for the ``staffing``
    command); calls queued, and agents' work, outside it are ignored. Without it, the range spans
    the local dates of the calls. No calls give an empty report whose
    :attr:`StaffingReport.message` says so.

    ``states`` (the period's agent state changes and "now") make the agents observed the agents
    staffed, shared among queues by answered legs; without them, or when they give no staffed
    time in the period, the agents observed are the distinct agents answering. ``queue`` limits
    the report to one queue; pass the calls of every queue then, since an agent's staffed time is
    shared by its answered legs in all of them.
    """
    settings = settings or StaffingSettings()
    minutes = settings.interval_minutes
    clock = _Clock(settings.timezone, minutes * 60 * _US)
    sums = _sums(calls, settings)
    tallies = _accumulate(sums, clock)
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

    source: AgentsSource = "answered"
    unattributed: tuple[UnattributedTime, ...] = ()
    if states is not None:
        staffed = staffed_seconds(states.changes, states.now, period, settings, states.pieces)
        if staffed:
            shared = attribute_staffed_time(staffed, answered_legs(sums, settings), minutes * 60)
            for key, agents in shared.by_interval.items():
                in_period.setdefault(key, _SlotLoad()).staffed_agents += agents
            source, unattributed = "states", shared.unattributed

    days = _days(period)
    queues = sorted({key[0] for key, t in in_period.items() if t.arrivals})
    if queue is not None:
        queues = [name for name in queues if name == queue]
    per_hour = 60 // minutes if minutes <= 60 and 60 % minutes == 0 else None

    interval_rows: list[SlotRow] = []
    hour_rows: list[SlotRow] = []
    backtest_rows: list[BacktestInterval] = []
    summaries: list[BacktestSummary] = []
    slots_per_day = 1440 // minutes
    for name in queues:
        mine = {key: t for key, t in in_period.items() if key[0] == name}
        pooled_tally = _SlotLoad()
        for t in mine.values():
            pooled_tally.add(t)
        pooled = _estimates(pooled_tally, None)

        models: dict[int, _Estimates] = {}
        for index in range(slots_per_day):
            slot_tally = _SlotLoad()
            answering = 0
            for day in days:
                found = mine.get((name, day, index))
                if found is not None:
                    slot_tally.add(found)
                    answering += len(found.agents)
            if not (slot_tally.arrivals or slot_tally.busy_us or slot_tally.staffed_agents):
                continue
            agents = slot_tally.staffed_agents if source == "states" else answering
            row, model = _slot_row(
                name,
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
            hour_rows.extend(
                _hour_weekday_rows(name, mine, days, per_hour, pooled, settings, source)
            )

        bt = _backtest(name, mine, models, settings, source)
        backtest_rows.extend(bt)
        if bt:
            summaries.append(_summarise(name, bt))

    return StaffingReport(
        timezone=settings.timezone.key,
        interval_minutes=minutes,
        period=period,
        intervals=tuple(interval_rows),
        hour_weekday=tuple(hour_rows),
        backtest=tuple(summaries),
        backtest_intervals=tuple(backtest_rows),
        agents_source=source,
        unattributed=unattributed,
    )


def _hour_weekday_rows(
    queue: str,
    mine: dict[Key, _SlotLoad],
    days: list[date],
    per_hour: int,
    pooled: _Estimates,
    settings: StaffingSettings,
    source: AgentsSource,
) -> list[SlotRow]:
    rows: list[SlotRow] = []
    for weekday in range(1, 8):
        these = [day for day in days if day.isoweekday() == weekday]
        if not these:
            continue
        for hour in range(24):
            tally = _SlotLoad()
            answering = 0
            for day in these:
                names: set[str] = set()
                for index in range(hour * per_hour, (hour + 1) * per_hour):
                    t = mine.get((queue, day, index))
                    if t is not None:
                        tally.add(t)
                        names |= t.agents
                answering += len(names)
            if not (tally.arrivals or tally.busy_us or tally.staffed_agents):
                continue
            # Staffed agents of the hour: the mean of its intervals' (summed, so ÷ per_hour).
            agents = tally.staffed_agents / per_hour if source == "states" else answering
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


def _predict(
    agents: float, lam: float, mu: float, theta: float, s: float, t: float
) -> tuple[float, float]:
    """SPEC §3 abandon rate and service level with ``agents``; a fractional count blends the
    models with the whole counts either side (an agent staffed for part of the interval)."""

    def whole(n: int) -> tuple[float, float]:
        model: ErlangA = erlang_a(n, lam, mu, theta)
        return model_abandon_rate(model, s), model_service_level(model, t, s)

    low = math.floor(agents + 1e-9)
    share = agents - low
    below = whole(low)
    if share < 1e-9:
        return below
    above = whole(low + 1)
    return (
        (1 - share) * below[0] + share * above[0],
        (1 - share) * below[1] + share * above[1],
    )


def _backtest(
    queue: str,
    mine: dict[Key, _SlotLoad],
    models: dict[int, _Estimates],
    settings: StaffingSettings,
    source: AgentsSource,
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
        answering = len(tally.agents)
        observed = tally.staffed_agents if source == "states" else float(answering)
        busy_agents = -(-tally.busy_us // (seconds * _US))  # ⌈busy ÷ interval⌉, exact
        main, answered, busy = (
            _predict(n, lam, mu, estimate.patience_rate, s, t)
            for n in (observed, answering, busy_agents)
        )
        start = datetime.combine(day, datetime.min.time(), settings.timezone) + timedelta(
            minutes=index * settings.interval_minutes
        )
        rows.append(
            BacktestInterval(
                queue=queue,
                start=start.isoformat(),
                arrivals=tally.arrivals,
                agents_observed=round(observed, 3),
                agents_answered=answering,
                agents_busy=round(tally.busy_us / (seconds * _US), 3),
                predicted_abandon_rate=round(main[0], 4),
                actual_abandon_rate=round((tally.abandoned - tally.short) / counted, 4),
                predicted_service_level=round(main[1], 4),
                actual_service_level=round(tally.within / counted, 4),
                predicted_abandon_rate_answered=round(answered[0], 4),
                predicted_service_level_answered=round(answered[1], 4),
                predicted_abandon_rate_busy=round(busy[0], 4),
                predicted_service_level_busy=round(busy[1], 4),
            )
        )
    return rows


def _summarise(queue: str, rows: list[BacktestInterval]) -> BacktestSummary:
    count = len(rows)

    def mae(predicted: str, actual: str) -> float:
        errors = (float(getattr(r, predicted)) - float(getattr(r, actual)) for r in rows)
        return round(sum(abs(error) for error in errors) / count, 4)

    def bias(predicted: str, actual: str) -> float:
        errors = (float(getattr(r, predicted)) - float(getattr(r, actual)) for r in rows)
        return round(sum(errors) / count, 4)

    ab, sl = "actual_abandon_rate", "actual_service_level"
    return BacktestSummary(
        queue=queue,
        intervals=count,
        calls=sum(row.arrivals for row in rows),
        mae_abandon_rate=mae("predicted_abandon_rate", ab),
        mae_service_level=mae("predicted_service_level", sl),
        bias_abandon_rate=bias("predicted_abandon_rate", ab),
        bias_service_level=bias("predicted_service_level", sl),
        mae_abandon_rate_answered=mae("predicted_abandon_rate_answered", ab),
        mae_service_level_answered=mae("predicted_service_level_answered", sl),
        bias_abandon_rate_answered=bias("predicted_abandon_rate_answered", ab),
        bias_service_level_answered=bias("predicted_service_level_answered", sl),
        mae_abandon_rate_busy=mae("predicted_abandon_rate_busy", ab),
        mae_service_level_busy=mae("predicted_service_level_busy", sl),
    )
