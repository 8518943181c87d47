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


# gc=False: an event holds only text, numbers and a flat dict of scores, so it can never be part
# of a reference cycle, and the collector need not track the millions of them a replay makes.
class _Event(msgspec.Struct, frozen=True, tag_field="type", gc=False):
    event_id: Id
    ts: Timestamp


class CallOffered(_Event, tag="call.offered", frozen=True):
    """See ``events.CallOffered``."""

    type: ClassVar[str] = "call.offered"
    call_id: Id
    caller: str | None = None


class CallQueued(_Event, tag="call.queued", frozen=True):
    """See ``events.CallQueued``."""

    type: ClassVar[str] = "call.queued"
    call_id: Id
    queue: Id


class CallAnswered(_Event, tag="call.answered", frozen=True):
    """See ``events.CallAnswered``."""

    type: ClassVar[str] = "call.answered"
    call_id: Id
    queue: Id
    agent_id: Id


class CallAbandoned(_Event, tag="call.abandoned", frozen=True):
    """See ``events.CallAbandoned``."""

    type: ClassVar[str] = "call.abandoned"
    call_id: Id
    queue: Id


class CallEnded(_Event, tag="call.ended", frozen=True):
    """See ``events.CallEnded``."""

    type: ClassVar[str] = "call.ended"
    call_id: Id
    cause: EndCause


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


Event: TypeAlias = (
    CallOffered
    | CallQueued
    | CallAnswered
    | CallAbandoned
    | CallEnded
    | QaReviewed
    | TicketOpened
    | TicketClosed
    | SurveyAnswered
)

DECODER: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
"""Decodes one JSON line into a wire event; raises ``msgspec.DecodeError`` otherwise."""


def from_json_object(value: object) -> Event:
    """A wire event from an already validated object (pydantic's dump in JSON mode)."""
    event: Event = msgspec.convert(value, Event)
    return event
