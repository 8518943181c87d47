"""What the simulation decided happened, in epoch milliseconds: the traffic model makes these,
the ground truth counts them, and the event writer turns them into events.

A :class:`SimCall` is one call leg (SPEC §2). In the v1 event model every call is one leg and its
own contact; in v2 a :class:`SimContact` groups the legs of one phone call (transfers and
overflows), and agents' shifts are written as :class:`SimState` changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """One simulated call leg and what followed it (filled in by the traffic model).

    The fields after ``ticket`` are v2's; their defaults are a v1 call. ``queued_ms`` is the
    time of the leg's ``call.queued`` event (None: it has none, like most blocked legs).
    """

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
    contact_id: str | None = None  # written on the leg's call.* events when set
    first_leg: bool = True  # only a contact's first leg has call.offered
    blocked_ms: int | None = None
    blocked_reason: str | None = None
    left_ms: int | None = None
    left_reason: str | None = None
    ends: bool = True  # False: the leg has no call.ended (an overflowed or silent blocked leg)
    hold_ms: int | None = None  # None: call.ended carries no hold_seconds
    wrapped_ms: int | None = None  # the agent's call.wrapped, if written


@dataclass(slots=True)
class SimContact:
    """One phone call (v2): its legs in order, and the caller's raw number as dialled in."""

    contact_id: str
    offered_ms: int
    caller: str | None
    legs: list[SimCall] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SimState:
    """An agent's state from ``ts_ms`` until the agent's next one (SPEC §2 ``agent.state``)."""

    agent: str
    ts_ms: int
    state: str
    reason: str | None = None
