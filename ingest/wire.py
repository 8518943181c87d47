"""The hot-path event types: msgspec structs mirroring the pydantic models of ``events.py``.

msgspec decodes and validates a line several times faster than pydantic, and the pipeline's
throughput is bounded by decoding. The pydantic models stay the source of truth (the JSON
Schema, and every rejection reason, come from them): a line msgspec refuses, or one that could
decode differently, goes to pydantic, which accepts it or says why not. A differential test
(``tests/unit/test_wire.py``) proves that whatever msgspec accepts, pydantic accepts with the
same values.

Two rules of SPEC §2 are checked by ``decode`` around this decoder rather than in the types,
because they are cheap to rule out on the raw bytes and costly per field: control characters
in ids (they can only come from an escape or a raw DEL byte), and nesting deeper than 64 levels.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, TypeAlias

import msgspec

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Score = Annotated[int, msgspec.Meta(ge=1, le=10)]
# Timestamps stay text here: ``decode`` reads them with the one RFC 3339 parser that pydantic's
# models use too (``rfc3339.py``), straight to epoch microseconds, so both paths agree.
Timestamp: TypeAlias = str
EndCause = Literal[
    "customer_hangup", "agent_hangup", "transfer", "network_failure", "system_failure"
]
TicketKind = Literal["complaint", "fault", "consultation", "callback"]
BlockReason = Literal["queue_full", "no_agents", "closed"]
LeftReason = Literal["timeout", "no_agents", "callback_requested", "overflow"]
AgentStateName = Literal["logged_out", "ready", "busy", "wrap_up", "not_ready"]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# A finite number of seconds >= 0. The bound keeps microseconds within a 64-bit column; a larger
# value (or 1e400, which reads as infinity) goes to the reference path, which says why.
HoldSeconds = Annotated[float, msgspec.Meta(ge=0, le=1e9)]


# gc=False: an event holds only text, numbers and a flat dict of scores, so it can never be part
# of a reference cycle, and the collector need not track the millions of them a replay makes.
class _Event(msgspec.Struct, frozen=True, tag_field="type", gc=False):
    event_id: Id
    ts: Timestamp


class _CallEvent(_Event, frozen=True, kw_only=True):
    call_id: Id
    contact_id: Id | None = None


class CallOffered(_CallEvent, tag="call.offered", frozen=True):
    """See ``events.CallOffered``."""

    type: ClassVar[str] = "call.offered"
    caller: str | None = None


class CallQueued(_CallEvent, tag="call.queued", frozen=True):
    """See ``events.CallQueued``."""

    type: ClassVar[str] = "call.queued"
    queue: Id


class CallAnswered(_CallEvent, tag="call.answered", frozen=True):
    """See ``events.CallAnswered``."""

    type: ClassVar[str] = "call.answered"
    queue: Id
    agent_id: Id


class CallAbandoned(_CallEvent, tag="call.abandoned", frozen=True):
    """See ``events.CallAbandoned``."""

    type: ClassVar[str] = "call.abandoned"
    queue: Id


class CallEnded(_CallEvent, tag="call.ended", frozen=True):
    """See ``events.CallEnded``."""

    type: ClassVar[str] = "call.ended"
    cause: EndCause
    hold_seconds: HoldSeconds | None = None


class CallBlocked(_CallEvent, tag="call.blocked", frozen=True):
    """See ``events.CallBlocked``."""

    type: ClassVar[str] = "call.blocked"
    queue: Id
    reason: BlockReason


class CallLeft(_CallEvent, tag="call.left", frozen=True):
    """See ``events.CallLeft``."""

    type: ClassVar[str] = "call.left"
    queue: Id
    reason: LeftReason


class CallWrapped(_CallEvent, tag="call.wrapped", frozen=True):
    """See ``events.CallWrapped``."""

    type: ClassVar[str] = "call.wrapped"
    agent_id: Id


class AgentState(_Event, tag="agent.state", frozen=True):
    """See ``events.AgentState``."""

    type: ClassVar[str] = "agent.state"
    agent_id: Id
    state: AgentStateName
    reason: Reason | None = None


class QaReviewed(_Event, tag="qa.reviewed", frozen=True):
    """See ``events.QaReviewed``."""

    type: ClassVar[str] = "qa.reviewed"
    call_id: Id
    agent_id: Id
    accurate: bool
    queue: Id | None = None
    category: Id | None = None


class TicketOpened(_Event, tag="ticket.opened", frozen=True):
    """See ``events.TicketOpened``."""

    type: ClassVar[str] = "ticket.opened"
    ticket_id: Id
    due: Timestamp
    kind: TicketKind
    call_id: Id | None = None
    queue: Id | None = None


class TicketClosed(_Event, tag="ticket.closed", frozen=True):
    """See ``events.TicketClosed``."""

    type: ClassVar[str] = "ticket.closed"
    ticket_id: Id


class SurveyAnswered(_Event, tag="survey.answered", frozen=True):
    """See ``events.SurveyAnswered``."""

    type: ClassVar[str] = "survey.answered"
    call_id: Id
    score: Score
    queue: Id | None = None
    agent_id: Id | None = None
    factors: dict[Id, Score] | None = None


CallEvent: TypeAlias = (
    CallOffered
    | CallQueued
    | CallAnswered
    | CallAbandoned
    | CallEnded
    | CallBlocked
    | CallLeft
    | CallWrapped
)
Event: TypeAlias = (
    CallEvent | AgentState | QaReviewed | TicketOpened | TicketClosed | SurveyAnswered
)

DECODER: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
"""Decodes one JSON line into a wire event; raises ``msgspec.DecodeError`` otherwise."""


def from_json_object(value: object) -> Event:
    """A wire event from an already validated object (pydantic's dump in JSON mode)."""
    event: Event = msgspec.convert(value, Event)
    return event
