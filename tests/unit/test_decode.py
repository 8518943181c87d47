"""Decoding: every rejection reason of SPEC §2, their order, and what is kept of bad input."""

from __future__ import annotations

import json

import pytest

from hotline_kpi.ingest.decode import Reason, decode_batch, redact
from hotline_kpi.ingest.events import epoch_us
from tests.conftest import line, make_event

NOW = epoch_us(__import__("datetime").datetime.fromisoformat("2026-10-15T12:00:00+08:00"))
TS = "2026-10-15T10:00:00.250+08:00"


def decode_one(raw: bytes) -> Reason | None:
    accepted, rejected = decode_batch([(raw, 0, 1)], NOW)
    if accepted:
        return None
    return rejected[0].reason


def survey(**fields: object) -> bytes:
    event = make_event("survey.answered", TS, call_id="c1", score=9)
    event.update(fields)
    return line({k: v for k, v in event.items() if v is not ...})


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
        (survey(ts="2026-10-16T12:00:01+08:00"), Reason.future_timestamp),
    ],
)
def test_each_reason_is_recognised(raw: bytes, reason: Reason) -> None:
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
