"""The pure core: fold events into per-call and per-ticket facts and metric deltas (SPEC §3).

No I/O, no clock, no globals: :func:`fold_batch` takes the facts loaded for a batch and the
batch's accepted events, and returns the updated facts, the rows to insert, the conflicts, and
what the Prometheus counters must add. Time is data (event timestamps and the watermark).

Facts are order-independent: ``queued_at`` is a minimum, the queue comes from the earliest
``call.queued`` (ties broken by queue name), and facts that arrive before the event they depend
on are kept until the record is complete. Only a conflict (a second outcome, a second end or
wrap-up, a second ``call.offered`` or ``contact_id``, a second opening or closing of a ticket)
depends on processing order: the first processed wins.

Legs group into contacts (SPEC §2): a leg's contact is ``"c:" + contact_id``, or ``"l:" +
call_id`` while it has none, so the two name spaces never meet. A contact's ``call.offered``
(time and caller key) lives on the contact; the repeat and resolution flags are computed when
reading, from the contacts' keys. Agent state changes are kept as they come (one row each): the
timeline is computed when reading, so it is independent of arrival order too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import TypeAlias, TypeVar, cast, get_args

from hotline_kpi.ingest import rfc3339
from hotline_kpi.ingest.decode import Accepted
from hotline_kpi.ingest.events import DROP_CAUSES
from hotline_kpi.ingest.wire import (
    AgentState,
    CallAbandoned,
    CallAnswered,
    CallBlocked,
    CallEnded,
    CallEvent,
    CallLeft,
    CallQueued,
    QaReviewed,
    SurveyAnswered,
    TicketClosed,
    TicketOpened,
)

US = 1_000_000

# Outcome codes as stored.
NO_OUTCOME = 0
ANSWERED = 1
ABANDONED = 2
LEFT = 3
BLOCKED = 4
_OUTCOMES = {
    "call.answered": ANSWERED,
    "call.abandoned": ABANDONED,
    "call.left": LEFT,
    "call.blocked": BLOCKED,
}

# Facts of a call that move a counter once, when they first become true (SPEC §4).
OFFERED = 1 << 0
REQUESTED = 1 << 1
ANSWERED_FACT = 1 << 2
WITHIN_THRESHOLD = 1 << 3
ABANDONED_FACT = 1 << 4
SHORT_ABANDON = 1 << 5
DROPPED = 1 << 6
HANDLED = 1 << 7
BLOCKED_FACT = 1 << 8
LEFT_FACT = 1 << 9
TRANSFERRED = 1 << 10  # answered, ended with cause transfer
WRAPPED = 1 << 11  # answered, ended and wrapped up: its after-call work counts
BLOCKED_EXCLUDED = 1 << 12  # blocked, and definitions.blocked_are_requests is false

# Facts of a contact.
CONTACT_KEYED = 1 << 0
CONTACT_REPEAT = 1 << 1

# Facts of a ticket.
TICKET_DUE = 1 << 0
TICKET_ON_TIME = 1 << 1

UNASSIGNED = "unassigned"


class Count(Enum):
    """What a counter of SPEC §4 counts: a fact counted once, when it first becomes true.

    The fold keys its deltas by these, never by metric names: the exposition maps each member to
    exactly one metric (``metrics/exposition.py``), and mypy checks that the mapping is total.
    Members are named like the catalogue's measures where one exists (``catalogue.Measure``).
    """

    # Identity hashing: Enum's own __hash__ is Python code (hash of the name), and the fold
    # hashes a Count for every delta it adds (issue 17). Members are singletons, so it is exact.
    __hash__ = object.__hash__

    OFFERED = "offered"  # unlabelled
    REQUESTS = "requests"  # this and the following, by queue
    ANSWERED = "answered"
    WITHIN_THRESHOLD = "within_threshold"
    ABANDONED = "abandoned"
    SHORT_ABANDONED = "short_abandoned"
    DROPPED = "dropped"
    QA_REVIEWS = "qa_reviews"
    QA_ACCURATE = "qa_accurate"
    SURVEYS = "surveys"
    SATISFIED = "satisfied"
    TICKETS_SETTLED = "tickets_settled"  # this and the next, by ticket kind
    TICKETS_ON_TIME = "tickets_on_time"
    TRANSFERRED = "transferred"  # by queue
    BLOCKED = "blocked"  # this and the next, by queue and reason (``Deltas.reasons``)
    LEFT = "left"
    CONTACTS_KEYED = "contacts_keyed"  # this and the next, unlabelled
    REPEAT_CONTACTS = "repeat_contacts"


class Timing(Enum):
    """A duration the fold observes once per call, in seconds, by queue (a SPEC §4 histogram)."""

    __hash__ = object.__hash__  # as Count's

    WAIT = "wait"  # answered ts − queued_at
    HANDLE = "handle"  # ended ts − answered ts
    HOLD = "hold"  # hold_seconds of an answered leg that ended
    AFTER_CALL_WORK = "after_call_work"  # max(0, wrapped ts − ended ts)


@dataclass(frozen=True, slots=True)
class FactThresholds:
    """SPEC §3 thresholds in microseconds (S, T) and the satisfied survey score."""

    short_abandon_us: int
    service_level_us: int
    satisfied_score: int
    # SPEC §6 definitions.blocked_are_requests: false takes blocked legs out of counted requests.
    blocked_are_requests: bool = True
    repeat_window_us: int = 24 * 3600 * US  # W: the repeat contact window
    complaint_window_us: int = 30 * 86_400 * US  # the repeat complaint window

    @classmethod
    def of_seconds(
        cls,
        short_abandon: float,
        service_level: float,
        satisfied: int,
        *,
        blocked_are_requests: bool = True,
        repeat_window: float = 24 * 3600,
        complaint_window: float = 30 * 86_400,
    ) -> FactThresholds:
        """FactThresholds from seconds, as configured."""
        return cls(
            round(short_abandon * US),
            round(service_level * US),
            satisfied,
            blocked_are_requests,
            round(repeat_window * US),
            round(complaint_window * US),
        )


def hold_us(seconds: float | None) -> int | None:
    """``hold_seconds`` in microseconds, rounded to the nearest (halves up) from the number as
    written: its shortest decimal spelling, so that ``0.0000005`` is 1 µs, not float noise."""
    if seconds is None:
        return None
    return int(Decimal(repr(float(seconds))).scaleb(6).quantize(Decimal(1), ROUND_HALF_UP))


@dataclass(slots=True)
class CallFact:
    """Everything known about one call; ``counted`` says which facts already moved a counter.

    Mutable for speed on the hot path: :func:`fold_batch` works on its own copies and never
    changes the facts it was given.
    """

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
    contact_id: str | None = None
    reason: str | None = None  # of a blocked or left leg
    hold_us: int | None = None
    wrapped_at: int | None = None

    @property
    def contact_key(self) -> str:
        """The contact this leg belongs to (see the module docstring)."""
        return contact_key(self.call_id, self.contact_id)

    @property
    def wait_us(self) -> int | None:
        """Outcome time (answer, abandon, leaving, blocking) minus ``queued_at``."""
        if self.outcome == NO_OUTCOME or self.outcome_at is None or self.queued_at is None:
            return None
        return self.outcome_at - self.queued_at

    @property
    def waiting(self) -> bool:
        """Queued, no outcome yet, not ended: a caller on hold now."""
        return self.queued_at is not None and self.outcome == NO_OUTCOME and self.ended_at is None

    def copy(self) -> CallFact:
        """An independent copy (cheaper than ``dataclasses.replace``)."""
        return CallFact(
            self.call_id,
            self.offered_at,
            self.queued_at,
            self.queue,
            self.queue_event_at,
            self.outcome,
            self.outcome_at,
            self.agent_id,
            self.ended_at,
            self.cause,
            self.counted,
            self.facts,
            self.contact_id,
            self.reason,
            self.hold_us,
            self.wrapped_at,
        )


def contact_key(call_id: str, contact_id: str | None) -> str:
    """A leg's contact: its ``contact_id`` if it has one, else the leg alone."""
    return "l:" + call_id if contact_id is None else "c:" + contact_id


@dataclass(slots=True)
class ContactFact:
    """A contact's ``call.offered``: when, the leg that carried it, and its caller key (SPEC §7:
    an HMAC of the normalised number, never the number; None without a key or a secret)."""

    contact_key: str
    offered_at: int | None = None
    call_id: str | None = None
    caller_key: str | None = None
    counted: int = 0

    def copy(self) -> ContactFact:
        """An independent copy."""
        return ContactFact(
            self.contact_key, self.offered_at, self.call_id, self.caller_key, self.counted
        )


@dataclass(frozen=True, slots=True)
class StateChange:
    """One ``agent.state`` row: the agent's state from ``ts`` until its next change."""

    event_id: str
    agent_id: str
    ts: int
    state: str
    reason: str | None


@dataclass(slots=True)
class TicketFact:
    """Everything known about one work order (mutable like :class:`CallFact`)."""

    ticket_id: str
    opened_at: int | None = None
    due: int | None = None
    kind: str | None = None
    queue: str | None = None
    call_id: str | None = None
    closed_at: int | None = None
    counted: int = 0

    def copy(self) -> TicketFact:
        """An independent copy."""
        return TicketFact(
            self.ticket_id,
            self.opened_at,
            self.due,
            self.kind,
            self.queue,
            self.call_id,
            self.closed_at,
            self.counted,
        )


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

    @classmethod
    def of(cls, event: QaReviewed, ts_us: int) -> Review:
        """The row of an accepted review stamped ``ts_us``."""
        return cls(
            event.event_id,
            event.call_id,
            event.agent_id,
            event.accurate,
            event.queue,
            event.category,
            ts_us,
        )


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

    @classmethod
    def of(cls, event: SurveyAnswered, ts_us: int) -> Survey:
        """The row of an accepted survey answer stamped ``ts_us``."""
        return cls(
            event.event_id, event.call_id, event.score, event.queue, event.agent_id,
            event.factors, ts_us,
        )  # fmt: skip


@dataclass(slots=True)
class Deltas:
    """What the counters of SPEC §4 must add for a batch (applied only after its commit)."""

    # (what is counted, its label: a queue, a ticket kind, or "" for OFFERED) -> amount
    counts: dict[tuple[Count, str], int] = field(default_factory=dict)
    # (which duration, queue, seconds), one per call
    observations: list[tuple[Timing, str, float]] = field(default_factory=list)
    # event type -> accepted events
    events: dict[str, int] = field(default_factory=dict)
    # (BLOCKED or LEFT, queue, reason) -> amount
    reasons: dict[tuple[Count, str, str], int] = field(default_factory=dict)

    def add(self, count: Count, label: str, amount: int = 1) -> None:
        """Add ``amount`` to what ``count`` counts under ``label``."""
        key = (count, label)
        self.counts[key] = self.counts.get(key, 0) + amount

    def add_reason(self, count: Count, queue: str, reason: str) -> None:
        """Count one blocked or left leg of ``queue`` by its reason."""
        key = (count, queue, reason)
        self.reasons[key] = self.reasons.get(key, 0) + 1

    def observe(self, timing: Timing, queue: str, seconds: float) -> None:
        """Record one duration of a call in ``queue``."""
        self.observations.append((timing, queue, seconds))


@dataclass(slots=True)
class FoldResult:
    """The outcome of folding one batch."""

    calls: dict[str, CallFact]
    tickets: dict[str, TicketFact]
    contacts: dict[str, ContactFact]
    # Contacts merged into another when their leg got a contact_id after its call.offered.
    merged: list[str]
    states: list[StateChange]
    # Stored open tickets that only the watermark settled: (ticket, counted before).
    overdue: list[tuple[TicketFact, int]]
    reviews: list[Review]
    surveys: list[Survey]
    conflicts: list[tuple[Accepted, str]]
    deltas: Deltas
    watermark: int | None


def call_facts(call: CallFact, thresholds: FactThresholds) -> int:
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
            if call.cause == "transfer":
                facts |= TRANSFERRED
            if call.wrapped_at is not None:
                facts |= WRAPPED
    elif call.outcome == ABANDONED and wait is not None:
        facts |= ABANDONED_FACT
        if wait < thresholds.short_abandon_us:
            facts |= SHORT_ABANDON
    elif call.outcome == BLOCKED:
        facts |= BLOCKED_FACT
        if not thresholds.blocked_are_requests:
            facts |= BLOCKED_EXCLUDED
    elif call.outcome == LEFT:
        facts |= LEFT_FACT
    return facts


# The call facts counted by queue, and what each counts.
_CALL_COUNTS = (
    (REQUESTED, Count.REQUESTS),
    (ANSWERED_FACT, Count.ANSWERED),
    (WITHIN_THRESHOLD, Count.WITHIN_THRESHOLD),
    (ABANDONED_FACT, Count.ABANDONED),
    (SHORT_ABANDON, Count.SHORT_ABANDONED),
    (DROPPED, Count.DROPPED),
    (TRANSFERRED, Count.TRANSFERRED),
)


def count_call(call: CallFact, thresholds: FactThresholds, deltas: Deltas) -> CallFact:
    """Move the counters for the facts of ``call`` that became true; mark them counted.

    Updates ``call`` in place (the fold's own copy) and returns it.
    """
    facts = call_facts(call, thresholds)
    call.facts = facts
    new = facts & ~call.counted
    if not new:
        return call
    queue = call.queue or UNASSIGNED
    if new & OFFERED:
        deltas.add(Count.OFFERED, "")
    for bit, count in _CALL_COUNTS:
        if new & bit:
            deltas.add(count, queue)
    if new & ANSWERED_FACT and call.wait_us is not None:
        deltas.observe(Timing.WAIT, queue, call.wait_us / US)
    if new & HANDLED and call.ended_at is not None and call.outcome_at is not None:
        deltas.observe(Timing.HANDLE, queue, (call.ended_at - call.outcome_at) / US)
        deltas.observe(Timing.HOLD, queue, (call.hold_us or 0) / US)
    if new & WRAPPED and call.wrapped_at is not None and call.ended_at is not None:
        deltas.observe(Timing.AFTER_CALL_WORK, queue, max(0, call.wrapped_at - call.ended_at) / US)
    if new & BLOCKED_FACT:
        deltas.add_reason(Count.BLOCKED, queue, call.reason or "")
    if new & LEFT_FACT:
        deltas.add_reason(Count.LEFT, queue, call.reason or "")
    call.counted |= new
    return call


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
    """Move the ticket counters for newly settled facts; mark them counted (in place)."""
    new = ticket_facts(ticket, watermark) & ~ticket.counted
    # A ticket first counted overdue never becomes on time later: a counter moves once.
    if ticket.counted & TICKET_DUE:
        new &= ~TICKET_ON_TIME
    if not new:
        return ticket
    kind = ticket.kind or "unknown"
    if new & TICKET_DUE:
        deltas.add(Count.TICKETS_SETTLED, kind)
    if new & TICKET_ON_TIME:
        deltas.add(Count.TICKETS_ON_TIME, kind)
    ticket.counted |= new
    return ticket


def call_conflict(call: CallFact, item: Accepted, contact: ContactFact | None) -> str | None:
    """Why SPEC §3 rejects this call event for ``call`` as a ``conflict``, or None.

    ``contact`` is the contact the leg belongs to once the event is applied (for an offer).
    Nothing is changed: a rejected event contributes nothing, not even a time.
    """
    event = item.event
    contact_id = getattr(event, "contact_id", None)
    if contact_id is not None and call.contact_id is not None and contact_id != call.contact_id:
        return "the leg already belongs to another contact"
    kind = event.type
    if kind == "call.offered":
        if call.offered_at is not None:
            return "the leg was already offered"
        if contact is not None and contact.offered_at is not None:
            return "the contact was already offered"
        return None
    if kind == "call.ended":
        return "the leg already ended" if call.ended_at is not None else None
    if kind == "call.wrapped":
        return "the leg was already wrapped up" if call.wrapped_at is not None else None
    if kind != "call.queued" and call.outcome != NO_OUTCOME:
        return "the leg already has an outcome"
    return None


# The call events with a queue, that make a leg an agent request.
_RequestEvent: TypeAlias = CallQueued | CallAnswered | CallAbandoned | CallLeft | CallBlocked


def apply_call_event(call: CallFact, item: Accepted) -> None:
    """Apply one call event, already checked by :func:`call_conflict`, to its leg (in place).

    The contact's side of an offer (its time and caller key) is applied by the fold.
    """
    event = item.event
    ts = item.ts_us
    kind = event.type
    contact_id = getattr(event, "contact_id", None)
    if contact_id is not None and call.contact_id is None:
        call.contact_id = contact_id
    if kind == "call.offered":
        call.offered_at = ts
        return
    if kind == "call.ended":
        assert isinstance(event, CallEnded)
        call.ended_at = ts
        call.cause = event.cause
        call.hold_us = hold_us(event.hold_seconds)
        return
    if kind == "call.wrapped":
        call.wrapped_at = ts
        return
    # A cast, not an assert: the type is known from ``kind``, and an isinstance on a union built
    # per call cost a quarter of a microsecond per event.
    event = cast(_RequestEvent, event)
    if call.queued_at is None or ts < call.queued_at:
        call.queued_at = ts
    if kind == "call.queued":
        # SPEC §3: the queue of the earliest call.queued; equal times break ties by name.
        if call.queue_event_at is None or (ts, event.queue) < (
            call.queue_event_at,
            call.queue or "",
        ):
            call.queue = event.queue
            call.queue_event_at = ts
        return
    if call.queue_event_at is None:
        call.queue = event.queue
    call.outcome = _OUTCOMES[kind]
    call.outcome_at = ts
    call.agent_id = event.agent_id if isinstance(event, CallAnswered) else None
    call.reason = event.reason if isinstance(event, CallLeft | CallBlocked) else None


def apply_ticket_event(ticket: TicketFact, item: Accepted) -> str | None:
    """Apply one ticket event (in place); a string is the conflict that rejects it."""
    event = item.event
    if isinstance(event, TicketOpened):
        if ticket.opened_at is not None:
            return "the ticket was already opened"
        ticket.opened_at = item.ts_us
        ticket.due = rfc3339.epoch_us(event.due)
        ticket.kind = event.kind
        ticket.queue = event.queue
        ticket.call_id = event.call_id
        return None
    if isinstance(event, TicketClosed):
        if ticket.closed_at is not None:
            return "the ticket was already closed"
        ticket.closed_at = item.ts_us
        return None
    raise TypeError(f"not a ticket event: {type(event).__name__}")


_Fact = TypeVar("_Fact", CallFact, TicketFact, ContactFact)


def _own_copy(
    own: dict[str, _Fact], stored: Mapping[str, _Fact], key: str, new: Callable[[str], _Fact]
) -> _Fact:
    """The batch's own copy of the facts of ``key``, made on first touch (new if not stored)."""
    fact = own.get(key)
    if fact is None:
        before = stored.get(key)
        fact = own[key] = before.copy() if before is not None else new(key)
    return fact


_CALL_TYPES = frozenset(member.type for member in get_args(CallEvent))
_TICKET_TYPES = frozenset({"ticket.opened", "ticket.closed"})


def fold_batch(
    items: Sequence[Accepted],
    calls: Mapping[str, CallFact],
    tickets: Mapping[str, TicketFact],
    thresholds: FactThresholds,
    watermark: int | None,
    overdue: Iterable[TicketFact] = (),
    *,
    contacts: Mapping[str, ContactFact] | None = None,
    caller_keys: Mapping[str, str | None] | None = None,
    recent: Mapping[str, Sequence[int]] | None = None,
) -> FoldResult:
    """Fold one batch of accepted, de-duplicated events in processing order.

    ``calls``, ``tickets`` and ``contacts`` hold the stored facts of every leg, ticket and
    contact the batch touches (absent ones are new); ``overdue`` are stored open tickets whose
    ``due`` may have passed. ``caller_keys`` maps the event id of each ``call.offered`` to its
    caller key (computed outside: the fold holds no secret), and ``recent`` each such key to the
    offer times of stored contacts with that key, for the repeat counter. Inputs are not
    modified.
    """
    stored_contacts: Mapping[str, ContactFact] = contacts or {}
    keys_of: Mapping[str, str | None] = caller_keys or {}
    out_calls: dict[str, CallFact] = {}
    out_tickets: dict[str, TicketFact] = {}
    out_contacts: dict[str, ContactFact] = {}
    merged: list[str] = []
    states: list[StateChange] = []
    reviews: list[Review] = []
    surveys: list[Survey] = []
    conflicts: list[tuple[Accepted, str]] = []
    deltas = Deltas()
    event_counts = deltas.events

    def queue_of(call_id: str) -> str | None:
        call = out_calls.get(call_id) or calls.get(call_id)
        return call.queue if call is not None else None

    def merge_contact(old: str, new: str) -> None:
        """A leg offered on its own got a contact_id: its offer moves to that contact, unless
        the contact was offered already (then the first offer processed stays)."""
        before = out_contacts.pop(old, None) or stored_contacts.get(old)
        if before is None or before.offered_at is None:
            return
        merged.append(old)
        target = _own_copy(out_contacts, stored_contacts, new, ContactFact)
        if target.offered_at is None:
            target.offered_at, target.call_id = before.offered_at, before.call_id
            target.caller_key, target.counted = before.caller_key, before.counted

    for item in items:
        event = item.event
        kind = event.type
        conflict: str | None = None
        if kind in _CALL_TYPES:
            event = cast(CallEvent, event)  # by its type tag (an isinstance is slower)
            # _own_copy, inlined for the most frequent events.
            call_or_none = out_calls.get(event.call_id)
            if call_or_none is None:
                stored_call = calls.get(event.call_id)
                call_or_none = out_calls[event.call_id] = (
                    stored_call.copy() if stored_call is not None else CallFact(event.call_id)
                )
            call = call_or_none
            contact = None
            if kind == "call.offered":
                key = contact_key(call.call_id, call.contact_id or event.contact_id)
                contact = out_contacts.get(key) or stored_contacts.get(key)
            conflict = call_conflict(call, item, contact)
            if conflict is None:
                # The contact key is a function of the contact id: compare ids, make keys only
                # when it changed.
                before = call.contact_id
                apply_call_event(call, item)
                if call.contact_id != before:
                    merge_contact(contact_key(call.call_id, before), call.contact_key)
                if kind == "call.offered":
                    offer = _own_copy(out_contacts, stored_contacts, call.contact_key, ContactFact)
                    offer.offered_at = item.ts_us
                    offer.call_id = call.call_id
                    offer.caller_key = keys_of.get(event.event_id)
        elif kind in _TICKET_TYPES:
            event = cast("TicketOpened | TicketClosed", event)
            ticket = _own_copy(out_tickets, tickets, event.ticket_id, TicketFact)
            conflict = apply_ticket_event(ticket, item)
        elif isinstance(event, AgentState):
            states.append(
                StateChange(event.event_id, event.agent_id, item.ts_us, event.state, event.reason)
            )
        else:
            event = cast("QaReviewed | SurveyAnswered", event)
            # Counted in the event's own queue, else in its call's when known.
            label = event.queue or queue_of(event.call_id) or UNASSIGNED
            if isinstance(event, QaReviewed):
                reviews.append(Review.of(event, item.ts_us))
                deltas.add(Count.QA_REVIEWS, label)
                if event.accurate:
                    deltas.add(Count.QA_ACCURATE, label)
            else:
                surveys.append(Survey.of(event, item.ts_us))
                deltas.add(Count.SURVEYS, label)
                if event.score >= thresholds.satisfied_score:
                    deltas.add(Count.SATISFIED, label)
        if conflict is not None:
            conflicts.append((item, conflict))
            continue
        event_counts[kind] = event_counts.get(kind, 0) + 1
        if watermark is None or item.ts_us > watermark:
            watermark = item.ts_us

    for call in out_calls.values():
        count_call(call, thresholds, deltas)
    _count_contacts(out_contacts, recent or {}, thresholds.repeat_window_us, deltas)
    for ticket in out_tickets.values():
        count_ticket(ticket, watermark, deltas)
    settled: list[tuple[TicketFact, int]] = []
    for stored_ticket in overdue:
        if stored_ticket.ticket_id not in out_tickets:
            before_counted = stored_ticket.counted
            ticket = count_ticket(stored_ticket.copy(), watermark, deltas)
            if ticket.counted != before_counted:
                settled.append((ticket, before_counted))
    return FoldResult(
        out_calls,
        out_tickets,
        out_contacts,
        merged,
        states,
        settled,
        reviews,
        surveys,
        conflicts,
        deltas,
        watermark,
    )


def _count_contacts(
    contacts: Mapping[str, ContactFact],
    recent: Mapping[str, Sequence[int]],
    window_us: int,
    deltas: Deltas,
) -> None:
    """Move the keyed and repeat contact counters (SPEC §4) for contacts offered in the batch.

    A counter moves once, when the contact's offer is folded: a repeat is counted when another
    contact with its key was offered in the ``W`` before, among the stored contacts (``recent``)
    and the batch's. The exports compute the flags exactly when reading, late contacts included.
    """
    batch_offers: dict[str, list[int]] = {}
    for contact in contacts.values():
        if contact.caller_key is not None and contact.offered_at is not None:
            batch_offers.setdefault(contact.caller_key, []).append(contact.offered_at)
    for contact in contacts.values():
        key, at = contact.caller_key, contact.offered_at
        if key is None or at is None or contact.counted & CONTACT_KEYED:
            continue
        contact.counted |= CONTACT_KEYED
        deltas.add(Count.CONTACTS_KEYED, "")
        earlier = (*recent.get(key, ()), *batch_offers[key])
        if any(at - window_us <= other < at for other in earlier):
            contact.counted |= CONTACT_REPEAT
            deltas.add(Count.REPEAT_CONTACTS, "")
