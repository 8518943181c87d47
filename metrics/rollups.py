"""Interval rollups: additive sums of every measure per queue × interval, kept at ingest (issue 17).

A report of a month used to read every leg of the month; with rollups it reads the sums the fold
already knew, so its cost grows with intervals, not with calls. Each leg, review and survey
*contributes* a few (key → amount) pairs, a key being (grain, bucket, queue, agent, measure):

- :attr:`Grain.INTERVAL`: per queue and local interval of the attributed time (SPEC §5: a leg's
  ``queued_at``, or its ``offered_at`` for ``offered``; a review's or survey's ``ts``; a
  contact's offer), agent ``""``. Every KPI measure of a queue and what the staffing analysis
  needs per slot.
- :attr:`Grain.DAY`: per queue, agent and local day of the attributed time: the agent figures
  (an agent's answered legs, its reviews, the surveys that count for it); with agent ``""``, the
  figures only a month report shows (the wait and score distributions, the factor sums), which
  would multiply the interval rows for nothing.
- :attr:`Grain.ANSWER`: per queue, agent and local interval of the agent's work: answers by the
  interval of the answer, busy time split at interval bounds (the staffing analysis' agent side).
- :attr:`Grain.STATE`: per agent and local interval, the microseconds of each state (and of
  ``not_ready:<reason>``) between one ``agent.state`` and the agent's next (SPEC §3); the last
  change of each agent runs until "now" and is added when reading.
- :attr:`Grain.TICKET`: per queue, local interval of ``due`` and ticket kind (in the agent
  column), the closed work orders and those closed on time; an open one is settled by "now"
  alone, so those are read from the tickets table when reading.

The fold's batch changes some facts; the rollups change by ``contribution(after) −
contribution(before)`` of every leg, review and survey the batch touched, in the same
transaction as the facts (:func:`batch_delta`). A late event that moves a leg to another
interval, queue or agent, or changes one of its facts, retracts exactly what the leg added
before. :func:`rebuild` recomputes all of it from the stored facts with the same functions;
the check of ``hotline-kpi verify`` compares the two.

Buckets are the periods of ``metrics.months.period_edges`` by interval: an interval starts at
every instant whose local wall time is a multiple of the interval past local midnight, so day,
hour and interval edges of every report are bucket starts, and a repeated hour (daylight saving
ends) is two buckets. Buckets are keyed by their start instant (epoch µs).

Agent state time is rolled up too, except each agent's last state, which runs until "now".
Contacts are rolled up too (by their offer time, in the queue of their first agent request),
from the flags the store keeps on each contact (``SqlStore.refresh_contacts``); whether a
contact's resolution is settled depends on "now", so the reader counts the one interval that
"now − W" cuts from the contacts table. Closed work orders are
rolled up by ``due``; open ones and repeat complaints (30-day windows) are read from the tickets
table.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from zoneinfo import ZoneInfo

from hotline_kpi.metrics.catalogue import BLOCKED_BY_REASON, LEFT_BY_REASON, Measure
from hotline_kpi.metrics.fold import (
    ABANDONED_FACT,
    ANSWERED,
    ANSWERED_FACT,
    BLOCKED,
    BLOCKED_EXCLUDED,
    BLOCKED_FACT,
    DROPPED,
    HANDLED,
    LEFT,
    LEFT_FACT,
    SHORT_ABANDON,
    TRANSFERRED,
    WITHIN_THRESHOLD,
    WRAPPED,
    CallFact,
    FactThresholds,
    Review,
    StateChange,
    Survey,
    TicketFact,
)
from hotline_kpi.metrics.months import period_edges
from hotline_kpi.metrics.records import AgentWork, IntervalLoad, SlotSums

US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last local day has no following midnight a datetime can hold: it ends at the end of time.
_END_OF_TIME = (1 << 63) - 1

# Bucket edges of the wait-time distribution, in seconds; the last bucket is open.
WAIT_EDGES: tuple[int, ...] = (0, 5, 10, 20, 30, 60, 120, 300)
_WAIT_EDGES_US = tuple(edge * US for edge in WAIT_EDGES[1:])


# The version of what the contributions below write; stored with the rollups (RollupConfig.key).
LAYOUT = 3


class Grain(IntEnum):
    """What a rollup row sums over (see the module docstring)."""

    INTERVAL = 0
    DAY = 1
    ANSWER = 2
    STATE = 3
    TICKET = 4


Key = tuple[int, int, str, str, str]  # grain, bucket start (µs), queue, agent, measure
Sums = dict[Key, int]
Row = tuple[int, str, str, str, int]  # bucket start (µs), queue, agent, measure, value

# Measures the reports need beyond the catalogue's (rollup-only names).
OFFERED = "offered"  # legs by call.offered ts
ABANDON_WAIT_US = "abandon_wait_us"  # Σ (abandoned ts − queued_at) of abandons
STAFF_HANDLED = "staff_handled"  # answered legs ended no earlier than answered
STAFF_HANDLE_US = "staff_handle_us"  # ... and their Σ (ended − answered)
ANSWERS = "answers"  # Grain.ANSWER: answered legs by the interval of the answer
BUSY_US = "busy_us"  # Grain.ANSWER: answered-to-ended time within the interval


def wait_measure(outcome: str, index: int) -> str:
    """The histogram measure of ``outcome`` ("answered", "abandoned") in wait bucket ``index``."""
    return f"wait:{outcome}:{index}"


def score_measure(score: int) -> str:
    """Surveys answered with overall ``score``."""
    return f"score:{score}"


def factor_measure(name: str, stat: str) -> str:
    """One sum over the surveys that rated factor ``name``: ``n``, ``x`` (Σ factor score),
    ``xx``, ``xy`` (with the overall score), ``y``, ``yy``."""
    return f"factor:{stat}:{name}"


# The call measures by fact bit, as the store's facts SQL counts them.
_BITS: tuple[tuple[int, str], ...] = (
    (ANSWERED_FACT, Measure.ANSWERED.value),
    (WITHIN_THRESHOLD, Measure.WITHIN_THRESHOLD.value),
    (ABANDONED_FACT, Measure.ABANDONED.value),
    (SHORT_ABANDON, Measure.SHORT_ABANDONED.value),
    (DROPPED, Measure.DROPPED.value),
    (HANDLED, Measure.HANDLED.value),
    (BLOCKED_FACT, Measure.BLOCKED.value),
    (BLOCKED_EXCLUDED, Measure.BLOCKED_EXCLUDED.value),
    (LEFT_FACT, Measure.LEFT.value),
    (TRANSFERRED, Measure.TRANSFERRED.value),
    (WRAPPED, Measure.WRAPPED.value),
)
_BY_REASON = {
    BLOCKED: {reason: measure.value for reason, measure in BLOCKED_BY_REASON.items()},
    LEFT: {reason: measure.value for reason, measure in LEFT_BY_REASON.items()},
}


@dataclass(frozen=True, slots=True)
class RollupConfig:
    """Everything the rollups depend on: the zone and interval of their buckets and the
    thresholds of the facts and the satisfied score. Stored with them; a change rebuilds them."""

    timezone: str
    interval_minutes: int
    thresholds: FactThresholds

    def key(self) -> str:
        """How the store records the configuration its rollups were built with."""
        t = self.thresholds
        return json.dumps(
            {
                "timezone": self.timezone,
                "interval_minutes": self.interval_minutes,
                "short_abandon_us": t.short_abandon_us,
                "service_level_us": t.service_level_us,
                "satisfied_score": t.satisfied_score,
                "blocked_are_requests": t.blocked_are_requests,
                "wait_edges": WAIT_EDGES,
                "repeat_window_us": t.repeat_window_us,
                # What each contribution writes where: a change rebuilds stored rollups.
                "layout": LAYOUT,
            },
            sort_keys=True,
        )


class Buckets:
    """The local days and intervals of one zone, looked up by instant (epoch µs).

    Each local day's interval edges are computed once (``period_edges``) and kept; an instant is
    found by two binary searches.
    """

    def __init__(self, zone: ZoneInfo, interval_minutes: int) -> None:
        self.zone = zone
        self.interval_minutes = interval_minutes
        self._starts: list[int] = []  # day starts, sorted
        self._days: list[tuple[int, list[int]]] = []  # (day end, interval edges with the end)

    def _day(self, moment: int) -> tuple[int, list[int]]:
        index = bisect.bisect_right(self._starts, moment) - 1
        if index >= 0 and moment < self._days[index][0]:
            return self._starts[index], self._days[index][1]
        local = (_EPOCH + timedelta(microseconds=moment)).astimezone(self.zone).date()
        edges = self._edges(local)
        position = bisect.bisect_left(self._starts, edges[0])
        self._starts.insert(position, edges[0])
        self._days.insert(position, (edges[-1], edges))
        return edges[0], edges

    def _edges(self, day: date) -> list[int]:
        try:
            return period_edges(day, day, "interval", self.zone, self.interval_minutes)
        except OverflowError:  # 9999-12-31 has no following midnight
            start = period_edges(day - timedelta(days=1), day - timedelta(days=1), "day",
                                 self.zone, self.interval_minutes)[-1]  # fmt: skip
            return [start, _END_OF_TIME]

    def day(self, moment: int) -> int:
        """The start of the local day of ``moment``."""
        return self._day(moment)[0]

    def interval(self, moment: int) -> int:
        """The start of the interval of ``moment``."""
        edges = self._day(moment)[1]
        return edges[bisect.bisect_right(edges, moment) - 1]

    def pieces(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """[start, end) cut at interval bounds: (interval start, microseconds in it)."""
        while start < end:
            edges = self._day(start)[1]
            index = bisect.bisect_right(edges, start) - 1
            stop = min(end, edges[index + 1])
            yield edges[index], stop - start
            start = stop

    def end(self, start: int) -> int:
        """The end of the interval that starts at (or holds) ``start``."""
        edges = self._day(start)[1]
        return edges[bisect.bisect_right(edges, start)]

    def is_edge(self, moment: int) -> bool:
        """Whether ``moment`` starts an interval (so sums of buckets cut exactly there)."""
        return self.interval(moment) == moment


def add_sums(into: Sums, more: Sums) -> None:
    """Add ``more`` to ``into`` key by key, dropping the sums that come to zero."""
    for key, amount in more.items():
        total = into.get(key, 0) + amount
        if total:
            into[key] = total
        else:
            into.pop(key, None)


def _add(sums: Sums, key: Key, amount: int) -> None:
    if amount:
        sums[key] = sums.get(key, 0) + amount


_REQUESTS = Measure.REQUESTS.value
_WAIT_US = Measure.WAIT_US.value
_HANDLE_US = Measure.HANDLE_US.value
_HOLD_US = Measure.HOLD_US.value
_WRAP_US = Measure.WRAP_US.value
_INTERVAL, _DAY, _ANSWER = int(Grain.INTERVAL), int(Grain.DAY), int(Grain.ANSWER)
_STATE = int(Grain.STATE)
_TICKET = int(Grain.TICKET)
_WAIT_NAMES = {
    outcome: tuple(wait_measure(outcome, index) for index in range(len(WAIT_EDGES)))
    for outcome in ("answered", "abandoned")
}
_bit_names: dict[int, tuple[str, ...]] = {}


def _names_of(facts: int) -> tuple[str, ...]:
    """The measures counted 1 for a leg with these fact bits (requests included), memoised."""
    names = _bit_names.get(facts)
    if names is None:
        names = _bit_names[facts] = (
            _REQUESTS,
            *(name for bit, name in _BITS if facts & bit),
        )
    return names


def _wait_key(day: int, queue: str, outcome: str, wait: int) -> Key:
    """The month's wait distribution: the day's count of ``outcome`` in the bucket of ``wait``."""
    return (_DAY, day, queue, "", _WAIT_NAMES[outcome][bisect.bisect_right(_WAIT_EDGES_US, wait)])


def add_leg(sums: Sums, call: CallFact, buckets: Buckets, sign: int = 1) -> None:
    """Add (``sign`` 1) or retract (−1) what one leg contributes, from its stored facts.

    Per queue and interval of ``queued_at`` (and, answered, per agent and day): its fact
    counts and seconds as the store's facts SQL counts them; per day its wait bucket (the
    month's wait distribution); by the interval of the answer, the agent's answer and busy time.
    """
    get = sums.get
    queue = call.queue or ""
    offered_at = call.offered_at
    if offered_at is not None:
        key: Key = (_INTERVAL, buckets.interval(offered_at), queue, "", OFFERED)
        sums[key] = get(key, 0) + sign
    queued_at = call.queued_at
    if queued_at is None:
        return
    facts = call.facts
    amounts: list[tuple[str, int]] = []
    outcome_at, ended_at = call.outcome_at, call.ended_at
    day = buckets.day(queued_at)
    if facts & ANSWERED_FACT and outcome_at is not None:
        wait = outcome_at - queued_at
        amounts.append((_WAIT_US, wait))
        hist = _wait_key(day, queue, "answered", wait)
        sums[hist] = get(hist, 0) + sign
        if ended_at is not None and ended_at >= outcome_at:
            amounts.append((STAFF_HANDLED, 1))
            amounts.append((STAFF_HANDLE_US, ended_at - outcome_at))
    if facts & ABANDONED_FACT and outcome_at is not None:
        wait = outcome_at - queued_at
        amounts.append((ABANDON_WAIT_US, max(0, wait)))
        hist = _wait_key(day, queue, "abandoned", wait)
        sums[hist] = get(hist, 0) + sign
    if facts & HANDLED and ended_at is not None and outcome_at is not None:
        amounts.append((_HANDLE_US, ended_at - outcome_at))
        if call.hold_us:
            amounts.append((_HOLD_US, call.hold_us))
    wrapped_at = call.wrapped_at
    if (
        facts & WRAPPED
        and ended_at is not None
        and wrapped_at is not None
        and wrapped_at > ended_at
    ):
        amounts.append((_WRAP_US, wrapped_at - ended_at))
    by_reason = _BY_REASON.get(call.outcome)
    if by_reason is not None and call.reason in by_reason:
        amounts.append((by_reason[call.reason], 1))
    interval = buckets.interval(queued_at)
    answered = call.outcome == ANSWERED
    agent = call.agent_id or ""
    for name in _names_of(facts):
        key = (_INTERVAL, interval, queue, "", name)
        sums[key] = get(key, 0) + sign
        if answered:
            key = (_DAY, day, queue, agent, name)
            sums[key] = get(key, 0) + sign
    for name, amount in amounts:
        key = (_INTERVAL, interval, queue, "", name)
        sums[key] = get(key, 0) + sign * amount
        if answered:
            key = (_DAY, day, queue, agent, name)
            sums[key] = get(key, 0) + sign * amount
    # The agent's side, by when the agent worked (the staffing analysis).
    if facts & ANSWERED_FACT and outcome_at is not None:
        if call.agent_id is not None:
            key = (_ANSWER, buckets.interval(outcome_at), queue, agent, ANSWERS)
            sums[key] = get(key, 0) + sign
        if ended_at is not None:
            for start, length in buckets.pieces(outcome_at, ended_at):
                key = (_ANSWER, start, queue, agent, BUSY_US)
                sums[key] = get(key, 0) + sign * length


def add_review(sums: Sums, review: Review, call_queue: str | None, buckets: Buckets,
               sign: int = 1) -> None:  # fmt: skip
    """A QA review counts in the queue it names, else its call's, and for the agent it names."""
    queue = review.queue or call_queue or ""
    accurate = int(review.accurate)
    interval, day = buckets.interval(review.ts), buckets.day(review.ts)
    for grain, bucket, agent in ((_INTERVAL, interval, ""), (_DAY, day, review.agent_id)):
        _add(sums, (grain, bucket, queue, agent, Measure.QA_REVIEWS.value), sign)
        _add(sums, (grain, bucket, queue, agent, Measure.QA_ACCURATE.value), sign * accurate)


_factor_names: dict[str, tuple[str, ...]] = {}
_FACTOR_STATS = ("n", "x", "xx", "xy", "y", "yy")


def add_survey(
    sums: Sums,
    survey: Survey,
    call: CallFact | None,
    satisfied_score: int,
    buckets: Buckets,
    sign: int = 1,
) -> None:
    """A survey counts in the queue and for the agent it names, else its call's; per day (the
    month's figures) its score and its factor sums."""
    queue = survey.queue or (call.queue if call is not None else None) or ""
    agent = survey.agent_id or (call.agent_id if call is not None else None) or ""
    score = survey.score
    satisfied = int(score >= satisfied_score)
    interval, day = buckets.interval(survey.ts), buckets.day(survey.ts)
    for grain, bucket, who in ((_INTERVAL, interval, ""), (_DAY, day, agent)):
        _add(sums, (grain, bucket, queue, who, Measure.SURVEYS.value), sign)
        _add(sums, (grain, bucket, queue, who, Measure.SATISFIED.value), sign * satisfied)
        _add(sums, (grain, bucket, queue, who, Measure.SCORE_SUM.value), sign * score)
    _add(sums, (_DAY, day, queue, "", score_measure(score)), sign)
    get = sums.get
    for name, value in (survey.factors or {}).items():
        names = _factor_names.get(name)
        if names is None:
            names = _factor_names[name] = tuple(factor_measure(name, s) for s in _FACTOR_STATS)
        x = int(value)
        for measure, amount in zip(
            names, (1, x, x * x, x * score, score, score * score), strict=True
        ):
            key: Key = (_DAY, day, queue, "", measure)
            sums[key] = get(key, 0) + sign * amount


@dataclass(frozen=True, slots=True)
class ContactState:
    """What a stored contact contributes: its offer, the queue of its first agent request, and
    the flags SPEC §3 derives from its legs and the other contacts with its key."""

    contact_key: str
    offered_at: int | None
    queue: str | None
    keyed: bool
    answered: bool
    is_repeat: bool
    followed: bool
    caller_key: str | None


ANSWERED_KEYED = "answered_keyed"  # keyed contacts with an answered leg
UNFOLLOWED = "unfollowed"  # ... and no contact with the key in the W after


def add_contact(sums: Sums, contact: ContactState, buckets: Buckets, sign: int = 1) -> None:
    """A contact counts by its offer time in the queue of its first agent request ("" without
    one); its caller-key measures too, so that a queue's are known, though they are reported
    overall only. Whether it can be counted as resolved depends on "now": see the reader."""
    if contact.offered_at is None:
        return
    bucket = (Grain.INTERVAL, buckets.interval(contact.offered_at), contact.queue or "", "")
    _add(sums, (*bucket, Measure.CONTACTS.value), sign)
    if not contact.keyed:
        return
    _add(sums, (*bucket, Measure.CONTACTS_KEYED.value), sign)
    if contact.is_repeat:
        _add(sums, (*bucket, Measure.REPEAT_CONTACTS.value), sign)
    if contact.answered:
        _add(sums, (*bucket, ANSWERED_KEYED), sign)
        if not contact.followed:
            _add(sums, (*bucket, UNFOLLOWED), sign)


def contacts_delta(
    before: Mapping[str, ContactState], after: Mapping[str, ContactState], buckets: Buckets
) -> Sums:
    """What the rollups change by when these contacts go from ``before`` to ``after`` (a
    contact missing from ``after`` was merged into another and is retracted)."""
    sums: Sums = {}
    for key, old in before.items():
        if after.get(key) != old:
            add_contact(sums, old, buckets, -1)
    for key, new in after.items():
        if before.get(key) != new:
            add_contact(sums, new, buckets)
    return {key: amount for key, amount in sums.items() if amount}


def state_names(change: StateChange) -> tuple[str, ...]:
    """What time in this state counts as: the state, and a not-ready reason's own key."""
    if change.state == "not_ready":
        return (change.state, f"not_ready:{change.reason or ''}")
    return (change.state,)


def add_span(sums: Sums, change: StateChange, end: int, buckets: Buckets, sign: int = 1) -> None:
    """The agent's time in ``change``'s state from its ``ts`` to ``end`` (its next change)."""
    if end <= change.ts:
        return
    get = sums.get
    names = state_names(change)
    for start, length in buckets.pieces(change.ts, end):
        for name in names:
            key: Key = (_STATE, start, "", change.agent_id, name)
            sums[key] = get(key, 0) + sign * length


def _order(change: StateChange) -> tuple[int, str]:
    return change.ts, change.event_id  # SPEC §3: equal times by event id, by code point


def states_delta(
    stored: Iterable[StateChange], new: Iterable[StateChange], buckets: Buckets
) -> Sums:
    """What one agent's new state changes change in the rollups. ``stored`` holds the agent's
    stored changes from the last one before the earliest new change to the first one after the
    latest (all of them at those two times): every span that can change lies between them."""
    before = sorted(stored, key=_order)
    after = sorted([*before, *new], key=_order)
    sums: Sums = {}
    for sequence, sign in ((before, -1), (after, 1)):
        for change, following in itertools.pairwise(sequence):
            add_span(sums, change, following.ts, buckets, sign)
    return {key: amount for key, amount in sums.items() if amount}


def add_ticket(sums: Sums, ticket: TicketFact, buckets: Buckets, sign: int = 1) -> None:
    """A closed work order counts as settled (and on time if closed by ``due``) in the interval
    of its ``due``, its queue ("" without one) and its kind ("unknown" without one)."""
    if ticket.due is None or ticket.closed_at is None:
        return
    bucket = (_TICKET, buckets.interval(ticket.due), ticket.queue or "", ticket.kind or "unknown")
    _add(sums, (*bucket, Measure.TICKETS_SETTLED.value), sign)
    if ticket.closed_at <= ticket.due:
        _add(sums, (*bucket, Measure.TICKETS_ON_TIME.value), sign)


def tickets_delta(
    before: Mapping[str, TicketFact], after: Mapping[str, TicketFact], buckets: Buckets
) -> Sums:
    """What the rollups change by when these work orders go from ``before`` to ``after``."""
    sums: Sums = {}
    for ticket_id, ticket in after.items():
        old = before.get(ticket_id)
        if old is not None:
            add_ticket(sums, old, buckets, -1)
        add_ticket(sums, ticket, buckets)
    return {key: amount for key, amount in sums.items() if amount}


def _leg_signature(call: CallFact) -> tuple[object, ...]:
    """Everything :func:`add_leg` reads: equal signatures contribute the same."""
    return (
        call.offered_at, call.queued_at, call.queue, call.facts, call.outcome, call.outcome_at,
        call.agent_id, call.ended_at, call.hold_us, call.wrapped_at, call.reason,
    )  # fmt: skip


def changed_attribution(before: Mapping[str, CallFact], after: Mapping[str, CallFact]) -> set[str]:
    """The legs whose queue or answering agent a batch changed: their stored reviews and surveys
    that name no queue (or, for surveys, no agent) move with them."""
    changed = set()
    for call_id, call in after.items():
        old = before.get(call_id)
        if old is None or old.queue != call.queue or old.agent_id != call.agent_id:
            changed.add(call_id)
    return changed


def batch_delta(
    before: Mapping[str, CallFact],
    after: Mapping[str, CallFact],
    reviews: Iterable[Review],
    surveys: Iterable[Survey],
    dependents: tuple[Iterable[Review], Iterable[Survey]],
    satisfied_score: int,
    buckets: Buckets,
) -> Sums:
    """What one batch changes in the rollups.

    ``before`` holds the stored facts of legs the batch loaded, ``after`` the legs it changed;
    ``reviews`` and ``surveys`` are the batch's new ones; ``dependents`` the stored reviews and
    surveys of the legs :func:`changed_attribution` names (loaded by the caller).
    """
    sums: Sums = {}
    for call_id, call in after.items():
        old = before.get(call_id)
        if old is not None and _leg_signature(old) == _leg_signature(call):
            continue
        if old is not None:
            add_leg(sums, old, buckets, -1)
        add_leg(sums, call, buckets)

    def leg(call_id: str) -> CallFact | None:
        return after.get(call_id) or before.get(call_id)

    stored_reviews, stored_surveys = dependents
    for review in stored_reviews:
        old = before.get(review.call_id)
        add_review(sums, review, old.queue if old is not None else None, buckets, -1)
        new = leg(review.call_id)
        add_review(sums, review, new.queue if new is not None else None, buckets)
    for survey in stored_surveys:
        add_survey(sums, survey, before.get(survey.call_id), satisfied_score, buckets, -1)
        add_survey(sums, survey, leg(survey.call_id), satisfied_score, buckets)
    for review in reviews:
        new = leg(review.call_id)
        add_review(sums, review, new.queue if new is not None else None, buckets)
    for survey in surveys:
        add_survey(sums, survey, leg(survey.call_id), satisfied_score, buckets)
    return {key: amount for key, amount in sums.items() if amount}


def rebuild(
    calls: Iterable[CallFact],
    reviews: Iterable[tuple[Review, str | None]],
    surveys: Iterable[tuple[Survey, CallFact | None]],
    contacts: Iterable[ContactState],
    satisfied_score: int,
    buckets: Buckets,
    states: Iterable[StateChange] = (),
    tickets: Iterable[TicketFact] = (),
) -> Sums:
    """Every rollup from the stored facts: each leg, each review and survey with its call's
    queue (and leg), each contact, and the span between each agent state change and the
    agent's next (``states`` ordered by agent), summed."""
    sums: Sums = {}
    for ticket in tickets:
        add_ticket(sums, ticket, buckets)
    for _, own in itertools.groupby(states, key=lambda change: change.agent_id):
        for change, following in itertools.pairwise(sorted(own, key=_order)):
            add_span(sums, change, following.ts, buckets)
    for contact in contacts:
        add_contact(sums, contact, buckets)
    for leg in calls:
        add_leg(sums, leg, buckets)
    for review, call_queue in reviews:
        add_review(sums, review, call_queue, buckets)
    for survey, of_call in surveys:
        add_survey(sums, survey, of_call, satisfied_score, buckets)
    return {key: amount for key, amount in sums.items() if amount}


# The measures IntervalLoad sums, in its field order after queue and start.
LOAD_MEASURES: tuple[str, ...] = (
    Measure.REQUESTS.value,
    Measure.ANSWERED.value,
    Measure.ABANDONED.value,
    Measure.SHORT_ABANDONED.value,
    Measure.WITHIN_THRESHOLD.value,
    Measure.WAIT_US.value,
    ABANDON_WAIT_US,
    STAFF_HANDLED,
    STAFF_HANDLE_US,
)
_LOAD_INDEX = {name: index for index, name in enumerate(LOAD_MEASURES)}


def slot_sums(
    intervals: Iterable[Row], answers: Iterable[Row], timezone: str, interval_minutes: int
) -> SlotSums:
    """The staffing analysis' sums from rollup rows of :attr:`Grain.INTERVAL` (``intervals``)
    and :attr:`Grain.ANSWER` (``answers``): what the rollup reader reads, and what the store
    computes from the facts with :func:`add_leg` when the rollups do not fit, so both agree."""
    loads: dict[tuple[int, str], list[int]] = {}
    for bucket, queue, _, name, value in intervals:
        index = _LOAD_INDEX.get(name)
        if index is not None and value:
            loads.setdefault((bucket, queue), [0] * len(LOAD_MEASURES))[index] += value
    work: dict[tuple[int, str, str], list[int]] = {}
    for bucket, queue, agent, name, value in answers:
        if value and name in (ANSWERS, BUSY_US):
            work.setdefault((bucket, queue, agent), [0, 0])[1 if name == BUSY_US else 0] += value
    return SlotSums(
        timezone,
        interval_minutes,
        tuple(
            IntervalLoad(queue, bucket, *sums)
            for (bucket, queue), sums in sorted(loads.items())
            if any(sums)
        ),
        tuple(
            AgentWork(queue, bucket, agent, *sums)
            for (bucket, queue, agent), sums in sorted(work.items())
            if any(sums)
        ),
    )


def slot_sums_of(sums: Sums, lo: int, hi: int, timezone: str, interval_minutes: int) -> SlotSums:
    """:func:`slot_sums` of the buckets of ``sums`` that start in [lo, hi)."""
    rows: dict[int, list[Row]] = {Grain.INTERVAL: [], Grain.ANSWER: []}
    for (grain, bucket, queue, agent, name), value in sums.items():
        if grain in rows and lo <= bucket < hi:
            rows[grain].append((bucket, queue, agent, name, value))
    return slot_sums(rows[Grain.INTERVAL], rows[Grain.ANSWER], timezone, interval_minutes)
