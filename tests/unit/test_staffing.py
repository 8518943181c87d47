"""The staffing analysis: counting, attribution, estimation, advice and backtest."""

from __future__ import annotations

import heapq
import json
import random
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_kpi.metrics.erlang import agents_needed
from hotline_kpi.metrics.fold import (
    ABANDONED,
    ANSWERED,
    NO_OUTCOME,
    CallFact,
    StateChange,
    call_facts,
)
from hotline_kpi.metrics.fold import FactThresholds as FoldThresholds
from hotline_kpi.metrics.records import QueuedCall
from hotline_kpi.metrics.staffing import (
    AgentStates,
    StaffingSettings,
    UnattributedTime,
    analyse_staffing,
    answered_legs,
    attribute_staffed_time,
    staffed_seconds,
)

US = 1_000_000
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _us(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * US


# The fold's thresholds for the default StaffingSettings: S = 5 s, T = 20 s.
_THRESHOLDS = FoldThresholds.of_seconds(5.0, 20.0, 8)
_OUTCOMES = {"answered": ANSWERED, "abandoned": ABANDONED, None: NO_OUTCOME}


def _call(
    queue: str,
    queued: int,
    outcome: str | None,
    outcome_at: int | None,
    agent: str | None,
    ended: int | None,
) -> QueuedCall:
    """A queued call as the store reads it, with the facts the fold computes for it."""
    fact = CallFact(
        f"c{queued}",
        queued_at=queued,
        queue=queue,
        outcome=_OUTCOMES[outcome],
        outcome_at=outcome_at,
        agent_id=agent,
        ended_at=ended,
    )
    return QueuedCall.with_facts(
        queue, queued, outcome_at, agent, ended, call_facts(fact, _THRESHOLDS)
    )


def _simulated_facts(
    n: int, lam: float, aht: float, patience: float, hours: float, start: str, seed: int
) -> list[QueuedCall]:
    """M/M/n+M, FCFS, with named agents (the earliest free agent answers)."""
    rng = random.Random(seed)
    free = [(0.0, f"A{i:03d}") for i in range(n)]
    heapq.heapify(free)
    t0 = _us(start)
    now = 0.0
    facts: list[QueuedCall] = []
    while True:
        now += rng.expovariate(lam)
        if now > hours * 3600:
            return facts
        wait = max(0.0, free[0][0] - now)
        limit = rng.expovariate(1 / patience)
        queued = t0 + int(now * US)
        if wait > limit:
            facts.append(_call("mobile", queued, "abandoned", queued + int(limit * US), None, None))
            continue
        _, agent = free[0]
        end = now + wait + rng.expovariate(1 / aht)
        heapq.heapreplace(free, (end, agent))
        answered = queued + int(wait * US)
        facts.append(_call("mobile", queued, "answered", answered, agent, t0 + int(end * US)))


def test_no_calls_gives_an_empty_report_that_says_so() -> None:
    report = analyse_staffing([])
    assert report.empty
    assert report.message == "no queued calls: nothing to analyse"
    assert report.to_rows() == []
    assert json.loads(json.dumps(report.to_json()))["empty"] is True

    month = (date(2026, 10, 1), date(2026, 10, 31))
    outside = [_call("mobile", _us("2026-09-15T10:00:00+08:00"), None, None, None, None)]
    report = analyse_staffing(outside, period=month)
    assert report.empty
    assert report.message is not None and "2026-10-01" in report.message


def test_counts_attribution_to_local_interval_agents_and_busy_time() -> None:
    # 2026-10-31T16:30Z is 2026-11-01 00:30 in Shanghai (SPEC §3 example).
    q = _us("2026-10-31T16:30:00+00:00")
    facts: list[QueuedCall] = [
        # answered after 10 s by A1, talks 20 min: busy 00:30:10-00:45 and 00:45-00:50:10
        _call("mobile", q, "answered", q + 10 * US, "A1", q + 10 * US + 1200 * US),
        # answered after 30 s (outside T = 20 s) by A2, 60 s of talk
        _call("mobile", q + 60 * US, "answered", q + 90 * US, "A2", q + 150 * US),
        # short abandon (3 s) and a long abandon (40 s)
        _call("mobile", q + 120 * US, "abandoned", q + 123 * US, None, None),
        _call("mobile", q + 180 * US, "abandoned", q + 220 * US, None, None),
        # still waiting / failed while waiting: counts as queued only
        _call("mobile", q + 240 * US, None, None, None, None),
    ]
    report = analyse_staffing(facts, StaffingSettings(timezone=SHANGHAI))
    assert report.period == (date(2026, 11, 1), date(2026, 11, 1))
    first, second = report.intervals
    assert (first.start, first.arrivals, first.abandons, first.days) == ("00:30", 5, 2, 1)
    assert first.agents_observed == 2
    # busy: A1 from 00:30:10 to 00:45 = 890 s, A2 60 s; over 900 s
    assert first.agents_busy == pytest.approx((890 + 60) / 900, abs=1e-3)
    assert second.start == "00:45"
    assert second.arrivals == 0
    assert second.agents_busy == pytest.approx(310 / 900, abs=1e-3)
    assert first.mean_handle_seconds == pytest.approx((1200 + 60) / 2)
    # patience MLE: 2 abandons over 10 + 30 + 3 + 40 s of waiting
    assert first.mean_patience_seconds == pytest.approx(83 / 2)
    (bt,) = report.backtest_intervals
    assert bt.actual_abandon_rate == pytest.approx(1 / 4)  # (2 − 1 short) / (5 − 1)
    assert bt.actual_service_level == pytest.approx(1 / 4)  # one answered within 20 s
    assert bt.start == "2026-11-01T00:30:00+08:00"


def test_hour_by_weekday_view_pools_the_same_weekday() -> None:
    monday = _us("2026-11-02T09:10:00+08:00")
    week = 7 * 86_400 * US
    facts: list[QueuedCall] = [
        _call("q", monday, "answered", monday + US, "A1", monday + 61 * US),
        _call("q", monday + week, "answered", monday + week + US, "A2", monday + week + 61 * US),
    ]
    report = analyse_staffing(facts, period=(date(2026, 11, 1), date(2026, 11, 30)))
    (row,) = report.hour_weekday
    assert (row.weekday, row.start, row.minutes, row.days, row.arrivals) == (1, "09:00", 60, 5, 2)
    assert row.arrival_rate_per_hour == pytest.approx(2 / 5)
    assert row.agents_observed == pytest.approx(2 / 5)


def test_estimates_and_advice_recover_a_simulated_queue() -> None:
    lam, aht, patience, n = 100 / 1800, 180.0, 60.0, 10
    facts = _simulated_facts(
        n, lam, aht, patience, hours=48, start="2026-11-02T00:00:00+08:00", seed=3
    )
    settings = StaffingSettings(interval_minutes=60, timezone=SHANGHAI)
    report = analyse_staffing(facts, settings)
    assert not report.empty
    rows = report.intervals
    assert len(rows) == 24
    total = sum(r.arrivals for r in rows)
    assert total / (48 * 3600) == pytest.approx(lam, rel=0.05)
    busy = sum(r.mean_handle_seconds or 0 for r in rows) / len(rows)
    assert busy == pytest.approx(aht, rel=0.1)
    truth = agents_needed(lam, 1 / aht, 1 / patience, kpi="manual_connection_rate", target=0.9)
    assert truth is not None
    for row in rows:
        assert row.agents_observed <= n
        assert row.agents_busy <= n + 1e-9
        assert row.agents_needed_manual_connection_rate is not None
        # slot estimates from ~200 calls: the advice is within two agents of the truth
        assert abs(row.agents_needed_manual_connection_rate - truth) <= 2
        assert row.agents_needed_service_level_erlang_c is not None
        assert row.agents_needed_service_level is not None
        assert row.agents_needed_service_level <= row.agents_needed_service_level_erlang_c
        assert row.shortfall is not None

    (summary,) = report.backtest
    assert summary.queue == "mobile"
    assert summary.intervals == 48
    # each hour has ~200 calls: sampling noise alone is ~0.03 on each share
    assert summary.mae_abandon_rate < 0.06
    assert summary.mae_service_level < 0.08
    assert abs(summary.bias_abandon_rate) < 0.03
    json.dumps(report.to_json())
    assert report.to_rows("backtest")[0]["intervals"] == 48


def test_bad_settings_are_rejected_with_the_offending_value() -> None:
    with pytest.raises(ValueError, match="interval_minutes"):
        StaffingSettings(interval_minutes=7)
    with pytest.raises(ValueError, match="target_service_level"):
        StaffingSettings(target_service_level=80)
    with pytest.raises(ValueError, match="unknown view"):
        analyse_staffing([]).to_rows("heatmap")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(
        [
            "Asia/Shanghai",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "Europe/London",
        ]
    ),
    us=st.integers(1_759_000_000 * 10**6, 1_800_000_000 * 10**6),
    minutes=st.sampled_from([15, 30, 60]),
)
def test_the_cached_clock_agrees_with_the_time_zone_database(
    zone: str, us: int, minutes: int
) -> None:
    from datetime import timedelta

    from hotline_kpi.metrics.staffing import _Clock

    tz = ZoneInfo(zone)
    slot_us = minutes * 60 * 10**6
    day, index, end = _Clock(tz, slot_us).slot(us)
    local = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).astimezone(tz)
    into_day = (local.hour * 3600 + local.minute * 60 + local.second) * 10**6 + local.microsecond
    assert (day, index) == (local.date(), into_day // slot_us)
    assert end - us == (index + 1) * slot_us - into_day


# --------------------------------------------------------------------------------------------
# Staffed agents from the state timeline (issue 14)
# --------------------------------------------------------------------------------------------

DAY = date(2026, 11, 2)
TEN = 40  # the 15-minute interval 10:00-10:15


def _state(agent: str, at: str, state: str, reason: str | None = None) -> StateChange:
    return StateChange(f"{agent}@{at}", agent, _us(at), state, reason)


def test_an_agent_in_two_queues_shares_its_staffed_time_by_answered_legs_three_to_one() -> None:
    staffed = {("A1", DAY, TEN): 900.0}
    legs = {("A1", DAY): {"billing": 3, "mobile": 1}}
    shared = attribute_staffed_time(staffed, legs, 900)
    assert shared.by_interval == {
        ("billing", DAY, TEN): pytest.approx(0.75),
        ("mobile", DAY, TEN): pytest.approx(0.25),
    }
    assert shared.unattributed == ()


def test_an_agent_staffed_on_a_day_it_answered_nothing_goes_to_no_queue_and_is_reported() -> None:
    staffed = {("A1", DAY, TEN): 900.0, ("A2", DAY, TEN): 600.0, ("A2", DAY, TEN + 1): 300.0}
    # A2 answered the day before, not this day: no evidence of its queue today.
    legs = {("A1", DAY): {"billing": 2}, ("A2", date(2026, 11, 1)): {"mobile": 5}}
    shared = attribute_staffed_time(staffed, legs, 900)
    assert shared.by_interval == {("billing", DAY, TEN): pytest.approx(1.0)}
    assert shared.unattributed == (UnattributedTime("A2", DAY, 900.0),)


def test_an_interval_crossing_a_shift_end_counts_only_its_staffed_part() -> None:
    changes = [
        _state("A1", "2026-11-02T08:00:00+08:00", "ready"),
        _state("A1", "2026-11-02T09:50:00+08:00", "busy"),
        _state("A1", "2026-11-02T10:03:00+08:00", "wrap_up"),
        _state("A1", "2026-11-02T10:05:00+08:00", "not_ready", "break"),
        _state("A1", "2026-11-02T10:06:00+08:00", "ready"),
        _state("A1", "2026-11-02T10:07:00+08:00", "logged_out"),
    ]
    settings = StaffingSettings(timezone=SHANGHAI)
    now = _us("2026-11-02T12:00:00+08:00")
    staffed = staffed_seconds(changes, now, (DAY, DAY), settings)
    # 10:00-10:07 staffed but for the minute of break: 6 min; nothing after the shift's end.
    assert staffed[("A1", DAY, TEN)] == pytest.approx(360.0)
    assert staffed[("A1", DAY, TEN - 1)] == pytest.approx(900.0)
    assert ("A1", DAY, TEN + 1) not in staffed
    assert sum(staffed.values()) == pytest.approx(2 * 3600 + 360.0)
    shared = attribute_staffed_time(staffed, {("A1", DAY): {"mobile": 1}}, 900)
    assert shared.by_interval[("mobile", DAY, TEN)] == pytest.approx(0.4)


def test_state_time_runs_to_now_and_no_further() -> None:
    changes = [_state("A1", "2026-11-02T10:00:00+08:00", "ready")]
    settings = StaffingSettings(timezone=SHANGHAI)
    staffed = staffed_seconds(changes, _us("2026-11-02T10:05:00+08:00"), (DAY, DAY), settings)
    assert staffed == {("A1", DAY, TEN): pytest.approx(300.0)}
    assert staffed_seconds(changes, None, (DAY, DAY), settings) == {}


def test_answered_legs_count_per_agent_local_day_of_the_answer_and_queue() -> None:
    late = _us("2026-11-01T23:59:50+08:00")
    calls = [
        _call("billing", late, "answered", late + 20 * US, "A1", late + 80 * US),  # Nov 2
        _call("billing", late, "answered", late + 5 * US, "A1", late + 80 * US),  # Nov 1
        _call("mobile", late, "abandoned", late + 9 * US, None, None),
    ]
    legs = answered_legs(calls, StaffingSettings(timezone=SHANGHAI))
    assert legs == {("A1", DAY): {"billing": 1}, ("A1", date(2026, 11, 1)): {"billing": 1}}


def test_with_agent_states_the_agents_observed_are_the_staffed_ones() -> None:
    q = _us("2026-11-02T10:01:00+08:00")
    calls = [
        _call("billing", q, "answered", q + 5 * US, "A1", q + 65 * US),
        _call("billing", q + 60 * US, "answered", q + 70 * US, "A1", q + 130 * US),
        _call("billing", q + 120 * US, "answered", q + 130 * US, "A1", q + 190 * US),
        _call("mobile", q + 180 * US, "answered", q + 190 * US, "A1", q + 250 * US),
        _call("mobile", q + 240 * US, "abandoned", q + 250 * US, None, None),
    ]
    changes = [
        _state("A1", "2026-11-02T09:00:00+08:00", "ready"),
        _state("A2", "2026-11-02T09:00:00+08:00", "ready"),  # answered nothing that day
        _state("A1", "2026-11-02T10:15:00+08:00", "logged_out"),
    ]
    states = AgentStates(changes, _us("2026-11-02T10:30:00+08:00"))
    settings = StaffingSettings(timezone=SHANGHAI)
    report = analyse_staffing(calls, settings, states=states)
    assert report.agents_source == "states"
    observed = {(r.queue, r.start): r.agents_observed for r in report.intervals}
    assert observed[("billing", "10:00")] == pytest.approx(0.75)
    assert observed[("mobile", "10:00")] == pytest.approx(0.25)
    assert observed[("billing", "09:00")] == pytest.approx(0.75)  # staffed, no calls
    assert report.unattributed == (UnattributedTime("A2", DAY, 5400.0),)
    assert report.unattributed_seconds == pytest.approx(5400.0)
    bt = {row.queue: row for row in report.backtest_intervals}
    assert bt["mobile"].agents_observed == pytest.approx(0.25)
    assert bt["mobile"].agents_answered == 1
    assert json.loads(json.dumps(report.to_json()))["agents_source"] == "states"

    only = analyse_staffing(calls, settings, states=states, queue="mobile")
    assert {r.queue for r in only.intervals} == {"mobile"}
    assert {(r.queue, r.start): r.agents_observed for r in only.intervals}[
        ("mobile", "10:00")
    ] == pytest.approx(0.25)

    # Without states (v1 events) the agents observed are the distinct agents answering.
    fallback = analyse_staffing(calls, settings)
    assert fallback.agents_source == "answered"
    assert {(r.queue, r.start): r.agents_observed for r in fallback.intervals}[
        ("mobile", "10:00")
    ] == 1
    (summary,) = [s for s in fallback.backtest if s.queue == "mobile"]
    assert summary.mae_abandon_rate == summary.mae_abandon_rate_answered
    # States that give no staffed time in the period fall back too.
    empty = analyse_staffing(calls, settings, states=AgentStates([], None))
    assert empty.agents_source == "answered"
