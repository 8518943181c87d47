"""The v2 event model end to end (SPEC §2, §3, §5): legs and contacts, blocked and left legs,
hold, after-call work, agent states and caller keys, from events to the month's export.

Every expected figure below is worked out by hand from the events, in the comments next to it.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline_kpi.config import Settings, load_settings
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.store import SqliteStore
from hotline_kpi.pipeline import Pipeline, thresholds_of
from tests.conftest import line, make_event

SECRET = b"test secret"


def caller_key(raw: str | None) -> str | None:
    """SPEC §7 written out independently: digits of the number without +86/0086, HMAC-SHA256."""
    if raw is None:
        return None
    text = re.sub(r"[\s\-()]", "", raw)
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 5:
        return None
    return hmac.new(SECRET, digits.encode(), hashlib.sha256).hexdigest()


def ts(text: str) -> str:
    """A local Asia/Shanghai time as RFC 3339 with its offset."""
    return datetime.fromisoformat(text + "+08:00").isoformat()


def later(text: str, seconds: float) -> str:
    return (datetime.fromisoformat(text + "+08:00") + timedelta(seconds=seconds)).isoformat()


def month_events() -> list[dict[str, Any]]:
    """Five contacts (one with two legs), four tickets, two agents' days (see module docstring)."""
    e = make_event
    return [
        # Contact K1: billing, answered by A1 in 10 s, 300 s talk, 12.5 s on hold, transferred
        # to tech; 30 s of after-call work. Its second leg L2 waits 30 s for A2, 300 s talk,
        # wrapped up before its end (after-call work 0).
        e("call.offered", ts("2026-11-01T10:00:00"), call_id="L1", contact_id="K1",
          caller="+86 138-0013-8000"),
        e("call.queued", ts("2026-11-01T10:00:10"), call_id="L1", queue="billing"),
        e("call.answered", ts("2026-11-01T10:00:20"), call_id="L1", queue="billing",
          agent_id="A1", contact_id="K1"),
        e("call.ended", ts("2026-11-01T10:05:20"), call_id="L1", cause="transfer",
          hold_seconds=12.5),
        e("call.wrapped", ts("2026-11-01T10:05:50"), call_id="L1", agent_id="A1"),
        e("call.queued", ts("2026-11-01T10:05:21"), call_id="L2", queue="tech",
          contact_id="K1"),
        e("call.answered", ts("2026-11-01T10:05:51"), call_id="L2", queue="tech",
          agent_id="A2"),
        e("call.ended", ts("2026-11-01T10:10:51"), call_id="L2", cause="customer_hangup"),
        e("call.wrapped", ts("2026-11-01T10:10:40"), call_id="L2", agent_id="A2"),
        # L3: the same caller an hour later (a repeat), blocked: the queue is full.
        e("call.offered", ts("2026-11-01T11:00:00"), call_id="L3", caller="13800138000"),
        e("call.blocked", ts("2026-11-01T11:00:05"), call_id="L3", queue="billing",
          reason="queue_full"),
        e("call.ended", ts("2026-11-01T11:00:06"), call_id="L3", cause="customer_hangup"),
        # L4: the same caller 49 h later (no repeat), left after 60 s (timeout).
        e("call.offered", ts("2026-11-03T12:00:00"), call_id="L4", caller="008613800138000"),
        e("call.queued", ts("2026-11-03T12:00:00"), call_id="L4", queue="billing"),
        e("call.left", ts("2026-11-03T12:01:00"), call_id="L4", queue="billing",
          reason="timeout"),
        e("call.ended", ts("2026-11-03T12:01:00"), call_id="L4", cause="transfer"),
        # L5: anonymous (no key), a short abandon in tech. L6: another caller, abandons in 30 s.
        e("call.offered", ts("2026-11-02T08:00:00"), call_id="L5", caller="anonymous"),
        e("call.queued", ts("2026-11-02T08:00:00"), call_id="L5", queue="tech"),
        e("call.abandoned", ts("2026-11-02T08:00:03"), call_id="L5", queue="tech"),
        e("call.offered", ts("2026-11-02T09:00:00"), call_id="L6", caller="(010) 6552-1234"),
        e("call.queued", ts("2026-11-02T09:00:00"), call_id="L6", queue="billing"),
        e("call.abandoned", ts("2026-11-02T09:00:30"), call_id="L6", queue="billing"),
        # Complaints: T1 and T2 lead to the first caller (T2 a repeat), T3 to the second; T4 is
        # a fault, not a complaint.
        e("ticket.opened", ts("2026-11-01T10:20:00"), ticket_id="T1", kind="complaint",
          call_id="L2", due=ts("2026-11-05T10:00:00")),
        e("ticket.opened", ts("2026-11-02T09:00:00"), ticket_id="T2", kind="complaint",
          call_id="L3", due=ts("2026-11-05T10:00:00")),
        e("ticket.opened", ts("2026-11-02T09:01:00"), ticket_id="T3", kind="complaint",
          call_id="L6", due=ts("2026-11-05T10:00:00")),
        e("ticket.opened", ts("2026-11-02T09:02:00"), ticket_id="T4", kind="fault",
          call_id="L3", due=ts("2026-11-05T10:00:00")),
        # A1: a day shift with lunch, logged out after midnight.
        e("agent.state", ts("2026-11-01T09:00:00"), agent_id="A1", state="ready"),
        e("agent.state", ts("2026-11-01T10:00:20"), agent_id="A1", state="busy"),
        e("agent.state", ts("2026-11-01T10:05:20"), agent_id="A1", state="wrap_up"),
        e("agent.state", ts("2026-11-01T10:05:50"), agent_id="A1", state="ready"),
        e("agent.state", ts("2026-11-01T12:00:00"), agent_id="A1", state="not_ready",
          reason="lunch"),
        e("agent.state", ts("2026-11-01T13:00:00"), agent_id="A1", state="ready"),
        e("agent.state", ts("2026-11-02T00:30:00"), agent_id="A1", state="logged_out"),
        # A2: logged in an hour before the month began (in the zone), so October has 3600 s.
        e("agent.state", ts("2026-10-31T23:00:00"), agent_id="A2", state="ready"),
        e("agent.state", ts("2026-11-01T10:05:51"), agent_id="A2", state="busy"),
        e("agent.state", ts("2026-11-01T10:10:51"), agent_id="A2", state="wrap_up"),
        e("agent.state", ts("2026-11-01T11:00:00"), agent_id="A2", state="logged_out"),
    ]  # fmt: skip


def replay(events: list[dict[str, Any]], settings: Settings, key: bool = True) -> SqliteStore:
    store = SqliteStore(Path(settings.store))
    pipeline = Pipeline(store, thresholds_of(settings), caller_key=caller_key if key else None)
    records = [(line(event), 0, index + 1) for index, event in enumerate(events)]
    for start in range(0, len(records), 7):  # several batches: state carried by the store
        chunk = records[start : start + 7]
        outcome = pipeline.process(chunk, "test", {0: chunk[-1][2]})
        assert outcome.rejected == {}, outcome.rejected
    return store


def figures(entry: dict[str, Any]) -> tuple[Any, Any]:
    return entry["numerator"], entry["denominator"]


@pytest.mark.parametrize("shuffled", [False, True])
def test_month_export_has_every_v2_figure(
    settings: Settings, shuffled: bool, tmp_path: Path
) -> None:
    events = month_events()
    if shuffled:
        random.Random(7).shuffle(events)
    store = replay(events, settings)
    report = KpiFigures(store, settings).month("2026-11")
    overall = report["overall"]
    # Requests L1..L6; L5 is a short abandon: 5 counted requests, answered L1 and L2.
    assert figures(overall["manual_connection_rate"]) == (2, 5)
    assert figures(overall["blocked_rate"]) == (1, 5)  # L3 of requests less short abandons
    assert figures(overall["abandon_rate"]) == (1, 5)  # L6 (L5 is short)
    assert figures(overall["average_speed_of_answer"]) == (40, 2)  # 10 s + 30 s
    assert figures(overall["average_handle_time"]) == (600, 2)
    assert figures(overall["average_hold_time"]) == (12.5, 2)  # L2 has none: 0
    assert figures(overall["average_after_call_work"]) == (30, 2)  # 30 s + max(0, −11 s)
    assert figures(overall["transfer_rate"]) == (1, 2)
    # Keyed contacts K1, L3, L4 (one caller), L6; L3 is K1's caller within 24 h.
    assert figures(overall["repeat_contact_rate"]) == (1, 4)
    # Answered and settled: K1 only, and its caller called again within 24 h.
    assert figures(overall["first_contact_resolution"]) == (0, 1)
    # Complaints T1, T2 (the first caller again, within 30 days) and T3.
    assert figures(overall["repeat_complaint_rate"]) == (1, 3)
    volumes = report["volumes"]["overall"]
    assert volumes["requests"] == 6
    assert volumes["blocked"] == 1 and volumes["left"] == 1
    assert volumes["blocked_by_reason"] == {"queue_full": 1, "no_agents": 0, "closed": 0}
    assert volumes["left_by_reason"] == {
        "timeout": 1,
        "no_agents": 0,
        "callback_requested": 0,
        "overflow": 0,
    }
    assert volumes["transferred"] == 1
    assert volumes["offered"] == 5 and volumes["contacts"] == 5
    queues = report["volumes"]["queues"]
    assert queues["billing"]["contacts"] == 4 and queues["tech"]["contacts"] == 1
    assert queues["billing"]["requests"] == 4 and queues["tech"]["requests"] == 2
    assert "repeat_contact_rate" not in report["queues"]["billing"]
    assert figures(report["queues"]["tech"]["average_speed_of_answer"]) == (30, 1)

    agents = {agent["agent_id"]: agent for agent in report["agents"]}
    a1, a2 = agents["A1"], agents["A2"]
    # A1: ready 3620 + 6850 + 41400, busy 300, wrap-up 30, lunch 3600, then logged out until
    # "now" (2026-11-03T12:01, the latest event): 35 h 31 min.
    assert a1["state_seconds"] == {
        "logged_out": 127_860,
        "ready": 51_870,
        "busy": 300,
        "wrap_up": 30,
        "not_ready": 3_600,
    }
    assert a1["not_ready_reasons"] == {"lunch": 3_600}
    assert a1["logged_in_seconds"] == 55_800
    assert figures(a1["occupancy"]) == (330, 52_200)
    assert figures(a1["utilisation"]) == (330, 55_800)
    assert figures(a1["not_ready_share"]) == (3_600, 55_800)
    assert a1["hold_seconds"] == 12.5 and a1["after_call_work_seconds"] == 30
    # A2 from the month's first instant: ready 36351, busy 300, wrap-up 2949.
    assert a2["state_seconds"]["ready"] == 36_351
    assert a2["state_seconds"]["wrap_up"] == 2_949
    occupied, staffed = 330 + 300 + 2_949, 52_200 + 36_351 + 300 + 2_949
    assert figures(overall["occupancy"]) == (occupied, staffed)
    assert figures(overall["utilisation"]) == (occupied, 55_800 + 39_600)

    october = KpiFigures(store, settings).month("2026-10")
    (a2_october,) = october["agents"]
    assert a2_october["agent_id"] == "A2" and a2_october["state_seconds"]["ready"] == 3_600
    assert october["overall"]["occupancy"]["value"] == 0


def test_blocked_legs_can_leave_counted_requests(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        None, store=str(tmp_path / "store.db"), definitions={"blocked_are_requests": False}
    )
    store = replay(month_events(), settings)
    overall = KpiFigures(store, settings).month("2026-11")["overall"]
    assert figures(overall["manual_connection_rate"]) == (2, 4)
    assert figures(overall["blocked_rate"]) == (1, 5)  # the same either way


def test_without_a_key_secret_the_caller_kpis_have_no_data(settings: Settings) -> None:
    store = replay(month_events(), settings, key=False)
    overall = KpiFigures(store, settings).month("2026-11")["overall"]
    for key in ("repeat_contact_rate", "first_contact_resolution", "repeat_complaint_rate"):
        assert overall[key]["value"] is None and overall[key]["denominator"] == 0


def test_no_caller_number_or_key_is_stored(settings: Settings) -> None:
    store = replay(month_events(), settings)
    dump = "\n".join(store._db.iterdump())
    for digits in ("13800138000", "1380013", "65521234"):
        assert digits not in dump
    report = str(KpiFigures(store, settings).month("2026-11"))
    assert caller_key("13800138000") not in report


def test_conflicts_of_legs_and_contacts(settings: Settings) -> None:
    e = make_event
    store = SqliteStore(Path(settings.store))
    pipeline = Pipeline(store, thresholds_of(settings), caller_key=caller_key)
    events = [
        e("call.offered", ts("2026-11-01T10:00:00"), call_id="L1", contact_id="K1"),
        e("call.queued", ts("2026-11-01T10:00:01"), call_id="L1", queue="q", contact_id="K2"),
        e("call.offered", ts("2026-11-01T10:00:02"), call_id="L2", contact_id="K1"),
        e("call.offered", ts("2026-11-01T10:00:03"), call_id="L1"),
        e("call.blocked", ts("2026-11-01T10:00:04"), call_id="L3", queue="q", reason="closed"),
        e("call.queued", ts("2026-11-01T10:00:05"), call_id="L3", queue="q"),
        e("call.answered", ts("2026-11-01T10:00:06"), call_id="L3", queue="q", agent_id="A"),
        e("call.ended", ts("2026-11-01T10:00:07"), call_id="L3", cause="agent_hangup"),
        e("call.wrapped", ts("2026-11-01T10:00:08"), call_id="L3", agent_id="A"),
        e("call.wrapped", ts("2026-11-01T10:00:09"), call_id="L3", agent_id="A"),
    ]
    records = [(line(event), 0, index + 1) for index, event in enumerate(events)]
    outcome = pipeline.process(records, "test", {0: len(records)})
    # Another contact_id, a second offer of the contact (another leg) and of the leg, a second
    # outcome of the blocked leg, a second wrap-up.
    assert outcome.rejected == {"conflict": 5}
    report = KpiFigures(store, settings).month("2026-11")
    assert report["volumes"]["overall"]["blocked"] == 1  # L3 stays blocked
    assert report["volumes"]["overall"]["answered"] == 0
    assert report["volumes"]["overall"]["contacts"] == 1


def test_a_leg_that_gets_its_contact_after_its_offer_moves_the_offer(settings: Settings) -> None:
    e = make_event
    events = [
        e("call.offered", ts("2026-11-01T10:00:00"), call_id="L1", caller="13800138000"),
        e("call.queued", ts("2026-11-01T10:00:01"), call_id="L1", queue="q", contact_id="K"),
        e("call.queued", ts("2026-11-01T10:01:00"), call_id="L2", queue="r", contact_id="K"),
    ]
    store = replay(events, settings)
    report = KpiFigures(store, settings).month("2026-11")
    assert report["volumes"]["overall"]["contacts"] == 1
    assert report["volumes"]["queues"]["q"]["contacts"] == 1
    assert report["overall"]["repeat_contact_rate"]["denominator"] == 1


def test_hold_seconds_are_rounded_to_the_microsecond(settings: Settings) -> None:
    e = make_event
    events = [
        e("call.queued", ts("2026-11-01T10:00:00"), call_id="L1", queue="q"),
        e("call.answered", ts("2026-11-01T10:00:01"), call_id="L1", queue="q", agent_id="A"),
        e("call.ended", ts("2026-11-01T10:01:00"), call_id="L1", cause="agent_hangup",
          hold_seconds=0.0000015),
        e("call.queued", ts("2026-11-01T10:00:00"), call_id="L2", queue="q"),
        e("call.answered", ts("2026-11-01T10:00:01"), call_id="L2", queue="q", agent_id="A"),
        e("call.ended", ts("2026-11-01T10:01:00"), call_id="L2", cause="agent_hangup",
          hold_seconds=3),
    ]  # fmt: skip
    store = replay(events, settings)
    overall = KpiFigures(store, settings).month("2026-11")["overall"]
    assert overall["average_hold_time"]["numerator"] == pytest.approx(3.000002, abs=0)


def test_agent_state_ties_break_by_event_id(settings: Settings) -> None:
    e = make_event
    at = ts("2026-11-01T09:00:00")
    events = [
        e("agent.state", at, agent_id="A", state="ready", event_id="b"),
        e("agent.state", at, agent_id="A", state="not_ready", event_id="a", reason="x"),
        e("agent.state", ts("2026-11-01T10:00:00"), agent_id="A", state="logged_out"),
    ]
    for order in (events, events[::-1]):
        settings_here = load_settings(None, store=str(Path(settings.store).with_suffix(".2.db")))
        Path(settings_here.store).unlink(missing_ok=True)
        store = replay(order, settings_here)
        (agent,) = KpiFigures(store, settings_here).month("2026-11")["agents"]
        assert agent["state_seconds"]["ready"] == 3600  # "b" is the later of the two
        assert agent["state_seconds"]["not_ready"] == 0
        store.close()


def test_erasing_old_caller_keys_changes_no_figure(settings: Settings, tmp_path: Path) -> None:
    """SPEC §7 retention: keys older than the retention (in event time) are erased, and the
    flags settled from them are kept, so no figure of any month changes."""
    events = sorted(month_events(), key=lambda event: datetime.fromisoformat(event["ts"]))
    kept = replay(events, settings)
    expected = KpiFigures(kept, settings).month("2026-11")
    other = load_settings(None, store=str(tmp_path / "retained.db"))
    store = SqliteStore(Path(other.store))
    day = 86_400 * 1_000_000
    pipeline = Pipeline(store, thresholds_of(other), caller_key=caller_key, key_retention_us=day)
    records = [(line(event), 0, index + 1) for index, event in enumerate(events)]
    for start in range(0, len(records), 7):
        chunk = records[start : start + 7]
        assert pipeline.process(chunk, "test", {0: chunk[-1][2]}).rejected == {}
    # "Now" is 2026-11-03T12:01: every contact but L4 (offered at 12:00 that day) is older
    # than a day, so only L4's key is left.
    keys = store._db.execute("SELECT COUNT(*) FROM contacts WHERE caller_key IS NOT NULL")
    assert keys.fetchone()[0] == 1
    assert KpiFigures(store, other).month("2026-11") == expected
