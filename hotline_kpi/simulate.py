"""A realistic, seeded hotline: traffic for tests, the demo and benchmarks, with ground truth.

Each skill queue is a multi-server FCFS queue with impatient callers (M(t)/G/n(t)+G): arrivals
follow a daily curve, agents work the hours their queue is staffed for, a caller abandons when
the wait would exceed their patience (some within a few seconds), answered calls have lognormal
handle times and rarely drop. Calls are sampled for QA review, some open work orders with
deadlines (a few late, a few never closed), and some callers answer a 10-point survey with factor
scores. Waits are computed exactly: a call is served by the agent that can start it earliest,
and a caller who abandons holds no agent.

The ground truth is computed here from the simulated calls themselves, independently of the
pipeline's fold and store, so that tests can compare the export against it number by number.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import math
import random
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from hotline_kpi.config import Settings
from hotline_kpi.errors import OutputError, UsageError

MS = 1000  # microseconds per millisecond
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last instant a simulated event may have, and how long after its call the last one comes
# (a review up to 3 days, a work order closing late after a 48-hour deadline; with margin).
LAST_MS = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
FOLLOW_UP_MS = 30 * DAY_MS

# Share of the day's calls arriving in each local hour: night lull, morning and afternoon peaks.
HOURLY_CURVE = (
    0.6,
    0.4,
    0.3,
    0.3,
    0.3,
    0.5,
    1.2,
    2.8,
    5.5,
    7.6,
    8.0,
    7.4,
    5.8,
    6.2,
    7.2,
    7.4,
    6.8,
    5.9,
    4.8,
    4.6,
    4.2,
    3.4,
    2.2,
    1.2,
)


@dataclass(frozen=True, slots=True)
class QueueProfile:
    """One skill queue: its share of agent requests, handle time and callers' patience."""

    name: str
    share: float
    handle_mean_s: float
    patience_mean_s: float


QUEUES = (
    QueueProfile("billing", 0.30, 200.0, 110.0),
    QueueProfile("broadband", 0.26, 300.0, 140.0),
    QueueProfile("mobile", 0.24, 240.0, 100.0),
    QueueProfile("fault_repair", 0.12, 360.0, 180.0),
    QueueProfile("vip", 0.08, 280.0, 60.0),
)
TICKET_SLA_H = {"complaint": 24.0, "fault": 48.0, "consultation": 4.0, "callback": 2.0}
TICKET_WEIGHTS = {"complaint": 0.25, "fault": 0.35, "consultation": 0.25, "callback": 0.15}
FACTORS = ("waiting_time", "attitude", "expertise", "resolution", "ivr_navigation")
QA_CATEGORIES = ("billing_policy", "tariff", "fault_diagnosis", "account", "roaming")
CAUSES_OK = (("customer_hangup", 0.62), ("agent_hangup", 0.30), ("transfer", 0.08))


@dataclass(frozen=True, slots=True)
class Scenario:
    """Knobs of the simulated hotline."""

    calls_per_day: int = 20_000
    agent_request_share: float = 0.62
    # Agents staffed per hour = coverage × offered load + safety × √load (square-root staffing).
    coverage: float = 1.0
    safety: float = 1.2
    drop_probability: float = 0.003
    waiting_failure_probability: float = 0.002
    qa_share: float = 0.05
    ticket_share: float = 0.08
    survey_share: float = 0.35

    @classmethod
    def named(cls, name: str, calls_per_day: int) -> Scenario:
        """``normal`` meets the targets most hours; ``understaffed`` breaches connection rate."""
        if name == "understaffed":
            return cls(calls_per_day=calls_per_day, coverage=0.78, safety=0.0)
        return cls(calls_per_day=calls_per_day)


def iso(ms: int, zone: ZoneInfo | None) -> str:
    """RFC 3339 with milliseconds, in ``zone``'s offset (or ``Z`` for None), exactly."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    if zone is None:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.astimezone(zone).isoformat(timespec="milliseconds")


def local_midnight_ms(day: date, zone: ZoneInfo) -> int:
    """Epoch milliseconds of local midnight starting ``day``."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return (start - _EPOCH) // timedelta(milliseconds=1)


# -- ground truth ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Scope:
    queued: int = 0
    answered: int = 0
    within: int = 0
    abandoned: int = 0
    short: int = 0
    dropped: int = 0
    handled: int = 0
    wait_ms: int = 0
    handle_ms: int = 0
    qa: int = 0
    qa_ok: int = 0
    surveys: int = 0
    satisfied: int = 0
    score_sum: int = 0
    settled: int = 0
    on_time: int = 0


@dataclass(slots=True)
class _Ticket:
    queue: str | None
    kind: str
    due_ms: int
    closed_ms: int | None


@dataclass
class GroundTruth:
    """What the simulator knows happened, aggregated as SPEC §3 defines each KPI."""

    zone: ZoneInfo
    short_abandon_ms: int
    service_level_ms: int
    satisfied_score: int
    scopes: dict[tuple[str, str | None], _Scope] = field(
        default_factory=lambda: defaultdict(_Scope)
    )
    agents: dict[tuple[str, str], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    tickets: list[_Ticket] = field(default_factory=list)
    offered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejections: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    accepted_events: int = 0
    watermark_ms: int | None = None

    def month_of(self, ms: int) -> str:
        """The local calendar month of an instant."""
        return (_EPOCH + timedelta(milliseconds=ms)).astimezone(self.zone).strftime("%Y-%m")

    def _both(self, month: str, queue: str | None) -> list[_Scope]:
        scopes = [self.scopes[(month, None)]]
        if queue is not None:
            scopes.append(self.scopes[(month, queue)])
        return scopes

    def call(self, call: SimCall) -> None:
        """Account one simulated call (attributed to its queued time)."""
        self.offered[self.month_of(call.offered_ms)] += 1
        if call.queued_ms is None:
            return
        month = self.month_of(call.queued_ms)
        for scope in self._both(month, call.queue):
            scope.queued += 1
            if call.answered_ms is not None:
                wait = call.answered_ms - call.queued_ms
                scope.answered += 1
                scope.wait_ms += wait
                scope.within += wait <= self.service_level_ms
                scope.dropped += call.cause in ("network_failure", "system_failure")
                scope.handled += 1
                scope.handle_ms += call.ended_ms - call.answered_ms
            elif call.abandoned_ms is not None:
                scope.abandoned += 1
                scope.short += call.abandoned_ms - call.queued_ms < self.short_abandon_ms
        if call.answered_ms is not None and call.agent is not None:
            figures = self.agents[(month, call.agent)]
            figures["answered"] += 1
            figures["handled"] += 1
            figures["handle_ms"] += call.ended_ms - call.answered_ms
            figures["dropped"] += call.cause in ("network_failure", "system_failure")

    def review(self, ts_ms: int, queue: str | None, agent: str, accurate: bool) -> None:
        """Account one QA review (attributed to its own time)."""
        month = self.month_of(ts_ms)
        for scope in self._both(month, queue):
            scope.qa += 1
            scope.qa_ok += accurate
        self.agents[(month, agent)]["qa_reviews"] += 1
        self.agents[(month, agent)]["qa_accurate"] += accurate

    def survey(self, ts_ms: int, queue: str | None, agent: str | None, score: int) -> None:
        """Account one survey (attributed to its own time)."""
        month = self.month_of(ts_ms)
        for scope in self._both(month, queue):
            scope.surveys += 1
            scope.satisfied += score >= self.satisfied_score
            scope.score_sum += score
        if agent is not None:
            self.agents[(month, agent)]["surveys"] += 1
            self.agents[(month, agent)]["score_sum"] += score

    def event(self, ts_ms: int) -> None:
        """One valid, unique event was emitted at ``ts_ms``."""
        self.accepted_events += 1
        if self.watermark_ms is None or ts_ms > self.watermark_ms:
            self.watermark_ms = ts_ms

    def to_json(self) -> dict[str, Any]:
        """Per month: overall and per queue numerators/denominators, agents, ticket kinds."""
        for ticket in self.tickets:
            settled = ticket.closed_ms is not None or (
                self.watermark_ms is not None and ticket.due_ms < self.watermark_ms
            )
            if not settled:
                continue
            on_time = ticket.closed_ms is not None and ticket.closed_ms <= ticket.due_ms
            month = self.month_of(ticket.due_ms)
            for scope in self._both(month, ticket.queue):
                scope.settled += 1
                scope.on_time += on_time
            kind_scope = self.scopes[(month, f"kind:{ticket.kind}")]
            kind_scope.settled += 1
            kind_scope.on_time += on_time
        self.tickets = []
        months: dict[str, Any] = defaultdict(
            lambda: {"queues": {}, "ticket_kinds": {}, "agents": {}}
        )
        for (month, name), scope in sorted(
            self.scopes.items(), key=lambda item: (item[0][0], item[0][1] or "")
        ):
            if name is None:
                months[month]["overall"] = _truth_kpis(scope)
                months[month]["offered"] = self.offered.get(month, 0)
            elif name.startswith("kind:"):
                months[month]["ticket_kinds"][name.removeprefix("kind:")] = [
                    scope.on_time,
                    scope.settled,
                ]
            else:
                months[month]["queues"][name] = _truth_kpis(scope)
        for (month, agent), figures in sorted(self.agents.items()):
            months[month]["agents"][agent] = {
                "answered": int(figures["answered"]),
                "handled": int(figures["handled"]),
                "handle_seconds": figures["handle_ms"] / 1000,
                "dropped": int(figures["dropped"]),
                "qa_reviews": int(figures["qa_reviews"]),
                "qa_accurate": int(figures["qa_accurate"]),
                "surveys": int(figures["surveys"]),
                "score_sum": int(figures["score_sum"]),
            }
        return {
            "timezone": str(self.zone),
            "watermark": None if self.watermark_ms is None else iso(self.watermark_ms, self.zone),
            "accepted_events": self.accepted_events,
            "rejections": dict(sorted(self.rejections.items())),
            "months": dict(months),
        }


def _truth_kpis(s: _Scope) -> dict[str, list[float]]:
    counted = s.queued - s.short
    return {
        "manual_connection_rate": [s.answered, counted],
        "drop_rate": [s.dropped, s.answered],
        "timeliness": [s.on_time, s.settled],
        "answer_accuracy": [s.qa_ok, s.qa],
        "service_level": [s.within, counted],
        "abandon_rate": [s.abandoned - s.short, counted],
        "average_speed_of_answer": [s.wait_ms / 1000, s.answered],
        "average_handle_time": [s.handle_ms / 1000, s.handled],
        "satisfaction_rate": [s.satisfied, s.surveys],
        "satisfaction_mean": [s.score_sum, s.surveys],
    }


# -- the simulation -------------------------------------------------------------------------------


@dataclass(slots=True)
class SimCall:
    """One simulated call, in epoch milliseconds."""

    call_id: str
    offered_ms: int
    queue: str | None = None
    queued_ms: int | None = None
    answered_ms: int | None = None
    abandoned_ms: int | None = None
    agent: str | None = None
    ended_ms: int = 0
    cause: str = "customer_hangup"


class _Agents:
    """The agents of one queue: who is on duty in which local hour, and when each is free."""

    def __init__(self, queue_index: int, staff_by_hour: list[int], zone: ZoneInfo) -> None:
        self.ids = [f"A{queue_index}{k:03d}" for k in range(max(staff_by_hour))]
        self.staff = staff_by_hour
        self.free_ms = [0] * len(self.ids)
        self.zone = zone
        self.skill = [0.0] * len(self.ids)
        self._hours: dict[int, int] = {}

    def _hour(self, ms: int) -> int:
        bucket = ms // HOUR_MS
        hour = self._hours.get(bucket)
        if hour is None:
            moment = _EPOCH + timedelta(milliseconds=bucket * HOUR_MS)
            hour = self._hours[bucket] = moment.astimezone(self.zone).hour
        return hour

    def next_on_duty(self, agent: int, ms: int) -> int:
        """The first instant ≥ ``ms`` at which ``agent`` is on duty."""
        for _ in range(25):
            if agent < self.staff[self._hour(ms)]:
                return ms
            ms = (ms // HOUR_MS + 1) * HOUR_MS  # hour boundaries agree in whole-hour zones
        return ms

    def earliest(self, ms: int) -> tuple[int, int]:
        """(agent, start) of the agent who can start a call queued at ``ms`` first."""
        hour_staff = self.staff[self._hour(ms)]
        best_agent, best_start = -1, 1 << 62
        for agent in range(len(self.ids)):
            start = max(self.free_ms[agent], ms)
            if agent >= hour_staff or start != ms:
                start = self.next_on_duty(agent, start)
            if start < best_start:
                best_agent, best_start = agent, start
        return best_agent, best_start


class Simulator:
    """Generates the hotline's events in time order, and their ground truth."""

    def __init__(
        self,
        settings: Settings,
        scenario: Scenario,
        seed: int,
        *,
        duplicates: float = 0.0,
        shuffle: bool = False,
        bad: float = 0.0,
    ) -> None:
        self.zone = settings.zone
        self.scenario = scenario
        self.rng = random.Random(seed)
        self.seed = seed
        self.duplicates = duplicates
        self.shuffle = shuffle
        self.bad = bad
        thresholds = settings.thresholds
        self.short_ms = round(thresholds.short_abandon_seconds * 1000)
        self.service_ms = round(thresholds.service_level_seconds * 1000)
        self.truth = GroundTruth(
            self.zone, self.short_ms, self.service_ms, thresholds.satisfied_score
        )
        self._seq = 0
        # Every id this run makes starts with a digest of its whole configuration, set when the
        # window is known (stream): two runs that differ in anything never share an id.
        self._identity = (
            seed,
            scenario,
            duplicates,
            shuffle,
            bad,
            settings.timezone,
            thresholds.model_dump_json(),
        )
        self._run = f"{seed:x}"
        self._heap: list[tuple[int, int, bytes]] = []
        self._agents = [
            _Agents(index + 1, self._staffing(profile), self.zone)
            for index, profile in enumerate(QUEUES)
        ]
        for agents in self._agents:
            agents.skill = [self.rng.uniform(0.955, 0.998) for _ in agents.ids]

    def _staffing(self, profile: QueueProfile) -> list[int]:
        s = self.scenario
        total = sum(HOURLY_CURVE)
        staff = []
        for weight in HOURLY_CURVE:
            per_hour = s.calls_per_day * weight / total * s.agent_request_share * profile.share
            load = per_hour * profile.handle_mean_s / 3600  # offered load in Erlangs
            staff.append(max(1, math.ceil(s.coverage * load + s.safety * math.sqrt(load))))
        return staff

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._run}-{self._seq:08x}"

    def _emit(self, ts_ms: int, fields: dict[str, Any], arrival_ms: int | None = None) -> None:
        """Queue one valid event for output in arrival order."""
        zone = self.zone if self.rng.random() < 0.7 else None
        record = {"event_id": self._id("e"), "ts": iso(ts_ms, zone), **fields}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        self.truth.event(ts_ms)
        key = ts_ms if arrival_ms is None else arrival_ms
        self._push(key, line)
        if self.duplicates and self.rng.random() < self.duplicates:
            self.truth.rejections["duplicate"] += 1
            self._push(key + self.rng.randint(0, 600_000), line)

    def _push(self, key_ms: int, line: bytes) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (key_ms, self._seq, line))

    def _call_events(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        """Emit one entity's events; with ``shuffle`` their arrival order is permuted."""
        arrivals = [ts for ts, _ in events]
        if self.shuffle:
            self.rng.shuffle(arrivals)
        for (ts, fields), arrival in zip(events, arrivals, strict=True):
            self._emit(ts, fields, arrival)

    def _patience_ms(self, profile: QueueProfile) -> int:
        r = self.rng.random()
        if r < 0.10:
            return self.rng.randint(0, 8000)  # hangs up almost at once: some short abandons
        if r < 0.12:
            return self.short_ms  # exactly S: not a short abandon (wait < S is)
        return round(self.rng.expovariate(1 / profile.patience_mean_s) * 1000)

    def _simulate_call(self, offered_ms: int) -> None:
        rng = self.rng
        s = self.scenario
        call = SimCall(self._id("c"), offered_ms)
        offered: dict[str, Any] = {"type": "call.offered", "call_id": call.call_id}
        if rng.random() < 0.8:
            offered["caller"] = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        events: list[tuple[int, dict[str, Any]]] = [(offered_ms, offered)]
        if rng.random() >= s.agent_request_share:
            call.ended_ms = offered_ms + rng.randint(20_000, 180_000)
            events.append((call.ended_ms, _ended(call.call_id, "customer_hangup")))
            self.truth.call(call)
            self._call_events(events)
            return
        index = _pick(rng, [profile.share for profile in QUEUES])
        profile, agents = QUEUES[index], self._agents[index]
        call.queue = profile.name
        queued_ms = offered_ms + rng.randint(8_000, 60_000)
        agent, start_ms = agents.earliest(queued_ms)
        wait_ms = start_ms - queued_ms
        # Threshold edges: some calls are answered exactly T after they queued.
        if wait_ms > 0 and rng.random() < 0.03 and start_ms - self.service_ms > offered_ms:
            queued_ms = start_ms - self.service_ms
            wait_ms = self.service_ms
        call.queued_ms = queued_ms
        events.append(
            (queued_ms, {"type": "call.queued", "call_id": call.call_id, "queue": profile.name})
        )
        patience = self._patience_ms(profile)
        if rng.random() < s.waiting_failure_probability:
            call.ended_ms = queued_ms + min(wait_ms, patience) // 2 + 1
            call.cause = "system_failure"
            events.append((call.ended_ms, _ended(call.call_id, call.cause)))
        elif wait_ms > patience:
            call.abandoned_ms = queued_ms + patience
            call.ended_ms = call.abandoned_ms + rng.randint(0, 1500)
            events.append(
                (
                    call.abandoned_ms,
                    {"type": "call.abandoned", "call_id": call.call_id, "queue": profile.name},
                )
            )
            events.append((call.ended_ms, _ended(call.call_id, "customer_hangup")))
        else:
            handle_ms = (
                round(rng.lognormvariate(math.log(profile.handle_mean_s) - 0.18, 0.6) * 1000) + 5000
            )
            call.answered_ms = start_ms
            call.agent = agents.ids[agent]
            call.ended_ms = start_ms + handle_ms
            agents.free_ms[agent] = call.ended_ms + rng.randint(3000, 15000)
            if rng.random() < s.drop_probability:
                call.cause = rng.choice(("network_failure", "network_failure", "system_failure"))
            else:
                call.cause = _weighted(rng, CAUSES_OK)
            events.append(
                (
                    start_ms,
                    {
                        "type": "call.answered",
                        "call_id": call.call_id,
                        "queue": profile.name,
                        "agent_id": call.agent,
                    },
                )
            )
            events.append((call.ended_ms, _ended(call.call_id, call.cause)))
            events.extend(self._after_call(call, agents.skill[agent], wait_ms))
        self.truth.call(call)
        self._call_events(events)

    def _after_call(
        self, call: SimCall, skill: float, wait_ms: int
    ) -> list[tuple[int, dict[str, Any]]]:
        """QA review, survey and work order that may follow an answered call."""
        rng = self.rng
        s = self.scenario
        assert call.queue is not None and call.agent is not None
        events: list[tuple[int, dict[str, Any]]] = []
        if rng.random() < s.qa_share:
            ts = call.ended_ms + rng.randint(HOUR_MS, 3 * DAY_MS)
            accurate = rng.random() < skill
            review: dict[str, Any] = {
                "type": "qa.reviewed",
                "call_id": call.call_id,
                "agent_id": call.agent,
                "accurate": accurate,
                "category": rng.choice(QA_CATEGORIES),
            }
            named = rng.random() < 0.5
            if named:
                review["queue"] = call.queue
            # Without a queue of its own, a review counts in its call's queue (SPEC §5).
            self.truth.review(ts, call.queue, call.agent, accurate)
            events.append((ts, review))
        if rng.random() < s.survey_share:
            ts = call.ended_ms + rng.randint(20_000, 600_000)
            factors = {}
            base = (
                8.6
                - min(wait_ms / 60_000, 4.0)
                - (4.0 if call.cause in ("network_failure", "system_failure") else 0.0)
            )
            for name in FACTORS:
                bias = -1.5 * min(wait_ms / 60_000, 3.0) if name == "waiting_time" else 0.0
                factors[name] = _score(rng, base + bias + rng.gauss(0, 1.0))
            score = _score(
                rng,
                0.45 * factors["resolution"]
                + 0.25 * factors["attitude"]
                + 0.2 * factors["waiting_time"]
                + 0.1 * factors["expertise"]
                + rng.gauss(0, 0.6),
            )
            survey: dict[str, Any] = {
                "type": "survey.answered",
                "call_id": call.call_id,
                "score": score,
            }
            if rng.random() < 0.6:
                survey["queue"] = call.queue
                survey["agent_id"] = call.agent
            if rng.random() < 0.85:
                survey["factors"] = factors
            self.truth.survey(ts, call.queue, call.agent, score)
            events.append((ts, survey))
        if rng.random() < s.ticket_share:
            self._ticket(call)
        return events

    def _ticket(self, call: SimCall) -> None:
        rng = self.rng
        kind = _weighted(rng, tuple(TICKET_WEIGHTS.items()))
        sla_ms = round(TICKET_SLA_H[kind] * HOUR_MS)
        opened_ms = call.ended_ms + rng.randint(1000, 60_000)
        due_ms = opened_ms + sla_ms
        ticket_id = self._id("t")
        opened: dict[str, Any] = {
            "type": "ticket.opened",
            "ticket_id": ticket_id,
            "due": iso(due_ms, self.zone),
            "kind": kind,
            "call_id": call.call_id,
        }
        queue = call.queue if rng.random() < 0.8 else None
        if queue is not None:
            opened["queue"] = queue
        events: list[tuple[int, dict[str, Any]]] = [(opened_ms, opened)]
        r = rng.random()
        closed_ms: int | None
        if r < 0.02:
            closed_ms = None  # never closed within the simulation
        elif r < 0.06:
            closed_ms = due_ms + rng.randint(1, sla_ms)  # late
        elif r < 0.08:
            closed_ms = due_ms  # exactly at the deadline: on time
        else:
            closed_ms = opened_ms + round(sla_ms * rng.uniform(0.05, 0.95))
        if closed_ms is not None:
            events.append((closed_ms, {"type": "ticket.closed", "ticket_id": ticket_id}))
        self.truth.tickets.append(_Ticket(queue, kind, due_ms, closed_ms))
        self._call_events(events)

    def _bad_line(self, ts_ms: int) -> None:
        kinds = (
            (
                "invalid_json",
                b'{"event_id": "bad-RUN-%d", "type": "call.offered", "caller": "13912345678"',
            ),
            ("not_an_object", b'["bad-RUN-%d"]'),
            ("unknown_type", b'{"event_id": "bad-RUN-%d", "type": "call.transferred", "ts": "TS"}'),
            ("missing_field", b'{"event_id": "bad-RUN-%d", "type": "call.queued", "ts": "TS"}'),
            (
                "wrong_type",
                b'{"event_id": "bad-RUN-%d", "type": "survey.answered", "ts": "TS", '
                b'"call_id": "bad-RUN", "score": 8.0}',
            ),
            (
                "naive_timestamp",
                b'{"event_id": "bad-RUN-%d", "type": "ticket.closed", '
                b'"ts": "2026-10-01T08:00:00", "ticket_id": "bad-RUN"}',
            ),
            (
                "out_of_range",
                b'{"event_id": "bad-RUN-%d", "type": "survey.answered", "ts": "TS", '
                b'"call_id": "bad-RUN", "score": 11}',
            ),
            (
                "future_timestamp",
                b'{"event_id": "bad-RUN-%d", "type": "ticket.closed", '
                b'"ts": "2099-01-01T00:00:00Z", "ticket_id": "bad-RUN"}',
            ),
        )
        reason, template = kinds[self.rng.randrange(len(kinds))]
        self._seq += 1
        line = (template % self._seq).replace(b"RUN", self._run.encode())
        line = line.replace(b"TS", iso(ts_ms, None).encode())
        self.truth.rejections[reason] += 1
        self._push(ts_ms, line)

    def stream(self, start_ms: int, end_ms: int | None) -> Iterator[tuple[int, bytes]]:
        """Events of calls offered in [start, end) as (arrival ms, JSON line), in order.

        With ``end_ms`` None the stream never ends (the demo). Events that follow a call
        (reviews days later, work orders closing) are emitted after the last arrival.
        """
        self._run = run_id(self._identity, start_ms, end_ms)
        s = self.scenario
        total = sum(HOURLY_CURVE)
        hour_ms = (start_ms // HOUR_MS) * HOUR_MS
        hour_ms = max(hour_ms, start_ms)
        while end_ms is None or hour_ms < end_ms:
            next_hour = (hour_ms // HOUR_MS + 1) * HOUR_MS
            stop = next_hour if end_ms is None else min(next_hour, end_ms)
            local_hour = (_EPOCH + timedelta(milliseconds=hour_ms)).astimezone(self.zone).hour
            rate_per_ms = s.calls_per_day * HOURLY_CURVE[local_hour] / total / HOUR_MS
            t = float(hour_ms)
            while True:
                t += self.rng.expovariate(rate_per_ms)
                if t >= stop:
                    break
                self._simulate_call(int(t))
                if self.bad and self.rng.random() < self.bad:
                    self._bad_line(int(t))
            while self._heap and self._heap[0][0] < stop:
                key, _, line = heapq.heappop(self._heap)
                yield key, line
            hour_ms = stop
        while self._heap:
            key, _, line = heapq.heappop(self._heap)
            yield key, line


def run_id(identity: tuple[Any, ...], start_ms: int, end_ms: int | None) -> str:
    """Ten hex digits of a digest of a run's whole configuration and window: the same run makes
    the same ids (the same file), a run that differs in anything makes other ids (2^-40 odds of a
    clash), so that several simulated files can be replayed into one store."""
    text = repr((*identity, start_ms, end_ms)).encode()
    return hashlib.blake2b(text, digest_size=5).hexdigest()


def _ended(call_id: str, cause: str) -> dict[str, Any]:
    return {"type": "call.ended", "call_id": call_id, "cause": cause}


def _pick(rng: random.Random, weights: list[float]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in options], weights=[w for _, w in options])[0]


def _score(rng: random.Random, value: float) -> int:
    return max(1, min(10, round(value)))


def window(args: argparse.Namespace, zone: ZoneInfo) -> tuple[int, int]:
    """The [start, end) epoch ms to simulate from ``--month`` or ``--start``/``--days``."""
    if args.month:
        from hotline_kpi.metrics.export import month_bounds

        lo_us, hi_us = month_bounds(args.month, zone)
        start, end = lo_us // MS, hi_us // MS
        asked = f"--month {args.month}"
    else:
        if not args.start:
            raise UsageError("give --month YYYY-MM or --start YYYY-MM-DD")
        try:
            first = date.fromisoformat(args.start)
        except ValueError:
            raise UsageError(f"--start must look like 2026-10-30, got {args.start!r}") from None
        if first < _EPOCH.date():
            raise UsageError(f"--start {args.start} is before 1970-01-01: no hotline is that old")
        if not (math.isfinite(args.days) and args.days > 0):
            raise UsageError(f"--days must be a positive number, got {args.days}")
        start = local_midnight_ms(first, zone)
        end = start + round(args.days * DAY_MS)
        asked = f"--start {args.start} with --days {args.days:g}"
    # Reviews, surveys and work orders follow their call by days; their times must fit a date.
    if end + FOLLOW_UP_MS > LAST_MS:
        raise UsageError(
            f"{asked} runs past what a date can hold: end the simulation before December 9999"
        )
    return start, end


def write_events(lines: Iterator[tuple[int, bytes]], out: IO[bytes]) -> int:
    """Write JSON lines; returns how many."""
    count = 0
    for _, line in lines:
        out.write(line)
        out.write(b"\n")
        count += 1
    return count


def run_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """``hotline-kpi simulate``: events to a file (or stdout) or to Kafka, plus ground truth."""
    if args.calls_per_day <= 0:
        raise UsageError("--calls-per-day must be positive")
    for name in ("duplicates", "bad"):
        if not 0 <= getattr(args, name) < 1:
            raise UsageError(f"--{name} must be a share between 0 and 1")
    start, end = window(args, settings.zone)
    simulator = Simulator(
        settings,
        Scenario.named(args.scenario, args.calls_per_day),
        args.seed,
        duplicates=args.duplicates,
        shuffle=args.shuffle,
        bad=args.bad,
    )
    stream = simulator.stream(start, end)
    if args.to == "kafka":
        from hotline_kpi.ingest.kafka import produce_lines

        count = produce_lines(settings, stream)
    elif args.output == "-":
        count = write_events(stream, sys.stdout.buffer)
        sys.stdout.flush()
    else:
        try:
            with open(args.output, "wb") as out:
                count = write_events(stream, out)
        except OSError as exc:
            raise OutputError(f"cannot write {args.output}: {exc.strerror}") from None
    if args.truth:
        try:
            with open(args.truth, "w", encoding="utf-8") as out:
                json.dump(simulator.truth.to_json(), out, indent=1, sort_keys=True)
        except OSError as exc:
            raise OutputError(f"cannot write {args.truth}: {exc.strerror}") from None
    print(f"simulated {count} lines", file=sys.stderr)
    return 0
