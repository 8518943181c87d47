"""The v2 ground truth on cases small enough to check by hand (SPEC §3), and its independence:
it is the oracle the pipeline's v2 KPIs will be compared with, so it must be right on its own.
"""

from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hotline_kpi.simulation.truth as truth_module
from hotline_kpi.simulation.clock import DAY_MS, EPOCH, HOUR_MS
from hotline_kpi.simulation.records import SimCall, SimContact, SimState, SimTicket
from hotline_kpi.simulation.truth import GroundTruth, caller_key

SHANGHAI = ZoneInfo("Asia/Shanghai")
W = 24 * HOUR_MS


def ms(text: str) -> int:
    """Epoch ms of an RFC 3339 time."""
    return round((datetime.fromisoformat(text) - EPOCH).total_seconds() * 1000)


def truth(**definitions: Any) -> GroundTruth:
    """A v2 truth with SPEC's default thresholds (S = 5 s, T = 20 s, satisfied ≥ 8)."""
    return GroundTruth(SHANGHAI, 5000, 20_000, 8, event_model="v2", **definitions)


def contact(
    name: str, offered: int, caller: str | None, *legs: SimCall, events: GroundTruth | None = None
) -> SimContact:
    """A contact of ``legs`` (the first one offered); its events' times move "now"."""
    for index, leg in enumerate(legs):
        leg.first_leg = index == 0
        leg.contact_id = name
    found = SimContact(name, offered, caller, list(legs))
    if events is not None:
        events.event(offered)
        for leg in legs:
            for ts in (leg.queued_ms, leg.answered_ms, leg.ended_ms, leg.wrapped_ms):
                if ts:
                    events.event(ts)
    return found


def answered_leg(call_id: str, queue: str, at: int, wait: int, talk: int, **more: Any) -> SimCall:
    leg = SimCall(call_id, at, queue=queue, queued_ms=at, answered_ms=at + wait, agent="A1")
    leg.ended_ms = at + wait + talk
    for key, value in more.items():
        setattr(leg, key, value)
    return leg


def month(result: dict[str, Any], name: str) -> dict[str, Any]:
    return result["months"][name]


def test_the_truth_imports_no_catalogue_fold_store_or_decoder() -> None:
    tree = ast.parse(Path(truth_module.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names
    }
    ours = {name for name in imported if name and name.startswith("hotline")}
    assert ours == {"hotline_kpi.simulation.clock", "hotline_kpi.simulation.records"}
    forbidden = ("hotline_kpi.metrics", "hotline_kpi.ingest", "metrics", "ingest")
    assert not [name for name in imported if name and name.startswith(forbidden)]


def test_the_spellings_of_one_number_are_one_caller_and_short_ones_are_none() -> None:
    same = {"+86 138-0013-8000", "008613800138000", "13800138000", "+8613800138000"}
    assert {caller_key(spelling) for spelling in same} == {"13800138000"}
    assert caller_key("(010) 6552-1234") == caller_key("010-65521234") == "01065521234"
    assert [caller_key(c) for c in ("anonymous", "", None, "1234", "+86 1234")] == [None] * 5
    assert caller_key("12345") == "12345"


def test_a_transfer_is_two_legs_of_one_contact_one_request_in_each_queue() -> None:
    t = ms("2026-10-10T10:00:00+08:00")
    first = answered_leg("c1", "billing", t + 10_000, 15_000, 60_000, cause="transfer")
    first.hold_ms, first.wrapped_ms = 12_500, first.ended_ms + 4_000
    second = answered_leg("c2", "mobile", first.ended_ms + 1000, 30_000, 50_000, agent="A2")
    second.wrapped_ms = second.ended_ms  # wrapped at once: after-call work 0, still counted
    oracle = truth()
    oracle.contact(contact("k1", t, "13800138000", first, second, events=oracle))
    october = month(oracle.to_json(), "2026-10")
    volumes = october["volumes"]["overall"]
    assert (volumes["offered"], volumes["contacts"], volumes["requests"]) == (1, 1, 2)
    assert (volumes["answered"], volumes["transferred"]) == (2, 1)
    overall = october["overall"]
    assert overall["transfer_rate"] == [1, 2]
    assert overall["average_hold_time"] == [12.5, 2]
    assert overall["average_after_call_work"] == [4.0, 2]
    assert overall["average_speed_of_answer"] == [45.0, 2]
    assert overall["service_level"] == [1, 2]  # 15 s ≤ T, 30 s > T
    # Each queue has its leg; the contact belongs to its first request's queue.
    assert october["queues"]["billing"]["transfer_rate"] == [1, 1]
    assert october["queues"]["mobile"]["manual_connection_rate"] == [1, 1]
    assert october["volumes"]["queues"]["billing"]["contacts"] == 1
    assert october["volumes"]["queues"]["mobile"]["contacts"] == 0
    assert october["agents"]["A1"]["hold_seconds"] == 12.5
    assert october["agents"]["A2"]["kpis"]["average_after_call_work"] == [0.0, 1]


def test_a_contact_within_w_of_another_by_any_spelling_is_a_repeat() -> None:
    t = ms("2026-10-10T10:00:00+08:00")
    oracle = truth()
    callers = [
        (t, "+86 138-0013-8000"),
        (t + W - 1, "008613800138000"),  # 1 ms inside W: a repeat
        (t + W - 1 + W + 1, "13800138000"),  # W + 1 ms after the one before: not a repeat
        (t + 1000, "anonymous"),  # no key: in no caller-key figure
    ]
    for index, (offered, caller) in enumerate(callers):
        leg = SimCall(f"c{index}", offered, caller)
        leg.ended_ms = offered + 30_000
        oracle.contact(contact(f"k{index}", offered, caller, leg, events=oracle))
    result = oracle.to_json()
    assert month(result, "2026-10")["overall"]["repeat_contact_rate"] == [1, 3]
    assert month(result, "2026-10")["volumes"]["overall"]["contacts"] == 4


def test_resolution_ends_at_exactly_offered_plus_w() -> None:
    t = ms("2026-10-10T10:00:00+08:00")

    def fcr(gap: int) -> tuple[list[float], list[float]]:
        oracle = truth()
        for index, offered in enumerate((t, t + gap)):
            leg = answered_leg(f"c{index}", "billing", offered + 10_000, 5000, 60_000)
            oracle.contact(contact(f"k{index}", offered, "13800138000", leg, events=oracle))
        overall = month(oracle.to_json(), "2026-10")["overall"]
        return overall["first_contact_resolution"], overall["repeat_contact_rate"]

    # At t + W exactly the second call is within both windows: the first is not resolved, and
    # "now" (the last event, t + W + 75 s) is past t + W: settled. The second is not settled.
    assert fcr(W) == ([0, 1], [1, 2])
    # One ms later it is outside both: the first is resolved, the second no repeat.
    assert fcr(W + 1) == ([1, 1], [0, 2])


def test_state_time_is_split_at_local_midnight_and_the_month_boundary() -> None:
    oracle = truth()
    changes = [
        ("A1", "2026-10-31T23:00:00+08:00", "ready", None),
        ("A1", "2026-10-31T23:30:00+08:00", "not_ready", "break"),
        ("A1", "2026-11-01T00:15:00+08:00", "busy", None),
        ("A1", "2026-11-01T01:00:00+08:00", "logged_out", None),
        ("A2", "2026-11-01T00:30:00+08:00", "ready", None),  # nothing counted before this
    ]
    for agent, ts, state, reason in changes:
        oracle.state(SimState(agent, ms(ts), state, reason))
        oracle.event(ms(ts))
    oracle.event(ms("2026-11-01T02:00:00+08:00"))  # "now": the last state runs to it
    result = oracle.to_json()
    october, november = month(result, "2026-10"), month(result, "2026-11")
    a1_oct = october["agents"]["A1"]
    assert a1_oct["state_seconds"] == {
        "logged_out": 0.0, "ready": 1800.0, "busy": 0.0, "wrap_up": 0.0, "not_ready": 1800.0
    }  # fmt: skip
    assert a1_oct["not_ready_reasons"] == {"break": 1800.0}
    assert a1_oct["logged_in_seconds"] == 3600.0
    a1_nov = november["agents"]["A1"]
    assert a1_nov["state_seconds"]["not_ready"] == 900.0
    assert a1_nov["state_seconds"]["busy"] == 2700.0
    assert a1_nov["state_seconds"]["logged_out"] == 3600.0
    assert a1_nov["kpis"]["occupancy"] == [2700.0, 2700.0]
    assert a1_nov["kpis"]["utilisation"] == [2700.0, 3600.0]
    assert november["agents"]["A2"]["state_seconds"]["ready"] == 5400.0
    assert "A2" not in october["agents"]
    # Overall pools the agents: October only A1; November A1 and A2.
    assert october["overall"]["not_ready_share"] == [1800.0, 3600.0]
    assert october["overall"]["occupancy"] == [0.0, 1800.0]
    assert november["overall"]["occupancy"] == [2700.0, 2700.0 + 5400.0]
    assert november["overall"]["utilisation"] == [2700.0, 3600.0 + 5400.0]


def _blocked_answered_and_short(oracle: GroundTruth) -> None:
    t = ms("2026-10-10T10:00:00+08:00")
    answered = answered_leg("c1", "billing", t, 10_000, 60_000)
    blocked = SimCall("c2", t, queue="billing", blocked_ms=t + 1000, blocked_reason="queue_full")
    blocked.queued_ms = t + 1000  # queued as well: it stays blocked
    short = SimCall("c3", t, queue="billing", queued_ms=t, abandoned_ms=t + 2000)
    left = SimCall("c4", t, queue="billing", queued_ms=t, left_ms=t + 300_000)
    left.left_reason = "timeout"
    for index, leg in enumerate((answered, blocked, short, left)):
        oracle.contact(contact(f"k{index}", t - 10_000, None, leg, events=oracle))


def test_blocked_legs_leave_counted_requests_only_when_they_are_not_requests() -> None:
    counted = truth()
    _blocked_answered_and_short(counted)
    overall = month(counted.to_json(), "2026-10")["overall"]
    assert overall["manual_connection_rate"] == [1, 3]  # 4 requests − 1 short abandon
    assert overall["blocked_rate"] == [1, 3]
    not_counted = truth(blocked_are_requests=False)
    _blocked_answered_and_short(not_counted)
    result = not_counted.to_json()
    overall = month(result, "2026-10")["overall"]
    assert overall["manual_connection_rate"] == [1, 2]
    assert overall["service_level"] == [1, 2]
    assert overall["abandon_rate"] == [0, 2]
    assert overall["blocked_rate"] == [1, 3]  # blocked legs are always in its denominator
    volumes = month(result, "2026-10")["volumes"]["overall"]
    assert volumes["requests"] == 4
    assert volumes["blocked_by_reason"] == {"queue_full": 1, "no_agents": 0, "closed": 0}
    assert volumes["left_by_reason"] == {
        "timeout": 1, "no_agents": 0, "callback_requested": 0, "overflow": 0
    }  # fmt: skip
    assert result["definitions"]["blocked_are_requests"] is False


def test_a_complaint_within_30_days_of_another_by_the_same_caller_is_a_repeat() -> None:
    t = ms("2026-10-01T10:00:00+08:00")
    oracle = truth()
    for index, (opened, caller) in enumerate(
        [(t, "13800138000"), (t + 30 * DAY_MS, "+86 138-0013-8000"), (t + DAY_MS, "13900000000")]
    ):
        first = answered_leg(f"c{index}a", "billing", opened - 600_000, 5000, 60_000)
        second = SimCall(f"c{index}b", opened, queue="mobile", queued_ms=opened - 300_000)
        # The ticket names the contact's second leg: it still leads to the caller's key.
        first.ticket = SimTicket(
            f"t{index}", second.call_id, "complaint", opened, opened, None, None
        )
        legs = contact(f"k{index}", opened - 700_000, caller, first, second, events=oracle)
        oracle.contact(legs)
    result = oracle.to_json()
    assert month(result, "2026-10")["overall"]["repeat_complaint_rate"] == [1, 3]
    assert "repeat_complaint_rate" not in month(result, "2026-10")["queues"]["billing"]


def test_a_v1_truth_writes_the_keys_it_always_wrote() -> None:
    oracle = GroundTruth(SHANGHAI, 5000, 20_000, 8)
    t = ms("2026-10-10T10:00:00+08:00")
    oracle.call(answered_leg("c1", "billing", t, 5000, 60_000))
    oracle.event(t)
    result = oracle.to_json()
    assert set(result) == {"timezone", "watermark", "accepted_events", "rejections", "months"}
    october = month(result, "2026-10")
    assert set(october) == {"overall", "queues", "ticket_kinds", "agents", "offered"}
    assert len(october["overall"]) == 10
