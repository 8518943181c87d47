"""The store's grouped pass by period (issue 16): each row counts in the period its attributed
time falls in, edges included on the left and excluded on the right, and with a queue only what
counts in that queue is read. The period index is a binary search in SQL: it agrees with
``bisect`` for every time, whatever the edges."""

from __future__ import annotations

import bisect
import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hotline_kpi.metrics.catalogue import Measure
from hotline_kpi.metrics.fold import ANSWERED, CallFact, Review, Survey, TicketFact
from hotline_kpi.metrics.records import PeriodCounts
from hotline_kpi.metrics.store import BatchWrite, SqliteStore, period_index
from tests.unit.test_store_reads import STRICT, T0, US, _call

HOUR = 3600 * US
EDGES = [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]


def _at(call: CallFact, moment: int) -> CallFact:
    """``call`` moved so that it was queued (and offered) at ``moment``."""
    shift = moment - T0
    call.offered_at = moment
    call.queued_at = moment
    call.outcome_at = None if call.outcome_at is None else call.outcome_at + shift
    call.ended_at = None if call.ended_at is None else call.ended_at + shift
    return call


def _store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "p.db")
    store.commit(
        BatchWrite(
            calls=[
                _at(_call("c1", "billing", ANSWERED, 10, "A1"), T0),  # first edge: period 0
                _at(_call("c2", "billing", ANSWERED, 30, "A2"), T0 + HOUR - 1),  # period 0
                _at(_call("c3", "mobile", ANSWERED, 5, "A1"), T0 + HOUR),  # an edge: period 1
                _at(_call("c4", "mobile", ANSWERED, 5, "A1"), T0 + 3 * HOUR),  # last edge: out
                _at(_call("c5", "billing", ANSWERED, 5, "A1"), T0 - 1),  # before: out
            ],
            reviews=[
                Review("r1", "c3", "A1", True, None, None, T0 + 2 * HOUR),  # mobile, by its call
                Review("r2", "c3", "A1", False, "billing", None, T0 + 2 * HOUR),  # names billing
            ],
            surveys=[Survey("s1", "c1", 9, None, None, None, T0 + HOUR + 5)],
            tickets=[TicketFact("t1", T0, T0 + HOUR, "bill", "billing", "c1", T0 + 10, 0)],
        )
    )
    return store


def _by(found: list[PeriodCounts], measure: Measure) -> dict[tuple[int, str | None], int]:
    totals: dict[tuple[int, str | None], int] = {}
    for group in found:
        if measure in group.counts:
            key = (group.period, group.group)
            totals[key] = totals.get(key, 0) + group.counts[measure]
    return totals


def test_each_row_counts_in_the_period_of_its_attributed_time(tmp_path: Path) -> None:
    store = _store(tmp_path)
    found = store.period_counts(EDGES, "queue", STRICT.satisfied_score)
    assert _by(found, Measure.REQUESTS) == {(0, "billing"): 2, (1, "mobile"): 1}
    assert _by(found, Measure.WAIT_US) == {(0, "billing"): 40 * US, (1, "mobile"): 5 * US}
    assert _by(found, Measure.QA_REVIEWS) == {(2, "mobile"): 1, (2, "billing"): 1}
    assert _by(found, Measure.SURVEYS) == {(1, "billing"): 1}
    by_agent = store.period_counts(EDGES, "agent", STRICT.satisfied_score)
    assert _by(by_agent, Measure.ANSWERED) == {(0, "A1"): 1, (0, "A2"): 1, (1, "A1"): 1}
    assert store.period_offered(EDGES) == {0: 2, 1: 1}
    assert [(due.period, due.ticket.ticket_id) for due in store.period_tickets(EDGES)] == [
        (1, "t1")
    ]
    # One period over the whole span is the month export's read of [lo, hi).
    whole = store.period_counts([EDGES[0], EDGES[-1]], "queue", STRICT.satisfied_score)
    month = store.call_counts(EDGES[0], EDGES[-1], "queue")
    assert _by(whole, Measure.ANSWERED) == {
        (0, group.group): group.counts[Measure.ANSWERED] for group in month
    }


def test_a_queue_reads_only_what_counts_in_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    found = store.period_counts(EDGES, "queue", STRICT.satisfied_score, "billing")
    assert {group.group for group in found} == {"billing"}
    assert _by(found, Measure.REQUESTS) == {(0, "billing"): 2}
    # The review naming billing counts there, its sibling on the same mobile call does not.
    assert _by(found, Measure.QA_REVIEWS) == {(2, "billing"): 1}
    by_agent = store.period_counts(EDGES, "agent", STRICT.satisfied_score, "mobile")
    assert _by(by_agent, Measure.ANSWERED) == {(1, "A1"): 1}
    assert _by(by_agent, Measure.QA_REVIEWS) == {(2, "A1"): 1}
    assert store.period_offered(EDGES, "mobile") == {1: 1}
    assert store.period_tickets(EDGES, "mobile") == []


def test_no_periods_read_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.period_counts([T0], "queue", 8) == []
    assert store.period_offered([]) == {}
    assert store.period_tickets([T0]) == []


@given(
    st.lists(st.integers(-(10**15), 10**15), min_size=2, max_size=300, unique=True),
    st.lists(st.integers(-(10**15), 10**15), max_size=50),
)
def test_the_period_index_is_a_binary_search_of_the_edges(
    edges: list[int], times: list[int]
) -> None:
    edges.sort()
    db = sqlite3.connect(":memory:")
    expression = period_index("t", edges)
    inside = [t for t in [*times, *edges[:-1]] if edges[0] <= t < edges[-1]]
    for moment in inside:
        (index,) = db.execute(f"SELECT {expression} FROM (SELECT ? AS t)", (moment,)).fetchone()
        assert index == bisect.bisect_right(edges, moment) - 1
