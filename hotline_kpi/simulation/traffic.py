"""The traffic model: who calls when, which queue, how long they wait, what follows.

Each skill queue is a multi-server FCFS queue with impatient callers (M(t)/G/n(t)+G): arrivals
follow a daily curve, agents work the hours their queue is staffed for, a caller abandons when
the wait would exceed their patience (some within a few seconds), answered calls have lognormal
handle times and rarely drop. Calls are sampled for QA review, some open work orders with
deadlines (a few late, a few never closed), and some callers answer a 10-point survey with factor
scores. Waits are computed exactly: a call is served by the agent that can start it earliest,
and a caller who abandons holds no agent.

The model decides what happens (:mod:`.records`); it writes no events and counts no KPIs. It
draws from the random generator it is given, which the event writer shares: the order of draws
is what makes a seed give the same file.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hotline_kpi.simulation.clock import DAY_MS, HOUR_MS, local_hour
from hotline_kpi.simulation.records import SimCall, SimReview, SimSurvey, SimTicket

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
DROP_CAUSES = ("network_failure", "network_failure", "system_failure")  # drawn from, weighted


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

    def staffing(self, profile: QueueProfile) -> list[int]:
        """Agents on duty in each local hour for ``profile``'s queue."""
        total = sum(HOURLY_CURVE)
        staff = []
        for weight in HOURLY_CURVE:
            per_hour = (
                self.calls_per_day * weight / total * self.agent_request_share * profile.share
            )
            load = per_hour * profile.handle_mean_s / 3600  # offered load in Erlangs
            staff.append(max(1, math.ceil(self.coverage * load + self.safety * math.sqrt(load))))
        return staff


class QueueAgents:
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
            hour = self._hours[bucket] = local_hour(bucket * HOUR_MS, self.zone)
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


class Traffic:
    """The model of one simulated hotline: arrivals hour by hour, and each call's course.

    ``new_id(prefix)`` names calls and work orders (the event writer numbers its lines from the
    same sequence).
    """

    def __init__(
        self,
        scenario: Scenario,
        zone: ZoneInfo,
        rng: random.Random,
        *,
        short_abandon_ms: int,
        service_level_ms: int,
        new_id: Callable[[str], str],
    ) -> None:
        self.scenario = scenario
        self.zone = zone
        self.rng = rng
        self.short_ms = short_abandon_ms
        self.service_ms = service_level_ms
        self._new_id = new_id
        self._agents = [
            QueueAgents(index + 1, scenario.staffing(profile), zone)
            for index, profile in enumerate(QUEUES)
        ]
        for agents in self._agents:
            agents.skill = [rng.uniform(0.955, 0.998) for _ in agents.ids]

    def arrivals(self, start_ms: int, stop_ms: int) -> Iterator[int]:
        """Offer times in [start, stop), within one local hour, drawn one at a time as the
        caller asks for the next (a Poisson process at that hour's rate)."""
        s = self.scenario
        weight = HOURLY_CURVE[local_hour(start_ms, self.zone)]
        rate_per_ms = s.calls_per_day * weight / sum(HOURLY_CURVE) / HOUR_MS
        t = float(start_ms)
        while True:
            t += self.rng.expovariate(rate_per_ms)
            if t >= stop_ms:
                return
            yield int(t)

    def _patience_ms(self, profile: QueueProfile) -> int:
        r = self.rng.random()
        if r < 0.10:
            return self.rng.randint(0, 8000)  # hangs up almost at once: some short abandons
        if r < 0.12:
            return self.short_ms  # exactly S: not a short abandon (wait < S is)
        return round(self.rng.expovariate(1 / profile.patience_mean_s) * 1000)

    def call(self, offered_ms: int) -> SimCall:
        """The course of one call offered at ``offered_ms``, and what follows it."""
        rng = self.rng
        s = self.scenario
        call = SimCall(self._new_id("c"), offered_ms)
        if rng.random() < 0.8:
            call.caller = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        if rng.random() >= s.agent_request_share:
            call.ended_ms = offered_ms + rng.randint(20_000, 180_000)
            return call
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
        patience = self._patience_ms(profile)
        if rng.random() < s.waiting_failure_probability:
            call.ended_ms = queued_ms + min(wait_ms, patience) // 2 + 1
            call.cause = "system_failure"
        elif wait_ms > patience:
            call.abandoned_ms = queued_ms + patience
            call.ended_ms = call.abandoned_ms + rng.randint(0, 1500)
        else:
            handle_ms = (
                round(rng.lognormvariate(math.log(profile.handle_mean_s) - 0.18, 0.6) * 1000) + 5000
            )
            call.answered_ms = start_ms
            call.agent = agents.ids[agent]
            call.ended_ms = start_ms + handle_ms
            agents.free_ms[agent] = call.ended_ms + rng.randint(3000, 15000)
            if rng.random() < s.drop_probability:
                call.cause = rng.choice(DROP_CAUSES)
            else:
                call.cause = _weighted(rng, CAUSES_OK)
            self._follow_up(call, agents.skill[agent], wait_ms)
        return call

    def _follow_up(self, call: SimCall, skill: float, wait_ms: int) -> None:
        """QA review, survey and work order that may follow an answered call."""
        rng = self.rng
        s = self.scenario
        if rng.random() < s.qa_share:
            ts = call.ended_ms + rng.randint(HOUR_MS, 3 * DAY_MS)
            accurate = rng.random() < skill
            category = rng.choice(QA_CATEGORIES)
            call.review = SimReview(ts, accurate, category, named=rng.random() < 0.5)
        if rng.random() < s.survey_share:
            ts = call.ended_ms + rng.randint(20_000, 600_000)
            dropped = call.cause in ("network_failure", "system_failure")
            base = 8.6 - min(wait_ms / 60_000, 4.0) - (4.0 if dropped else 0.0)
            factors = {}
            for name in FACTORS:
                bias = -1.5 * min(wait_ms / 60_000, 3.0) if name == "waiting_time" else 0.0
                factors[name] = _score(base + bias + rng.gauss(0, 1.0))
            score = _score(
                0.45 * factors["resolution"]
                + 0.25 * factors["attitude"]
                + 0.2 * factors["waiting_time"]
                + 0.1 * factors["expertise"]
                + rng.gauss(0, 0.6),
            )
            named = rng.random() < 0.6
            scored = rng.random() < 0.85
            call.survey = SimSurvey(ts, score, factors if scored else None, named)
        if rng.random() < s.ticket_share:
            call.ticket = self._ticket(call)

    def _ticket(self, call: SimCall) -> SimTicket:
        rng = self.rng
        kind = _weighted(rng, tuple(TICKET_WEIGHTS.items()))
        sla_ms = round(TICKET_SLA_H[kind] * HOUR_MS)
        opened_ms = call.ended_ms + rng.randint(1000, 60_000)
        due_ms = opened_ms + sla_ms
        ticket_id = self._new_id("t")
        queue = call.queue if rng.random() < 0.8 else None
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
        return SimTicket(ticket_id, call.call_id, kind, opened_ms, due_ms, queue, closed_ms)


def _pick(rng: random.Random, weights: list[float]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in options], weights=[w for _, w in options])[0]


def _score(value: float) -> int:
    return max(1, min(10, round(value)))
