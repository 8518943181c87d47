"""Decoding: every rejection reason of SPEC §2, their order, and what is kept of bad input."""

from __future__ import annotations

import json

import pytest

from hotline_kpi.ingest.decode import Reason, decode_batch, redact, validate_slow
from hotline_kpi.ingest.events import epoch_us
from tests.conftest import line, make_event

NOW = epoch_us(__import__("datetime").datetime.fromisoformat("2026-10-15T12:00:00+08:00"))
TS = "2026-10-15T10:00:00.250+08:00"


def decode_one(raw: bytes) -> Reason | None:
    """The reason ``raw`` is rejected for (None: accepted); both paths must say the same."""
    reference = validate_slow(raw)
    expected = reference[0] if isinstance(reference, tuple) else None
    accepted, rejected = decode_batch([(raw, 0, 1)], NOW)
    if accepted:
        assert expected is None, (raw, expected)
        return None
    assert expected in (None, rejected[0].reason)
    return rejected[0].reason


def survey(**fields: object) -> bytes:
    event = make_event("survey.answered", TS, call_id="c1", score=9)
    event.update(fields)
    return line({k: v for k, v in event.items() if v is not ...})


def v2(event_type: str, **fields: object) -> bytes:
    """One v2 event line (issue 14's types and fields)."""
    return line(make_event(event_type, TS, **fields))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_id": "e1", "type": "call.offered"', Reason.invalid_json),
        (b"\xff\xfe{}", Reason.invalid_json),
        (b"[1, 2, 3]", Reason.not_an_object),
        (b'"call.offered"', Reason.not_an_object),
        (b"42", Reason.not_an_object),
        (
            b'{"event_id": "e1", "type": "call.transferred", "ts": "' + TS.encode() + b'"}',
            Reason.unknown_type,
        ),
        (b'{"event_id": "e1", "ts": "' + TS.encode() + b'"}', Reason.unknown_type),
        (b'{"event_id": "e1", "type": 5, "ts": "' + TS.encode() + b'"}', Reason.unknown_type),
        (survey(call_id=...), Reason.missing_field),
        (survey(call_id=None), Reason.missing_field),
        (survey(event_id=None), Reason.missing_field),
        (survey(score=8.0), Reason.wrong_type),
        (survey(score="8"), Reason.wrong_type),
        (survey(score=True), Reason.wrong_type),
        (survey(call_id=17), Reason.wrong_type),
        (survey(factors=[1, 2]), Reason.wrong_type),
        (survey(ts="2026-10-15T10:00:00"), Reason.naive_timestamp),
        (survey(ts="2026-10-15"), Reason.naive_timestamp),
        (survey(ts="15/10/2026 10:00 +08:00"), Reason.naive_timestamp),
        (survey(score=0), Reason.out_of_range),
        (survey(score=11), Reason.out_of_range),
        (survey(factors={"attitude": 12}), Reason.out_of_range),
        (survey(call_id=""), Reason.out_of_range),
        (survey(call_id="x" * 129), Reason.out_of_range),
        (survey(ts="2026-10-15T12:05:01+08:00"), Reason.future_timestamp),
        # Issue 18, defect 9: the reasons SPEC §2 gives, and RFC 3339 as it is written.
        (survey(cause=None), None),  # an unknown field, null: ignored
        (line(make_event("call.ended", TS, call_id="c", cause=None)), Reason.missing_field),
        (
            line(make_event("ticket.opened", TS, ticket_id="t", due=TS, kind=None)),
            Reason.missing_field,
        ),
        (line(make_event("call.ended", TS, call_id="c", cause=5)), Reason.wrong_type),
        (line(make_event("call.ended", TS, call_id="c", cause=["transfer"])), Reason.wrong_type),
        (
            line(make_event("call.ended", "2026-10-15T10:00:00", call_id="c", cause=5)),
            Reason.wrong_type,
        ),
        (line(make_event("call.ended", TS, call_id="c", cause="Transfer")), Reason.out_of_range),
        (survey()[:-1] + b', "x": NaN}', Reason.invalid_json),
        (survey()[:-1] + b', "x": [Infinity]}', Reason.invalid_json),
        (survey()[:-1] + b', "x": -Infinity}', Reason.invalid_json),
        (survey()[:-1] + b', "x": 1e400}', None),  # JSON's grammar allows it; ignored
        (survey(ts="2026-10-15T10:00Z"), Reason.naive_timestamp),  # seconds are required
        (survey(ts="2026-10-15 10:00:00Z"), Reason.naive_timestamp),
        (survey(ts="2026-10-15T10:00:00+0800"), Reason.naive_timestamp),
        (survey(ts="2026-10-15T10:00:00,5Z"), Reason.naive_timestamp),
        (survey(ts="2026-02-29T10:00:00Z"), Reason.naive_timestamp),
        (survey(ts="2026-10-15t01:00:00z"), None),
        (survey(ts="2026-06-30T23:59:60Z"), None),  # a leap second
        # Defect 1: invalid UTF-8 anywhere, in a value or an unknown key.
        (
            b'{"event_id":"e\xff","type":"call.offered","ts":"' + TS.encode() + b'","call_id":"c"}',
            Reason.invalid_json,
        ),
        (survey()[:-1] + b', "\xc3x": 1}', Reason.invalid_json),
        (survey()[:-1] + b', "x": "\xed\xa0\x80"}', Reason.invalid_json),
        # Defect 2: nesting deeper than 64 levels, in an ignored field too.
        (survey()[:-1] + b', "x": ' + b"[" * 63 + b"]" * 63 + b"}", None),
        (survey()[:-1] + b', "x": ' + b"[" * 64 + b"]" * 64 + b"}", Reason.invalid_json),
        (survey()[:-1] + b', "x": "' + b"[" * 200 + b'"}', None),  # brackets in a string
        (survey()[:-1] + b', "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", Reason.invalid_json),
        (b"[" * 100_000, Reason.invalid_json),
        # SPEC §3 "Numbers": no control character in an id (PostgreSQL text holds no U+0000).
        (survey(call_id="c\u0000"), Reason.out_of_range),
        (survey(call_id="c\n"), Reason.out_of_range),
        (survey(queue="q\u007f"), Reason.out_of_range),
        (survey(agent_id="\u001f"), Reason.out_of_range),
        (survey(call_id="c\u00a0"), None),  # a no-break space is not a control character
        # v2 (issue 14): states, reasons, hold and contacts.
        (v2("agent.state", agent_id="A", state="away"), Reason.out_of_range),
        (v2("agent.state", agent_id="A", state="Ready"), Reason.out_of_range),
        (v2("agent.state", agent_id="A", state=None), Reason.missing_field),
        (v2("agent.state", agent_id="A", state=3), Reason.wrong_type),
        (v2("agent.state", agent_id="A", state="not_ready", reason="午饭"), None),
        (v2("agent.state", agent_id="A", state="not_ready", reason="x" * 65), Reason.out_of_range),
        (v2("agent.state", agent_id="A", state="not_ready", reason=""), Reason.out_of_range),
        (v2("call.blocked", call_id="c", queue="q", reason="busy"), Reason.out_of_range),
        (v2("call.blocked", call_id="c", queue="q"), Reason.missing_field),
        (v2("call.left", call_id="c", queue="q", reason="overflow"), None),
        (v2("call.left", call_id="c", queue="q", reason="queue_full"), Reason.out_of_range),
        (v2("call.ended", call_id="c", cause="transfer", hold_seconds=-0.5), Reason.out_of_range),
        (v2("call.ended", call_id="c", cause="transfer", hold_seconds=12.5), None),
        (v2("call.ended", call_id="c", cause="transfer", hold_seconds="12"), Reason.wrong_type),
        (v2("call.ended", call_id="c", cause="transfer", hold_seconds=None), None),
        (v2("call.wrapped", call_id="c"), Reason.missing_field),
        (v2("call.queued", call_id="c", queue="q", contact_id=""), Reason.out_of_range),
        (v2("call.queued", call_id="c", queue="q", contact_id="k\u0000"), Reason.out_of_range),
        (v2("call.queued", call_id="c", queue="q", contact_id=7), Reason.wrong_type),
        (
            v2("call.ended", call_id="c", cause="transfer")[:-1] + b', "hold_seconds": 1e400}',
            Reason.out_of_range,
        ),
    ],
)
def test_each_reason_is_recognised(raw: bytes, reason: Reason | None) -> None:
    assert decode_one(raw) is reason


def test_a_valid_event_of_every_type_is_accepted() -> None:
    events = [
        make_event("call.offered", TS, call_id="c1", caller="13912345678"),
        make_event("call.queued", TS, call_id="c1", queue="billing"),
        make_event("call.answered", TS, call_id="c1", queue="billing", agent_id="A1"),
        make_event("call.abandoned", TS, call_id="c2", queue="billing"),
        make_event("call.ended", TS, call_id="c1", cause="network_failure"),
        make_event("qa.reviewed", TS, call_id="c1", agent_id="A1", accurate=False, queue=None),
        make_event("ticket.opened", TS, ticket_id="t1", due="2026-10-16T10:00:00Z", kind="fault"),
        make_event("ticket.closed", TS, ticket_id="t1", extra_field={"ignored": True}),
        make_event("survey.answered", TS, call_id="c1", score=10, factors={"attitude": 1}),
        make_event("call.blocked", TS, call_id="c3", queue="billing", reason="queue_full"),
        make_event("call.left", TS, call_id="c4", queue="billing", reason="callback_requested"),
        make_event("call.wrapped", TS, call_id="c1", agent_id="A1", contact_id="k1"),
        make_event("agent.state", TS, agent_id="A1", state="not_ready", reason="lunch"),
    ]
    accepted, rejected = decode_batch([(line(e), 0, i) for i, e in enumerate(events)], NOW)
    assert rejected == []
    assert [a.event.type for a in accepted] == [e["type"] for e in events]
    assert accepted[0].ts_us == epoch_us(__import__("datetime").datetime.fromisoformat(TS))


def test_the_first_reason_in_table_order_wins() -> None:
    # Missing call_id (missing_field) beats a float score (wrong_type) and an out-of-range one.
    assert decode_one(survey(call_id=..., score=8.5)) is Reason.missing_field
    assert decode_one(survey(score=8.5, ts="2026-10-15T10:00:00")) is Reason.wrong_type
    assert decode_one(survey(ts="2026-10-15T10:00:00", score=11)) is Reason.naive_timestamp
    # A type that is unknown is reported as such, whatever else is wrong.
    assert decode_one(b'{"type": "nope", "score": "x"}') is Reason.unknown_type


def test_an_unknown_cause_is_out_of_range() -> None:
    raw = line(make_event("call.ended", TS, call_id="c1", cause="lightning"))
    assert decode_one(raw) is Reason.out_of_range


def test_null_optional_fields_count_as_absent() -> None:
    raw = line(make_event("survey.answered", TS, call_id="c1", score=7, queue=None, factors=None))
    assert decode_one(raw) is None


def test_a_bad_event_does_not_stop_the_batch() -> None:
    good = line(make_event("call.queued", TS, call_id="c1", queue="billing"))
    accepted, rejected = decode_batch([(b"garbage", 0, 1), (good, 0, 2), (b"[]", 0, 3)], NOW)
    assert [a.position for a in accepted] == [2]
    assert [(r.reason, r.position) for r in rejected] == [
        (Reason.invalid_json, 1),
        (Reason.not_an_object, 3),
    ]


def test_rejections_keep_no_caller_number() -> None:
    offered = make_event("call.offered", "2026-10-15T10:00:00", call_id="c1", caller="13912345678")
    _, rejected = decode_batch([(line(offered), 0, 1)], NOW)
    assert rejected[0].reason is Reason.naive_timestamp
    assert "13912345678" not in rejected[0].payload
    assert json.loads(rejected[0].payload)["call_id"] == "c1"
    truncated = b'{"type": "call.offered", "caller": "+86 13912345678", "call_id": "c'
    assert "13912345678" not in redact(truncated)


@pytest.mark.parametrize(
    "event",
    [
        make_event("call.offered", "2026-10-15T10:00", event_id="13912345678", call_id="c"),
        make_event("call.answered", "x", call_id="c1", queue="q", agent_id="139-1234-5678"),
        make_event("call.queued", "x", call_id="c1", queue="+86 139 1234 5678"),
        make_event(
            "qa.reviewed", "x", call_id="c", agent_id="a", accurate=1, category="13912345678"
        ),
        make_event("survey.answered", TS, call_id="c", score=11, factors={"13912345678": 3}),
        make_event("ticket.opened", TS, ticket_id="(139)12345678", due="x", kind="fault"),
        make_event("call.ended", TS, call_id="c", cause="x", Caller="13912345678"),
        make_event("call.ended", TS, call_id="c", cause="x", meta={"caller": "13912345678"}),
        make_event("call.ended", TS, call_id=13912345678, cause="x"),
    ],
)
def test_no_phone_number_survives_in_a_rejection(event: dict[str, object]) -> None:
    # Issue 18, defect 12: a number placed in any field, or in a field we do not know, is masked
    # or dropped before the rejection is stored, logged or dead-lettered.
    _, rejected = decode_batch([(line(event), 0, 1)], NOW)
    [rejection] = rejected
    kept = f"{rejection.payload} {rejection.event_id} {rejection.type} {rejection.detail}"
    digits = "".join(ch if ch.isdigit() else " " for ch in kept)
    assert not any(len(run) >= 7 for run in digits.split()), kept
    assert "1234" not in kept.replace("2026", "")
    assert "Caller" not in rejection.payload and "meta" not in rejection.payload


def test_a_rejection_keeps_the_fields_that_explain_it() -> None:
    event = make_event("call.ended", "2026-10-15T10:00:00", call_id="c7", cause="transfer")
    _, [rejection] = decode_batch([(line(event), 0, 1)], NOW)
    assert json.loads(rejection.payload) == dict(event.items())
    assert rejection.event_id == event["event_id"]


def test_control_characters_never_reach_the_stored_rejection() -> None:
    # PostgreSQL text cannot hold U+0000: the rejection of bad bytes must still be storable.
    for raw in (b"\x00\x01garbage\x7f", b'{"event_id": "e\\u0000", "type": "x\\u0000"}'):
        _, [rejection] = decode_batch([(raw, 0, 1)], NOW)
        for text in (rejection.payload, rejection.event_id or "", rejection.type or ""):
            assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text), text


_VALID_OFFER = (
    b'{"event_id":"p3","type":"call.offered","ts":"2026-10-01T00:00:00+08:00",'
    b'"call_id":"c3","caller":"+86 138-0013-8000"}'
)


@pytest.mark.parametrize(
    "raw",
    [
        _VALID_OFFER[:-1] + b',"x":NaN}',  # not JSON, yet every field readable by eye
        _VALID_OFFER + b" x",  # trailing garbage
        _VALID_OFFER[:-1] + b',"x":"\xff"}',  # not UTF-8
        _VALID_OFFER[:60],  # cut short
        _VALID_OFFER.replace(b'"caller"', b'"CALLER"')[:-1] + b",}",
        b'{"event_id":"p3","type":"call.offered","ts":"+86 138-0013-8000","call_id":"c3"}',
        b'{"event_id":"p3","type":"call.offered","ts":{"meta":{"phone":"138 0013 8000"}},'
        b'"call_id":"c3"}',
    ],
)
def test_no_phone_number_survives_in_an_unreadable_line(raw: bytes) -> None:
    # Review of issue 18: bytes that could not be parsed kept a caller number written with
    # separators in clear, and ts/due were kept whatever they held.
    _, [rejection] = decode_batch([(raw, 0, 1)], NOW)
    digits = "".join(ch if ch.isdigit() else " " for ch in rejection.payload)
    assert "0013" not in rejection.payload, rejection.payload
    assert "8000" not in rejection.payload.replace("08:00", ""), rejection.payload
    assert not any(len(run) >= 7 for run in digits.split()), rejection.payload


def test_a_rejected_payload_keeps_its_timestamps_readable() -> None:
    raw = _VALID_OFFER[:-1] + b',"x":NaN}'
    _, [rejection] = decode_batch([(raw, 0, 1)], NOW)
    assert '"ts":"2026-10-01T00:00:00+08:00"' in rejection.payload
