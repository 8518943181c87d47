"""The pure fold (SPEC §3): order independence, threshold edges, conflicts, counting once."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_kpi.ingest.decode import Accepted, decode_batch
from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics.fold import (
    ABANDONED_FACT,
    ANSWERED_FACT,
    DROPPED,
    SHORT_ABANDON,
    TICKET_DUE,
    TICKET_ON_TIME,
    US,
    WITHIN_THRESHOLD,
    CallFact,
    Count,
    Deltas,
    FactThresholds,
    TicketFact,
    count_ticket,
    fold_batch,
)
from tests.conftest import line, make_event

T0 = datetime.fromisoformat("2026-10-15T10:00:00+08:00")
THRESHOLDS = FactThresholds.of_seconds(5, 20, 8)
NOW = epoch_us(T0) + 365 * 86400 * US


def accepted(*events: dict[str, object]) -> list[Accepted]:
    items, rejected = decode_batch([(line(e), 0, i) for i, e in enumerate(events)], NOW)
    assert rejected == []
    return items


def fold_one_by_one(items: list[Accepted]) -> tuple[dict[str, CallFact], Deltas, int]:
    """Fold each event as its own batch, carrying facts like the store does."""
    calls: dict[str, CallFact] = {}
    total = Deltas()
    conflicts = 0
    watermark = None
    for item in items:
        result = fold_batch([item], calls, {}, THRESHOLDS, watermark)
        calls.update(result.calls)
        watermark = result.watermark
        conflicts += len(result.conflicts)
        for key, amount in result.deltas.counts.items():
            total.counts[key] = total.counts.get(key, 0) + amount
    return calls, total, conflicts


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@st.composite
def call_events(draw: st.DrawFn) -> list[dict[str, object]]:
    """All events of one call, in time order, with realistic variety."""
    events: list[dict[str, object]] = []
    t = 0.0
    if draw(st.booleans()):
        events.append(make_event("call.offered", at(t), call_id="c", caller="13800000000"))
    t += draw(st.floats(0, 60))
    queues = draw(st.lists(st.sampled_from(["billing", "mobile", "vip"]), min_size=0, max_size=2))
    for queue in queues:
        events.append(make_event("call.queued", at(t), call_id="c", queue=queue))
        t += draw(st.sampled_from([0.0, 0.001, 3.0]))
    outcome = draw(st.sampled_from(["answered", "abandoned", None]))
    wait = draw(st.sampled_from([0.0, 4.999, 5.0, 5.001, 19.999, 20.0, 20.001, 90.0]))
    t += wait
    queue = queues[0] if queues else "broadband"
    if outcome == "answered":
        events.append(make_event("call.answered", at(t), call_id="c", queue=queue, agent_id="A1"))
    elif outcome == "abandoned":
        events.append(make_event("call.abandoned", at(t), call_id="c", queue=queue))
    if draw(st.booleans()):
        cause = draw(st.sampled_from(["customer_hangup", "network_failure", "system_failure"]))
        t += draw(st.floats(0, 600))
        events.append(make_event("call.ended", at(t), call_id="c", cause=cause))
    return events


def without_bookkeeping(call: CallFact) -> CallFact:
    return replace(call, counted=0)


@settings(max_examples=300, deadline=None)
@given(events=call_events(), data=st.data())
def test_any_arrival_order_yields_the_same_facts(
    events: list[dict[str, object]], data: st.DataObject
) -> None:
    in_order, _, _ = fold_one_by_one(accepted(*events))
    shuffled = data.draw(st.permutations(events))
    reordered, deltas, conflicts = fold_one_by_one(accepted(*shuffled))
    as_one_batch = fold_batch(accepted(*shuffled), {}, {}, THRESHOLDS, None)
    assert conflicts == 0
    if not in_order:
        assert not reordered
        return
    expected = without_bookkeeping(in_order["c"])
    assert without_bookkeeping(reordered["c"]) == expected
    assert without_bookkeeping(as_one_batch.calls["c"]) == expected
    # Whatever the order, a counter moves at most once per call.
    assert all(amount == 1 for amount in deltas.counts.values())


@settings(max_examples=200, deadline=None)
@given(events=call_events())
def test_in_time_order_every_true_fact_is_counted_exactly_once(
    events: list[dict[str, object]],
) -> None:
    calls, deltas, _ = fold_one_by_one(accepted(*events))
    if not calls:
        return
    call = calls["c"]
    queue = call.queue or "unassigned"
    for bit, count in [
        (ANSWERED_FACT, Count.ANSWERED),
        (WITHIN_THRESHOLD, Count.WITHIN_THRESHOLD),
        (ABANDONED_FACT, Count.ABANDONED),
        (SHORT_ABANDON, Count.SHORT_ABANDONED),
        (DROPPED, Count.DROPPED),
    ]:
        # Only facts that cannot change later are compared: the queue is final in time order.
        assert deltas.counts.get((count, queue), 0) == (1 if call.facts & bit else 0), count


def outcome_after(wait: timedelta, kind: str) -> CallFact:
    queued = make_event("call.queued", T0, call_id="c", queue="billing")
    extra = {"agent_id": "A1"} if kind == "call.answered" else {}
    outcome = make_event(kind, T0 + wait, call_id="c", queue="billing", **extra)
    return fold_batch(accepted(queued, outcome), {}, {}, THRESHOLDS, None).calls["c"]


def test_threshold_edges_are_exact_to_the_microsecond() -> None:
    us = timedelta(microseconds=1)
    assert outcome_after(timedelta(seconds=5) - us, "call.abandoned").facts & SHORT_ABANDON
    assert not outcome_after(timedelta(seconds=5), "call.abandoned").facts & SHORT_ABANDON
    assert outcome_after(timedelta(seconds=20), "call.answered").facts & WITHIN_THRESHOLD
    assert not outcome_after(timedelta(seconds=20) + us, "call.answered").facts & WITHIN_THRESHOLD


def test_the_queue_is_that_of_the_earliest_queued_event() -> None:
    later = make_event("call.queued", at(30), call_id="c", queue="vip")
    answered = make_event("call.answered", at(40), call_id="c", queue="vip", agent_id="A")
    earlier = make_event("call.queued", at(10), call_id="c", queue="billing")
    call = fold_one_by_one(accepted(later, answered, earlier))[0]["c"]
    assert (call.queue, call.queued_at) == ("billing", epoch_us(at(10)))


def test_a_second_outcome_or_end_is_a_conflict_and_the_first_wins() -> None:
    items = accepted(
        make_event("call.queued", at(0), call_id="c", queue="billing"),
        make_event("call.answered", at(10), call_id="c", queue="billing", agent_id="A1"),
        make_event("call.abandoned", at(5), call_id="c", queue="billing"),
        make_event("call.answered", at(12), call_id="c", queue="billing", agent_id="A2"),
        make_event("call.ended", at(100), call_id="c", cause="transfer"),
        make_event("call.ended", at(101), call_id="c", cause="network_failure"),
    )
    result = fold_batch(items, {}, {}, THRESHOLDS, None)
    assert [item.event.type for item, _ in result.conflicts] == [
        "call.abandoned",
        "call.answered",
        "call.ended",
    ]
    call = result.calls["c"]
    assert (call.agent_id, call.cause) == ("A1", "transfer")
    assert not call.facts & DROPPED
    # Conflicting events do not move the watermark.
    assert result.watermark == epoch_us(at(100))


def test_an_end_before_its_answer_counts_once_the_record_is_complete() -> None:
    ended = make_event("call.ended", at(300), call_id="c", cause="system_failure")
    first = fold_batch(accepted(ended), {}, {}, THRESHOLDS, None)
    assert first.deltas.counts == {}
    answered = make_event("call.answered", at(15), call_id="c", queue="mobile", agent_id="A")
    second = fold_batch(accepted(answered), first.calls, {}, THRESHOLDS, first.watermark)
    assert second.deltas.counts[(Count.DROPPED, "mobile")] == 1
    assert second.calls["c"].facts & DROPPED


def ticket(due_s: float, closed_s: float | None) -> TicketFact:
    due = epoch_us(at(due_s))
    closed = None if closed_s is None else epoch_us(at(closed_s))
    return TicketFact("t", epoch_us(T0), due, "fault", "billing", None, closed)


def test_timeliness_settles_closed_tickets_and_open_ones_past_due() -> None:
    def facts(t: TicketFact, watermark_s: float) -> int:
        return count_ticket(t, epoch_us(at(watermark_s)), Deltas()).counted

    assert facts(ticket(100, 100), 0) == TICKET_DUE | TICKET_ON_TIME  # closed exactly at due
    assert facts(ticket(100, 100.001), 0) == TICKET_DUE
    assert facts(ticket(100, None), 100) == 0  # due is not before "now": not settled yet
    assert facts(ticket(100, None), 100.001) == TICKET_DUE


def test_a_ticket_counted_overdue_is_not_counted_on_time_later() -> None:
    deltas = Deltas()
    overdue = count_ticket(ticket(100, None), epoch_us(at(200)), deltas)
    closed = count_ticket(replace(overdue, closed_at=epoch_us(at(50))), epoch_us(at(300)), deltas)
    assert deltas.counts == {(Count.TICKETS_SETTLED, "fault"): 1}
    assert closed.counted == TICKET_DUE


def test_overdue_tickets_settle_when_the_watermark_passes_their_due() -> None:
    opened = make_event(
        "ticket.opened", at(0), ticket_id="t", due=at(60).isoformat(), kind="callback"
    )
    first = fold_batch(accepted(opened), {}, {}, THRESHOLDS, None)
    assert first.deltas.counts == {}
    later = make_event("call.offered", at(61), call_id="other")
    second = fold_batch(
        accepted(later), {}, {}, THRESHOLDS, first.watermark, overdue=[first.tickets["t"]]
    )
    assert second.deltas.counts[(Count.TICKETS_SETTLED, "callback")] == 1
    assert [(t.ticket_id, t.counted, before) for t, before in second.overdue] == [
        ("t", TICKET_DUE, 0)
    ]
    assert second.tickets == {}  # no event touched it: only the conditional settle is written


def test_reviews_and_surveys_take_their_calls_queue_for_the_label() -> None:
    queued = make_event("call.queued", at(0), call_id="c", queue="vip")
    review = make_event("qa.reviewed", at(9), call_id="c", agent_id="A", accurate=True)
    survey = make_event("survey.answered", at(9), call_id="c", score=8, queue="mobile")
    result = fold_batch(accepted(queued, review, survey), {}, {}, THRESHOLDS, None)
    assert result.deltas.counts[(Count.QA_ACCURATE, "vip")] == 1
    assert result.deltas.counts[(Count.SATISFIED, "mobile")] == 1
    assert result.reviews[0].queue is None  # stored as sent; exports resolve the call's queue
