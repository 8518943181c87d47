"""The store's read side: typed records of what the fold stored, the same as the facts say."""

from __future__ import annotations

from pathlib import Path

from hotline_kpi.ingest.decode import Reason, Rejected
from hotline_kpi.metrics.catalogue import Measure
from hotline_kpi.metrics.fold import (
    ABANDONED,
    ANSWERED,
    CallFact,
    FactThresholds,
    Review,
    Survey,
    call_facts,
)
from hotline_kpi.metrics.records import GroupCounts, QueuedCall
from hotline_kpi.metrics.store import BatchWrite, SqliteStore

US = 1_000_000
T0 = 1_790_000_000 * US
STRICT = FactThresholds.of_seconds(5, 20, 8)


def _call(call_id: str, queue: str, outcome: int, wait_s: int, agent: str | None) -> CallFact:
    call = CallFact(
        call_id,
        offered_at=T0,
        queued_at=T0,
        queue=queue,
        outcome=outcome,
        outcome_at=T0 + wait_s * US,
        agent_id=agent,
        ended_at=T0 + (wait_s + 60) * US if outcome == ANSWERED else None,
    )
    call.facts = call_facts(call, STRICT)
    return call


def _store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "s.db")
    store.commit(
        BatchWrite(
            calls=[
                _call("c1", "billing", ANSWERED, 10, "A1"),  # within 20 s
                _call("c2", "billing", ANSWERED, 30, "A1"),
                _call("c3", "billing", ABANDONED, 3, None),  # short
                _call("c4", "mobile", ABANDONED, 40, None),
            ],
            reviews=[Review("r1", "c1", "A1", True, None, None, T0)],
            surveys=[Survey("s1", "c2", 9, None, None, {"speed": 7}, T0)],
            rejected=[Rejected(Reason.invalid_json, 0, 1, None, None, "x", "not JSON")],
        )
    )
    return store


def test_measure_counts_per_queue_and_per_agent_come_from_the_stored_facts(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    lo, hi = T0, T0 + 3600 * US
    billing, mobile = sorted(store.call_counts(lo, hi, "queue"), key=lambda g: str(g.group))
    assert billing.counts[Measure.REQUESTS] == 3
    assert billing.counts[Measure.ANSWERED] == 2
    assert billing.counts[Measure.WITHIN_THRESHOLD] == 1
    assert billing.counts[Measure.SHORT_ABANDONED] == 1
    assert billing.counts[Measure.WAIT_US] == 40 * US
    assert billing.counts[Measure.HANDLE_US] == 120 * US
    assert mobile.counts[Measure.ABANDONED] == 1 and mobile.counts[Measure.SHORT_ABANDONED] == 0
    (agent,) = store.call_counts(lo, hi, "agent")
    assert (agent.group, agent.counts[Measure.ANSWERED]) == ("A1", 2)
    # A review and a survey count in their call's queue when they name none.
    assert store.review_counts(lo, hi, "queue") == [
        GroupCounts("billing", {Measure.QA_REVIEWS: 1, Measure.QA_ACCURATE: 1})
    ]
    assert store.survey_counts(lo, hi, "agent", 8) == [
        GroupCounts("A1", {Measure.SURVEYS: 1, Measure.SATISFIED: 1, Measure.SCORE_SUM: 9})
    ]
    assert store.score_counts(lo, hi) == {9: 1}
    assert [(r.score, dict(r.factors)) for r in store.factor_ratings(lo, hi)] == [(9, {"speed": 7})]
    assert store.offered_count(lo, hi) == 4
    assert store.undelivered_count() == 1


def test_queued_calls_carry_the_folds_facts_and_follow_new_thresholds(tmp_path: Path) -> None:
    store = _store(tmp_path)
    lo, hi = T0, T0 + 3600 * US
    calls = {call.outcome_at: call for call in store.queued_calls(lo, hi, "billing")}
    assert calls[T0 + 10 * US] == QueuedCall(
        "billing", T0, T0 + 10 * US, "A1", T0 + 70 * US, True, False, False, True
    )
    assert calls[T0 + 3 * US].short_abandon
    # No abandon is short with S = 0 and every answer is within T = 60 s: once the store's facts
    # are refolded, what staffing reads says so without knowing the thresholds.
    store.ensure_thresholds(FactThresholds.of_seconds(0, 60, 8))
    refolded = store.queued_calls(lo, hi, "billing")
    assert not any(call.short_abandon for call in refolded)
    assert all(call.within_threshold for call in refolded if call.answered)
