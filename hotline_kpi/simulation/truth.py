"""The ground truth: what the simulated hotline's KPIs are, as SPEC §3 defines each one.

Computed from the simulation's own records (:mod:`.records`), independently of the pipeline:
this module imports neither the fold, nor the store, nor the KPI catalogue, so that tests can
compare the export with it number by number (a test checks its imports).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from hotline_kpi.simulation.clock import iso, local_month
from hotline_kpi.simulation.records import SimCall, SimTicket

_DROP_CAUSES = ("network_failure", "system_failure")


@dataclass(slots=True)
class ScopeCounts:
    """The numerators and denominators of one month in one scope (overall, a queue or a ticket
    kind), as the ground truth counts them."""

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


@dataclass
class GroundTruth:
    """What the simulator knows happened, aggregated as SPEC §3 defines each KPI."""

    zone: ZoneInfo
    short_abandon_ms: int
    service_level_ms: int
    satisfied_score: int
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
                months[month]["overall"] = scope.kpis()
                months[month]["offered"] = self.offered.get(month, 0)
            elif name.startswith("kind:"):
                months[month]["ticket_kinds"][name.removeprefix("kind:")] = [
                    scope.on_time,
                    scope.settled,
                ]
            else:
                months[month]["queues"][name] = scope.kpis()
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
