"""The simulation's records as SPEC §2 events: event dicts, then JSON lines in arrival order.

The noise a real feed has is added here: each line's offset (local or ``Z``), re-sent
duplicates, an entity's events arriving shuffled, and malformed lines. Every valid event and
every rejection written is told to the ground truth.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from hotline_kpi.simulation.clock import iso
from hotline_kpi.simulation.records import SimCall, SimState, SimTicket
from hotline_kpi.simulation.truth import GroundTruth

Timed = tuple[int, dict[str, Any]]  # (event time ms, the event's fields but id and ts)


def call_events(call: SimCall) -> list[Timed]:
    """The events of a call leg and of its review and survey, in the order they happened.

    A v1 call's fields give exactly the events they always gave; v2's fields add a contact id
    to every ``call.*`` event, leave out ``call.offered`` on a contact's later legs, and add
    blocked and left outcomes, hold time and after-call work.
    """
    call_id = call.call_id
    contact = {} if call.contact_id is None else {"contact_id": call.contact_id}
    events: list[Timed] = []
    if call.first_leg:
        offered: dict[str, Any] = {"type": "call.offered", "call_id": call_id}
        if call.caller is not None:
            offered["caller"] = call.caller
        events.append((call.offered_ms, {**offered, **contact}))
    if call.queued_ms is not None:
        queued = {"type": "call.queued", "call_id": call_id, "queue": call.queue}
        events.append((call.queued_ms, {**queued, **contact}))
    if call.answered_ms is not None:
        answered = {
            "type": "call.answered",
            "call_id": call_id,
            "queue": call.queue,
            "agent_id": call.agent,
        }
        events.append((call.answered_ms, {**answered, **contact}))
    elif call.abandoned_ms is not None:
        abandoned = {"type": "call.abandoned", "call_id": call_id, "queue": call.queue}
        events.append((call.abandoned_ms, {**abandoned, **contact}))
    elif call.blocked_ms is not None:
        blocked = {
            "type": "call.blocked",
            "call_id": call_id,
            "queue": call.queue,
            "reason": call.blocked_reason,
        }
        events.append((call.blocked_ms, {**blocked, **contact}))
    elif call.left_ms is not None:
        left = {
            "type": "call.left",
            "call_id": call_id,
            "queue": call.queue,
            "reason": call.left_reason,
        }
        events.append((call.left_ms, {**left, **contact}))
    if call.ends:
        ended: dict[str, Any] = {"type": "call.ended", "call_id": call_id, "cause": call.cause}
        if call.hold_ms is not None:
            ended["hold_seconds"] = hold_seconds(call.hold_ms)
        events.append((call.ended_ms, {**ended, **contact}))
    if call.wrapped_ms is not None:
        wrapped = {"type": "call.wrapped", "call_id": call_id, "agent_id": call.agent}
        events.append((call.wrapped_ms, {**wrapped, **contact}))
    if call.review is not None:
        review: dict[str, Any] = {
            "type": "qa.reviewed",
            "call_id": call_id,
            "agent_id": call.agent,
            "accurate": call.review.accurate,
            "category": call.review.category,
        }
        if call.review.named:
            review["queue"] = call.queue
        events.append((call.review.ts_ms, review))
    if call.survey is not None:
        survey: dict[str, Any] = {
            "type": "survey.answered",
            "call_id": call_id,
            "score": call.survey.score,
        }
        if call.survey.named:
            survey["queue"] = call.queue
            survey["agent_id"] = call.agent
        if call.survey.factors is not None:
            survey["factors"] = call.survey.factors
        events.append((call.survey.ts_ms, survey))
    return events


def hold_seconds(hold_ms: int) -> int | float:
    """Whole milliseconds as a JSON number of seconds: ``12.5``, ``0``; exact to the µs."""
    return hold_ms // 1000 if hold_ms % 1000 == 0 else hold_ms / 1000


def state_events(state: SimState) -> list[Timed]:
    """An agent's state change as its one ``agent.state`` event."""
    fields: dict[str, Any] = {"type": "agent.state", "agent_id": state.agent, "state": state.state}
    if state.reason is not None:
        fields["reason"] = state.reason
    return [(state.ts_ms, fields)]


def ticket_events(ticket: SimTicket, zone: ZoneInfo) -> list[Timed]:
    """The events of a work order: opened (``due`` in the hotline's offset), maybe closed."""
    opened: dict[str, Any] = {
        "type": "ticket.opened",
        "ticket_id": ticket.ticket_id,
        "due": iso(ticket.due_ms, zone),
        "kind": ticket.kind,
        "call_id": ticket.call_id,
    }
    if ticket.queue is not None:
        opened["queue"] = ticket.queue
    events: list[Timed] = [(ticket.opened_ms, opened)]
    if ticket.closed_ms is not None:
        events.append((ticket.closed_ms, {"type": "ticket.closed", "ticket_id": ticket.ticket_id}))
    return events


def run_id(identity: tuple[Any, ...], start_ms: int, end_ms: int | None) -> str:
    """Ten hex digits of a digest of a run's whole configuration and window: the same run makes
    the same ids (the same file), a run that differs in anything makes other ids (2^-40 odds of a
    clash), so that several simulated files can be replayed into one store."""
    text = repr((*identity, start_ms, end_ms)).encode()
    return hashlib.blake2b(text, digest_size=5).hexdigest()


class IdSequence:
    """One numbering for a run's ids (calls, work orders, events) and its lines' order."""

    def __init__(self, run: str) -> None:
        self.run = run  # the run's digest, set when its window is known
        self.last = 0

    def next(self) -> int:
        """The next number."""
        self.last += 1
        return self.last

    def new(self, prefix: str) -> str:
        """A new id: ``prefix``, the run, the next number."""
        return f"{prefix}{self.run}-{self.next():08x}"


# Malformed lines, one per rejection reason a file can show (SPEC §2); RUN and TS are filled in.
_BAD_LINES = (
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


@dataclass(slots=True)
class EventLines:
    """Event dicts made JSON lines and held in arrival order until their hour is out."""

    rng: random.Random
    zone: ZoneInfo
    ids: IdSequence
    truth: GroundTruth
    duplicates: float = 0.0  # share of events sent twice
    shuffle: bool = False  # an entity's events arrive in a random order
    _heap: list[tuple[int, int, bytes]] = field(default_factory=list)

    def entity(self, events: list[Timed]) -> None:
        """Write one entity's events; with ``shuffle`` their arrival order is permuted."""
        arrivals = [ts for ts, _ in events]
        if self.shuffle:
            self.rng.shuffle(arrivals)
        for (ts, fields), arrival in zip(events, arrivals, strict=True):
            self._event(ts, fields, arrival)

    def _event(self, ts_ms: int, fields: dict[str, Any], arrival_ms: int) -> None:
        zone = self.zone if self.rng.random() < 0.7 else None
        record = {"event_id": self.ids.new("e"), "ts": iso(ts_ms, zone), **fields}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        self.truth.event(ts_ms)
        self._push(arrival_ms, line)
        if self.duplicates and self.rng.random() < self.duplicates:
            self.truth.rejections["duplicate"] += 1
            self._push(arrival_ms + self.rng.randint(0, 600_000), line)

    def bad_line(self, ts_ms: int) -> None:
        """Write one malformed line of a reason drawn at random."""
        reason, template = _BAD_LINES[self.rng.randrange(len(_BAD_LINES))]
        line = (template % self.ids.next()).replace(b"RUN", self.ids.run.encode())
        line = line.replace(b"TS", iso(ts_ms, None).encode())
        self.truth.rejections[reason] += 1
        self._push(ts_ms, line)

    def _push(self, key_ms: int, line: bytes) -> None:
        heapq.heappush(self._heap, (key_ms, self.ids.next(), line))

    def arrived_before(self, stop_ms: int | None) -> Iterator[tuple[int, bytes]]:
        """(arrival ms, line) of the lines held that arrive before ``stop_ms`` (None: all)."""
        heap = self._heap
        while heap and (stop_ms is None or heap[0][0] < stop_ms):
            key, _, line = heapq.heappop(heap)
            yield key, line
