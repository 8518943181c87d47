"""Asterisk queue_log → SPEC §2 events (SPEC §9), from conformance logs written for these tests.

Every line below is written as ``app_queue.c`` (or the dialplan, for the blocking events) writes
it: ``epoch|callid|queue|agent|EVENT`` and then only the data fields the event has, e.g.
``ENTERQUEUE`` ``url|caller id|position[|caller id name]``, ``CONNECT``
``wait|member uniqueid|ring time``, ``COMPLETECALLER`` ``hold|talk|position``, ``ABANDON`` and
``EXIT*`` ``position|original position|wait``, ``EXITWITHKEY`` ``key|position|original
position|wait``, ``PAUSE`` ``reason``. The epochs are 2026-11-02 from 09:00 in Shanghai
(T = 1793581200 is 01:00:00Z).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from hotline_kpi.config import Settings
from hotline_kpi.ingest.asterisk import AsteriskQueueLog, blank_line
from hotline_kpi.ingest.converters import Converted, event_line
from hotline_kpi.ingest.decode import Reason
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.store import SqliteStore
from hotline_kpi.pipeline import Pipeline, thresholds_of
from tests.unit.test_export_v2 import caller_key

T = 1793581200
NUMBER = "13800138000"
NAME = "Zhang San"


def lines(text: str) -> list[bytes]:
    """A log written in a test: one queue_log line per text line, ``{T+n}`` for epochs."""
    out = []
    for written in text.strip().splitlines():
        raw = written.strip()
        while "{T+" in raw:
            start = raw.index("{T+")
            end = raw.index("}", start)
            offset = raw[start + 3 : end]
            whole, _, fraction = offset.partition(".")
            epoch = str(T + int(whole)) + ("." + fraction if fraction else "")
            raw = raw[:start] + epoch + raw[end + 1 :]
        out.append(raw.encode())
    return out


def run(text: str, converter: AsteriskQueueLog | None = None) -> list[Converted]:
    converter = converter or AsteriskQueueLog.restore(None, {})
    return [converter.convert(line) for line in lines(text)]


def events_of(results: list[Converted]) -> list[dict[str, Any]]:
    return [event for result in results for event in result.events]


def brief(event: dict[str, Any]) -> tuple[Any, ...]:
    """An event without its id, time and contact, as a short tuple for comparisons."""
    kind = event["type"]
    if kind == "agent.state":
        return (kind, event["agent_id"], event["state"], event.get("reason"))
    detail = {k: v for k, v in event.items() if k not in ("type", "ts", "event_id", "call_id")}
    detail.pop("contact_id")
    return (kind, event["call_id"], *sorted(detail.items()))


def at(seconds: float) -> str:
    """The RFC 3339 time the converter writes for T + seconds."""
    from datetime import UTC, datetime, timedelta

    moment = datetime.fromtimestamp(T, UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------- calls


ANSWERED = f"""
{{T+0}}|1793581200.11|billing|NONE|ENTERQUEUE||{NUMBER}|1
{{T+4}}|1793581200.11|billing|PJSIP/101|RINGNOANSWER|4000
{{T+12}}|1793581200.11|billing|PJSIP/102|CONNECT|12|1793581212.14|3
{{T+312}}|1793581200.11|billing|PJSIP/102|COMPLETECALLER|12|300|1
"""


def test_an_answered_call_is_one_leg_offered_queued_answered_and_ended() -> None:
    results = run(ANSWERED)
    assert [r.skipped for r in results] == [False, True, False, False]
    events = events_of(results)
    leg = "1793581200.11@billing#1"
    assert [brief(e) for e in events] == [
        ("call.offered", leg, ("caller", NUMBER)),
        ("call.queued", leg, ("queue", "billing")),
        ("call.answered", leg, ("agent_id", "PJSIP/102"), ("queue", "billing")),
        ("agent.state", "PJSIP/102", "busy", None),
        ("call.ended", leg, ("cause", "customer_hangup")),
        ("agent.state", "PJSIP/102", "ready", None),
    ]
    assert {e.get("contact_id") for e in events if e["type"] != "agent.state"} == {"1793581200.11"}
    assert [e["ts"] for e in events] == [at(0), at(0), at(12), at(12), at(312), at(312)]
    assert "hold_seconds" not in events[4]  # the data fields' hold and talk are ignored


def test_complete_agent_is_an_agent_hangup_and_each_transfer_a_transfer() -> None:
    text = ""
    for n, (kind, data) in enumerate(
        [
            ("COMPLETEAGENT", "12|300|1"),
            ("TRANSFER", "8000|from-internal|12|300"),
            ("BLINDTRANSFER", "8000|from-internal|12|300|1"),
            ("ATTENDEDTRANSFER", "BRIDGE|1793581500.44|12|300|1"),
        ]
    ):
        callid = f"1793581200.{n}"
        text += f"""
        {{T+{n * 1000}}}|{callid}|billing|NONE|ENTERQUEUE||{NUMBER}|1
        {{T+{n * 1000 + 12}}}|{callid}|billing|PJSIP/102|CONNECT|12|1793581212.14|3
        {{T+{n * 1000 + 312}}}|{callid}|billing|PJSIP/102|{kind}|{data}
        """
    ends = [e["cause"] for e in events_of(run(text)) if e["type"] == "call.ended"]
    assert ends == ["agent_hangup", "transfer", "transfer", "transfer"]


def test_abandon_is_abandoned_then_a_customer_hangup_at_the_same_time() -> None:
    events = events_of(
        run(
            f"""
            {{T+0}}|1793581200.21|billing|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}
            {{T+30.25}}|1793581200.21|billing|NONE|ABANDON|1|1|30
            """
        )
    )
    leg = "1793581200.21@billing#1"
    assert [brief(e) for e in events][2:] == [
        ("call.abandoned", leg, ("queue", "billing")),
        ("call.ended", leg, ("cause", "customer_hangup")),
    ]
    assert events[2]["ts"] == events[3]["ts"] == at(30.25)


@pytest.mark.parametrize(
    ("kind", "data", "reason"),
    [
        ("EXITWITHTIMEOUT", "1|1|60", "timeout"),
        ("EXITEMPTY", "1|1|60", "no_agents"),
        ("LEAVEEMPTY", "1|1|60", "no_agents"),
        ("EXITWITHKEY", "5|1|1|60", "callback_requested"),
        ("WITHDRAW", "1|1|60|callback please", "callback_requested"),
    ],
)
def test_leaving_the_queue_is_left_then_ended_by_transfer(
    kind: str, data: str, reason: str
) -> None:
    events = events_of(
        run(
            f"""
            {{T+0}}|1793581200.31|tech|NONE|ENTERQUEUE||{NUMBER}|1
            {{T+60}}|1793581200.31|tech|NONE|{kind}|{data}
            """
        )
    )
    leg = "1793581200.31@tech#1"
    assert [brief(e) for e in events][2:] == [
        ("call.left", leg, ("queue", "tech"), ("reason", reason)),
        ("call.ended", leg, ("cause", "transfer")),
    ]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("FULL", "queue_full"),
        ("JOINEMPTY", "no_agents"),
        ("JOINUNAVAIL", "no_agents"),
        ("CLOSED", "closed"),
        ("DIVERT_CA_RATIO", "queue_full"),
        ("DIVERT_HOLDTIME", "queue_full"),
    ],
)
def test_each_blocking_event_is_a_leg_of_its_own(kind: str, reason: str) -> None:
    # Written by the dialplan with QueueLog() in ENTERQUEUE's layout (url|caller|position).
    results = run(
        f"""
        {{T+0}}|1793581200.41|billing|NONE|{kind}||{NUMBER}|1
        {{T+5}}|1793581200.42|billing|NONE|{kind}
        {{T+9}}|1793581200.41|billing|NONE|ENTERQUEUE||{NUMBER}|1
        """
    )
    first, second, entered = ([brief(e) for e in r.events] for r in results)
    assert first == [
        ("call.offered", "1793581200.41@billing#1", ("caller", NUMBER)),
        ("call.blocked", "1793581200.41@billing#1", ("queue", "billing"), ("reason", reason)),
    ]
    # No caller id written: offered without caller.
    assert second == [
        ("call.offered", "1793581200.42@billing#1"),
        ("call.blocked", "1793581200.42@billing#1", ("queue", "billing"), ("reason", reason)),
    ]
    # The blocked leg counted as an entry: the caller's try again is #2, and not offered again.
    assert entered == [("call.queued", "1793581200.41@billing#2", ("queue", "billing"))]


def test_a_caller_transferred_to_a_second_queue_is_two_legs_of_one_contact() -> None:
    events = events_of(
        run(
            f"""
            {{T+0}}|1793581200.51|billing|NONE|ENTERQUEUE||{NUMBER}|1
            {{T+10}}|1793581200.51|billing|PJSIP/101|CONNECT|10|1793581210.52|2
            {{T+200}}|1793581200.51|billing|PJSIP/101|BLINDTRANSFER|600|from-queue|10|190|1
            {{T+201}}|1793581200.51|tech|NONE|ENTERQUEUE||{NUMBER}|1
            {{T+231}}|1793581200.51|tech|PJSIP/201|CONNECT|30|1793581431.53|4
            {{T+500}}|1793581200.51|tech|PJSIP/201|COMPLETEAGENT|30|269|1
            """
        )
    )
    calls = [e for e in events if e["type"] != "agent.state"]
    assert [e["type"] for e in calls].count("call.offered") == 1
    assert {e["call_id"] for e in calls} == {"1793581200.51@billing#1", "1793581200.51@tech#1"}
    assert {e["contact_id"] for e in calls} == {"1793581200.51"}
    assert [brief(e) for e in calls if e["type"] == "call.ended"] == [
        ("call.ended", "1793581200.51@billing#1", ("cause", "transfer")),
        ("call.ended", "1793581200.51@tech#1", ("cause", "agent_hangup")),
    ]


def test_a_caller_entering_the_same_queue_again_opens_leg_two() -> None:
    events = events_of(
        run(
            f"""
            {{T+0}}|1793581200.61|billing|NONE|ENTERQUEUE||{NUMBER}|1
            {{T+60}}|1793581200.61|billing|NONE|EXITWITHTIMEOUT|1|1|60
            {{T+61}}|1793581200.61|billing|NONE|ENTERQUEUE||{NUMBER}|1
            {{T+70}}|1793581200.61|billing|PJSIP/101|CONNECT|9|1793581270.62|2
            {{T+170}}|1793581200.61|billing|PJSIP/101|COMPLETECALLER|9|100|1
            """
        )
    )
    legs = [e["call_id"] for e in events if e["type"] != "agent.state"]
    assert legs == ["1793581200.61@billing#1"] * 4 + ["1793581200.61@billing#2"] * 3
    assert [e["type"] for e in events].count("call.offered") == 1


def test_a_connect_or_an_end_without_an_open_leg_is_skipped() -> None:
    results = run(
        """
        {T+0}|1793581200.71|billing|PJSIP/101|CONNECT|3|1793581200.72|1
        {T+9}|1793581200.71|billing|PJSIP/101|COMPLETECALLER|3|9|1
        {T+9}|1793581200.73|billing|NONE|ABANDON|1|1|9
        """
    )
    assert all(r.skipped and not r.events for r in results)


def test_lines_without_a_mapping_are_skipped_and_a_restart_ends_no_leg() -> None:
    converter = AsteriskQueueLog.restore(None, {})
    results = run(
        f"""
        {{T+0}}|1793581200.81|billing|NONE|ENTERQUEUE||{NUMBER}|1
        {{T+1}}|NONE|NONE|NONE|QUEUESTART|
        {{T+2}}|NONE|NONE|NONE|CONFIGRELOAD|
        {{T+3}}|1793581200.81|billing|PJSIP/101|RINGNOANSWER|1000
        {{T+4}}|1793581200.81|billing|PJSIP/101|RINGCANCELED|500
        {{T+5}}|1793581200.81|billing|PJSIP/101|AGENTDUMP|
        {{T+6}}|1793581200.81|billing|PJSIP/101|SYSCOMPAT|
        {{T+7}}|1793581200.81|billing|NONE|INFO|custom
        {{T+8}}|1793581200.81|billing|PJSIP/101|CONNECT|8|1793581208.82|1
        """,
        converter,
    )
    assert [r.skipped for r in results] == [False] + [True] * 7 + [False]
    assert brief(results[-1].events[0])[:2] == ("call.answered", "1793581200.81@billing#1")


# ------------------------------------------------------------------------- agents


def test_member_lines_give_the_agent_states() -> None:
    events = events_of(
        run(
            """
            {T+0}|MANAGER|billing|PJSIP/101|ADDMEMBER|
            {T+10}|NONE|billing|PJSIP/101|PAUSE|lunch
            {T+20}|NONE|billing|PJSIP/101|UNPAUSE|
            {T+30}|NONE|billing|PJSIP/101|PAUSE|
            {T+40}|NONE|billing|PJSIP/101|UNPAUSE|
            {T+50}|NONE|NONE|PJSIP/101|PAUSEALL|training
            {T+50}|NONE|billing|PJSIP/101|PAUSE|training
            {T+60}|NONE|NONE|PJSIP/101|UNPAUSEALL|
            {T+60}|NONE|billing|PJSIP/101|UNPAUSE|
            {T+70}|MANAGER|billing|PJSIP/101|REMOVEMEMBER|
            {T+80}|CLI|tech|PJSIP/102|ADDMEMBER|PAUSED
            {T+90}|NONE|tech|PJSIP/102|UNPAUSE|
            """
        )
    )
    assert [brief(e) for e in events] == [
        ("agent.state", "PJSIP/101", "ready", None),
        ("agent.state", "PJSIP/101", "not_ready", "lunch"),
        ("agent.state", "PJSIP/101", "ready", None),
        ("agent.state", "PJSIP/101", "not_ready", None),
        ("agent.state", "PJSIP/101", "ready", None),
        ("agent.state", "PJSIP/101", "not_ready", "training"),
        ("agent.state", "PJSIP/101", "ready", None),
        ("agent.state", "PJSIP/101", "logged_out", None),
        ("agent.state", "PJSIP/102", "not_ready", None),
        ("agent.state", "PJSIP/102", "ready", None),
    ]
    assert "reason" not in events[3]


def test_an_agent_in_two_queues_is_paused_only_in_both_and_out_only_from_both() -> None:
    results = run(
        """
        {T+0}|MANAGER|billing|PJSIP/101|ADDMEMBER|
        {T+1}|MANAGER|tech|PJSIP/101|ADDMEMBER|
        {T+10}|NONE|billing|PJSIP/101|PAUSE|lunch
        {T+20}|NONE|tech|PJSIP/101|PAUSE|lunch
        {T+30}|NONE|tech|PJSIP/101|UNPAUSE|
        {T+40}|MANAGER|billing|PJSIP/101|REMOVEMEMBER|
        {T+50}|MANAGER|tech|PJSIP/101|REMOVEMEMBER|
        """
    )
    assert [[brief(e)[2:] for e in r.events] for r in results] == [
        [("ready", None)],
        [],
        [],
        [("not_ready", "lunch")],
        [("ready", None)],
        [],
        [("logged_out", None)],
    ]
    assert results[1].skipped and results[2].skipped


def test_agent_login_maps_n_to_agent_n_and_the_call_makes_it_busy() -> None:
    events = events_of(
        run(
            f"""
            {{T+0}}|1793581199.1|NONE|1001|AGENTLOGIN|PJSIP/101-00000001
            {{T+5}}|1793581200.91|billing|NONE|ENTERQUEUE||{NUMBER}|1
            {{T+9}}|1793581200.91|billing|Agent/1001|CONNECT|4|1793581209.92|2
            {{T+20}}|NONE|billing|Agent/1001|PAUSE|break
            {{T+99}}|1793581200.91|billing|Agent/1001|COMPLETEAGENT|4|90|1
            {{T+200}}|1793581199.1|NONE|1001|AGENTLOGOFF|PJSIP/101-00000001|200
            """
        )
    )
    states = [brief(e)[1:] for e in events if e["type"] == "agent.state"]
    assert states == [
        ("Agent/1001", "ready", None),
        ("Agent/1001", "busy", None),
        ("Agent/1001", "not_ready", "break"),  # paused during the call: not ready after it
        ("Agent/1001", "logged_out", None),
    ]


def test_when_connect_writes_n_the_agent_lines_of_agent_n_join_it() -> None:
    events = events_of(
        run(
            f"""
            {{T+5}}|1793581200.93|billing|NONE|ENTERQUEUE||{NUMBER}|1
            {{T+9}}|1793581200.93|billing|1001|CONNECT|4|1793581209.94|2
            {{T+20}}|NONE|billing|Agent/1001|PAUSE|break
            {{T+99}}|1793581200.93|billing|1001|COMPLETEAGENT|4|90|1
            {{T+200}}|1793581199.1|NONE|1001|AGENTLOGOFF|PJSIP/101-00000001|200
            """
        )
    )
    states = [brief(e)[1:] for e in events if e["type"] == "agent.state"]
    assert states == [
        ("1001", "busy", None),
        ("1001", "not_ready", "break"),
        ("1001", "logged_out", None),
    ]


def test_a_configured_map_joins_an_interface_to_the_member_name() -> None:
    converter = AsteriskQueueLog.restore(None, {"agents": {"PJSIP/101": "Li Lei"}, "x": 1})
    events = events_of(
        run(
            f"""
            {{T+0}}|MANAGER|billing|PJSIP/101|ADDMEMBER|
            {{T+5}}|1793581200.95|billing|NONE|ENTERQUEUE||{NUMBER}|1
            {{T+9}}|1793581200.95|billing|Li Lei|CONNECT|4|1793581209.96|2
            """,
            converter,
        )
    )
    assert {e["agent_id"] for e in events if "agent_id" in e} == {"Li Lei"}


# ------------------------------------------------------------------------- lines


def test_unreadable_lines_are_rejected_with_their_reason_and_blanked() -> None:
    bad = [
        b"1793581200|1793581200.1|billing|NONE",
        f"17935812OO|1793581200.1|billing|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}".encode(),
        b"\x00\xff\xfe\x9c|binary\x01garbage|\x80",
        b"1793581200.5e3|1793581200.1|billing|NONE|ABANDON|1|1|3",
    ]
    converter = AsteriskQueueLog.restore(None, {})
    rejections = [converter.convert(line).rejection for line in bad]
    assert [r.reason if r else None for r in rejections] == [
        Reason.missing_field,
        Reason.naive_timestamp,
        Reason.invalid_json,
        Reason.naive_timestamp,
    ]
    assert rejections[1] is not None
    assert rejections[1].payload == "17935812OO|1793581200.1|billing|NONE|ENTERQUEUE|||1|"
    assert rejections[2] is not None and rejections[2].payload.startswith("\\x00\ufffd")
    assert "\\x01" in rejections[2].payload
    assert converter.checkpoint() == AsteriskQueueLog.restore(None, {}).checkpoint()


def test_fractional_epochs_are_exact_to_the_microsecond() -> None:
    events = events_of(
        run(
            f"""
            1793581200.1234567|1793581200.1|billing|NONE|ENTERQUEUE||{NUMBER}|1
            1793581200.000001|1793581200.1|billing|PJSIP/1|CONNECT|0|1793581200.2|1
            1793581299.|1793581200.1|billing|PJSIP/1|COMPLETECALLER|0|99|1
            """
        )
    )
    assert [e["ts"] for e in events if e["type"].startswith("call.")] == [
        "2026-11-02T01:00:00.123456Z",
        "2026-11-02T01:00:00.123456Z",
        "2026-11-02T01:00:00.000001Z",
        "2026-11-02T01:01:39.000000Z",
    ]


def test_fields_after_data5_belong_to_data5() -> None:
    line = b"1793581200|NONE|billing|PJSIP/1|PAUSE|a|b|c|d|e|f|g"
    results = AsteriskQueueLog.restore(None, {}).convert(line)
    assert brief(results.events[0]) == ("agent.state", "PJSIP/1", "not_ready", "a")


def test_identical_lines_get_distinct_ids_and_a_second_reading_the_same() -> None:
    text = """
    {T+0}|NONE|billing|PJSIP/101|PAUSE|lunch
    {T+0}|NONE|billing|PJSIP/101|UNPAUSE|
    {T+0}|NONE|billing|PJSIP/101|PAUSE|lunch
    """
    first = [e["event_id"] for e in events_of(run(text))]
    assert len(first) == len(set(first)) == 3
    assert first == [e["event_id"] for e in events_of(run(text))]


def test_identical_lines_on_both_sides_of_a_checkpoint_keep_distinct_ids() -> None:
    log = lines("""
    {T+0}|NONE|billing|PJSIP/101|PAUSE|lunch
    {T+0}|NONE|billing|PJSIP/101|UNPAUSE|
    {T+0}|NONE|billing|PJSIP/101|PAUSE|lunch
    {T+0}|NONE|billing|PJSIP/101|UNPAUSE|
    """)
    before = AsteriskQueueLog.restore(None, {})
    ids = [e["event_id"] for line in log[:2] for e in before.convert(line).events]
    after = AsteriskQueueLog.restore(before.checkpoint(), {})
    ids += [e["event_id"] for line in log[2:] for e in after.convert(line).events]
    assert len(set(ids)) == 4
    assert ids == [e["event_id"] for e in events_of(run("\n".join(raw.decode() for raw in log)))]


def test_a_checkpoint_that_is_not_ours_says_what_to_do() -> None:
    for bad in ("{", "[1]", '{"v": 9}'):
        with pytest.raises(ValueError, match="checkpoint"):
            AsteriskQueueLog.restore(bad, {})


def test_old_lines_counts_and_closed_calls_leave_the_checkpoint() -> None:
    converter = AsteriskQueueLog.restore(None, {})
    run(ANSWERED, converter)
    run("{T+90000}|NONE|billing|PJSIP/102|PAUSE|", converter)
    state = orjson.loads(converter.checkpoint())
    assert state["calls"] == {}  # a day later, the closed call is forgotten
    assert len(state["seen"]) == 1  # only the last line's count is kept


def test_a_checkpoint_in_the_middle_of_a_file_keeps_the_open_leg() -> None:
    log = lines(
        f"""
        {{T+0}}|1793581200.11|billing|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}
        {{T+1}}|MANAGER|billing|PJSIP/102|ADDMEMBER|
        {{T+12}}|1793581200.11|billing|PJSIP/102|CONNECT|12|1793581212.14|3
        {{T+312}}|1793581200.11|billing|PJSIP/102|COMPLETECALLER|12|300|1
        """
    )
    whole = AsteriskQueueLog.restore(None, {})
    expected = [e for line in log for e in whole.convert(line).events]
    for cut in range(len(log) + 1):
        before = AsteriskQueueLog.restore(None, {})
        got = [e for line in log[:cut] for e in before.convert(line).events]
        checkpoint = before.checkpoint()
        after = AsteriskQueueLog.restore(checkpoint, {})
        got += [e for line in log[cut:] for e in after.convert(line).events]
        assert got == expected, cut
    assert whole.checkpoint() == AsteriskQueueLog.restore(whole.checkpoint(), {}).checkpoint()
    # closed legs are dropped from the state
    assert orjson.loads(whole.checkpoint())["calls"]["1793581200.11"]["o"] == {}


def test_no_caller_number_or_name_in_ids_checkpoints_or_rejections() -> None:
    log = lines(
        f"""
        {{T+0}}|1793581200.11|billing|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}
        {{T+1}}|1793581200.12|billing|NONE|FULL||{NUMBER}|1|{NAME}
        {{T+2}}|1793581200.13|billing|NONE|ENTERQUEUE||13900139000|1|{NAME}
        """
    )
    other = [line.replace(NUMBER.encode(), b"13900139000") for line in log]
    a, b = AsteriskQueueLog.restore(None, {}), AsteriskQueueLog.restore(None, {})
    ids_a = [e["event_id"] for line in log for e in a.convert(line).events]
    ids_b = [e["event_id"] for line in other for e in b.convert(line).events]
    assert ids_a == ids_b  # the ids do not depend on the number: it is not their input
    for text in (a.checkpoint(), b.checkpoint()):
        assert NUMBER not in text and "13900139000" not in text and NAME not in text
    for line in log:
        assert NUMBER.encode() not in blank_line(line) and NAME.encode() not in blank_line(line)
    broken = AsteriskQueueLog.restore(None, {}).convert(b"x" + log[0] + b"\xff")
    assert broken.rejection is not None
    assert NUMBER not in broken.rejection.payload + broken.rejection.detail
    assert NAME not in broken.rejection.payload


# ------------------------------------------------------------------------- end to end


DAY = f"""
{{T+0}}|MANAGER|billing|PJSIP/101|ADDMEMBER|
{{T+0}}|MANAGER|billing|PJSIP/102|ADDMEMBER|
{{T+0}}|MANAGER|tech|PJSIP/102|ADDMEMBER|
{{T+100}}|1793581300.1|billing|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}
{{T+110}}|1793581300.1|billing|PJSIP/101|CONNECT|10|1793581410.2|4
{{T+410}}|1793581300.1|billing|PJSIP/101|BLINDTRANSFER|300|from-queue|10|300|1
{{T+411}}|1793581300.1|tech|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}
{{T+441}}|1793581300.1|tech|PJSIP/102|CONNECT|30|1793581741.3|5
{{T+741}}|1793581300.1|tech|PJSIP/102|COMPLETECALLER|30|300|1
{{T+1000}}|1793582200.4|billing|NONE|ENTERQUEUE||010-65521234|1
{{T+1003}}|1793582200.4|billing|NONE|ABANDON|1|1|3
{{T+2000}}|1793583200.5|billing|NONE|ENTERQUEUE||anonymous|1
{{T+2040}}|1793583200.5|billing|NONE|ABANDON|1|1|40
{{T+3000}}|1793584200.6|billing|NONE|FULL||{NUMBER}|1
{{T+3600}}|NONE|billing|PJSIP/101|PAUSE|lunch
{{T+4000}}|1793585200.7|billing|NONE|ENTERQUEUE||13900139000|1
{{T+4060}}|1793585200.7|billing|NONE|EXITWITHTIMEOUT|1|1|60
{{T+4100}}|1793585300.8|billing|NONE|ENTERQUEUE||13700137000|1
{{T+4115}}|1793585300.8|billing|PJSIP/102|CONNECT|15|1793585315.9|2
{{T+4120}}|NONE|tech|PJSIP/102|PAUSE|
{{T+4120}}|NONE|billing|PJSIP/102|PAUSE|
{{T+4415}}|1793585300.8|billing|PJSIP/102|COMPLETEAGENT|15|300|1
{{T+5000}}|1793586200.10|tech|NONE|JOINEMPTY
{{T+7200}}|NONE|billing|PJSIP/101|UNPAUSE|
{{T+7200}}|NONE|NONE|NONE|QUEUESTART|
{{T+7300}}|1793588500.11|billing|NONE|ENTERQUEUE||{NUMBER}|1
{{T+7310}}|1793588500.11|billing|PJSIP/101|CONNECT|10|1793588510.12|1
{{T+8000}}|MANAGER|billing|PJSIP/101|REMOVEMEMBER|
{{T+8000}}|MANAGER|billing|PJSIP/102|REMOVEMEMBER|
{{T+8000}}|MANAGER|tech|PJSIP/102|REMOVEMEMBER|
12345|garbage
"""


def test_a_days_log_cut_anywhere_by_a_restart_converts_the_same() -> None:
    log = lines(DAY)
    whole = AsteriskQueueLog.restore(None, {})
    expected = [(r.events, r.skipped, r.rejection) for r in map(whole.convert, log)]
    for cut in range(len(log) + 1):
        before = AsteriskQueueLog.restore(None, {})
        got = [(r.events, r.skipped, r.rejection) for r in map(before.convert, log[:cut])]
        after = AsteriskQueueLog.restore(before.checkpoint(), {})
        got += [(r.events, r.skipped, r.rejection) for r in map(after.convert, log[cut:])]
        assert got == expected, cut


def test_a_days_log_end_to_end_gives_the_figures_worked_by_hand(
    settings: Settings, tmp_path: Path
) -> None:
    converter = AsteriskQueueLog.restore(None, {})
    results = run(DAY, converter)
    # Read, no event: 102 joining tech (already ready), 102's two pauses during its call (busy
    # either way), QUEUESTART, 101 removed during its call, 102 leaving billing (still in tech).
    assert sum(r.skipped for r in results) == 6
    assert [r.rejection.reason for r in results if r.rejection] == [Reason.missing_field]
    records = [(event_line(e), 0, n + 1) for n, e in enumerate(events_of(results))]
    store = SqliteStore(Path(settings.store))
    pipeline = Pipeline(store, thresholds_of(settings), caller_key=caller_key)
    outcome = pipeline.process(records, "test", {0: len(records)})
    assert outcome.rejected == {}, outcome.rejected
    report = KpiFigures(store, settings).month("2026-11")
    overall = report["overall"]

    # The same log read again (a fresh converter, from the start): every event a duplicate.
    again = events_of(run(DAY))
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events_of(results)]
    second = [(event_line(e), 0, len(records) + n + 1) for n, e in enumerate(again)]
    outcome = pipeline.process(second, "test", {0: 2 * len(records)})
    assert outcome.accepted == 0 and outcome.rejected == {"duplicate": len(records)}
    assert KpiFigures(store, settings).month("2026-11") == report

    def figures(key: str) -> tuple[Any, Any]:
        return overall[key]["numerator"], overall[key]["denominator"]

    # Requests: billing#1, tech#1 (one contact), .4 (short abandon, 3 s), .5 (abandon 40 s),
    # .6 blocked, .7 left (timeout), .8 answered, .10 blocked (tech), .11 answered (open).
    # 9 requests, 8 counted (without the short abandon); answered: 4.
    assert figures("manual_connection_rate") == (4, 8)
    assert figures("abandon_rate") == (1, 8)
    assert figures("blocked_rate") == (2, 8)
    assert figures("average_speed_of_answer") == (10 + 30 + 15 + 10, 4)
    # Ended answered legs: 300 (transfer), 300, 300 (agent hangup); .11 is still talking.
    assert figures("average_handle_time") == (900, 3)
    assert figures("transfer_rate") == (1, 3)
    # queue_log has no Q.850 cause: no answered leg is ever dropped on this source.
    assert figures("drop_rate") == (0, 4)
    volumes = report["volumes"]["overall"]
    assert volumes["requests"] == 9
    assert volumes["blocked_by_reason"] == {"queue_full": 1, "no_agents": 1, "closed": 0}
    assert volumes["left_by_reason"]["timeout"] == 1
    # Contacts: .1, .4, .5, .6, .7, .8, .10, .11 = 8 offered.
    assert volumes["offered"] == 8
    # Keyed callers (≥ 5 digits): .1, .6 and .11 are one caller; .4, .7, .8 others.
    # .6 (T+3000) and .11 (T+7300) repeat .1 (T+100) within 24 h: 2 of 6.
    assert figures("repeat_contact_rate") == (2, 6)
    agents = {agent["agent_id"]: agent for agent in report["agents"]}
    # PJSIP/101: ready T+0..110, busy 110..410, ready 410..3600, lunch 3600..7200, ready
    # 7200..7310, busy 7310..8000 (still on .11 when removed: busy until "now", T+8000).
    s101 = agents["PJSIP/101"]["state_seconds"]
    assert s101["busy"] == 300 + 690
    assert s101["ready"] == 110 + 3190 + 110
    assert s101["not_ready"] == 3600
    assert agents["PJSIP/101"]["not_ready_reasons"] == {"lunch": 3600}
    # PJSIP/102: ready 0..441, busy 441..741, ready 741..4115, busy 4115..4415, then paused in
    # both its queues during the call: not ready 4415..8000, logged out at 8000.
    s102 = agents["PJSIP/102"]["state_seconds"]
    assert s102["busy"] == 600
    assert s102["ready"] == 441 + 3374
    assert s102["not_ready"] == 8000 - 4415
