"""Fuzzed event streams: valid events of every type, mutated the way careless producers and
broken links mutate bytes, and the reference verdict each line must get.

Used by the replay fuzz tests (SQLite, PostgreSQL) and the Kafka fuzz test, so that every
boundary is hammered with the same inputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from hotline_kpi.ingest.decode import validate_slow

TS = "2026-10-15T10:00:00.250+08:00"

# Mutations: (name, function of (line, position, payload byte)).
_TAMPER_BYTES = [b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\x00", b"\x7f", b'"', b"{", b"\\"]
_LITERALS = ["NaN", "Infinity", "-Infinity", "1e400", "null", "[]", "{}", '"\\u0000"']
_IDS = ["c\\u0000", "c\\u0001", "c\\n", "x" * 129, "", "13912345678", '=HYPERLINK(\\"x\\")']


def valid_events(serial: int) -> list[dict[str, Any]]:
    """One small call's worth of valid events of every type, with ids unique to ``serial``."""
    call, ticket = f"fz-{serial}", f"fzt-{serial}"

    def event(type_: str, suffix: str, **fields: Any) -> dict[str, Any]:
        return {"event_id": f"{call}-{suffix}", "type": type_, "ts": TS, **fields}

    return [
        event("call.offered", "o", call_id=call, caller="+86 139 1234 5678"),
        event("call.queued", "q", call_id=call, queue="billing"),
        event("call.answered", "a", call_id=call, queue="billing", agent_id="A1"),
        event("call.ended", "e", call_id=call, cause="network_failure"),
        event("qa.reviewed", "r", call_id=call, agent_id="A1", accurate=True, queue="billing"),
        event("ticket.opened", "t", ticket_id=ticket, due=TS, kind="fault", call_id=call),
        event("ticket.closed", "c", ticket_id=ticket),
        event("survey.answered", "s", call_id=call, score=9, factors={"attitude": 8}),
    ]


@st.composite
def mutated_line(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` left alone or broken in one of the ways a stream breaks."""
    kind = draw(st.integers(0, 8))
    if kind == 0:
        return raw
    if kind == 1:  # a foreign byte anywhere
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.sampled_from(_TAMPER_BYTES)) + raw[at:]
    if kind == 2:  # a byte flipped
        at = draw(st.integers(0, len(raw) - 1))
        return raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    if kind == 3:  # cut short
        return raw[: draw(st.integers(1, len(raw) - 1))]
    if kind == 4:  # a literal JSON forbids (or allows) in an unknown field
        return raw[:-1] + f',"x":{draw(st.sampled_from(_LITERALS))}}}'.encode()
    if kind == 5:  # deep nesting in an ignored field
        depth = draw(st.sampled_from([63, 64, 65, 300, 1000, 3000]))
        return raw[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"
    if kind == 6:  # an id no store should hold
        field = draw(st.sampled_from(["event_id", "call_id", "queue", "agent_id", "ticket_id"]))
        value = json.loads(raw)
        if field not in value:
            return raw
        text = json.dumps(value, separators=(",", ":"))
        bad = draw(st.sampled_from(_IDS))
        return text.replace(f'"{field}":"{value[field]}"', f'"{field}":"{bad}"').encode()
    if kind == 7:  # a timestamp as producers get it wrong
        bad = draw(
            st.sampled_from(
                [
                    "2026-10-15T10:00+08:00",
                    "2026-10-15 10:00:00+08:00",
                    "2026-10-15T10:00:00+0800",
                    "2026-10-15T23:59:60+08:00",
                    "2026-10-15T10:00:00",
                    "2099-10-15T10:00:00Z",
                ]
            )
        )
        return raw.replace(TS.encode(), bad.encode(), 1)
    # an enumerated value of the wrong kind
    bad_value = draw(st.sampled_from(["null", "5", '"Transfer"', "[]"]))
    for name in (b'"cause":', b'"kind":', b'"score":', b'"accurate":'):
        if name in raw:
            start = raw.index(name) + len(name)
            end = min(i for i in (raw.find(b",", start), raw.find(b"}", start)) if i != -1)
            return raw[:start] + bad_value.encode() + raw[end:]
    return raw


@st.composite
def fuzzed_stream(draw: st.DrawFn, calls: int = 6) -> list[bytes]:
    """Lines of ``calls`` calls, each line possibly mutated, plus some that are pure noise."""
    first = draw(st.integers(0, 10**9))
    lines: list[bytes] = []
    for serial in range(first, first + calls):
        for event in valid_events(serial):
            raw = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
            lines.append(draw(mutated_line(raw)))
    noise = draw(st.lists(st.binary(min_size=1, max_size=40), max_size=4))
    for item in noise:
        lines.insert(draw(st.integers(0, len(lines))), item)
    return [raw for raw in lines if raw.strip() and b"\n" not in raw and b"\r" not in raw]


@dataclass(frozen=True)
class Verdict:
    """What the reference decoder says of a line: its rejection reason, or None (valid)."""

    reason: str | None


def reference_verdicts(lines: Sequence[bytes]) -> list[Verdict]:
    """The reference decoder's verdict on each line, independently of any pipeline."""
    verdicts = []
    for raw in lines:
        result = validate_slow(raw.strip())
        verdicts.append(Verdict(result[0].name if isinstance(result, tuple) else None))
    return verdicts
