"""The msgspec hot path accepts and rejects exactly what the pydantic models do, reasons included.

The pydantic models are the source of truth; ``ingest/wire.py`` mirrors them for speed. These
properties are what makes the mirror safe: whatever msgspec accepts pydantic accepts with the
same values, and ``decode_batch`` (fast path plus fallback) gives the same verdict, and the same
rejection reason, as pydantic alone on every input.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_kpi.ingest import rfc3339
from hotline_kpi.ingest.decode import decode_batch, decode_fast, validate_slow
from hotline_kpi.ingest.events import EVENT_TYPES, epoch_us

NOW = epoch_us(__import__("datetime").datetime.fromisoformat("2026-10-20T00:00:00+00:00"))

TIMESTAMPS = [
    "2026-10-01T08:00:00+08:00",
    "2026-10-01T00:00:00Z",
    "2026-10-01T00:00:00.5Z",
    "2026-10-01T00:00:00.123456+05:30",
    "2026-10-01T00:00:00.1234567+08:00",
    "2026-10-01T00:00:00.9999999Z",
    "2026-10-01 00:00:00Z",
    "2026-10-01t00:00:00z",
    "2026-10-01T00:00Z",
    "2026-10-01T00:00:00+0800",
    "2026-10-01T00:00:00-00:00",
    "2026-10-01T00:00:00",
    "2026-10-01",
    "2026-10-01T24:00:00Z",
    "2026-13-01T00:00:00Z",
    "yesterday",
    "",
    "2026-10-01T00:00:00+25:00",
    "2099-01-01T00:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-06-30T23:59:60.5+08:00",
    "2026-10-01T00:00:61Z",
    "2026-02-29T00:00:00Z",
    "2028-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-10-01T00:00:00.Z",
    "2026-10-01T00:00:00,5Z",
    "２０２６-10-01T00:00:00Z",
    "2026-10-01T00:00:00+08",
    "2026-10-01T00:00:00+08:00\n",
]
IDS = [
    "c1",
    "A-1001",
    "宽带",
    "",
    "x" * 128,
    "x" * 129,
    " ",
    "\u0000",
    "é" * 128,
    "a\u0001b",
    "tab\there",
    "del\u007f",
    "nbsp\u00a0",
    "=HYPERLINK(1)",
    "😀" * 128,
]
VALUES: dict[str, list[Any]] = {
    "event_id": [*IDS, None, 7, ["e"]],
    "ts": [*TIMESTAMPS, None, 1700000000, 1.5],
    "due": [*TIMESTAMPS, None, 0],
    "call_id": [*IDS, None, 12, True],
    "ticket_id": [*IDS, None, 3.0],
    "queue": [*IDS, None, 1],
    "agent_id": [*IDS, None, False],
    "category": [*IDS, None],
    "caller": ["13912345678", "", None, 13912345678],
    "cause": [
        "customer_hangup",
        "network_failure",
        "system_failure",
        "lightning",
        "Transfer",
        "",
        None,
        1,
        5.0,
        True,
        ["transfer"],
    ],
    "kind": ["complaint", "fault", "consultation", "callback", "other", None, 0, {}],
    # v2 (issue 14): contacts, blocked and left reasons, agent states, hold.
    "contact_id": [*IDS, None, 4],
    "reason": [
        "queue_full",
        "no_agents",
        "closed",
        "timeout",
        "callback_requested",
        "overflow",
        "break",
        "午饭",
        "x" * 64,
        "x" * 65,
        "",
        "a\u0001",
        "Queue_Full",
        None,
        3,
        ["timeout"],
    ],
    "state": [
        "logged_out",
        "ready",
        "busy",
        "wrap_up",
        "not_ready",
        "Ready",
        "away",
        "",
        None,
        1,
    ],
    "hold_seconds": [
        0,
        12,
        12.5,
        0.0000005,
        1e9,
        1e9 + 1,
        1e300,
        -0.0,
        -1,
        -1e-9,
        "12",
        True,
        None,
        [1],
    ],
    "accurate": [True, False, None, 1, 0, "true"],
    "score": [1, 8, 10, 0, 11, -1, 8.0, 8.5, "8", True, None, 10**20],
    "factors": [
        None,
        {},
        {"attitude": 9},
        {"attitude": 0},
        {"a": 11},
        {"": 5},
        {"a": "5"},
        {"a": 5.0},
        [1],
        "x",
    ],
}
TYPES = [*EVENT_TYPES, "call.transferred", "", None, 5]


@st.composite
def raw_events(draw: st.DrawFn) -> bytes:
    """Events that are mostly almost right: each field valid or broken, present or absent."""
    shape = draw(st.integers(0, 20))
    if shape == 0:
        return draw(st.sampled_from([b"", b"{", b"[]", b'"x"', b"null", b"\xff", b"{}"]))
    event: dict[str, Any] = {}
    kind = draw(st.sampled_from(TYPES))
    if draw(st.integers(0, 9)):
        event["type"] = kind
    for name, pool in VALUES.items():
        if draw(st.integers(0, 3)):
            event[name] = draw(st.sampled_from(pool))
    if draw(st.booleans()):
        event["unknown_extra"] = {"nested": [1, 2]}
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    if shape == 1:  # a repeated key: both parsers must agree on which one counts
        text = text[:-1] + ', "score": 11}' if len(text) > 2 else text
    if shape == 2 and len(text) > 2:  # a literal JSON forbids, in an unknown field
        literal = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0", "1E+2"]))
        text = text[:-1] + f', "x": {literal}}}'
    if shape == 3 and len(text) > 2:  # nesting around SPEC's limit of 64 levels
        depth = draw(st.sampled_from([62, 63, 64, 65, 199, 200, 1000, 5000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        text = text[:-1] + ', "x": ' + opener * depth + "1" + closer * depth + "}"
    raw = text.encode()
    if shape == 4 and raw:  # a byte that is not UTF-8, anywhere (in a string, a key, between)
        at = draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]))
            + raw[at:]
        )
    return raw


def same_instant_and_fields(fast: Any, slow: Any) -> bool:
    """Equal fields; timestamps equal as instants (pydantic spells them its own way)."""
    return (
        rfc3339.epoch_us(fast.ts) == rfc3339.epoch_us(slow.ts)
        and {k: v for k, v in msgspec.structs.asdict(fast).items() if k not in ("ts", "due")}
        == {k: v for k, v in msgspec.structs.asdict(slow).items() if k not in ("ts", "due")}
        and (
            getattr(fast, "due", None) is None
            or rfc3339.epoch_us(fast.due) == rfc3339.epoch_us(slow.due)
        )
    )


@settings(max_examples=1500, deadline=None)
@given(raw=raw_events())
def test_what_msgspec_accepts_pydantic_accepts_with_the_same_values(raw: bytes) -> None:
    fast = decode_fast(raw)
    if fast is None:
        return
    try:  # decode_batch reads the timestamps of what msgspec accepts; pydantic must agree
        rfc3339.epoch_us(fast.ts)
        if hasattr(fast, "due"):
            rfc3339.epoch_us(fast.due)
    except ValueError:
        assert isinstance(validate_slow(raw), tuple), raw
        return
    slow = validate_slow(raw)
    assert not isinstance(slow, tuple), (raw, slow)
    assert same_instant_and_fields(fast, slow), (raw, fast, slow)


@settings(max_examples=1500, deadline=None)
@given(raw=raw_events())
def test_decode_batch_gives_pydantics_verdict_and_reason(raw: bytes) -> None:
    accepted, rejected = decode_batch([(raw, 0, 1)], NOW)
    reference = validate_slow(raw)
    if isinstance(reference, tuple):
        assert [r.reason for r in rejected] == [reference[0]], raw
        return
    if rejected:  # valid, but stamped in the future
        assert rejected[0].reason.name == "future_timestamp"
        assert rfc3339.epoch_us(reference.ts) > NOW + 300 * 10**6
        return
    assert same_instant_and_fields(accepted[0].event, reference), raw
