"""What the store's read side returns: typed rows, no SQL and no I/O.

The store (:mod:`.store`, :mod:`.postgres`) owns the schema and its codes (outcome numbers, fact
bits); everything downstream — the export, the reports, the staffing analysis — reads these
records instead, so that none of them knows a table or a column. Counts are keyed by the
catalogue's :class:`~hotline_kpi.metrics.catalogue.Measure`, the additive counts KPIs divide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from hotline_kpi.metrics.catalogue import Measure
from hotline_kpi.metrics.fold import (
    ABANDONED_FACT,
    ANSWERED_FACT,
    SHORT_ABANDON,
    WITHIN_THRESHOLD,
    TicketFact,
)

Grouping = Literal["queue", "agent"]
"""How a read groups its counts: by the queue (SPEC §5 attribution) or by the agent."""


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """Measure counts of one group (a queue or an agent; ``None``: the record names none)."""

    group: str | None
    counts: Mapping[Measure, int]


@dataclass(frozen=True, slots=True)
class PeriodCounts:
    """Measure counts of one group in one period: ``period`` indexes the edges the read was
    given (period ``i`` is [edges[i], edges[i + 1])); ``group`` as in :class:`GroupCounts`."""

    period: int
    group: str | None
    counts: Mapping[Measure, int]


@dataclass(frozen=True, slots=True)
class TicketCounts:
    """Settled work orders due in period ``period`` of one queue (None: none named) and kind,
    and the settled ones closed on time (SPEC §3 timeliness)."""

    period: int
    queue: str | None
    kind: str
    settled: int
    on_time: int


@dataclass(frozen=True, slots=True)
class PeriodTicket:
    """A work order whose ``due`` falls in period ``period`` of the edges the read was given."""

    period: int
    ticket: TicketFact


@dataclass(frozen=True, slots=True)
class WaitBucket:
    """Answered and abandoned requests whose wait fell in bucket ``index`` of the given edges."""

    index: int
    answered: int
    abandoned: int


@dataclass(frozen=True, slots=True)
class FactorRating:
    """One survey's overall score and its factor scores (factor name → score)."""

    score: int
    factors: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class FactorSums:
    """One survey factor over a set of surveys that rated it: ``n`` responses, ``x`` the sum of
    its scores, ``y`` the sum of their overall scores, and the sums of squares and products: all
    the importance analysis needs (a Pearson correlation), exact and additive."""

    n: int
    x: int
    xx: int
    xy: int
    y: int
    yy: int


def factor_sums(surveys: Iterable[tuple[int, Mapping[str, int]]]) -> dict[str, FactorSums]:
    """The :class:`FactorSums` of each factor of (overall score, factor scores) pairs."""
    found: dict[str, list[int]] = {}
    for score, factors in surveys:
        for name, value in factors.items():
            x = int(value)
            sums = found.setdefault(name, [0, 0, 0, 0, 0, 0])
            sums[0] += 1
            sums[1] += x
            sums[2] += x * x
            sums[3] += x * score
            sums[4] += score
            sums[5] += score * score
    return {name: FactorSums(*sums) for name, sums in found.items()}


class QueuedCall(NamedTuple):
    """One agent request as the staffing analysis takes it, with the fold's stored facts.

    Times are epoch µs UTC. ``answered``, ``abandoned``, ``short_abandon`` and
    ``within_threshold`` are the fold's fact bits (SPEC §3), not re-derived from the times.
    """

    queue: str
    queued_at: int
    outcome_at: int | None
    agent_id: str | None
    ended_at: int | None
    answered: bool
    abandoned: bool
    short_abandon: bool = False
    within_threshold: bool = False

    @classmethod
    def with_facts(
        cls,
        queue: str,
        queued_at: int,
        outcome_at: int | None,
        agent_id: str | None,
        ended_at: int | None,
        facts: int,
    ) -> QueuedCall:
        """A queued call from its stored columns and the fold's fact bits (``calls.facts``)."""
        return cls(
            queue,
            queued_at,
            outcome_at,
            agent_id,
            ended_at,
            answered=bool(facts & ANSWERED_FACT),
            abandoned=bool(facts & ABANDONED_FACT),
            short_abandon=bool(facts & SHORT_ABANDON),
            within_threshold=bool(facts & WITHIN_THRESHOLD),
        )


class IntervalLoad(NamedTuple):
    """What the legs queued in one queue and interval did (SPEC §3 attribution to
    ``queued_at``): the staffing analysis' demand side, as the rollups sum it (Grain.INTERVAL).

    Times are integer µs sums: ``wait_us`` over answered legs, ``abandon_wait_us`` (each wait at
    least 0) over abandoned ones, ``handle_us`` (``ended − answered``) over the ``handled``
    answered legs that ended no earlier than they were answered.
    """

    queue: str
    start: int  # interval start, epoch µs UTC
    requests: int
    answered: int
    abandoned: int
    short_abandoned: int
    within_threshold: int
    wait_us: int
    abandon_wait_us: int
    handled: int
    handle_us: int


class AgentWork(NamedTuple):
    """What one agent did for one queue in one interval, by when it worked (Grain.ANSWER):
    ``answers`` legs answered in the interval, ``busy_us`` of answered-to-ended time within it.
    ``agent`` is ``""`` for busy time of legs answered by no named agent."""

    queue: str
    start: int  # interval start, epoch µs UTC
    agent: str
    answers: int
    busy_us: int


@dataclass(frozen=True, slots=True)
class SlotSums:
    """The staffing analysis' input for a period: loads by interval of queueing and agents'
    work by interval of work, in intervals of ``interval_minutes`` of ``timezone``."""

    timezone: str
    interval_minutes: int
    loads: tuple[IntervalLoad, ...]
    work: tuple[AgentWork, ...]


class Rejection(NamedTuple):
    """A rejected event waiting in the dead-letter outbox."""

    id: int
    source: str
    partition: int
    position: int
    reason: str
    event_id: str | None
    type: str | None
    detail: str | None
    payload: str | None
