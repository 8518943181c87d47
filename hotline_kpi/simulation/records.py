"""What the simulation decided happened, in epoch milliseconds: the traffic model makes these,
the ground truth counts them, and the event writer turns them into events."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimReview:
    """A QA review of an answered call; ``named``: the event carries the call's queue."""

    ts_ms: int
    accurate: bool
    category: str
    named: bool


@dataclass(frozen=True, slots=True)
class SimSurvey:
    """A survey answer; ``named``: the event carries queue and agent; ``factors`` None: the
    caller scored none."""

    ts_ms: int
    score: int
    factors: dict[str, int] | None
    named: bool


@dataclass(frozen=True, slots=True)
class SimTicket:
    """A work order opened after a call; ``queue`` None: the event names none."""

    ticket_id: str
    call_id: str
    kind: str
    opened_ms: int
    due_ms: int
    queue: str | None
    closed_ms: int | None  # None: never closed within the simulation


@dataclass(slots=True)
class SimCall:
    """One simulated call and what followed it (filled in by the traffic model)."""

    call_id: str
    offered_ms: int
    caller: str | None = None
    queue: str | None = None
    queued_ms: int | None = None
    answered_ms: int | None = None
    abandoned_ms: int | None = None
    agent: str | None = None
    ended_ms: int = 0
    cause: str = "customer_hangup"
    review: SimReview | None = None
    survey: SimSurvey | None = None
    ticket: SimTicket | None = None
