"""The ``freeswitch-cdr`` converter (SPEC §9): mod_callcenter member legs from mod_json_cdr CDRs.

The CDRs are written here in the shape ``mod_json_cdr`` gives them (``core-uuid``,
``switchname``, ``channel_data``, ``variables`` with URL-encoded values, ``app_log``,
``callflow`` with ``caller_profile`` and ``times``), with the ``cc_*`` variables mod_callcenter
sets on the caller's channel. Every expected event and figure is worked out by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline_kpi.config import Settings
from hotline_kpi.ingest.converters import converter, event_line
from hotline_kpi.ingest.decode import Reason
from hotline_kpi.ingest.freeswitch import (
    CANCEL_REASONS,
    DISPOSITIONS,
    NETWORK_FAULTS,
    SWITCH_FAULTS,
    TRANSFERS,
    FreeswitchCdr,
)
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.store import SqliteStore
from hotline_kpi.pipeline import Pipeline, thresholds_of

SECRET = b"freeswitch test secret"
NUMBER = "+8613800138000"
NAME = "Zhang San"
UNSAFE = set('\r\n "#%&+:;<=>?@[\\]^`{|}')


def encoded(value: str) -> str:
    """A variable value as mod_json_cdr writes it with encode-values=true: the URL-unsafe
    characters and every non-ASCII byte as %XX (so "support@default" is "support%40default")."""
    out = []
    for byte in value.encode():
        char = chr(byte)
        out.append(f"%{byte:02X}" if byte > 126 or byte < 32 or char in UNSAFE else char)
    return "".join(out)


def epoch(local: str) -> int:
    """Epoch seconds of an Asia/Shanghai wall time."""
    return int(datetime.fromisoformat(local + "+08:00").timestamp())


def member_cdr(
    uuid: str,
    joined: int,
    *,
    cc: dict[str, str],
    caller: str = NUMBER,
    name: str = NAME,
    queue: str = "support@default",
    hangup_cause: str = "NORMAL_CLEARING",
    disposition: str | None = "recv_bye",
    end: int | None = None,
    caller_in_variables: bool = False,
    callflow_array: bool = True,
) -> dict[str, Any]:
    """The CDR of a caller's channel that went through ``queue`` (cc_side=member)."""
    start = joined - 20  # 20 s in the IVR before asking for an agent
    end = end if end is not None else max(int(v) for k, v in cc.items() if k.endswith("epoch"))
    variables: dict[str, str] = {
        "direction": "inbound",
        "uuid": uuid,
        "session_id": "17",
        "sip_from_user": caller,
        "sip_from_uri": f"{caller}@203.0.113.7",
        "sip_from_display": name,
        "sip_full_from": f'"{name}" <sip:{caller}@203.0.113.7>;tag=a8f3',
        "sip_req_user": "4008001234",
        "sip_to_user": "4008001234",
        "sip_contact_user": caller,
        "sip_call_id": f"{uuid[:8]}@203.0.113.7",
        "sip_network_ip": "203.0.113.7",
        "channel_name": f"sofia/external/{caller}@203.0.113.7",
        "call_uuid": uuid,
        "current_application": "callcenter",
        "current_application_data": queue,
        "cc_side": "member",
        "cc_queue": queue,
        "cc_member_uuid": f"m-{uuid}",
        "cc_member_session_uuid": uuid,
        "cc_queue_joined_epoch": str(joined),
        **cc,
        "hangup_cause": hangup_cause,
        "hangup_cause_q850": "16",
        "start_epoch": str(start),
        "start_uepoch": f"{start}000000",
        "answer_epoch": str(start + 1),
        "end_epoch": str(end),
        "duration": str(end - start),
        "billsec": str(end - start - 1),
        "last_app": "callcenter",
        "last_arg": queue,
    }
    if disposition is not None:
        variables["sip_hangup_disposition"] = disposition
    if caller_in_variables:
        variables["caller_id_number"] = caller
        variables["caller_id_name"] = name
        variables["effective_caller_id_number"] = caller
    profile = {
        "username": caller,
        "dialplan": "XML",
        "caller_id_name": name,
        "ani": caller,
        "aniii": "",
        "caller_id_number": caller,
        "network_addr": "203.0.113.7",
        "rdnis": "",
        "destination_number": "4008001234",
        "uuid": uuid,
        "source": "mod_sofia",
        "context": "public",
        "chan_name": f"sofia/external/{caller}@203.0.113.7",
    }
    flow = {
        "dialplan": "XML",
        "profile_index": "1",
        "extension": {
            "name": "hotline",
            "number": "4008001234",
            "applications": [
                {"app_name": "answer", "app_data": ""},
                {"app_name": "callcenter", "app_data": queue},
            ],
        },
        "caller_profile": profile,
        "times": {
            "created_time": f"{start}000000",
            "profile_created_time": f"{start}000000",
            "progress_time": "0",
            "progress_media_time": "0",
            "answered_time": f"{start + 1}000000",
            "bridged_time": "0",
            "last_hold_time": "0",
            "hold_accum_time": "0",
            "hangup_time": f"{end}000000",
            "resurrect_time": "0",
            "transfer_time": "0",
        },
    }
    return {
        "core-uuid": "6a0b4c58-0d3e-4b8e-9d0f-3b7b1b0f0c11",
        "switchname": "hotline-fs1",
        "channel_data": {
            "state": "CS_REPORTING",
            "direction": "inbound",
            "state_number": "11",
            "flags": "0=1;1=1;3=1;20=1;38=1;40=1;54=1;76=1;113=1;114=1",
            "caps": "1=1;2=1;3=1;4=1;5=1;6=1",
        },
        "variables": {key: encoded(value) for key, value in variables.items()},
        "app_log": {
            "applications": [
                {"app_name": "answer", "app_data": ""},
                {"app_name": "callcenter", "app_data": queue},
            ]
        },
        "callflow": [flow] if callflow_array else flow,
    }


def answered(
    answered_at: int, ended: int, agent: str = "1001@default", **extra: str
) -> dict[str, str]:
    return {
        "cc_agent": agent,
        "cc_agent_uuid": "5e1d0c0e-agent",
        "cc_agent_type": "callback",
        "cc_agent_bridged": "true",
        "cc_queue_answered_epoch": str(answered_at),
        "cc_queue_terminated_epoch": str(ended),
        "cc_cause": "answered",
        **extra,
    }


def canceled(at: int, reason: str) -> dict[str, str]:
    return {"cc_queue_canceled_epoch": str(at), "cc_cause": "cancel", "cc_cancel_reason": reason}


def agent_cdr(member_uuid: str, joined: int) -> dict[str, Any]:
    """The agent's channel that mod_callcenter originated (cc_side=agent): no leg of its own."""
    cdr = member_cdr("ag-" + member_uuid, joined, cc=answered(joined + 12, joined + 312))
    cdr["channel_data"]["direction"] = "outbound"
    cdr["variables"]["cc_side"] = "agent"
    cdr["variables"]["cc_member_session_uuid"] = member_uuid
    return cdr


def as_line(cdr: dict[str, Any]) -> bytes:
    return json.dumps(cdr, separators=(",", ":")).encode()


T = epoch("2026-11-02T10:00:00")


def convert(cdr: dict[str, Any]) -> list[dict[str, Any]]:
    result = FreeswitchCdr.restore(None, {}).convert(as_line(cdr))
    assert result.rejection is None and not result.skipped
    return result.events


def shape(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Events without their ids: type, time, and the fields beyond the leg's ids."""
    out = []
    for event in events:
        rest = {k: v for k, v in event.items() if k not in {"event_id", "type", "ts"}}
        assert rest.pop("call_id") == rest.pop("contact_id")
        out.append((event["type"], datetime.fromisoformat(event["ts"]).timestamp(), rest))
    return out


def test_an_answered_leg_is_offered_queued_answered_and_ended() -> None:
    cdr = member_cdr("a1", T, cc=answered(T + 12, T + 312))
    events = convert(cdr)
    assert {e["call_id"] for e in events} == {"a1"}
    assert shape(events) == [
        ("call.offered", T - 20, {"caller": NUMBER}),  # from the callflow's caller_profile
        ("call.queued", T, {"queue": "support@default"}),  # URL-decoded: support%40default
        ("call.answered", T + 12, {"queue": "support@default", "agent_id": "1001@default"}),
        ("call.ended", T + 312, {"cause": "customer_hangup"}),  # recv_bye
    ]
    assert all(e["ts"].endswith("+00:00") for e in events)  # RFC 3339 with an offset


def test_the_caller_number_is_read_from_the_variables_first() -> None:
    cdr = member_cdr("a2", T, cc=answered(T + 5, T + 60), caller_in_variables=True)
    cdr["callflow"][0]["caller_profile"]["caller_id_number"] = "0000"
    assert convert(cdr)[0]["caller"] == NUMBER


def test_a_single_callflow_object_is_read_like_an_array() -> None:
    cdr = member_cdr("a3", T, cc=answered(T + 5, T + 60), callflow_array=False)
    assert convert(cdr)[0]["caller"] == NUMBER


def test_the_agent_hanging_up_is_send_bye() -> None:
    cdr = member_cdr("a4", T, cc=answered(T + 5, T + 60), disposition="send_bye")
    assert shape(convert(cdr))[-1] == ("call.ended", T + 60, {"cause": "agent_hangup"})


def test_without_cc_queue_terminated_epoch_the_leg_ends_at_end_epoch() -> None:
    cc = answered(T + 5, T + 60)
    del cc["cc_queue_terminated_epoch"]
    cdr = member_cdr("a5", T, cc=cc, end=T + 90)
    assert shape(convert(cdr))[-1] == ("call.ended", T + 90, {"cause": "customer_hangup"})


@pytest.mark.parametrize(
    ("hangup_cause", "cause"),
    [
        ("MEDIA_TIMEOUT", "network_failure"),
        ("NETWORK_OUT_OF_ORDER", "network_failure"),
        ("RECOVERY_ON_TIMER_EXPIRE", "network_failure"),
        ("NORMAL_TEMPORARY_FAILURE", "system_failure"),
        ("SWITCH_CONGESTION", "system_failure"),
        ("ATTENDED_TRANSFER", "transfer"),
        ("NORMAL_CLEARING", "customer_hangup"),
    ],
)
def test_an_answered_leg_dropped_by_a_fault_ends_with_that_failure(
    hangup_cause: str, cause: str
) -> None:
    # FreeSWITCH reports hangup_cause_q850 16 for MEDIA_TIMEOUT: the name decides, and a
    # fault outranks the disposition (the switch sends the BYE after the media timed out).
    cdr = member_cdr(
        "d1", T, cc=answered(T + 30, T + 130), hangup_cause=hangup_cause, disposition="send_bye"
    )
    expected = "agent_hangup" if cause == "customer_hangup" else cause
    assert shape(convert(cdr))[-1] == ("call.ended", T + 130, {"cause": expected})


@pytest.mark.parametrize(
    ("reason", "outcome", "extra", "end"),
    [
        ("BREAK_OUT", "call.abandoned", {}, "customer_hangup"),
        ("NONE", "call.abandoned", {}, "customer_hangup"),
        ("TIMEOUT", "call.left", {"reason": "timeout"}, "transfer"),
        ("NO_AGENT_TIMEOUT", "call.left", {"reason": "no_agents"}, "transfer"),
        ("EXIT_WITH_KEY", "call.left", {"reason": "callback_requested"}, "transfer"),
    ],
)
def test_a_canceled_leg_by_cancel_reason(
    reason: str, outcome: str, extra: dict[str, str], end: str
) -> None:
    cdr = member_cdr("c1", T, cc=canceled(T + 40, reason), disposition="recv_bye")
    assert shape(convert(cdr)) == [
        ("call.offered", T - 20, {"caller": NUMBER}),
        ("call.queued", T, {"queue": "support@default"}),
        (outcome, T + 40, {"queue": "support@default", **extra}),
        ("call.ended", T + 40, {"cause": end}),
    ]


def test_agent_channels_and_channels_without_cc_side_are_skipped() -> None:
    fs = FreeswitchCdr.restore(None, {})
    assert fs.convert(as_line(agent_cdr("a1", T))).skipped
    plain = member_cdr("p1", T, cc=answered(T + 5, T + 60))
    plain["variables"] = {k: v for k, v in plain["variables"].items() if not k.startswith("cc_")}
    result = fs.convert(as_line(plain))
    assert result.skipped and result.events == [] and result.rejection is None
    assert json.loads(fs.checkpoint()) == {"cdrs": 2, "legs": 0, "skipped": 2, "rejected": 0}


@pytest.mark.parametrize(
    "line", [b"<cdr><variables/></cdr>", b'{"variables": {"cc_side": "memb', b"\xff\xfe{}"]
)
def test_a_cdr_that_is_not_utf8_json_is_invalid_json(line: bytes) -> None:
    result = FreeswitchCdr.restore(None, {}).convert(line)
    assert result.rejection is not None and result.rejection.reason.name == "invalid_json"
    assert result.rejection.payload == ""  # nothing kept: the number could be anywhere


def test_a_json_value_that_is_not_an_object_is_not_an_object() -> None:
    result = FreeswitchCdr.restore(None, {}).convert(b'["variables"]')
    assert result.rejection is not None and result.rejection.reason.name == "not_an_object"


def _without(name: str) -> dict[str, Any]:
    cdr = member_cdr("r1", T, cc=answered(T + 12, T + 312), caller_in_variables=True)
    del cdr["variables"][name]
    return cdr


def _with(name: str, value: str) -> dict[str, Any]:
    cdr = member_cdr("r1", T, cc=answered(T + 12, T + 312), caller_in_variables=True)
    cdr["variables"][name] = value
    return cdr


def _without_uuid() -> dict[str, Any]:
    cdr = _without("uuid")
    cdr["callflow"][0]["caller_profile"]["uuid"] = ""
    return cdr


@pytest.mark.parametrize(
    ("cdr", "reason"),
    [
        (_without("cc_queue"), "missing_field"),
        (_without("cc_queue_joined_epoch"), "missing_field"),
        (_without("cc_cause"), "missing_field"),
        (_without("cc_agent"), "missing_field"),
        (_without("cc_queue_answered_epoch"), "missing_field"),
        (_with("cc_queue_joined_epoch", "0"), "missing_field"),
        (_with("cc_queue_joined_epoch", "2026-11-02%2010%3A00%3A00"), "naive_timestamp"),
        (_with("cc_queue_answered_epoch", "soon"), "naive_timestamp"),
        (_with("cc_cause", "terminated"), "out_of_range"),
        ({**_with("uuid", "r1"), "variables": "cc_side=member"}, "wrong_type"),
        ({k: v for k, v in _with("uuid", "r1").items() if k != "variables"}, "missing_field"),
        (_without_uuid(), "missing_field"),
    ],
)
def test_a_member_cdr_missing_what_it_needs_is_rejected(cdr: dict[str, Any], reason: str) -> None:
    result = FreeswitchCdr.restore(None, {}).convert(as_line(cdr))
    assert result.rejection is not None, result.events
    assert result.rejection.reason.name == reason
    assert result.events == []


def test_a_cancel_without_a_known_reason_is_rejected() -> None:
    for cc, reason in [
        (canceled(T + 40, "AGENT_GONE"), "out_of_range"),
        ({"cc_cause": "cancel", "cc_cancel_reason": "BREAK_OUT"}, "missing_field"),
        ({"cc_cause": "cancel", "cc_queue_canceled_epoch": str(T + 40)}, "missing_field"),
    ]:
        cdr = member_cdr("r2", T, cc=cc, end=T + 40)
        result = FreeswitchCdr.restore(None, {}).convert(as_line(cdr))
        assert result.rejection is not None and result.rejection.reason.name == reason


def test_the_same_cdr_read_twice_gives_the_same_ids_whatever_its_formatting() -> None:
    cdr = member_cdr("same-1", T, cc=answered(T + 12, T + 312))
    fs = FreeswitchCdr.restore(None, {})
    compact = fs.convert(as_line(cdr)).events
    pretty = fs.convert(json.dumps(cdr, indent=2, sort_keys=True).encode()).events
    assert [e["event_id"] for e in compact] == [e["event_id"] for e in pretty]
    assert compact == pretty
    ids = [e["event_id"] for e in compact]
    assert len(set(ids)) == 4 and all(len(i) <= 128 for i in ids)
    other = fs.convert(as_line(member_cdr("same-2", T, cc=answered(T + 12, T + 312)))).events
    assert not set(ids) & {e["event_id"] for e in other}


def _personal(text: str) -> list[str]:
    """The caller number or name in any form found in ``text``."""
    forms = [NUMBER, NUMBER[1:], NUMBER[3:], encoded(NUMBER), NAME, encoded(NAME), "Zhang"]
    return [form for form in forms if form in text]


def test_no_caller_number_or_name_in_ids_rejections_or_checkpoints() -> None:
    fs = FreeswitchCdr.restore(None, {})
    good = member_cdr("p1", T, cc=answered(T + 12, T + 312), caller_in_variables=True)
    good["app_log"]["applications"].append(
        {"app_name": "log", "app_data": f"INFO caller {NUMBER} {NAME}"}
    )
    good["callflow"][0]["caller_profile"]["originator"] = {
        "originator_caller_profiles": [{"caller_id_number": NUMBER, "caller_id_name": NAME}]
    }
    bad = json.loads(json.dumps(good))
    del bad["variables"]["cc_agent"]
    events = fs.convert(as_line(good)).events
    rejected = fs.convert(as_line(bad)).rejection
    broken = fs.convert(as_line(good)[:-3]).rejection
    assert rejected is not None and broken is not None
    assert rejected.reason.name == "missing_field"
    kept = json.loads(rejected.payload)  # the CDR is kept, blanked, for the dead letters
    assert kept["variables"]["cc_queue"] == encoded("support@default")
    assert kept["variables"]["caller_id_number"] == ""
    assert kept["callflow"][0]["caller_profile"]["ani"] == ""
    for text in [
        *(e["event_id"] for e in events),
        rejected.payload,
        rejected.detail,
        broken.payload,
        broken.detail,
        fs.checkpoint(),
    ]:
        assert _personal(text) == [], text
    # Only call.offered carries the number, as `caller` (keyed and dropped by the pipeline).
    assert [e["type"] for e in events if _personal(json.dumps(e))] == ["call.offered"]


def test_the_docs_list_every_mapped_value() -> None:
    page = (Path(__file__).parents[2] / "docs" / "freeswitch.md").read_text()
    for table in (NETWORK_FAULTS, SWITCH_FAULTS, TRANSFERS, CANCEL_REASONS, DISPOSITIONS):
        for name in table:
            assert f"`{name}`" in page, name
    for name, code in {**NETWORK_FAULTS, **SWITCH_FAULTS, **TRANSFERS}.items():
        assert re.search(rf"`{name}`[^\n]*{code}", page), (name, code)


def test_the_checkpoint_restores_the_counters() -> None:
    fs = converter("freeswitch-cdr")
    fs.convert(as_line(member_cdr("k1", T, cc=answered(T + 1, T + 2))))
    fs.convert(b"not json")
    fs.convert(as_line(agent_cdr("k1", T)))
    resumed = FreeswitchCdr.restore(fs.checkpoint(), {})
    assert (
        resumed.checkpoint() == fs.checkpoint() == ('{"cdrs":3,"legs":1,"rejected":1,"skipped":1}')
    )
    with pytest.raises(ValueError, match="checkpoint"):
        FreeswitchCdr.restore('{"cdrs": -1}', {})
    with pytest.raises(ValueError, match="encode_values"):
        FreeswitchCdr.restore(None, {"encode_values": "yes"})


def test_values_written_without_encoding_are_read_as_they_are() -> None:
    cdr = member_cdr("n1", T, cc=answered(T + 1, T + 2), queue="100%@default")
    cdr["variables"] = {
        k: v.replace("%40", "@").replace("%25", "%") for k, v in cdr["variables"].items()
    }
    events = FreeswitchCdr.restore(None, {"encode_values": False}).convert(as_line(cdr)).events
    assert events[1]["queue"] == "100%@default"


# --- End to end: CDRs → converter → Pipeline → SQLite → the month's export -----------------


def caller_key(raw: str | None) -> str | None:
    """SPEC §7 written out independently: digits without +86/0086, HMAC-SHA256."""
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


def month_cdrs() -> list[dict[str, Any]]:
    """Six member legs and one agent channel, 2 November 2026 in Shanghai."""
    t1, t2, t3 = (
        epoch("2026-11-02T10:00:00"),
        epoch("2026-11-02T11:00:00"),
        epoch("2026-11-02T12:00:00"),
    )
    return [
        # L1: answered by 1001 in 12 s, 300 s of talk, the caller hangs up.
        member_cdr("L1", t1, cc=answered(t1 + 12, t1 + 312)),
        agent_cdr("L1", t1),  # skipped
        # L2: answered in 30 s, the media times out 100 s later: a drop (network_failure).
        member_cdr(
            "L2",
            t1 + 600,
            cc=answered(t1 + 630, t1 + 730, agent="1002@default"),
            caller="13900139000",
            hangup_cause="MEDIA_TIMEOUT",
            disposition="send_bye",
        ),
        # L3: L1's caller again (another form of the number), abandons after 40 s.
        member_cdr("L3", t2, cc=canceled(t2 + 40, "BREAK_OUT"), caller="13800138000"),
        # L4: anonymous, abandons after 3 s: a short abandon (S = 5 s).
        member_cdr("L4", t2 + 100, cc=canceled(t2 + 103, "BREAK_OUT"), caller="anonymous"),
        # L5: waits 60 s and times out of the queue (call.left timeout).
        member_cdr("L5", t3, cc=canceled(t3 + 60, "TIMEOUT"), caller="13700137000"),
        # L6: sales queue, answered by 2001 in 5 s, 200 s talk, the agent hangs up.
        member_cdr(
            "L6",
            t3 + 300,
            cc=answered(t3 + 305, t3 + 505, agent="2001@default"),
            caller="13600136000",
            queue="sales@default",
            disposition="send_bye",
        ),
    ]


def replay_cdrs(store: SqliteStore, settings: Settings) -> tuple[dict[str, int], int]:
    fs = converter("freeswitch-cdr")
    events = []
    skipped = 0
    for cdr in month_cdrs():
        result = fs.convert(as_line(cdr))
        assert result.rejection is None
        skipped += result.skipped
        events.extend(result.events)
    records = [(event_line(e), 0, position + 1) for position, e in enumerate(events)]
    pipeline = Pipeline(store, thresholds_of(settings), caller_key=caller_key)
    outcome = pipeline.process(records, "test", {0: len(records)})
    return dict(outcome.rejected), skipped


def figures(entry: dict[str, Any]) -> tuple[Any, Any]:
    return entry["numerator"], entry["denominator"]


def test_cdrs_end_to_end_give_the_month_written_by_hand(settings: Settings) -> None:
    store = SqliteStore(Path(settings.store))
    rejected, skipped = replay_cdrs(store, settings)
    assert rejected == {} and skipped == 1
    report = KpiFigures(store, settings).month("2026-11")
    overall = report["overall"]
    # Requests L1..L6; L4 is a short abandon: 5 counted; answered L1, L2, L6.
    assert figures(overall["manual_connection_rate"]) == (3, 5)
    # Of the 3 answered legs, L2 was cut by MEDIA_TIMEOUT.
    assert figures(overall["drop_rate"]) == (1, 3)
    assert figures(overall["abandon_rate"]) == (1, 5)  # L3 (L4 is short)
    assert figures(overall["service_level"]) == (2, 5)  # L1 12 s, L6 5 s (L2 30 s > 20 s)
    assert figures(overall["average_speed_of_answer"]) == (47, 3)  # 12 + 30 + 5
    assert figures(overall["average_handle_time"]) == (600, 3)  # 300 + 100 + 200
    assert figures(overall["transfer_rate"]) == (0, 3)
    assert figures(overall["blocked_rate"]) == (0, 5)  # CDRs have no blocked calls
    assert figures(overall["average_hold_time"]) == (0, 3)  # hold is not read from CDRs
    assert overall["average_after_call_work"]["denominator"] == 0  # no wrap-up in CDRs
    assert overall["average_after_call_work"]["value"] is None
    # Keyed contacts L1, L2, L3, L5, L6 (L4 is anonymous); L3 is L1's caller within 24 h.
    assert figures(overall["repeat_contact_rate"]) == (1, 5)
    volumes = report["volumes"]["overall"]
    assert volumes["requests"] == 6 and volumes["offered"] == 6 and volumes["contacts"] == 6
    assert volumes["left"] == 1 and volumes["blocked"] == 0
    assert volumes["left_by_reason"]["timeout"] == 1
    queues = report["volumes"]["queues"]
    assert queues["support@default"]["requests"] == 5 and queues["sales@default"]["requests"] == 1
    agents = {agent["agent_id"] for agent in report["agents"]}
    assert agents == {"1001@default", "1002@default", "2001@default"}
    # No agent states in CDRs: no state time for anyone.
    assert all(not any(a.get("state_seconds", {}).values()) for a in report["agents"])
    assert _personal(orjson.dumps(report).decode()) == []


def test_the_same_cdrs_replayed_again_are_all_duplicates(settings: Settings) -> None:
    store = SqliteStore(Path(settings.store))
    replay_cdrs(store, settings)
    first = KpiFigures(store, settings).month("2026-11")
    rejected, _ = replay_cdrs(store, settings)
    assert rejected == {"duplicate": 24}  # 6 legs × 4 events
    assert KpiFigures(store, settings).month("2026-11") == first


# ------------------------------------------------------------------ malformed CDRs never raise

# Text that once made the converter raise or that is easy to get wrong: NaN, digits beyond
# int()'s limit, epochs past year 9999, a non-ASCII digit, minus signs and exponents.
_AWKWARD_TEXT = st.sampled_from(
    ["NaN", "Infinity", "-1", "1e400", "9" * 5000, "999999999999", "0.5", "\u00b2", "member"]
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | _AWKWARD_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
# A value in place of a variable or a field: mostly a scalar (epoch-like text among them),
# often any JSON.
_VALUES = st.one_of(
    _AWKWARD_TEXT,
    st.from_regex(r"[0-9]{1,13}(\.[0-9]{1,10})?", fullmatch=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    _JSON_VALUES,
)
_VARIABLES = [
    "cc_side",
    "uuid",
    "cc_queue",
    "cc_cause",
    "cc_agent",
    "cc_cancel_reason",
    "cc_queue_joined_epoch",
    "cc_queue_answered_epoch",
    "cc_queue_terminated_epoch",
    "cc_queue_canceled_epoch",
    "start_epoch",
    "end_epoch",
    "hangup_cause",
    "sip_hangup_disposition",
    "caller_id_number",
    "channel_name",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    variables=st.dictionaries(st.sampled_from(_VARIABLES), _VALUES, max_size=4),
    profile=st.dictionaries(
        st.sampled_from(["caller_id_number", "uuid", "ani", "chan_name"]), _VALUES, max_size=2
    ),
    flow=st.dictionaries(st.sampled_from(["profile_index", "caller_profile"]), _VALUES),
    top=st.dictionaries(
        st.sampled_from(["variables", "callflow", "app_log", "channel_data"]),
        _JSON_VALUES,
        max_size=1,
    ),
    cancel=st.booleans(),
)
def test_any_json_in_a_member_cdr_is_a_leg_or_a_rejection_never_an_exception(
    variables: dict[str, Any],
    profile: dict[str, Any],
    flow: dict[str, Any],
    top: dict[str, Any],
    cancel: bool,
) -> None:
    cc = canceled(T + 40, "TIMEOUT") if cancel else answered(T + 12, T + 312)
    cdr = member_cdr("h1", T, cc=cc, caller_in_variables=True)
    cdr["variables"].update(variables)
    cdr["callflow"][0]["caller_profile"].update(profile)
    cdr["callflow"][0].update(flow)
    cdr.update(top)
    result = FreeswitchCdr.restore(None, {}).convert(as_line(cdr))  # json: ints of any size
    if result.rejection is not None:
        assert isinstance(result.rejection.reason, Reason)
        assert result.events == []
        json.loads(result.rejection.payload)  # kept as JSON text, blanked
    for event in result.events:
        datetime.fromisoformat(event["ts"])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"variables": {"cc_side": "member", "cc_queue_joined_epoch": NaN}}', "invalid_json"),
        (b'{"variables": {"cc_side": "member", "start_epoch": 1e400}}', "invalid_json"),
        (b'{"variables": {"cc_side": "member", "uuid": "\xff\xfe"}}', "invalid_json"),
        (b'{"variables": {"cc_side": "member", "uuid": "\\ud800"}}', "invalid_json"),
        (
            b'{"variables": {"cc_side": "member"}, "app_log": ' + b"[" * 70 + b"]" * 70 + b"}",
            "invalid_json",
        ),
        (b'{"variables": [{"cc_side": "member"}]}', "wrong_type"),
    ],
)
def test_malformed_cdr_bytes_are_rejections(line: bytes, reason: str) -> None:
    result = FreeswitchCdr.restore(None, {}).convert(line)
    assert result.rejection is not None and result.rejection.reason.name == reason


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cc_queue_joined_epoch", 10**30),  # a JSON number too big for 64 bits
        ("cc_queue_joined_epoch", "1" * 5000),
        ("cc_queue_answered_epoch", 999_999_999_999),  # the year 33658
        ("cc_queue_terminated_epoch", "999999999999.5"),
        ("cc_queue_joined_epoch", "NaN"),
        ("end_epoch", -5),
    ],
)
def test_epochs_that_are_no_time_are_naive_timestamps(name: str, value: Any) -> None:
    cc = answered(T + 12, T + 312)
    cc.pop("cc_queue_terminated_epoch")
    cdr = member_cdr("e1", T, cc=cc, end=T + 312)
    cdr["variables"][name] = value
    result = FreeswitchCdr.restore(None, {}).convert(as_line(cdr))
    assert result.rejection is not None and result.rejection.reason.name == "naive_timestamp"
    assert "1" * 100 not in result.rejection.detail  # the value is cut in the detail


def test_a_caller_number_written_as_a_number_or_an_array_is_blanked() -> None:
    digits = int(NUMBER[1:])
    cdr = member_cdr("b1", T, cc=answered(T + 12, T + 312), caller_in_variables=True)
    del cdr["variables"]["cc_agent"]  # rejected, so kept blanked
    cdr["variables"]["caller_id_number"] = digits
    cdr["variables"]["effective_caller_id_number"] = [NUMBER[1:]]
    cdr["variables"]["sip_from_user"] = float(digits)
    cdr["variables"]["session_note"] = digits  # not a caller field, but it holds the number
    cdr["callflow"][0]["caller_profile"]["ani"] = digits
    result = FreeswitchCdr.restore(None, {}).convert(as_line(cdr))
    assert result.rejection is not None and result.rejection.reason.name == "missing_field"
    kept = json.loads(result.rejection.payload)
    assert kept["variables"]["caller_id_number"] == ""
    assert kept["variables"]["effective_caller_id_number"] == ""
    assert kept["variables"]["session_note"] == ""
    assert _personal(result.rejection.payload) == []


@pytest.mark.parametrize(
    "checkpoint",
    [
        "[]",
        '{"cdrs": "3"}',
        '{"cdrs": true}',
        '{"cdrs": 1.5}',
        '{"v": 1, "calls": {}}',  # an asterisk-queue-log state
        "not json",
    ],
)
def test_a_damaged_checkpoint_is_one_clear_value_error(checkpoint: str) -> None:
    with pytest.raises(ValueError, match="freeswitch-cdr checkpoint") as raised:
        FreeswitchCdr.restore(checkpoint, {})
    assert "\n" not in str(raised.value)
