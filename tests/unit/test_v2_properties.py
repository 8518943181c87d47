"""Properties of the v2 event model (issue 14, SPEC §2, §3, §7), through the real pipeline.

- The month's export does not depend on the order the events of a few legs arrive in, nor on how
  they are split into batches: legs of one or two contacts (offered with a caller, queued,
  answered, abandoned, left or blocked, ended with hold, wrapped, transferred or overflowed into
  a second leg of the same contact), no conflicting outcomes among them.
- An agent's state seconds per state and not-ready reason do not depend on arrival order or
  batching either, equal timestamps included (the greater ``event_id`` by code point is the
  later), and equal a small computation written here, not the project's.
- With the caller key secret changed between two replays, the new contacts are keyed with the
  new secret only, do not link to the old ones, and the second replay says so (SPEC §7).
"""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hotline_kpi.config import Settings, load_settings
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.store import SqliteStore
from hotline_kpi.pipeline import Pipeline, thresholds_of
from tests.conftest import line, make_event
from tests.support.cli import run_cli
from tests.unit.test_export_v2 import caller_key

ZONE = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 11, 10, 9, 0, tzinfo=ZONE)
MONTH_START = datetime(2026, 11, 1, tzinfo=ZONE)
OCTOBER_START = datetime(2026, 10, 1, tzinfo=ZONE)
DECEMBER_START = datetime(2026, 12, 1, tzinfo=ZONE)
US = 1_000_000

# One caller spelled three ways (SPEC §7), another caller, and callers without a key.
CALLERS = ("+86 138-0013-8000", "13800138000", "008613800138000", "(010) 6552-1234", "anonymous")
CAUSES = ("customer_hangup", "agent_hangup", "transfer", "network_failure", "system_failure")
LEFT_REASONS = ("timeout", "no_agents", "callback_requested", "overflow")
BLOCKED_REASONS = ("queue_full", "no_agents", "closed")

PROPERTY = hypothesis_settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_stores = itertools.count(1)


def fresh_settings(tmp_path: Path) -> Settings:
    """Default settings with a store of its own (one per replay of one example)."""
    return load_settings(None, store=str(tmp_path / f"store-{next(_stores)}.db"))


def replay_batches(
    events: Sequence[dict[str, Any]], batches: Sequence[int], settings: Settings
) -> dict[str, dict[str, Any]]:
    """Replay ``events`` in this order, cut before each index of ``batches``, keyed callers,
    and return the October and November exports."""
    store = SqliteStore(Path(settings.store))
    try:
        pipeline = Pipeline(store, thresholds_of(settings), caller_key=caller_key)
        records = [(line(event), 0, index + 1) for index, event in enumerate(events)]
        cuts = [0, *sorted(set(batches)), len(records)]
        for start, stop in itertools.pairwise(cuts):
            chunk = records[start:stop]
            if chunk:
                outcome = pipeline.process(chunk, "test", {0: chunk[-1][2]})
                assert outcome.rejected == {}, outcome.rejected
        figures = KpiFigures(store, settings)
        return {month: figures.month(month) for month in ("2026-10", "2026-11")}
    finally:
        store.close()


def stamp(moment: datetime) -> str:
    return moment.isoformat()


@st.composite
def contact_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The events of one or two contacts of one or two legs each, without conflicts, and a
    later event that moves "now" (so that some resolution flags are settled)."""
    events: list[dict[str, Any]] = []
    for number in range(draw(st.integers(1, 2))):
        contact = f"K{number}"
        # Hours apart: within the 24 h repeat window, on its edge, or past it.
        offered = BASE + timedelta(hours=draw(st.sampled_from([0, 1, 23.5, 24, 25])))
        caller = draw(st.sampled_from((*CALLERS, None)))
        legs = draw(st.integers(1, 2))
        moment = offered + timedelta(seconds=draw(st.integers(0, 30)))

        def add(event_type: str, at: datetime, leg_id: str, first: bool, **fields: Any) -> None:
            # The leg's first event names its contact; the others may or may not.
            if first or draw(st.booleans()):
                fields["contact_id"] = contact  # noqa: B023 - drawn for this contact
            events.append(make_event(event_type, stamp(at), call_id=leg_id, **fields))

        for leg in range(legs):
            leg_id = f"{contact}-L{leg}"
            last = leg == legs - 1
            queue = draw(st.sampled_from(["billing", "tech"]))
            first = True
            if leg == 0:
                extra = {} if caller is None else {"caller": caller}
                add("call.offered", offered, leg_id, first, **extra)
                first = False
            if last:
                outcome = draw(st.sampled_from(["answered", "abandoned", "left", "blocked", None]))
            else:  # a second leg follows a transfer or an overflow
                outcome = draw(st.sampled_from(["answered", "left"]))
            queued = moment
            # SPEC §3: a blocked leg that also gets call.queued stays blocked.
            if outcome != "blocked" or draw(st.booleans()):
                add("call.queued", queued, leg_id, first, queue=queue)
                first = False
            wait = draw(st.sampled_from([0, 3, 5, 12, 20, 21, 40]))  # around S = 5 and T = 20
            at = queued + timedelta(seconds=wait)
            end = at
            if outcome == "answered":
                agent = draw(st.sampled_from(["A1", "A2"]))
                add("call.answered", at, leg_id, first, queue=queue, agent_id=agent)
                end = at + timedelta(seconds=draw(st.integers(1, 600)))
                cause = "transfer" if not last else draw(st.sampled_from(CAUSES))
                hold = draw(st.sampled_from([None, 0, 3.25, 12.5]))
                held: dict[str, Any] = {} if hold is None else {"hold_seconds": hold}
                if not last or draw(st.booleans()):
                    add("call.ended", end, leg_id, False, cause=cause, **held)
                if draw(st.booleans()):
                    wrapped = end + timedelta(seconds=draw(st.sampled_from([-10, 0, 30])))
                    add("call.wrapped", wrapped, leg_id, False, agent_id=agent)
            elif outcome == "abandoned":
                add("call.abandoned", at, leg_id, first, queue=queue)
            elif outcome == "left":
                reason = "overflow" if not last else draw(st.sampled_from(LEFT_REASONS))
                add("call.left", at, leg_id, first, queue=queue, reason=reason)
            elif outcome == "blocked":
                reason = draw(st.sampled_from(BLOCKED_REASONS))
                blocked = queued - timedelta(seconds=draw(st.sampled_from([0, 1])))
                add("call.blocked", blocked, leg_id, first, queue=queue, reason=reason)
            if outcome in ("abandoned", "left", "blocked") and draw(st.booleans()):
                add(
                    "call.ended", end + timedelta(seconds=1), leg_id, False, cause="customer_hangup"
                )
            moment = end + timedelta(seconds=1)
    later = BASE + timedelta(hours=draw(st.sampled_from([26, 72])))
    events.append(make_event("agent.state", stamp(later), agent_id="Z", state="logged_out"))
    return events


@PROPERTY
@given(events=contact_events(), data=st.data())
def test_any_order_and_batching_of_legs_gives_the_same_export(
    events: list[dict[str, Any]], data: st.DataObject, tmp_path: Path
) -> None:
    in_time = sorted(events, key=lambda event: datetime.fromisoformat(event["ts"]))
    expected = replay_batches(in_time, [], fresh_settings(tmp_path))
    order = data.draw(st.permutations(events), label="arrival order")
    cuts = data.draw(st.lists(st.integers(1, len(events) - 1), max_size=4), label="batch cuts")
    got = replay_batches(order, cuts, fresh_settings(tmp_path))
    assert got == expected


# Event ids that order differently by code point than by a careless reading: upper before lower,
# "ev-10" before "ev-9", accented and CJK letters after ASCII, and a character outside the BMP
# (U+1F600) after one near its top (U+FF41): UTF-16 would order those two the other way.
EVENT_IDS = ("a", "b", "B", "ab", "ev-10", "ev-9", "é", "Ω", "日", "\uff41", "\U0001f600", "z")
STATES = ("logged_out", "ready", "busy", "wrap_up", "not_ready")


@st.composite
def state_changes(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few state changes of one or two agents, many at one instant, some before November."""
    ids = draw(st.lists(st.sampled_from(EVENT_IDS), min_size=1, max_size=8, unique=True))
    changes = []
    for event_id in ids:
        offset = draw(st.sampled_from([-3600, -1, 0, 0, 0, 1, 60.5, 3600, 7200]))
        at = MONTH_START + timedelta(seconds=offset)
        state = draw(st.sampled_from(STATES))
        fields: dict[str, Any] = {"agent_id": draw(st.sampled_from(["A", "甲"])), "state": state}
        reason = draw(st.sampled_from([None, "break", "lunch", "午饭"]))
        if reason is not None:
            fields["reason"] = reason
        changes.append(make_event("agent.state", stamp(at), event_id=event_id, **fields))
    if draw(st.booleans()):  # "now" later than the last change, so that it holds a while
        at = MONTH_START + timedelta(hours=3)
        changes.append(make_event("call.offered", stamp(at), event_id="fence", call_id="fence"))
    return changes


def expected_state_seconds(
    events: Sequence[dict[str, Any]], lo: datetime, hi: datetime
) -> dict[str, dict[str, Any]]:
    """SPEC §3 written out here: each change holds until the agent's next one, the next being
    the least (ts, event_id) greater than its own (ids by code point), and the last until
    "now" (the latest ts of all events); only the part inside [lo, hi) counts."""
    now = max(datetime.fromisoformat(event["ts"]) for event in events)
    changes = [event for event in events if event["type"] == "agent.state"]
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    reasons: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def order(event: dict[str, Any]) -> tuple[datetime, list[int]]:
        return datetime.fromisoformat(event["ts"]), [ord(char) for char in event["event_id"]]

    for change in changes:
        later = [
            other
            for other in changes
            if other["agent_id"] == change["agent_id"] and order(other) > order(change)
        ]
        until = datetime.fromisoformat(min(later, key=order)["ts"]) if later else now
        start = max(datetime.fromisoformat(change["ts"]), lo)
        end = min(until, now, hi)
        if end <= start:
            continue
        length = (end - start) / timedelta(microseconds=1)
        agent = change["agent_id"]
        seconds[agent][change["state"]] += length
        if change["state"] == "not_ready":
            reasons[agent][change.get("reason") or ""] += length
    return {
        agent: {
            "state_seconds": {state: seconds[agent].get(state, 0) / US for state in STATES},
            "not_ready_reasons": {key: value / US for key, value in reasons[agent].items()},
        }
        for agent in seconds
        # An agent logged out all period has no figure, so is not listed (SPEC §3, §5).
        if any(length for state, length in seconds[agent].items() if state != "logged_out")
    }


def reported_state_seconds(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each listed agent's state seconds and not-ready reasons in an export."""
    return {
        agent["agent_id"]: {
            "state_seconds": agent["state_seconds"],
            "not_ready_reasons": {k: v for k, v in agent["not_ready_reasons"].items() if v},
        }
        for agent in report["agents"]
    }


@PROPERTY
@given(events=state_changes(), data=st.data())
def test_agent_state_seconds_do_not_depend_on_arrival_order_or_batching(
    events: list[dict[str, Any]], data: st.DataObject, tmp_path: Path
) -> None:
    order = data.draw(st.permutations(events), label="arrival order")
    cuts = data.draw(st.lists(st.integers(0, len(events)), max_size=3), label="batch cuts")
    got = replay_batches(order, cuts, fresh_settings(tmp_path))
    months = {"2026-10": (OCTOBER_START, MONTH_START), "2026-11": (MONTH_START, DECEMBER_START)}
    for month, (lo, hi) in months.items():
        assert reported_state_seconds(got[month]) == expected_state_seconds(events, lo, hi), month


def test_equal_timestamps_order_by_code_point_not_utf16(tmp_path: Path) -> None:
    """The two ids whose UTF-16 order differs from their code point order (U+FF41 < U+1F600),
    in both arrival orders."""
    at = stamp(MONTH_START)
    events = [
        make_event("agent.state", at, event_id="\U0001f600", agent_id="A", state="ready"),
        make_event("agent.state", at, event_id="\uff41", agent_id="A", state="not_ready"),
        make_event("call.offered", stamp(MONTH_START + timedelta(hours=1)), call_id="c"),
    ]
    expected = expected_state_seconds(events, MONTH_START, DECEMBER_START)
    assert expected["A"]["state_seconds"]["ready"] == 3600  # the emoji is the later
    for order in (events, [events[1], events[0], events[2]]):
        got = replay_batches(order, [1], fresh_settings(tmp_path))["2026-11"]
        assert reported_state_seconds(got) == expected


# SPEC §7: the key secret changed between two runs on one store.


def cli_env(secret: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOTLINE_KPI_")}
    return {**env, "HOTLINE_KPI_CALLER_KEY": secret, "PYTHONWARNINGS": "ignore"}


def write_contact(path: Path, call_id: str, at: str, caller: str) -> None:
    events = [
        make_event("call.offered", at, call_id=call_id, caller=caller),
        make_event("call.queued", at, call_id=call_id, queue="billing"),
    ]
    path.write_text("".join(json.dumps(event) + "\n" for event in events))


def replayed(path: Path, secret: str, cwd: Path, *extra: str) -> str:
    result = run_cli("replay", str(path), *extra, cwd=cwd, env=cli_env(secret))
    assert result.returncode == 0, result.stderr
    return result.stderr


def repeat_contacts(cwd: Path, secret: str, *extra: str) -> tuple[Any, Any]:
    result = run_cli(
        "export", "--month", "2026-11", "--format", "json", *extra, cwd=cwd, env=cli_env(secret)
    )
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)["overall"]["repeat_contact_rate"]
    return entry["numerator"], entry["denominator"]


SECRET_CHANGED = "no longer link"


def test_a_changed_key_secret_does_not_link_old_contacts_and_says_so(tmp_path: Path) -> None:
    # The same caller twice, two hours apart (a repeat under one secret), in two files.
    write_contact(tmp_path / "first.jsonl", "L1", "2026-11-01T10:00:00+08:00", "13800138000")
    write_contact(tmp_path / "second.jsonl", "L2", "2026-11-01T12:00:00+08:00", "+86 138 0013 8000")
    write_contact(tmp_path / "third.jsonl", "L3", "2026-11-05T12:00:00+08:00", "(010) 6552-1234")

    # Control: under one secret the second contact is a repeat of the first.
    replayed(tmp_path / "first.jsonl", "old secret", tmp_path, "--store", "same.db")
    replayed(tmp_path / "second.jsonl", "old secret", tmp_path, "--store", "same.db")
    assert repeat_contacts(tmp_path, "old secret", "--store", "same.db") == (1, 2)

    first = replayed(tmp_path / "first.jsonl", "old secret", tmp_path)
    assert SECRET_CHANGED not in first
    second = replayed(tmp_path / "second.jsonl", "new secret", tmp_path)
    assert SECRET_CHANGED in second  # older keys no longer link
    assert "13800138000" not in second and "new secret" not in second
    # Both contacts have a key, but under different secrets: no repeat.
    assert repeat_contacts(tmp_path, "new secret") == (0, 2)
    third = replayed(tmp_path / "third.jsonl", "new secret", tmp_path)
    assert SECRET_CHANGED not in third and "secret changed" not in third
    assert repeat_contacts(tmp_path, "new secret") == (0, 3)
