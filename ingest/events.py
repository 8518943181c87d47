"""The event schema of SPEC §2 as pydantic models: the one source of truth for event types.

The models are strict (a score of ``8.0`` or ``"8"`` is not an integer), ignore unknown extra
fields, and treat an optional field set to ``null`` as absent. ``schema/events.schema.json`` is
generated from them (``python -m hotline_kpi.ingest.events``) for the teams who produce events.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, TypeAlias

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)
from pydantic_core import PydanticCustomError

from hotline_kpi.ingest import rfc3339

NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
"""Ids and names hold no control character (U+0000–U+001F, U+007F): SPEC §3 "Numbers"."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NO_CONTROL_CHARACTERS)]
Score = Annotated[int, Field(ge=1, le=10)]


def _rfc3339(value: object) -> object:
    """Read a timestamp text with the project's one RFC 3339 parser (see ``rfc3339.py``).

    Anything but a string goes on unchanged, so that pydantic reports its type as it would.
    """
    if not isinstance(value, str):
        return value
    try:
        return rfc3339.to_datetime(value)
    except ValueError as exc:
        raise PydanticCustomError("rfc3339", "{why}", {"why": str(exc)}) from None


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]

END_CAUSES = ("customer_hangup", "agent_hangup", "transfer", "network_failure", "system_failure")
DROP_CAUSES = frozenset({"network_failure", "system_failure"})
TICKET_KINDS = ("complaint", "fault", "consultation", "callback")

EndCause = Literal[
    "customer_hangup", "agent_hangup", "transfer", "network_failure", "system_failure"
]
TicketKind = Literal["complaint", "fault", "consultation", "callback"]


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: Id = Field(description="unique per event; a repeated event_id is a duplicate")
    ts: Timestamp = Field(description="when it happened, RFC 3339 with a UTC offset")


class CallOffered(_Event):
    """A call reached the hotline (IVR)."""

    type: Literal["call.offered"]
    call_id: Id
    caller: str | None = Field(
        None, description="raw caller number: personal data, never stored or logged in clear"
    )


class CallQueued(_Event):
    """The caller asked for a human agent (转人工) and entered a skill queue."""

    type: Literal["call.queued"]
    call_id: Id
    queue: Id


class CallAnswered(_Event):
    """An agent answered."""

    type: Literal["call.answered"]
    call_id: Id
    queue: Id
    agent_id: Id


class CallAbandoned(_Event):
    """The caller hung up while waiting for an agent."""

    type: Literal["call.abandoned"]
    call_id: Id
    queue: Id


class CallEnded(_Event):
    """The call ended."""

    type: Literal["call.ended"]
    call_id: Id
    cause: EndCause


class QaReviewed(_Event):
    """A quality inspector judged the answer given on a call."""

    type: Literal["qa.reviewed"]
    call_id: Id
    agent_id: Id
    accurate: bool
    queue: Id | None = None
    category: Id | None = None


class TicketOpened(_Event):
    """A work order (工单) with a deadline."""

    type: Literal["ticket.opened"]
    ticket_id: Id
    due: Timestamp
    kind: TicketKind
    call_id: Id | None = None
    queue: Id | None = None


class TicketClosed(_Event):
    """The work order was resolved."""

    type: Literal["ticket.closed"]
    ticket_id: Id


class SurveyAnswered(_Event):
    """A post-call satisfaction survey on a 10-point scale, with optional factor scores."""

    type: Literal["survey.answered"]
    call_id: Id
    score: Score
    queue: Id | None = None
    agent_id: Id | None = None
    factors: dict[Id, Score] | None = None


CallEvent: TypeAlias = CallOffered | CallQueued | CallAnswered | CallAbandoned | CallEnded
TicketEvent: TypeAlias = TicketOpened | TicketClosed
Event: TypeAlias = Annotated[
    CallOffered
    | CallQueued
    | CallAnswered
    | CallAbandoned
    | CallEnded
    | QaReviewed
    | TicketOpened
    | TicketClosed
    | SurveyAnswered,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "call.offered",
    "call.queued",
    "call.answered",
    "call.abandoned",
    "call.ended",
    "qa.reviewed",
    "ticket.opened",
    "ticket.closed",
    "survey.answered",
)

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_FIELDS: frozenset[str] = frozenset(
    name
    for model in (
        CallOffered,
        CallQueued,
        CallAnswered,
        CallAbandoned,
        CallEnded,
        QaReviewed,
        TicketOpened,
        TicketClosed,
        SurveyAnswered,
    )
    for name in model.model_fields
)
"""Every field an event type defines (``type`` included); anything else is an unknown field."""

SCHEMA_PATH = Path(__file__).parent / "schema" / "events.schema.json"


def json_schema() -> dict[str, object]:
    """The JSON Schema of one event, as producers should validate against it."""
    schema = EVENT_ADAPTER.json_schema(ref_template="#/$defs/{model}")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hotline-kpi event"
    schema["description"] = (
        "One hotline event (SPEC §2). Timestamps are RFC 3339 with a UTC offset; "
        "unknown extra fields are ignored; optional fields may be null."
    )
    return schema


def render_schema() -> str:
    """The committed schema file's exact text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, exactly (no float rounding)."""
    return (moment - _EPOCH) // _ONE_US


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
_ONE_US = datetime.fromisoformat("1970-01-01T00:00:00.000001+00:00") - _EPOCH


if __name__ == "__main__":  # pragma: no cover - regenerates the committed schema
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(render_schema(), encoding="utf-8")
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
