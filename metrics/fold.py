"""The pure core: fold events into per-call and per-ticket facts and metric deltas (SPEC §3).

No I/O, no clock, no globals: :func:`fold_batch` takes the facts loaded for a batch and the
batch's accepted events, and returns the updated facts, the rows to insert, the conflicts, and
what the Prometheus counters must add. Time is data (event timestamps and the watermark).

Facts are order-independent: ``queued_at`` is a minimum, the queue comes from the earliest
``call.queued`` (ties broken by queue name), and facts that arrive before the event they depend
on are kept until the record is complete. Only a conflict (a second outcome, a second end, a
second opening or closing of a ticket) depends on processing order: the first processed wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from hotline_kpi.ingest.decode import Accepted
from hotline_kpi.ingest.events import (
    DROP_CAUSES,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    QaReviewed,
    SurveyAnswered,
    TicketClosed,
    TicketOpened,
    epoch_us,
)

US = 1_000_000

# Outcome codes as stored.
NO_OUTCOME = 0
ANSWERED = 1
ABANDONED = 2

# Facts of a call that move a counter once, when they first become true (SPEC §4).
OFFERED = 1 << 0
REQUESTED = 1 << 1
ANSWERED_FACT = 1 << 2
WITHIN_THRESHOLD = 1 << 3
ABANDONED_FACT = 1 << 4
SHORT_ABANDON = 1 << 5
DROPPED = 1 << 6
HANDLED = 1 << 7

# Facts of a ticket.
TICKET_DUE = 1 << 0
TICKET_ON_TIME = 1 << 1

UNASSIGNED = "unassigned"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """SPEC §3 thresholds in microseconds (S, T) and the satisfied survey score."""

    short_abandon_us: int
    service_level_us: int
    satisfied_score: int

    @classmethod
    def of_seconds(cls, short_abandon: float, service_level: float, satisfied: int) -> Thresholds:
        """Thresholds from seconds, as configured."""
        return cls(round(short_abandon * US), round(service_level * US), satisfied)


@dataclass(frozen=True, slots=True)
class CallFact:
    """Everything known about one call; ``counted`` says which facts already moved a counter."""

    call_id: str
    offered_at: int | None = None
    queued_at: int | None = None
    queue: str | None = None
    queue_event_at: int | None = None
    outcome: int = NO_OUTCOME
    outcome_at: int | None = None
    agent_id: str | None = None
    ended_at: int | None = None
    cause: str | None = None
    counted: int = 0
    facts: int = 0

    @property
    def wait_us(self) -> int | None:
        """Answer or abandon time minus ``queued_at``, once there is an outcome."""
        if self.outcome == NO_OUTCOME or self.outcome_at is None or self.queued_at is None:
            return None
        return self.outcome_at - self.queued_at

    @property
    def waiting(self) -> bool:
        """Queued, no outcome yet, not ended: a caller on hold now."""
        return self.queued_at is not None and self.outcome == NO_OUTCOME and self.ended_at is None


@dataclass(frozen=True, slots=True)
class TicketFact:
    """Everything known about one work order."""

    ticket_id: str
    opened_at: int | None = None
    due: int | None = None
    kind: str | None = None
    queue: str | None = None
    call_id: str | None = None
    closed_at: int | None = None
    counted: int = 0


@dataclass(frozen=True, slots=True)
class Review:
    """One ``qa.reviewed`` row. ``queue`` is the event's own, else its call's when known."""

    event_id: str
    call_id: str
    agent_id: str
    accurate: bool
    queue: str | None
    category: str | None
    ts: int


@dataclass(frozen=True, slots=True)
class Survey:
    """One ``survey.answered`` row."""

    event_id: str
    call_id: str
    score: int
    queue: str | None
    agent_id: str | None
    factors: Mapping[str, int] | None
    ts: int


@dataclass(slots=True)
class Deltas:
    """What the counters of SPEC §4 must add for a batch (applied only after its commit)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    observations: list[tuple[str, str, float]] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)

    def add(self, metric: str, label: str, amount: int = 1) -> None:
        """Add ``amount`` to ``metric{label}``."""
        key = (metric, label)
        self.counts[key] = self.counts.get(key, 0) + amount

    def observe(self, metric: str, label: str, value: float) -> None:
        """Record one histogram observation."""
        self.observations.append((metric, label, value))


@dataclass(slots=True)
class FoldResult:
    """The outcome of folding one batch."""

    calls: dict[str, CallFact]
    tickets: dict[str, TicketFact]
    reviews: list[Review]
    surveys: list[Survey]
    conflicts: list[tuple[Accepted, str]]
    deltas: Deltas
    watermark: int | None


def call_facts(call: CallFact, thresholds: Thresholds) -> int:
    """The set of SPEC §3 facts true of ``call`` now, as a bit mask."""
    facts = 0
    if call.offered_at is not None:
        facts |= OFFERED
    if call.queued_at is None:
        return facts
    facts |= REQUESTED
    wait = call.wait_us
    if call.outcome == ANSWERED and wait is not None:
        facts |= ANSWERED_FACT
        if wait <= thresholds.service_level_us:
            facts |= WITHIN_THRESHOLD
        if call.cause in DROP_CAUSES:
            facts |= DROPPED
        if call.ended_at is not None:
            facts |= HANDLED
    elif call.outcome == ABANDONED and wait is not None:
        facts |= ABANDONED_FACT
        if wait < thresholds.short_abandon_us:
            facts |= SHORT_ABANDON
    return facts


_CALL_COUNTERS = (
    (REQUESTED, "hotline_agent_requests_total"),
    (ANSWERED_FACT, "hotline_agent_answered_total"),
    (WITHIN_THRESHOLD, "hotline_answered_within_threshold_total"),
    (ABANDONED_FACT, "hotline_calls_abandoned_total"),
    (SHORT_ABANDON, "hotline_calls_short_abandoned_total"),
    (DROPPED, "hotline_calls_dropped_total"),
)


def count_call(call: CallFact, thresholds: Thresholds, deltas: Deltas) -> CallFact:
    """Move the counters for the facts of ``call`` that became true; return it marked counted."""
    facts = call_facts(call, thresholds)
    new = facts & ~call.counted
    if not new:
        return call if facts == call.facts else replace(call, facts=facts)
    queue = call.queue or UNASSIGNED
    if new & OFFERED:
        deltas.add("hotline_calls_offered_total", "")
    for bit, metric in _CALL_COUNTERS:
        if new & bit:
            deltas.add(metric, queue)
    if new & ANSWERED_FACT and call.wait_us is not None:
        deltas.observe("hotline_answer_wait_seconds", queue, call.wait_us / US)
    if new & HANDLED and call.ended_at is not None and call.outcome_at is not None:
        deltas.observe("hotline_handle_seconds", queue, (call.ended_at - call.outcome_at) / US)
    return replace(call, counted=call.counted | new, facts=facts)


def ticket_facts(ticket: TicketFact, watermark: int | None) -> int:
    """SPEC §3 timeliness: settled when closed, or open with ``due`` before the watermark."""
    if ticket.due is None:
        return 0
    if ticket.closed_at is not None:
        return TICKET_DUE | (TICKET_ON_TIME if ticket.closed_at <= ticket.due else 0)
    if watermark is not None and ticket.due < watermark:
        return TICKET_DUE
    return 0


def count_ticket(ticket: TicketFact, watermark: int | None, deltas: Deltas) -> TicketFact:
    """Move the ticket counters for newly settled facts; return the ticket marked counted."""
    new = ticket_facts(ticket, watermark) & ~ticket.counted
    # A ticket first counted overdue never becomes on time later: a counter moves once.
    if ticket.counted & TICKET_DUE:
        new &= ~TICKET_ON_TIME
    if not new:
        return ticket
    kind = ticket.kind or "unknown"
    if new & TICKET_DUE:
        deltas.add("hotline_tickets_due_total", kind)
    if new & TICKET_ON_TIME:
        deltas.add("hotline_tickets_on_time_total", kind)
    return replace(ticket, counted=ticket.counted | new)


def _earliest(current: int | None, candidate: int) -> int:
    return candidate if current is None or candidate < current else current


def _queue_from_queued(call: CallFact, event: CallQueued, ts: int) -> CallFact:
    earlier = call.queue_event_at is None or (ts, event.queue) < (
        call.queue_event_at,
        call.queue or "",
    )
    return replace(
        call,
        queued_at=_earliest(call.queued_at, ts),
        queue=event.queue if earlier else call.queue,
        queue_event_at=ts if earlier else call.queue_event_at,
    )


def apply_call_event(call: CallFact, item: Accepted) -> CallFact | str:
    """Apply one call event to its fact; a string is the conflict that rejects the event."""
    event = item.event
    ts = item.ts_us
    if isinstance(event, CallOffered):
        return replace(call, offered_at=_earliest(call.offered_at, ts))
    if isinstance(event, CallQueued):
        return _queue_from_queued(call, event, ts)
    if isinstance(event, CallAnswered | CallAbandoned):
        if call.outcome != NO_OUTCOME:
            return "the call already has an outcome"
        outcome = ANSWERED if isinstance(event, CallAnswered) else ABANDONED
        return replace(
            call,
            queued_at=_earliest(call.queued_at, ts),
            queue=call.queue if call.queue_event_at is not None else event.queue,
            outcome=outcome,
            outcome_at=ts,
            agent_id=event.agent_id if isinstance(event, CallAnswered) else None,
        )
    if isinstance(event, CallEnded):
        if call.ended_at is not None:
            return "the call already ended"
        return replace(call, ended_at=ts, cause=event.cause)
    raise TypeError(f"not a call event: {type(event).__name__}")


def apply_ticket_event(ticket: TicketFact, item: Accepted) -> TicketFact | str:
    """Apply one ticket event; a string is the conflict that rejects the event."""
    event = item.event
    if isinstance(event, TicketOpened):
        if ticket.opened_at is not None:
            return "the ticket was already opened"
        return replace(
            ticket,
            opened_at=item.ts_us,
            due=epoch_us(event.due),
            kind=event.kind,
            queue=event.queue,
            call_id=event.call_id,
        )
    if isinstance(event, TicketClosed):
        if ticket.closed_at is not None:
            return "the ticket was already closed"
        return replace(ticket, closed_at=item.ts_us)
    raise TypeError(f"not a ticket event: {type(event).__name__}")


def fold_batch(
    items: Sequence[Accepted],
    calls: Mapping[str, CallFact],
    tickets: Mapping[str, TicketFact],
    thresholds: Thresholds,
    watermark: int | None,
    overdue: Iterable[TicketFact] = (),
) -> FoldResult:
    """Fold one batch of accepted, de-duplicated events in processing order.

    ``calls`` and ``tickets`` hold the stored facts of every call and ticket the batch touches
    (absent ones are new); ``overdue`` are stored open tickets whose ``due`` may have passed.
    Inputs are not modified.
    """
    out_calls: dict[str, CallFact] = {}
    out_tickets: dict[str, TicketFact] = {}
    reviews: list[Review] = []
    surveys: list[Survey] = []
    conflicts: list[tuple[Accepted, str]] = []
    deltas = Deltas()
    touched_calls: set[str] = set()
    touched_tickets: set[str] = set()

    def call_of(call_id: str) -> CallFact:
        found = out_calls.get(call_id) or calls.get(call_id)
        return found if found is not None else CallFact(call_id)

    def ticket_of(ticket_id: str) -> TicketFact:
        found = out_tickets.get(ticket_id) or tickets.get(ticket_id)
        return found if found is not None else TicketFact(ticket_id)

    for item in items:
        event = item.event
        if isinstance(event, CallOffered | CallQueued | CallAnswered | CallAbandoned | CallEnded):
            applied = apply_call_event(call_of(event.call_id), item)
            if isinstance(applied, str):
                conflicts.append((item, applied))
                continue
            out_calls[event.call_id] = applied
            touched_calls.add(event.call_id)
        elif isinstance(event, TicketOpened | TicketClosed):
            applied_ticket = apply_ticket_event(ticket_of(event.ticket_id), item)
            if isinstance(applied_ticket, str):
                conflicts.append((item, applied_ticket))
                continue
            out_tickets[event.ticket_id] = applied_ticket
            touched_tickets.add(event.ticket_id)
        elif isinstance(event, QaReviewed):
            queue = event.queue or call_of(event.call_id).queue
            reviews.append(
                Review(
                    event.event_id,
                    event.call_id,
                    event.agent_id,
                    event.accurate,
                    event.queue,
                    event.category,
                    item.ts_us,
                )
            )
            label = queue or UNASSIGNED
            deltas.add("hotline_qa_reviews_total", label)
            if event.accurate:
                deltas.add("hotline_qa_accurate_total", label)
        elif isinstance(event, SurveyAnswered):
            queue = event.queue or call_of(event.call_id).queue
            surveys.append(
                Survey(
                    event.event_id,
                    event.call_id,
                    event.score,
                    event.queue,
                    event.agent_id,
                    event.factors,
                    item.ts_us,
                )
            )
            label = queue or UNASSIGNED
            deltas.add("hotline_survey_responses_total", label)
            if event.score >= thresholds.satisfied_score:
                deltas.add("hotline_survey_satisfied_total", label)
        deltas.events[event.type] = deltas.events.get(event.type, 0) + 1
        if watermark is None or item.ts_us > watermark:
            watermark = item.ts_us

    for call_id in touched_calls:
        out_calls[call_id] = count_call(out_calls[call_id], thresholds, deltas)
    for ticket_id in touched_tickets:
        out_tickets[ticket_id] = count_ticket(out_tickets[ticket_id], watermark, deltas)
    for ticket in overdue:
        if ticket.ticket_id not in out_tickets:
            settled = count_ticket(ticket, watermark, deltas)
            if settled is not ticket:
                out_tickets[ticket.ticket_id] = settled
    return FoldResult(out_calls, out_tickets, reviews, surveys, conflicts, deltas, watermark)
