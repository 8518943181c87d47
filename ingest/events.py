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
from typing import Annotated, Literal, TypeAlias, get_args

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
BLOCK_REASONS = ("queue_full", "no_agents", "closed")
LEFT_REASONS = ("timeout", "no_agents", "callback_requested", "overflow")
AGENT_STATES = ("logged_out", "ready", "busy", "wrap_up", "not_ready")
BlockReason = Literal["queue_full", "no_agents", "closed"]
LeftReason = Literal["timeout", "no_agents", "callback_requested", "overflow"]
AgentStateName = Literal["logged_out", "ready", "busy", "wrap_up", "not_ready"]
Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)
]
MAX_HOLD_SECONDS = 1e9
"""The largest ``hold_seconds`` kept: its microseconds must fit a 64-bit column (31 years)."""
HoldSeconds = Annotated[float, Field(ge=0, le=MAX_HOLD_SECONDS, allow_inf_nan=False)]


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: Id = Field(description="unique per event; a repeated event_id is a duplicate")
    ts: Timestamp = Field(description="when it happened, RFC 3339 with a UTC offset")


class _CallEvent(_Event):
    call_id: Id = Field(description="one call leg: a passage through at most one skill queue")
    contact_id: Id | None = Field(
        None, description="the phone call the leg belongs to; a leg without one is its own"
    )


class CallOffered(_CallEvent):
    """A call reached the hotline (IVR); sent once per contact, for its first leg."""

    type: Literal["call.offered"]
    caller: str | None = Field(
        None, description="raw caller number: personal data, never stored or logged in clear"
    )


class CallQueued(_CallEvent):
    """The caller asked for a human agent (转人工) and entered a skill queue."""

    type: Literal["call.queued"]
    queue: Id


class CallAnswered(_CallEvent):
    """An agent answered."""

    type: Literal["call.answered"]
    queue: Id
    agent_id: Id


class CallAbandoned(_CallEvent):
    """The caller hung up while waiting for an agent."""

    type: Literal["call.abandoned"]
    queue: Id


class CallEnded(_CallEvent):
    """The leg ended."""

    type: Literal["call.ended"]
    cause: EndCause
    hold_seconds: HoldSeconds | None = Field(
        None, description="total time on hold in the leg, seconds (absent = 0)"
    )


class CallBlocked(_CallEvent):
    """The caller asked for an agent but could not enter the queue (无法进等待队列)."""

    type: Literal["call.blocked"]
    queue: Id
    reason: BlockReason


class CallLeft(_CallEvent):
    """The caller left the queue unanswered without hanging up (moved, called back, routed)."""

    type: Literal["call.left"]
    queue: Id
    reason: LeftReason


class CallWrapped(_CallEvent):
    """The agent finished the after-call work (话后处理) of the leg."""

    type: Literal["call.wrapped"]
    agent_id: Id


class AgentState(_Event):
    """The agent's state from ``ts`` until the agent's next ``agent.state`` by ``ts``."""

    type: Literal["agent.state"]
    agent_id: Id
    state: AgentStateName
    reason: Reason | None = Field(None, description="e.g. break, lunch, training")


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
TicketEvent: TypeAlias = TicketOpened | TicketClosed
Event: TypeAlias = Annotated[
    CallEvent | AgentState | QaReviewed | TicketEvent | SurveyAnswered,
    Field(discriminator="type"),
]
_MODELS: tuple[type[_Event], ...] = get_args(get_args(Event)[0])
EVENT_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0] for model in _MODELS
)
"""Every event type of SPEC §2, in the order of the models."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_FIELDS: frozenset[str] = frozenset(name for model in _MODELS for name in model.model_fields)
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
