"""Raw bytes → validated events or rejections with a reason (SPEC §2), in batches.

Validation is pydantic-core parsing the bytes directly (``validate_json``), which is faster than
``json.loads`` followed by validation. Each validation error maps to one reason of SPEC §2; when an
event has several faults the first reason in the spec's table order wins. ``duplicate`` and
``conflict`` are decided later, against the store and by the fold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgspec
import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from hotline_kpi.ingest.events import EVENT_ADAPTER, epoch_us
from hotline_kpi.ingest.wire import DECODER, Event, from_json_object


class Reason(IntEnum):
    """Rejection reasons, valued in the order of SPEC §2's table (lower wins)."""

    invalid_json = 1
    not_an_object = 2
    unknown_type = 3
    missing_field = 4
    wrong_type = 5
    naive_timestamp = 6
    out_of_range = 7
    future_timestamp = 8
    duplicate = 9
    conflict = 10


REASONS: tuple[str, ...] = tuple(reason.name for reason in Reason)

_TYPE_ERRORS = {
    "json_invalid": Reason.invalid_json,
    "json_type": Reason.invalid_json,
    "union_tag_invalid": Reason.unknown_type,
    "union_tag_not_found": Reason.unknown_type,
    "missing": Reason.missing_field,
    "timezone_aware": Reason.naive_timestamp,
    "datetime_parsing": Reason.naive_timestamp,
    "datetime_from_date_parsing": Reason.naive_timestamp,
    "datetime_object_invalid": Reason.naive_timestamp,
    "greater_than_equal": Reason.out_of_range,
    "less_than_equal": Reason.out_of_range,
    "string_too_short": Reason.out_of_range,
    "string_too_long": Reason.out_of_range,
    # A value outside a closed set (an unknown `cause` or `kind`) is out of range, not a type error.
    "literal_error": Reason.out_of_range,
}

FUTURE_TOLERANCE_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid event, its event time in epoch microseconds, and where it came from."""

    event: Event
    ts_us: int
    partition: int
    position: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A rejected input: its reason, its position, and what may be kept of it (no caller)."""

    reason: Reason
    partition: int
    position: int
    event_id: str | None
    type: str | None
    payload: str
    detail: str


def _reason_of(error: ErrorDetails) -> Reason:
    kind = error["type"]
    loc = error["loc"]
    if not loc and kind in ("dict_type", "model_type", "model_attributes_type"):
        return Reason.not_an_object
    mapped = _TYPE_ERRORS.get(kind)
    if mapped is not None:
        return mapped
    # SPEC §2: a required field that is null counts as missing, not as the wrong type.
    if error.get("input", ...) is None:
        return Reason.missing_field
    return Reason.wrong_type


def classify(error: ValidationError) -> tuple[Reason, str]:
    """The one reason counted for a validation error, and a short detail without values."""
    best: tuple[Reason, str] | None = None
    for detail in error.errors(include_url=False, include_input=True):
        reason = _reason_of(detail)
        if best is None or reason < best[0]:
            field = ".".join(str(part) for part in detail["loc"][1:]) or "(event)"
            best = (reason, f"{field}: {detail['type']}")
    assert best is not None
    return best


_DIGITS = re.compile(rb"\d{7,}")
_MAX_PAYLOAD = 4096


def _object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` parsed, when it is a JSON object; None otherwise."""
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def redact(raw: bytes, parsed: dict[str, Any] | None = None) -> str:
    """What may be kept of a rejected input: ``caller`` removed, long digit runs masked.

    A parseable object (``parsed``, or ``raw`` parsed here) loses its ``caller`` key. Bytes that
    are not a JSON object cannot be parsed into fields, so every run of 7 or more digits (a phone
    number, possibly) is masked.
    """
    value = parsed if parsed is not None else _object(raw)
    if value is not None:
        kept = {key: item for key, item in value.items() if key != "caller"}
        text = orjson.dumps(kept).decode()
    else:
        text = _DIGITS.sub(b"*******", raw).decode("utf-8", errors="replace")
    return text[:_MAX_PAYLOAD]


def reject(raw: bytes, partition: int, position: int, reason: Reason, detail: str) -> Rejected:
    """Build a rejection of ``raw`` that keeps no caller number (parsing it once)."""
    value = _object(raw)
    event_id = value.get("event_id") if value is not None else None
    kind = value.get("type") if value is not None else None
    return Rejected(
        reason,
        partition,
        position,
        event_id[:128] if isinstance(event_id, str) else None,
        kind[:64] if isinstance(kind, str) else None,
        redact(raw, value),
        detail,
    )


Record = tuple[bytes, int, int]
"""A raw event: its bytes, its partition (0 for a file) and its position (next offset)."""


# msgspec rounds sub-microsecond digits where pydantic truncates them: such lines take the
# pydantic path so that both paths give the same instant.
_SUB_MICROSECOND = re.compile(rb"\.\d{7}")


def decode_fast(raw: bytes) -> Event | None:
    """msgspec's reading of ``raw``, or None when pydantic must decide."""
    if _SUB_MICROSECOND.search(raw) is not None:
        return None
    try:
        return DECODER.decode(raw)
    except msgspec.DecodeError:
        return None


def validate_slow(raw: bytes) -> Event | tuple[Reason, str]:
    """The reference path: pydantic decides, and gives the reason of SPEC §2 when it refuses."""
    try:
        model = EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return classify(exc)
    return from_json_object(model.model_dump(mode="json"))


def decode_batch(records: Sequence[Record], now_us: int) -> tuple[list[Accepted], list[Rejected]]:
    """Validate raw events; ``now_us`` is the wall clock, as data.

    msgspec decodes the common case; anything it refuses (or might read differently) is decided
    by pydantic, so what is accepted and every rejection reason are pydantic's. Events stamped
    more than 24 h after ``now_us`` are rejected as ``future_timestamp``.
    """
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    limit = now_us + FUTURE_TOLERANCE_US
    for raw, partition, position in records:
        event = decode_fast(raw)
        if event is None:
            slow = validate_slow(raw)
            if isinstance(slow, tuple):
                rejected.append(reject(raw, partition, position, *slow))
                continue
            event = slow
        ts_us = epoch_us(event.ts)
        if ts_us > limit:
            rejected.append(reject(raw, partition, position, Reason.future_timestamp, "ts: future"))
            continue
        accepted.append(Accepted(event, ts_us, partition, position))
    return accepted, rejected
