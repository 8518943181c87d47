"""Interval rollups (issue 17): kept at ingest with exact retractions, equal to a recomputation.

- Late events move legs across interval, day and month bounds (an earlier ``call.queued`` in
  another queue, an outcome stamped before the first queueing), and reviews and surveys arrive
  before or after the legs whose queue and agent they borrow: whatever the arrival order and
  batching, the stored rollups equal the rollups recomputed from the stored facts, and every
  figure the exports read from them equals the figure read from the facts.
- The rollups follow the configuration: a writer started with another zone or interval
  rebuilds them, an export with another configuration reads the facts.
- The bucket arithmetic agrees with the report periods in zones with daylight saving.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hotline_kpi.cli import main
from hotline_kpi.config import Settings, load_settings
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.months import period_edges
from hotline_kpi.metrics.rolled import RollupReader
from hotline_kpi.metrics.rollups import Buckets
from hotline_kpi.metrics.store import SqliteStore
from hotline_kpi.pipeline import Pipeline, rollup_config_of, thresholds_of
from hotline_kpi.reports.data import extend_report
from tests.conftest import line, make_event
from tests.unit.test_export_v2 import caller_key

US = 1_000_000
# A month boundary in Asia/Shanghai (local midnight of 1 November) and New York (UTC-4).
SHANGHAI_NOVEMBER = datetime(2026, 10, 31, 16, 0, tzinfo=ZoneInfo("UTC"))
ZONES = ("Asia/Shanghai", "America/New_York")

PROPERTY = hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_stores = itertools.count(1)


def _settings(tmp_path: Path, zone: str = "Asia/Shanghai", interval: int = 15) -> Settings:
    settings = load_settings(None, store=str(tmp_path / f"store-{next(_stores)}.db"))
    return settings.model_copy(update={"timezone": zone, "interval_minutes": interval})


def _stamp(seconds: float) -> str:
    """An instant ``seconds`` from the Shanghai month boundary, as RFC 3339 UTC."""
    return (SHANGHAI_NOVEMBER + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


# Offsets in seconds around the boundary, an interval edge, and (New York) 4 h later.
_NEAR = st.sampled_from([-86_400.5, -900, -1, -0.000001, 0, 0.5, 899.999999, 900, 14_400, 14_399])


@st.composite
def leg_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The events of a few legs, reviews and surveys, times on interval, day and month edges."""
    events: list[dict[str, Any]] = []
    for number in range(draw(st.integers(1, 3))):
        call = f"L{number}"
        queued = draw(_NEAR)
        # Legs of one contact or of their own; offers with a caller (keyed) or without, hours
        # apart so that the repeat window W (24 h) holds some and not others.
        contact = draw(st.sampled_from([None, "K0", "K1"]))
        linked = {} if contact is None else {"contact_id": contact}
        if draw(st.booleans()):
            caller = draw(st.sampled_from([None, "13800138000", "+86 138-0013-8000", "95105"]))
            extra = {} if caller is None else {"caller": caller}
            at = queued - 5 + draw(st.sampled_from([0, -86_400, 3_600]))
            events.append(make_event("call.offered", _stamp(at), call_id=call, **linked, **extra))
        if draw(st.booleans()):
            kind = draw(st.sampled_from(["complaint", "inquiry"]))
            events.append(
                make_event("ticket.opened", _stamp(draw(_NEAR) + 60), ticket_id=f"T-{call}",
                           call_id=call, kind=kind, due=_stamp(draw(_NEAR) + 7_200),
                           queue="billing")
            )  # fmt: skip
            if draw(st.booleans()):  # closed before, at or after its due time
                events.append(
                    make_event("ticket.closed", _stamp(draw(_NEAR) + 7_200), ticket_id=f"T-{call}")
                )
        queues = draw(st.lists(st.sampled_from(["billing", "tech"]), min_size=0, max_size=2))
        for index, queue in enumerate(queues):  # a later-processed earlier queueing moves it
            at = queued + draw(st.sampled_from([0, 30, -30])) * index
            events.append(
                make_event("call.queued", _stamp(at), call_id=call, queue=queue, **linked)
            )
        outcome = draw(st.sampled_from(["answered", "abandoned", "left", "blocked", None]))
        at = queued + draw(st.sampled_from([0, 3, 4.999999, 20, 20.000001, 400]))
        agent = draw(st.sampled_from(["A1", "A2"]))
        queue = draw(st.sampled_from(["billing", "tech"]))
        if outcome == "answered":
            events.append(
                make_event("call.answered", _stamp(at), call_id=call, queue=queue, agent_id=agent)
            )
            if draw(st.booleans()):
                end = at + draw(st.sampled_from([0, 60, 1_000, 90_000]))
                hold = draw(st.sampled_from([None, 0, 1.5]))
                cause = draw(st.sampled_from(["agent_hangup", "transfer", "network_failure"]))
                fields: dict[str, Any] = {"cause": cause}
                if hold is not None:
                    fields["hold_seconds"] = hold
                events.append(make_event("call.ended", _stamp(end), call_id=call, **fields))
                if draw(st.booleans()):
                    events.append(
                        make_event("call.wrapped", _stamp(end + 30), call_id=call, agent_id=agent)
                    )
        elif outcome == "abandoned":
            events.append(make_event("call.abandoned", _stamp(at), call_id=call, queue=queue))
        elif outcome == "left":
            events.append(
                make_event("call.left", _stamp(at), call_id=call, queue=queue, reason="timeout")
            )
        elif outcome == "blocked":
            events.append(
                make_event("call.blocked", _stamp(at), call_id=call, queue=queue, reason="closed")
            )
        for review in range(draw(st.integers(0, 2))):
            named = draw(st.sampled_from([None, "tech"]))
            extra = {} if named is None else {"queue": named}
            events.append(
                make_event("qa.reviewed", _stamp(draw(_NEAR) + 7), call_id=call, agent_id="A2",
                           accurate=draw(st.booleans()), event_id=f"r-{call}-{review}", **extra)
            )  # fmt: skip
        for survey in range(draw(st.integers(0, 2))):
            extra = {}
            if draw(st.booleans()):
                extra["queue"] = "billing"
            if draw(st.booleans()):
                extra["agent_id"] = "A1"
            if draw(st.booleans()):
                extra["factors"] = {"speed": draw(st.integers(1, 10)), "tone": 7}
            events.append(
                make_event("survey.answered", _stamp(draw(_NEAR) + 11), call_id=call,
                           score=draw(st.integers(1, 10)), event_id=f"s-{call}-{survey}",
                           **extra)
            )  # fmt: skip
    # Agent state changes around the same edges, equal times included (ordered by event id).
    for number in range(draw(st.integers(0, 5))):
        state = draw(st.sampled_from(["logged_out", "ready", "busy", "wrap_up", "not_ready"]))
        extra = (
            {"reason": draw(st.sampled_from(["break", "lunch"]))} if state == "not_ready" else {}
        )
        events.append(
            make_event("agent.state", _stamp(draw(_NEAR) + draw(st.sampled_from([0, 600]))),
                       agent_id=draw(st.sampled_from(["A1", "A2"])), state=state,
                       event_id=f"st-{draw(st.sampled_from('ab'))}{number}", **extra)
        )  # fmt: skip
    return events


def _replay(
    events: Sequence[dict[str, Any]], cuts: Sequence[int], settings: Settings
) -> SqliteStore:
    store = SqliteStore(Path(settings.store))
    pipeline = Pipeline(store, thresholds_of(settings), rollups=rollup_config_of(settings),
                        clock=lambda: 1 << 62, caller_key=caller_key)  # fmt: skip
    records = [(line(event), 0, index + 1) for index, event in enumerate(events)]
    edges = [0, *sorted({cut for cut in cuts if cut < len(records)}), len(records)]
    for start, stop in itertools.pairwise(edges):
        if start < stop:
            pipeline.process(records[start:stop], "test", {0: records[stop - 1][2]})
    return store


def _figures_both_ways(store: SqliteStore, settings: Settings, *, extended: bool = False) -> None:
    """Every figure read from the rollups equals the same figure read from the facts: the
    months on both sides of the boundary with their daily KPIs, the two days around it by
    interval and by day for one queue (and, ``extended``, the report's extra figures)."""
    rolled = KpiFigures(store, settings)
    assert isinstance(rolled.store, RollupReader)
    facts = KpiFigures(store, settings)
    facts.store = store
    for month in ("2026-10", "2026-11"):
        assert rolled.export(month) == facts.export(month), month
        if extended:
            assert extend_report(rolled.month(month), rolled.store, settings, month) == (
                extend_report(facts.month(month), store, settings, month)
            )
    first, last = date(2026, 10, 31), date(2026, 11, 1)
    for by, queue in (("interval", None), ("day", "billing"), ("hour", "tech")):
        assert rolled.range_report(first, last, by, queue) == facts.range_report(
            first, last, by, queue
        )


@PROPERTY
@given(
    events=leg_events(),
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    zone=st.sampled_from(ZONES),
    interval=st.sampled_from([15, 60]),
)
def test_rollups_equal_a_recomputation_whatever_the_order_and_batching(
    tmp_path: Path,
    events: list[dict[str, Any]],
    order: Any,
    cuts: list[int],
    zone: str,
    interval: int,
) -> None:
    settings = _settings(tmp_path, zone, interval)
    shuffled = list(events)
    order.shuffle(shuffled)
    store = _replay(shuffled, cuts, settings)
    try:
        config = rollup_config_of(settings)
        assert store.rollups_built_for(config)
        assert store.stored_rollups() == store.computed_rollups(config)
        assert store.contact_drift(config.thresholds.repeat_window_us) == []
        _figures_both_ways(store, settings)
    finally:
        store.close()


def test_the_report_extras_read_from_the_rollups_equal_those_read_from_the_facts(
    tmp_path: Path,
) -> None:
    """Wait and score distributions, factor importance and staffing of a simulated fortnight
    that crosses the month boundary, replayed shuffled in small batches."""
    settings = _settings(tmp_path)
    events = [json.loads(text) for text in _simulated(tmp_path).read_text().splitlines()]
    store = _replay([event for event in events if "event_id" in event], range(0, 10**6, 500),
                    settings)  # fmt: skip
    try:
        assert store.stored_rollups() == store.computed_rollups(rollup_config_of(settings))
        _figures_both_ways(store, settings, extended=True)
    finally:
        store.close()


def _simulated(tmp_path: Path) -> Path:
    output = tmp_path / "fortnight.jsonl"
    assert main(["simulate", "--start", "2026-10-25", "--days", "14", "--calls-per-day", "150",
                 "--seed", "5", "--shuffle", "--output", str(output)]) == 0  # fmt: skip
    return output


def test_a_leg_moved_by_a_late_queueing_is_retracted_from_its_old_interval_and_queue(
    tmp_path: Path,
) -> None:
    """A leg first queued in ``tech`` just after the month boundary, then a ``call.queued`` of
    ``billing`` stamped before the boundary: the leg moves to October's last interval and to
    ``billing``, and nothing of it stays in November or in ``tech``."""
    settings = _settings(tmp_path)
    events = [
        make_event("call.queued", _stamp(1), call_id="c", queue="tech"),
        make_event("call.answered", _stamp(10), call_id="c", queue="tech", agent_id="A1"),
        make_event("call.queued", _stamp(-1), call_id="c", queue="billing"),
    ]
    store = _replay(events, [1, 2], settings)
    try:
        figures = KpiFigures(store, settings)
        november, october = figures.month("2026-11"), figures.month("2026-10")
        assert november["overall"]["manual_connection_rate"]["denominator"] == 0
        assert october["queues"]["billing"]["manual_connection_rate"]["numerator"] == 1
        assert "tech" not in october["queues"] and "tech" not in november["queues"]
        assert store.stored_rollups() == store.computed_rollups(rollup_config_of(settings))
    finally:
        store.close()


def test_another_zone_rebuilds_the_rollups_and_an_export_of_another_zone_reads_the_facts(
    tmp_path: Path,
) -> None:
    shanghai = _settings(tmp_path)
    events = [
        make_event("call.queued", _stamp(-60), call_id="c", queue="tech"),
        make_event("call.answered", _stamp(-50), call_id="c", queue="tech", agent_id="A1"),
    ]
    store = _replay(events, [], shanghai)
    new_york = shanghai.model_copy(update={"timezone": "America/New_York"})
    try:
        assert not isinstance(KpiFigures(store, new_york).store, RollupReader)
        before = KpiFigures(store, new_york).month("2026-10")
        Pipeline(store, thresholds_of(new_york), rollups=rollup_config_of(new_york))
        assert store.rollups_built_for(rollup_config_of(new_york))
        assert not store.rollups_built_for(rollup_config_of(shanghai))
        rolled = KpiFigures(store, new_york)
        assert isinstance(rolled.store, RollupReader)
        assert rolled.month("2026-10") == before
        assert store.stored_rollups() == store.computed_rollups(rollup_config_of(new_york))
    finally:
        store.close()


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Asia/Kathmandu",
                                  "Australia/Lord_Howe"])  # fmt: skip
@pytest.mark.parametrize("interval", [15, 20, 60])
def test_buckets_are_the_report_periods(zone: str, interval: int) -> None:
    """Around both daylight saving changes of 2026 (Lord Howe moves by 30 minutes)."""
    tz = ZoneInfo(zone)
    buckets = Buckets(tz, interval)
    for first in (date(2026, 3, 28), date(2026, 10, 3), date(2026, 10, 24), date(2026, 4, 4)):
        last = first + timedelta(days=2)
        edges = period_edges(first, last, "interval", tz, interval)
        days = period_edges(first, last, "day", tz, interval)
        for start, end in itertools.pairwise(edges):
            for moment in (start, start + 1, (start + end) // 2, end - 1):
                assert buckets.interval(moment) == start
                assert buckets.day(moment) == max(day for day in days if day <= moment)
        assert all(buckets.is_edge(edge) for edge in edges)
        pieces = list(buckets.pieces(edges[3] + 7, edges[9] - 1))
        assert [start for start, _ in pieces] == edges[3:9]
        assert sum(length for _, length in pieces) == edges[9] - 1 - edges[3] - 7


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_a_later_batch_changes_the_flags_of_the_contacts_before_it(
    tmp_path: Path, order: str
) -> None:
    """Two contacts of one caller an hour apart, in two batches either way round: the first
    is followed (not resolved), the second is a repeat, whichever arrived first."""
    settings = _settings(tmp_path)
    first = [
        make_event(
            "call.offered", _stamp(-7_200), call_id="a", contact_id="A", caller="13800138000"
        ),
        make_event("call.answered", _stamp(-7_190), call_id="a", queue="tech", agent_id="A1"),
    ]
    second = [
        make_event(
            "call.offered", _stamp(-3_600), call_id="b", contact_id="B", caller="+86 138-0013-8000"
        ),
        make_event("call.answered", _stamp(-3_590), call_id="b", queue="tech", agent_id="A1"),
        # Moves "now" past both windows, so that both resolutions are settled.
        make_event("call.offered", _stamp(100_000), call_id="z"),
    ]
    events = first + second if order == "in order" else second + first
    store = _replay(events, [len(events) // 2 if order == "in order" else 3], settings)
    try:
        report = KpiFigures(store, settings).month("2026-10")
        assert report["overall"]["repeat_contact_rate"]["numerator"] == 1
        assert report["overall"]["repeat_contact_rate"]["denominator"] == 2
        resolution = report["overall"]["first_contact_resolution"]
        assert (resolution["numerator"], resolution["denominator"]) == (1, 2)
        config = rollup_config_of(settings)
        assert store.contact_drift(config.thresholds.repeat_window_us) == []
        assert store.stored_rollups() == store.computed_rollups(config)
    finally:
        store.close()


def _everything(figures: KpiFigures, settings: Settings) -> list[dict[str, Any]]:
    first, last = date(2026, 10, 31), date(2026, 11, 1)
    return [
        figures.export("2026-10"),
        figures.export("2026-11"),
        figures.range_report(first, last, "interval"),
        extend_report(figures.export("2026-10"), figures.store, settings, "2026-10"),
    ]


def test_the_month_export_reads_the_rollups_with_the_legs_reviews_and_surveys_unreadable(
    tmp_path: Path,
) -> None:
    """The KPI export of both months, a range by interval and the month report's extras (wait
    and score distributions, factors, staffing), with every per-leg, review and survey row made
    unreadable after the replay: equal to the export before."""
    settings = _settings(tmp_path)
    events = [json.loads(text) for text in _simulated(tmp_path).read_text().splitlines()]
    store = _replay([event for event in events if "event_id" in event], [], settings)
    figures = KpiFigures(store, settings)
    before = _everything(figures, settings)
    store.close()
    store = SqliteStore(Path(settings.store))  # opened first: opening creates missing tables
    with sqlite3.connect(settings.store) as db:
        for table in ("calls", "reviews", "surveys"):
            db.execute(f"ALTER TABLE {table} RENAME TO hidden_{table}")
    try:
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            store.call_counts(0, 1, "queue")  # the facts are unreadable indeed
        figures = KpiFigures(store, settings)
        after = _everything(figures, settings)
        assert after == before
        assert before[0]["overall"]["manual_connection_rate"]["denominator"] > 500
    finally:
        store.close()


def test_one_figures_object_sees_the_batches_written_after_it(tmp_path: Path) -> None:
    """The demo keeps one ``KpiFigures`` while its pipeline writes: reads are never cached."""
    settings = _settings(tmp_path)
    store = SqliteStore(Path(settings.store))
    pipeline = Pipeline(store, thresholds_of(settings), rollups=rollup_config_of(settings))
    figures = KpiFigures(store, settings)
    assert isinstance(figures.store, RollupReader)
    lo = int((SHANGHAI_NOVEMBER - timedelta(days=1)).timestamp()) * US
    hi = int(SHANGHAI_NOVEMBER.timestamp()) * US
    try:
        for number, expected in ((1, 1), (2, 2)):
            event = make_event("call.queued", _stamp(-60), call_id=f"c{number}", queue="tech")
            pipeline.process([(line(event), 0, number)], "test", {0: number})
            overall, _ = figures.scopes(lo, hi)
            assert overall["requests"] == expected
    finally:
        store.close()


def test_a_late_state_change_between_two_others_splits_the_span_they_made(
    tmp_path: Path,
) -> None:
    """ready at −3,600 s and busy at +1,800 s (across the month boundary), then, later
    processed, not_ready (lunch) at −600 s and a tie at +1,800 s ordered before busy by event
    id: the month's seconds follow the timeline, not the arrival order."""
    settings = _settings(tmp_path)
    events = [
        make_event("agent.state", _stamp(-3_600), agent_id="A1", state="ready", event_id="s1"),
        make_event("agent.state", _stamp(1_800), agent_id="A1", state="busy", event_id="s3"),
        make_event("agent.state", _stamp(-600), agent_id="A1", state="not_ready",
                   reason="lunch", event_id="s2"),
        make_event("agent.state", _stamp(1_800), agent_id="A1", state="wrap_up", event_id="s0"),
        make_event("call.offered", _stamp(3_600), call_id="now"),  # "now"
    ]  # fmt: skip
    store = _replay(events, [2, 4], settings)
    try:
        config = rollup_config_of(settings)
        assert store.stored_rollups() == store.computed_rollups(config)
        agents = {a["agent_id"]: a for a in KpiFigures(store, settings).month("2026-10")["agents"]}
        seconds = agents["A1"]["state_seconds"]
        assert seconds["ready"] == 3_000 and seconds["not_ready"] == 600
        november = KpiFigures(store, settings).month("2026-11")["agents"]
        # ready 0, not_ready 1,800 (to the tie), wrap_up 0 s (s0 then s3 at once), busy 1,800
        assert november[0]["state_seconds"]["not_ready"] == 1_800
        assert november[0]["state_seconds"]["busy"] == 1_800
    finally:
        store.close()
