"""The ground truth: what the simulated hotline's KPIs are, as SPEC §3 defines each one.

Computed from the simulation's own records (:mod:`.records`), independently of the pipeline:
this module imports neither the fold, nor the store, nor the KPI catalogue, so that tests can
compare the export with it number by number (a test checks its imports).

A v1 truth (``event_model="v1"``) writes exactly what it always wrote. A v2 truth counts every
numerator and denominator of SPEC §3's table: legs (blocked, left, transferred, held, wrapped
up) per queue, contacts and their callers' keys (repeats, first-contact resolution, repeat
complaints), and agents' state time split at local month boundaries. It keys callers by the
normalised number itself: the HMAC of SPEC §7 changes which string is the key, not which
contacts share one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from hotline_kpi.simulation.clock import DAY_MS, HOUR_MS, iso, local_month, next_month_ms
from hotline_kpi.simulation.records import SimCall, SimContact, SimState, SimTicket

_DROP_CAUSES = ("network_failure", "system_failure")
BLOCKED_REASONS = ("queue_full", "no_agents", "closed")
LEFT_REASONS = ("timeout", "no_agents", "callback_requested", "overflow")
STATES = ("logged_out", "ready", "busy", "wrap_up", "not_ready")


def caller_key(caller: str | None) -> str | None:
    """SPEC §7's normalised number (what the HMAC is taken over), or None: no caller key.

    Spaces, ``-``, ``(`` and ``)`` go; a leading ``+86`` or ``0086`` goes; the digits stay;
    fewer than 5 digits is no key.
    """
    if caller is None:
        return None
    text = "".join(c for c in caller if c not in " -()")
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    digits = "".join(c for c in text if "0" <= c <= "9")
    return digits if len(digits) >= 5 else None


@dataclass(slots=True)
class ScopeCounts:
    """The numerators and denominators of one month in one scope (overall, a queue or a ticket
    kind), as the ground truth counts them."""

    queued: int = 0  # agent requests (SPEC §3): every leg with a request event
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
    # v2
    blocked: int = 0
    left: int = 0
    transferred: int = 0
    hold_ms: int = 0
    acw_ms: int = 0
    wrapped: int = 0  # answered legs with both call.ended and call.wrapped
    blocked_by: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BLOCKED_REASONS, 0))
    left_by: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEFT_REASONS, 0))
    offered: int = 0
    contacts: int = 0
    keyed: int = 0  # contacts with a caller key
    repeats: int = 0
    fcr_settled: int = 0
    fcr_resolved: int = 0
    complaints: int = 0  # complaint tickets leading to a caller key
    complaint_repeats: int = 0
    state_ms: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))

    def kpis(self) -> dict[str, list[float]]:
        """[numerator, denominator] of each KPI of SPEC §3 over these counts."""
        counted = self.queued - self.short
        return {
            "manual_connection_rate": [self.answered, counted],
            "drop_rate": [self.dropped, self.answered],
            "timeliness": [self.on_time, self.settled],
            "answer_accuracy": [self.qa_ok, self.qa],
            "service_level": [self.within, counted],
            "abandon_rate": [self.abandoned - self.short, counted],
            "average_speed_of_answer": [self.wait_ms / 1000, self.answered],
            "average_handle_time": [self.handle_ms / 1000, self.handled],
            "satisfaction_rate": [self.satisfied, self.surveys],
            "satisfaction_mean": [self.score_sum, self.surveys],
        }

    def kpis_v2(self, blocked_are_requests: bool, overall: bool) -> dict[str, list[float]]:
        """Every KPI of SPEC §3's table; the agent-time and complaint ones only ``overall``."""
        counted = self.queued - self.short - (0 if blocked_are_requests else self.blocked)
        kpis = self.kpis()
        for key in ("manual_connection_rate", "service_level", "abandon_rate"):
            kpis[key][1] = counted
        kpis |= {
            "blocked_rate": [self.blocked, self.queued - self.short],
            "average_hold_time": [self.hold_ms / 1000, self.handled],
            "average_after_call_work": [self.acw_ms / 1000, self.wrapped],
            "transfer_rate": [self.transferred, self.handled],
            "repeat_contact_rate": [self.repeats, self.keyed],
            "first_contact_resolution": [self.fcr_resolved, self.fcr_settled],
        }
        if overall:
            kpis |= {"repeat_complaint_rate": [self.complaint_repeats, self.complaints]}
            kpis |= _state_kpis(self.state_ms)
        return kpis

    def volumes(self) -> dict[str, Any]:
        """The counts behind the rates, reasons with zeros included."""
        return {
            "requests": self.queued,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short,
            "blocked": self.blocked,
            "left": self.left,
            "dropped": self.dropped,
            "transferred": self.transferred,
            "blocked_by_reason": dict(self.blocked_by),
            "left_by_reason": dict(self.left_by),
            "offered": self.offered,
            "contacts": self.contacts,
        }


def _state_kpis(state_ms: dict[str, int]) -> dict[str, list[float]]:
    """Occupancy, utilisation and not-ready share of some state time (SPEC §3), in seconds."""
    working = state_ms["busy"] + state_ms["wrap_up"]
    logged_in = sum(ms for state, ms in state_ms.items() if state != "logged_out")
    return {
        "occupancy": [working / 1000, (state_ms["ready"] + working) / 1000],
        "utilisation": [working / 1000, logged_in / 1000],
        "not_ready_share": [state_ms["not_ready"] / 1000, logged_in / 1000],
    }


@dataclass(frozen=True, slots=True)
class _Contact:
    """What the truth keeps of a contact: when, whose key, which queue, answered or not."""

    offered_ms: int
    key: str | None
    queue: str | None
    answered: bool


@dataclass
class GroundTruth:
    """What the simulator knows happened, aggregated as SPEC §3 defines each KPI."""

    zone: ZoneInfo
    short_abandon_ms: int
    service_level_ms: int
    satisfied_score: int
    event_model: str = "v1"  # "v2": count and write everything SPEC §3 defines
    blocked_are_requests: bool = True  # SPEC §6 definitions.blocked_are_requests
    repeat_window_ms: int = 24 * HOUR_MS  # W
    complaint_window_ms: int = 30 * DAY_MS  # 30 × 24 h, not calendar days
    # (month, None) overall, (month, queue), (month, "kind:" + ticket kind)
    scopes: dict[tuple[str, str | None], ScopeCounts] = field(
        default_factory=lambda: defaultdict(ScopeCounts)
    )
    agents: dict[tuple[str, str], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    tickets: list[SimTicket] = field(default_factory=list)
    offered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejections: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    accepted_events: int = 0
    watermark_ms: int | None = None
    # v2: contacts, complaint tickets (opened ms, caller key) and each agent's state changes.
    contacts: list[_Contact] = field(default_factory=list)
    complaints: list[tuple[int, str]] = field(default_factory=list)
    states: dict[str, list[SimState]] = field(default_factory=lambda: defaultdict(list))

    def month_of(self, ms: int) -> str:
        """The local calendar month of an instant."""
        return local_month(ms, self.zone)

    def _both(self, month: str, queue: str | None) -> list[ScopeCounts]:
        scopes = [self.scopes[(month, None)]]
        if queue is not None:
            scopes.append(self.scopes[(month, queue)])
        return scopes

    def call(self, call: SimCall) -> None:
        """Account one simulated call (attributed to its queued time) and what followed it."""
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
                scope.dropped += call.cause in _DROP_CAUSES
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
            figures["dropped"] += call.cause in _DROP_CAUSES
            # Without a queue of its own, a review or survey counts in its call's queue (SPEC §5).
            if call.review is not None:
                self.review(call.review.ts_ms, call.queue, call.agent, call.review.accurate)
            if call.survey is not None:
                self.survey(call.survey.ts_ms, call.queue, call.agent, call.survey.score)
        if call.ticket is not None:
            self.tickets.append(call.ticket)

    def contact(self, contact: SimContact) -> None:
        """v2: account one contact (attributed to its call.offered) and each of its legs."""
        key = caller_key(contact.caller)
        requests = [(at, leg) for leg in contact.legs if (at := _queued_at(leg)) is not None]
        # A contact's queue is its first agent request's (SPEC §3 "Contacts").
        queue = min(requests, key=lambda item: item[0])[1].queue if requests else None
        answered = any(leg.answered_ms is not None for leg in contact.legs)
        self.contacts.append(_Contact(contact.offered_ms, key, queue, answered))
        month = self.month_of(contact.offered_ms)
        self.offered[month] += 1
        for scope in self._both(month, queue):
            scope.offered += 1
            scope.contacts += 1
        legs = {leg.call_id for leg in contact.legs}
        for leg in contact.legs:
            self._leg(leg)
            ticket = leg.ticket
            if ticket is None:
                continue
            self.tickets.append(ticket)
            # A ticket leads to a caller key through its call_id's contact: this one.
            if ticket.kind == "complaint" and key is not None and ticket.call_id in legs:
                self.complaints.append((ticket.opened_ms, key))

    def _leg(self, leg: SimCall) -> None:
        """v2: one leg, attributed to its queued_at (SPEC §3: per leg, in its own queue)."""
        at = _queued_at(leg)
        if at is None:
            return
        month = self.month_of(at)
        answered = leg.answered_ms is not None
        ended = answered and leg.ends
        hold = (leg.hold_ms or 0) if ended else 0
        wrapped = ended and leg.wrapped_ms is not None
        acw = max(0, (leg.wrapped_ms or 0) - leg.ended_ms) if wrapped else 0
        transferred = ended and leg.cause == "transfer"
        dropped = ended and leg.cause in _DROP_CAUSES
        for scope in self._both(month, leg.queue):
            scope.queued += 1
            if leg.answered_ms is not None:
                wait = leg.answered_ms - at
                scope.answered += 1
                scope.wait_ms += wait
                scope.within += wait <= self.service_level_ms
                scope.dropped += dropped
                scope.handled += ended
                scope.handle_ms += leg.ended_ms - leg.answered_ms if ended else 0
                scope.hold_ms += hold
                scope.wrapped += wrapped
                scope.acw_ms += acw
                scope.transferred += transferred
            elif leg.abandoned_ms is not None:
                scope.abandoned += 1
                scope.short += leg.abandoned_ms - at < self.short_abandon_ms
            elif leg.blocked_reason is not None:
                scope.blocked += 1
                scope.blocked_by[leg.blocked_reason] += 1
            elif leg.left_reason is not None:
                scope.left += 1
                scope.left_by[leg.left_reason] += 1
        if leg.answered_ms is not None and leg.agent is not None:
            # Hold and after-call work belong to the answering agent (SPEC §3 "Agents").
            figures = self.agents[(month, leg.agent)]
            figures["answered"] += 1
            figures["handled"] += ended
            figures["handle_ms"] += leg.ended_ms - leg.answered_ms if ended else 0
            figures["dropped"] += dropped
            figures["hold_ms"] += hold
            figures["wrapped"] += wrapped
            figures["acw_ms"] += acw
            figures["transferred"] += transferred
            if leg.review is not None:
                self.review(leg.review.ts_ms, leg.queue, leg.agent, leg.review.accurate)
            if leg.survey is not None:
                self.survey(leg.survey.ts_ms, leg.queue, leg.agent, leg.survey.score)

    def state(self, state: SimState) -> None:
        """v2: one agent's state change (the simulator writes each agent's in time order)."""
        self.states[state.agent].append(state)

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
        """Per month: overall and per queue numerators/denominators, agents, ticket kinds.

        ``{"timezone", "watermark", "accepted_events", "rejections", "months": {"YYYY-MM": {
        "overall": {kpi: [numerator, denominator]}, "queues": {queue: {kpi: [n, d]}},
        "offered": n, "ticket_kinds": {kind: [on time, settled]}, "agents": {agent_id: {
        "answered", "handled", "handle_seconds", "dropped", "qa_reviews", "qa_accurate",
        "surveys", "score_sum"}}}}}``; seconds are numbers of seconds.

        A v2 truth adds, at the top, ``"event_model": "v2"`` and ``"definitions":
        {"blocked_are_requests", "short_abandon_seconds", "service_level_seconds",
        "repeat_window_hours", "repeat_complaint_days"}``; in each month:

        - ``overall`` and each queue also have ``blocked_rate``, ``average_hold_time``,
          ``average_after_call_work``, ``transfer_rate``, ``repeat_contact_rate``,
          ``first_contact_resolution`` (a queue's contacts: those whose first request was
          there); ``overall`` also ``repeat_complaint_rate``, ``occupancy``, ``utilisation``
          and ``not_ready_share`` (seconds of all agents pooled);
        - ``volumes``: ``{"overall": v, "queues": {queue: v}}`` with v = ``{"requests",
          "answered", "abandoned", "short_abandoned", "blocked", "left", "dropped",
          "transferred", "blocked_by_reason": {reason: n}, "left_by_reason": {reason: n},
          "offered", "contacts"}`` (every reason of SPEC §2, zeros included);
        - each agent also has ``hold_seconds``, ``after_call_work_seconds``, ``wrapped``,
          ``transferred``, ``logged_in_seconds``, ``state_seconds`` ``{state: s}`` (all five
          states), ``not_ready_reasons`` ``{reason: s}`` and ``kpis`` ``{kpi: [n, d]}``
          (``average_hold_time``, ``average_after_call_work``, ``transfer_rate``,
          ``occupancy``, ``utilisation``, ``not_ready_share``). An agent is listed when it has
          a call, review or survey figure or logged-in time in the month.
        """
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
        v2 = self.event_model == "v2"
        state_ms: dict[tuple[str, str], dict[str, int]] = {}
        reasons_ms: dict[tuple[str, str], dict[str, int]] = {}
        if v2:
            self._count_contacts()
            state_ms, reasons_ms = self._count_states()
        months: dict[str, Any] = defaultdict(
            lambda: {"queues": {}, "ticket_kinds": {}, "agents": {}}
        )
        for (month, name), scope in sorted(
            self.scopes.items(), key=lambda item: (item[0][0], item[0][1] or "")
        ):
            if name is None:
                if v2:
                    months[month]["overall"] = scope.kpis_v2(self.blocked_are_requests, True)
                    months[month].setdefault("volumes", {"queues": {}})["overall"] = scope.volumes()
                else:
                    months[month]["overall"] = scope.kpis()
                months[month]["offered"] = self.offered.get(month, 0)
            elif name.startswith("kind:"):
                months[month]["ticket_kinds"][name.removeprefix("kind:")] = [
                    scope.on_time,
                    scope.settled,
                ]
            elif v2:
                months[month]["queues"][name] = scope.kpis_v2(self.blocked_are_requests, False)
                volumes = months[month].setdefault("volumes", {"queues": {}})
                volumes["queues"][name] = scope.volumes()
            else:
                months[month]["queues"][name] = scope.kpis()
        listed = set(self.agents)
        listed |= {
            item
            for item, ms in state_ms.items()
            if any(ms[state] for state in STATES if state != "logged_out")
        }
        for month, agent in sorted(listed):
            figures = self.agents.get((month, agent), {})
            entry: dict[str, Any] = {
                "answered": int(figures.get("answered", 0)),
                "handled": int(figures.get("handled", 0)),
                "handle_seconds": figures.get("handle_ms", 0) / 1000,
                "dropped": int(figures.get("dropped", 0)),
                "qa_reviews": int(figures.get("qa_reviews", 0)),
                "qa_accurate": int(figures.get("qa_accurate", 0)),
                "surveys": int(figures.get("surveys", 0)),
                "score_sum": int(figures.get("score_sum", 0)),
            }
            if v2:
                entry |= _agent_v2(
                    figures,
                    state_ms.get((month, agent), dict.fromkeys(STATES, 0)),
                    reasons_ms.get((month, agent), {}),
                )
            months[month]["agents"][agent] = entry
        result: dict[str, Any] = {
            "timezone": str(self.zone),
            "watermark": None if self.watermark_ms is None else iso(self.watermark_ms, self.zone),
            "accepted_events": self.accepted_events,
            "rejections": dict(sorted(self.rejections.items())),
            "months": dict(months),
        }
        if v2:
            result["event_model"] = "v2"
            result["definitions"] = {
                "blocked_are_requests": self.blocked_are_requests,
                "short_abandon_seconds": self.short_abandon_ms / 1000,
                "service_level_seconds": self.service_level_ms / 1000,
                "repeat_window_hours": self.repeat_window_ms / HOUR_MS,
                "repeat_complaint_days": self.complaint_window_ms / DAY_MS,
            }
        return result

    def _count_contacts(self) -> None:
        """Repeat and resolution flags of contacts, repeat complaints (SPEC §3 "Windows")."""
        for scope in self.scopes.values():
            scope.keyed = scope.repeats = scope.fcr_settled = scope.fcr_resolved = 0
            scope.complaints = scope.complaint_repeats = 0
        now = self.watermark_ms
        window = self.repeat_window_ms
        offered: dict[str, list[int]] = defaultdict(list)
        for contact in self.contacts:
            if contact.key is not None:
                offered[contact.key].append(contact.offered_ms)
        for times in offered.values():
            times.sort()
        for contact in self.contacts:
            if contact.key is None:
                continue
            t, times = contact.offered_ms, offered[contact.key]
            # another contact at t' with t - W <= t' < t
            repeat = bisect_left(times, t) > bisect_left(times, t - window)
            settled = contact.answered and now is not None and t + window <= now
            # none at t' with t < t' <= t + W
            resolved = bisect_right(times, t + window) == bisect_right(times, t)
            for scope in self._both(self.month_of(t), contact.queue):
                scope.keyed += 1
                scope.repeats += repeat
                scope.fcr_settled += settled
                scope.fcr_resolved += settled and resolved
        opened: dict[str, list[int]] = defaultdict(list)
        for t, key in self.complaints:
            opened[key].append(t)
        for times in opened.values():
            times.sort()
        for t, key in self.complaints:
            times = opened[key]
            scope = self.scopes[(self.month_of(t), None)]
            scope.complaints += 1
            scope.complaint_repeats += bisect_left(times, t) > bisect_left(
                times, t - self.complaint_window_ms
            )

    def _count_states(
        self,
    ) -> tuple[dict[tuple[str, str], dict[str, int]], dict[tuple[str, str], dict[str, int]]]:
        """Each agent's ms per state and per not-ready reason, per (month, agent); pooled into
        the overall scopes. A state holds until the agent's next, the last until "now"; time is
        split at local month boundaries; time before an agent's first state does not count."""
        for scope in self.scopes.values():
            scope.state_ms = dict.fromkeys(STATES, 0)
        state_ms: dict[tuple[str, str], dict[str, int]] = {}
        reasons_ms: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        now = self.watermark_ms
        if now is None:
            return state_ms, reasons_ms
        for agent, changes in self.states.items():
            ordered = sorted(changes, key=lambda change: change.ts_ms)
            for i, change in enumerate(ordered):
                end = ordered[i + 1].ts_ms if i + 1 < len(ordered) else max(now, change.ts_ms)
                t = change.ts_ms
                while t < end:
                    stop = min(end, next_month_ms(t, self.zone))
                    month = self.month_of(t)
                    per_state = state_ms.setdefault((month, agent), dict.fromkeys(STATES, 0))
                    per_state[change.state] += stop - t
                    self.scopes[(month, None)].state_ms[change.state] += stop - t
                    if change.state == "not_ready":
                        reasons_ms[(month, agent)][change.reason or ""] += stop - t
                    t = stop
        return state_ms, reasons_ms


def _queued_at(leg: SimCall) -> int | None:
    """The earliest of a leg's request events (SPEC §3), or None: not an agent request."""
    times = [
        ms
        for ms in (leg.queued_ms, leg.answered_ms, leg.abandoned_ms, leg.blocked_ms, leg.left_ms)
        if ms is not None
    ]
    return min(times) if times else None


def _agent_v2(
    figures: dict[str, float], state_ms: dict[str, int], reasons_ms: dict[str, int]
) -> dict[str, Any]:
    """An agent's v2 figures: hold, after-call work, transfers, state time and their KPIs."""
    handled = int(figures.get("handled", 0))
    wrapped = int(figures.get("wrapped", 0))
    hold_s = figures.get("hold_ms", 0) / 1000
    acw_s = figures.get("acw_ms", 0) / 1000
    transferred = int(figures.get("transferred", 0))
    logged_in = sum(ms for state, ms in state_ms.items() if state != "logged_out")
    return {
        "hold_seconds": hold_s,
        "after_call_work_seconds": acw_s,
        "wrapped": wrapped,
        "transferred": transferred,
        "logged_in_seconds": logged_in / 1000,
        "state_seconds": {state: ms / 1000 for state, ms in state_ms.items()},
        "not_ready_reasons": {reason: ms / 1000 for reason, ms in sorted(reasons_ms.items())},
        "kpis": {
            "average_hold_time": [hold_s, handled],
            "average_after_call_work": [acw_s, wrapped],
            "transfer_rate": [transferred, handled],
            **_state_kpis(state_ms),
        },
    }
