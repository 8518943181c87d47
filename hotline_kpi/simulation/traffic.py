"""The traffic model: who calls when, which queue, how long they wait, what follows.

Each skill queue is a multi-server FCFS queue with impatient callers (M(t)/G/n(t)+G): arrivals
follow a daily curve, agents work the hours their queue is staffed for, a caller abandons when
the wait would exceed their patience (some within a few seconds), answered calls have lognormal
handle times and rarely drop. Calls are sampled for QA review, some open work orders with
deadlines (a few late, a few never closed), and some callers answer a 10-point survey with factor
scores. Waits are computed exactly: a call is served by the agent that can start it earliest,
and a caller who abandons holds no agent.

The v2 event model (:meth:`Traffic.contact`) runs the same queues and agents, and adds what a
v1 call never does: a caller can be blocked at the door of a queue (closed, no agent available,
too many waiting), leave it (a queue maximum, a callback, an overflow into another queue), be
transferred by an agent into another queue (each queue passed through is a leg of one contact),
and call again within hours under one of several spellings of the same number. Agents hold
callers, do after-call work and take breaks; :mod:`.shifts` writes their states.

The model decides what happens (:mod:`.records`); it writes no events and counts no KPIs. It
draws from the random generator it is given, which the event writer shares: the order of draws
is what makes a seed give the same file. The v1 path draws exactly as it did before v2 existed,
so that a v1 run is the same file byte for byte.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from zoneinfo import ZoneInfo

from hotline_kpi.simulation.clock import DAY_MS, HOUR_MS, local_hour
from hotline_kpi.simulation.records import (
    SimCall,
    SimContact,
    SimReview,
    SimState,
    SimSurvey,
    SimTicket,
)
from hotline_kpi.simulation.shifts import AgentTimeline

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


# v2: where a leg goes when a queue overflows or an agent transfers the caller.
OVERFLOW_TO = {"billing": "mobile", "mobile": "billing", "broadband": "fault_repair",
               "fault_repair": "broadband", "vip": "billing"}  # fmt: skip
# v2: the longest a caller may wait in each queue before the system moves them out (timeout).
MAX_WAIT_S = {"billing": 300, "broadband": 360, "mobile": 300, "fault_repair": 420, "vip": 150}
# v2: local hours a queue takes callers ([open, close)); the others take them around the clock.
OPENING_HOURS = {"vip": (7, 23)}
MAX_LEGS = 3  # a contact passes through at most this many queues


@dataclass(frozen=True, slots=True)
class ContactKnobs:
    """Knobs of the v2 event model: repeat callers, blocking, leaving, breaks."""

    repeat_share: float = 0.12  # contacts from someone who called in the last 36 hours
    repeat_horizon_h: float = 36.0
    complainer_share: float = 0.04  # new callers who open a complaint whenever answered
    cap_base: int = 6  # a queue is full with cap_base + cap_per_agent × staffed callers waiting
    cap_per_agent: float = 2.0
    callback_after_s: int = 60  # waiters past this may ask to be called back ...
    callback_share: float = 0.12  # ... this share of them
    overflow_after_s: int = 120  # waiters past this may be routed to another queue ...
    overflow_share: float = 0.35  # ... this share of them
    break_every_h: float = 2.0  # an agent takes a break after a call this long after the last


@dataclass(frozen=True, slots=True)
class Scenario:
    """Knobs of the simulated hotline (``v2``: those only the v2 event model uses)."""

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
    # Left out of repr: a v1 run's ids digest the scenario's repr, which must not change.
    v2: ContactKnobs = field(default_factory=ContactKnobs, repr=False)

    @classmethod
    def named(cls, name: str, calls_per_day: int) -> Scenario:
        """``normal`` meets the targets most hours; ``understaffed`` breaches connection rate;
        ``repeat-spike`` (v2) has callers calling again and again and queues turning them away.
        """
        if name == "understaffed":
            return cls(calls_per_day=calls_per_day, coverage=0.78, safety=0.0)
        if name == "repeat-spike":
            spike = ContactKnobs(
                repeat_share=0.45,
                repeat_horizon_h=8.0,
                complainer_share=0.15,
                cap_base=1,
                cap_per_agent=0.5,
            )
            return cls(calls_per_day=calls_per_day, coverage=0.85, safety=0.3, v2=spike)
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
        # v2: each agent's latest break [from, until), when it began, and the day of its lunch.
        self.away = [(0, 0)] * len(self.ids)
        self.rested_ms = [0] * len(self.ids)
        self.lunch_day = [-1] * len(self.ids)
        self.timelines: list[AgentTimeline] = []
        self.waiting: list[int] = []  # heap of the times the queue's callers stop waiting

    def all_away(self, ms: int) -> bool:
        """Whether every agent on duty at ``ms`` is on a break then (none can take a call)."""
        staffed = self.staffed(ms)
        return staffed > 0 and all(
            self.away[agent][0] <= ms < self.away[agent][1] for agent in range(staffed)
        )

    def waiting_at(self, ms: int) -> int:
        """Callers still waiting at ``ms`` (of those queued so far; approximately in time)."""
        while self.waiting and self.waiting[0] <= ms:
            heapq.heappop(self.waiting)
        return len(self.waiting)

    def _hour(self, ms: int) -> int:
        bucket = ms // HOUR_MS
        hour = self._hours.get(bucket)
        if hour is None:
            hour = self._hours[bucket] = local_hour(bucket * HOUR_MS, self.zone)
        return hour

    def on_duty(self, agent: int, ms: int) -> bool:
        """Whether the staffing puts ``agent`` on duty at ``ms``."""
        return agent < self.staff[self._hour(ms)]

    def staffed(self, ms: int) -> int:
        """How many agents are on duty at ``ms`` (0: the queue is closed)."""
        return self.staff[self._hour(ms)]

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
        event_model: str = "v1",
    ) -> None:
        self.scenario = scenario
        self.zone = zone
        self.rng = rng
        self.short_ms = short_abandon_ms
        self.service_ms = service_level_ms
        self._new_id = new_id
        self.v2 = event_model == "v2"
        self._agents = [
            QueueAgents(index + 1, self._staffing(profile), zone)
            for index, profile in enumerate(QUEUES)
        ]
        for agents in self._agents:
            agents.skill = [rng.uniform(0.955, 0.998) for _ in agents.ids]
        self._index = {profile.name: index for index, profile in enumerate(QUEUES)}
        # v2: recent callers (offered ms, number's digits) to call again, and who complains.
        self._recent: deque[tuple[int, str]] = deque()
        self._complainers: set[str] = set()
        self.states: list[SimState] = []  # agents' state changes written, not yet taken

    def _staffing(self, profile: QueueProfile) -> list[int]:
        staff = self.scenario.staffing(profile)
        if self.v2 and profile.name in OPENING_HOURS:
            opens, closes = OPENING_HOURS[profile.name]
            staff = [n if opens <= hour < closes else 0 for hour, n in enumerate(staff)]
        return staff

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

    # ---- v2: contacts of several legs, blocking and leaving, repeat callers, agents' states

    def start_shifts(self, start_ms: int) -> None:
        """v2: agents' states are written from ``start_ms`` on."""
        for agents in self._agents:
            agents.timelines = [
                AgentTimeline(agent_id, partial(agents.on_duty, k), self.states.append, start_ms)
                for k, agent_id in enumerate(agents.ids)
            ]

    def settle_shifts(self, stop_ms: int) -> None:
        """v2: every state before ``stop_ms`` is final (calls offered later start later)."""
        for agents in self._agents:
            for timeline in agents.timelines:
                timeline.settle(stop_ms)

    def end_shifts(self, end_ms: int) -> None:
        """v2: the simulation ends; every agent logs out once free."""
        for agents in self._agents:
            for timeline in agents.timelines:
                timeline.log_out(end_ms)

    def contact(self, offered_ms: int) -> SimContact:
        """v2: the course of one phone call offered at ``offered_ms``: its legs, what follows."""
        rng = self.rng
        s = self.scenario
        contact = SimContact(self._new_id("k"), offered_ms, self._caller(offered_ms))
        if rng.random() >= s.agent_request_share:
            leg = SimCall(self._new_id("c"), offered_ms, contact.caller)
            leg.ended_ms = offered_ms + rng.randint(20_000, 180_000)
            contact.legs.append(leg)
        else:
            index = _pick(rng, [profile.share for profile in QUEUES])
            at_ms = offered_ms + rng.randint(8_000, 60_000)
            patience = self._patience_ms(QUEUES[index])
            step: tuple[int, int, int] | None = (index, at_ms, patience)
            while step is not None:
                index, at_ms, patience = step
                leg = SimCall(
                    self._new_id("c"), offered_ms, contact.caller, first_leg=not contact.legs
                )
                contact.legs.append(leg)
                step = self._leg(leg, index, at_ms, patience, len(contact.legs) < MAX_LEGS)
        self._contact_follow_up(contact)
        # A contact of one leg names its contact id now and then (a leg without one is its
        # own contact); the legs of a transfer or an overflow always do.
        if len(contact.legs) > 1 or rng.random() < 0.3:
            for leg in contact.legs:
                leg.contact_id = contact.contact_id
        return contact

    def _caller(self, offered_ms: int) -> str | None:
        """A caller's number as the switch spells it: often someone who called recently."""
        rng = self.rng
        knobs = self.scenario.v2
        r = rng.random()
        if r < 0.10:
            return None  # no number at all
        if r < 0.14:
            return rng.choice(("anonymous", "", "1234", "Anonymous"))  # no caller key
        horizon = offered_ms - round(knobs.repeat_horizon_h * HOUR_MS)
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        if self._recent and rng.random() < knobs.repeat_share:
            digits = self._recent[rng.randrange(len(self._recent))][1]
        else:
            if rng.random() < 0.85:
                digits = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
            else:
                area = rng.choice(("010", "021", "020", "0755", "028"))
                digits = f"{area}{rng.randrange(2 * 10**7, 9 * 10**7)}"
            if rng.random() < knobs.complainer_share:
                self._complainers.add(digits)
        self._recent.append((offered_ms, digits))
        return _spelling(rng, digits)

    def _leg(
        self, leg: SimCall, index: int, at_ms: int, patience: int, may_pass: bool
    ) -> tuple[int, int, int] | None:
        """One leg in queue ``index`` from ``at_ms``; the next leg (queue, at, patience) of a
        transfer or an overflow, or None. ``may_pass``: the contact may have another leg."""
        rng = self.rng
        knobs = self.scenario.v2
        profile, agents = QUEUES[index], self._agents[index]
        leg.queue = profile.name
        staffed = agents.staffed(at_ms)
        reason = None
        if staffed == 0:
            reason = "closed"
        elif agents.all_away(at_ms):
            if rng.random() < 0.5:
                # Let in, then moved out by the system when no agent comes back soon.
                leg.queued_ms = at_ms
                self._left(leg, agents, at_ms + rng.randint(3000, 20_000), "no_agents")
                return None
            reason = "no_agents"
        elif agents.waiting_at(at_ms) >= knobs.cap_base + knobs.cap_per_agent * staffed:
            reason = "queue_full"
        if reason is not None:
            leg.blocked_ms, leg.blocked_reason = at_ms, reason
            if rng.random() < 0.15:
                leg.queued_ms = at_ms  # queued as well: it stays blocked (SPEC §3)
            if rng.random() < 0.7:
                leg.ended_ms = at_ms + rng.randint(0, 3000)
            else:
                leg.ends = False
            return None
        agent, start_ms = agents.earliest(at_ms)
        wait_ms = start_ms - at_ms
        # Threshold edges: some legs are answered exactly T after they queued.
        if wait_ms > 0 and rng.random() < 0.03 and start_ms - self.service_ms > at_ms:
            at_ms = start_ms - self.service_ms
            wait_ms = self.service_ms
        leg.queued_ms = at_ms
        closes_ms = _closing(agents, at_ms) if profile.name in OPENING_HOURS else None
        max_wait_ms = MAX_WAIT_S[profile.name] * 1000
        callback_ms = knobs.callback_after_s * 1000
        overflow_ms = knobs.overflow_after_s * 1000
        if rng.random() < self.scenario.waiting_failure_probability:
            leg.ended_ms = at_ms + min(wait_ms, patience) // 2 + 1
            leg.cause = "system_failure"
            heapq.heappush(agents.waiting, leg.ended_ms)
            return None
        if closes_ms is not None and start_ms > closes_ms and patience >= closes_ms - at_ms:
            self._left(leg, agents, closes_ms, "no_agents")
            return None
        if wait_ms > callback_ms and patience > callback_ms and rng.random() < knobs.callback_share:
            left_ms = at_ms + rng.randint(callback_ms, min(wait_ms, patience))
            self._left(leg, agents, left_ms, "callback_requested")
            return None
        if (
            may_pass
            and wait_ms > overflow_ms
            and patience > overflow_ms
            and rng.random() < knobs.overflow_share
        ):
            self._left(leg, agents, at_ms + overflow_ms, "overflow")
            leg.ends = False  # the caller goes on in the next leg
            return self._index[OVERFLOW_TO[profile.name]], at_ms + overflow_ms, patience
        if wait_ms > max_wait_ms and patience > max_wait_ms:
            self._left(leg, agents, at_ms + max_wait_ms, "timeout")
            return None
        if wait_ms > patience:
            leg.abandoned_ms = at_ms + patience
            leg.ended_ms = leg.abandoned_ms + rng.randint(0, 1500)
            heapq.heappush(agents.waiting, leg.abandoned_ms)
            return None
        heapq.heappush(agents.waiting, start_ms)
        return self._answered(leg, agents, agent, start_ms, wait_ms, may_pass)

    def _left(self, leg: SimCall, agents: QueueAgents, left_ms: int, reason: str) -> None:
        """The caller leaves the queue unanswered at ``left_ms`` and hangs up soon after."""
        leg.left_ms, leg.left_reason = left_ms, reason
        leg.ended_ms = left_ms + self.rng.randint(0, 2000)
        heapq.heappush(agents.waiting, left_ms)

    def _answered(
        self,
        leg: SimCall,
        agents: QueueAgents,
        agent: int,
        start_ms: int,
        wait_ms: int,
        may_pass: bool,
    ) -> tuple[int, int, int] | None:
        """An answered leg: talk, hold, after-call work, maybe a break; a transfer goes on."""
        rng = self.rng
        profile = QUEUES[self._index[leg.queue or ""]]
        handle_ms = (
            round(rng.lognormvariate(math.log(profile.handle_mean_s) - 0.18, 0.6) * 1000) + 5000
        )
        leg.answered_ms = start_ms
        leg.agent = agents.ids[agent]
        leg.ended_ms = start_ms + handle_ms
        r = rng.random()
        if r < 0.45:
            leg.hold_ms = None  # the switch sent no hold time
        elif r < 0.55:
            leg.hold_ms = 0
        elif r < 0.65:
            leg.hold_ms = rng.randint(1, 60) * 500  # half seconds: 12.5 and the like
        else:
            leg.hold_ms = rng.randint(1, handle_ms * 3 // 10)  # whole ms, exact as seconds
        if rng.random() < self.scenario.drop_probability:
            leg.cause = rng.choice(DROP_CAUSES)
        else:
            leg.cause = _weighted(rng, CAUSES_OK)
            if leg.cause == "transfer" and not may_pass:
                leg.cause = "agent_hangup"
        r = rng.random()
        free_ms = leg.ended_ms if r < 0.05 else leg.ended_ms + rng.randint(3000, 45_000)
        leg.wrapped_ms = None if rng.random() < 0.05 else free_ms
        timeline = agents.timelines[agent] if agents.timelines else None
        if timeline is not None:
            timeline.call(start_ms, leg.ended_ms, free_ms)
        agents.free_ms[agent] = self._break(agents, agent, free_ms, timeline)
        self._follow_up(leg, agents.skill[agent], wait_ms)
        if leg.cause != "transfer":
            return None
        target = rng.choice([name for name in self._index if name != leg.queue])
        return self._index[target], leg.ended_ms + rng.randint(0, 3000), self._patience_ms(profile)

    def _break(
        self, agents: QueueAgents, agent: int, free_ms: int, timeline: AgentTimeline | None
    ) -> int:
        """Maybe a break once the agent is free: lunch around noon, a short break every couple
        of hours, now and then training. When the agent can take a call again."""
        rng = self.rng
        if not agents.on_duty(agent, free_ms):
            return free_ms  # the shift is over: the agent logs out
        day = (free_ms + 8 * HOUR_MS) // DAY_MS  # a day of the hotline, near enough
        hour = local_hour(free_ms, self.zone)
        if 11 <= hour < 14 and agents.lunch_day[agent] != day and rng.random() < 0.3:
            agents.lunch_day[agent] = day
            reason, length = "lunch", rng.randint(30, 45) * 60_000
        elif free_ms - agents.rested_ms[agent] > self.scenario.v2.break_every_h * HOUR_MS:
            reason, length = "break", rng.randint(5, 15) * 60_000 + rng.randint(0, 59_999)
        elif rng.random() < 0.002:
            reason, length = "training", rng.randint(20, 60) * 60_000
        else:
            return free_ms
        agents.rested_ms[agent] = free_ms + length
        agents.away[agent] = (free_ms, free_ms + length)
        if timeline is not None:
            timeline.away(reason, free_ms + length)
        return free_ms + length

    def _contact_follow_up(self, contact: SimContact) -> None:
        """A contact's work orders may name any of its legs; a complainer complains again."""
        rng = self.rng
        legs = contact.legs
        for leg in legs:
            if leg.ticket is not None:
                leg.ticket = replace(leg.ticket, call_id=rng.choice(legs).call_id)
        answered = [leg for leg in legs if leg.answered_ms is not None]
        digits = _digits(contact.caller)
        if answered and digits in self._complainers and rng.random() < 0.7:
            leg = answered[-1]
            if leg.ticket is None:
                ticket = self._ticket(leg, "complaint")
                leg.ticket = replace(ticket, call_id=rng.choice(legs).call_id)

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

    def _ticket(self, call: SimCall, kind: str | None = None) -> SimTicket:
        rng = self.rng
        if kind is None:
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


def _closing(agents: QueueAgents, ms: int) -> int | None:
    """The next hour boundary after ``ms`` at which the queue closes (within a day), or None."""
    boundary = (ms // HOUR_MS + 1) * HOUR_MS
    for _ in range(24):
        if agents.staffed(boundary) == 0:
            return boundary
        boundary += HOUR_MS
    return None


def _spelling(rng: random.Random, digits: str) -> str:
    """One of the ways a switch writes a number (SPEC §7): the same caller either way."""
    if digits.startswith("0"):  # a landline with its area code
        area, number = (digits[:3], digits[3:]) if digits[1] in "12" else (digits[:4], digits[4:])
        return rng.choice((digits, f"({area}) {number[:4]}-{number[4:]}", f"{area}-{number}"))
    spellings = (
        digits,
        f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}",
        f"0086{digits}",
        f"+86{digits}",
    )
    return rng.choice(spellings)


def _digits(caller: str | None) -> str:
    """The digits :func:`_spelling` started from: enough for the model's own spellings, and
    deliberately not SPEC §7's normaliser (that one lives in the ground truth alone)."""
    if not caller:
        return ""
    text = caller.removeprefix("+86 ").removeprefix("+86").removeprefix("0086")
    return "".join(c for c in text if c.isdigit())


def _pick(rng: random.Random, weights: list[float]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in options], weights=[w for _, w in options])[0]


def _score(value: float) -> int:
    return max(1, min(10, round(value)))
