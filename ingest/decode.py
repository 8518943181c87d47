"""Raw bytes → validated events or rejections with a reason (SPEC §2), in batches.

Two paths give one verdict. msgspec decodes the common case into the structs of ``wire.py``;
whatever it refuses, or might read differently, goes to the reference path: the strict pydantic
models of ``events.py``, behind three checks on the raw bytes that no JSON library makes the way
SPEC §2 wants them (the bytes are UTF-8 everywhere, unknown keys included; no ``NaN`` or
``Infinity``; at most 64 levels of nesting). Each pydantic error maps to one reason; when an event
has several faults the first reason in the spec's table order wins. Timestamps are read by the
one RFC 3339 parser of ``rfc3339.py`` on both paths. ``duplicate`` and ``conflict`` are decided
later, against the store and by the fold.

Nothing in here raises on bad input: every line becomes an accepted event or a rejection, so one
bad byte can never stop a stream.
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
from pydantic_core import ErrorDetails, from_json

from hotline_kpi.ingest.events import EVENT_ADAPTER, EVENT_FIELDS
from hotline_kpi.ingest.rfc3339 import epoch_us
from hotline_kpi.ingest.wire import DECODER, Event, TicketOpened, from_json_object


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
    "missing": Reason.missing_field,
    "rfc3339": Reason.naive_timestamp,
    "timezone_aware": Reason.naive_timestamp,
    "datetime_parsing": Reason.naive_timestamp,
    "datetime_from_date_parsing": Reason.naive_timestamp,
    "datetime_object_invalid": Reason.naive_timestamp,
    "greater_than_equal": Reason.out_of_range,
    "less_than_equal": Reason.out_of_range,
    "string_too_short": Reason.out_of_range,
    "string_too_long": Reason.out_of_range,
    "string_pattern_mismatch": Reason.out_of_range,  # a control character in an id
    "finite_number": Reason.out_of_range,  # hold_seconds of 1e400, read as infinity
}

MAX_DEPTH = 64
"""SPEC §2: an object nested deeper than this is ``invalid_json``."""

DEFAULT_MAX_CLOCK_SKEW_US = 300 * 1_000_000
"""SPEC §6 ``max_clock_skew_seconds``: how far ahead of the wall clock an event may be stamped."""


# A msgspec struct rather than a frozen dataclass: one is made per event, and a frozen
# dataclass's __init__ (object.__setattr__ per field) cost ten times as much. gc=False: it holds
# an event (itself untracked) and integers, so it can never be part of a reference cycle.
class Accepted(msgspec.Struct, frozen=True, gc=False):
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
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return Reason.unknown_type
    value = error.get("input", ...)
    # SPEC §2: a required field that is null counts as missing, whatever type it should have.
    if value is None:
        return Reason.missing_field
    if kind == "literal_error":
        # A string outside a closed set (an unknown `cause` or `kind`) is out of range; a number
        # or a list where such a string belongs is the wrong type.
        return Reason.out_of_range if isinstance(value, str) else Reason.wrong_type
    return _TYPE_ERRORS.get(kind, Reason.wrong_type)


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


# Personal data (SPEC §7) must not reach the store, the logs or the dead-letter topic through a
# rejected payload, wherever a producer put it. Kept: the fields the event types define (not
# `caller`), with anything that may be a phone number masked: in text, 7 or more digits with at
# most one separator between them ("+86 139-1234-5678"), unless they are shaped like a date or a
# timestamp; anywhere, a run of 7 or more digits. Bytes that cannot be parsed lose the value of
# any "caller" key too, whatever its spelling.
_PHONE_LIKE = r"\d(?:[ \t\-.()/]?\d){6,}"
_TIMESTAMP_LIKE = (
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?"
)
_SENSITIVE = re.compile(f"({_TIMESTAMP_LIKE})|{_PHONE_LIKE}")
_DIGIT_RUN = re.compile(r"\d{7,}")
_CALLER_VALUE = re.compile(rb'("caller"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]]*)', re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MASK = "*******"
_KEPT_FIELDS = frozenset(EVENT_FIELDS) - {"caller"}
_MAX_PAYLOAD = 4096


def _mask_text(text: str) -> str:
    """``text`` with phone-like runs of digits masked, dates and timestamps kept."""
    return _SENSITIVE.sub(lambda found: found.group(1) or _MASK, text)


def _masked(value: Any) -> Any:
    """``value`` with phone-like text masked, at any depth (strings, keys, lists)."""
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {_mask_text(str(key)): _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _printable(text: str) -> str:
    """``text`` with control characters written as ``\\uXXXX`` (PostgreSQL text holds no NUL)."""
    return _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def safe_text(value: str, limit: int = 128) -> str:
    """A short piece of a rejected input fit for logs and the store: masked and printable."""
    return _printable(_DIGIT_RUN.sub(_MASK, _mask_text(value[:limit])))[:limit]


def _object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` parsed, when it is a JSON object; None otherwise."""
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def redact(raw: bytes, parsed: dict[str, Any] | None = None) -> str:
    """What may be kept of a rejected input (SPEC §7): no caller, no unknown field, no number.

    A parseable object (``parsed``, or ``raw`` parsed here) keeps only the fields the event types
    define, ``caller`` excepted, with phone-like text masked (in ``ts`` and ``due`` too: only
    what is shaped like a timestamp is kept as it is). Bytes that are not a JSON object cannot be
    parsed into fields: they are kept as text without the value of any ``caller`` key, with
    phone-like text and every run of 7 or more digits masked and control characters escaped.
    """
    value = parsed if parsed is not None else _object(raw)
    if value is not None:
        kept = {key: _masked(item) for key, item in value.items() if key in _KEPT_FIELDS}
        text = orjson.dumps(kept).decode()
    else:
        without_caller = _CALLER_VALUE.sub(rb'\1"*******"', raw)
        text = _printable(_mask_text(without_caller.decode("utf-8", errors="replace")))
    return _DIGIT_RUN.sub(_MASK, text)[:_MAX_PAYLOAD]


def reject(raw: bytes, partition: int, position: int, reason: Reason, detail: str) -> Rejected:
    """Build a rejection of ``raw`` that keeps no personal data (parsing it once)."""
    value = _object(raw)
    event_id = value.get("event_id") if value is not None else None
    kind = value.get("type") if value is not None else None
    return Rejected(
        reason,
        partition,
        position,
        safe_text(event_id) if isinstance(event_id, str) else None,
        safe_text(kind, 64) if isinstance(kind, str) else None,
        redact(raw, value),
        safe_text(detail, 256),
    )


def reject_event(item: Accepted, reason: Reason, detail: str) -> Rejected:
    """Reject a valid event later on (a ``duplicate``, a ``conflict``), keeping no caller."""
    event = item.event
    fields = msgspec.to_builtins(event)
    return Rejected(
        reason,
        item.partition,
        item.position,
        safe_text(event.event_id),
        event.type,
        redact(b"", fields),
        safe_text(detail, 256),
    )


Record = tuple[bytes, int, int]
"""A raw event: its bytes, its partition (0 for a file) and its position (next offset)."""


def _is_utf8(raw: bytes) -> bool:
    if raw.isascii():
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(raw: bytes) -> bool:
    """Whether ``raw`` nests arrays or objects deeper than :data:`MAX_DEPTH` (strings skipped)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _has_control_character(event: Event) -> bool:
    """Whether an id or name of ``event`` holds a control character (SPEC §3 "Numbers")."""
    for name in event.__struct_fields__:
        value = getattr(event, name)
        if isinstance(value, str) and name != "caller" and _CONTROL.search(value):
            return True
        if isinstance(value, dict) and any(_CONTROL.search(key) for key in value):
            return True
    return False


# Every byte but those the checks after decoding look at: brackets, a backslash, DEL, non-ASCII.
_PLAIN = bytes(byte for byte in range(0x80) if byte not in b"[{\\\x7f")


def decode_fast(raw: bytes) -> Event | None:
    """msgspec's reading of ``raw``, or None when the reference path must decide.

    The checks after decoding are cheap on the common line: a control character in a decoded
    string can only come from an escape (a backslash) or a raw DEL byte, and nesting deeper than
    64 needs more than 64 brackets. One ``translate`` keeps only the bytes they look at; a line
    left with its opening brace alone (most of them) needs no other check. Timestamps are still
    text: :func:`decode_batch` reads them.
    """
    try:
        event = DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    special = raw.translate(None, _PLAIN)
    if special != b"{":
        if not special.isascii() and not _is_utf8(raw):
            return None
        if special.count(b"[") + special.count(b"{") > MAX_DEPTH:
            return None
        if (b"\\" in special or b"\x7f" in special) and _has_control_character(event):
            return None
    return event


def validate_slow(raw: bytes) -> Event | tuple[Reason, str]:
    """The reference path: the event, or the reason of SPEC §2 and a short detail."""
    if not _is_utf8(raw):
        return Reason.invalid_json, "not UTF-8"
    if _too_deep(raw):
        return Reason.invalid_json, f"nested deeper than {MAX_DEPTH} levels"
    try:
        from_json(raw, allow_inf_nan=False)
    except ValueError:
        return Reason.invalid_json, "not JSON"
    try:
        model = EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return classify(exc)
    return from_json_object(model.model_dump(mode="json"))


def decode_batch(
    records: Sequence[Record],
    now_us: int,
    max_clock_skew_us: int = DEFAULT_MAX_CLOCK_SKEW_US,
) -> tuple[list[Accepted], list[Rejected]]:
    """Validate raw events; ``now_us`` is the wall clock, as data.

    Events stamped more than ``max_clock_skew_us`` after ``now_us`` are ``future_timestamp``: a
    clock that runs ahead must not become "now" (SPEC §3).
    """
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    limit = now_us + max_clock_skew_us
    keep = accepted.append
    for raw, partition, position in records:
        event = decode_fast(raw)
        if event is not None:
            try:
                ts_us = epoch_us(event.ts)
                if type(event) is TicketOpened:
                    epoch_us(event.due)
            except ValueError:  # not RFC 3339 as SPEC §2 reads it: the reference says why
                event = None
        if event is None:
            slow = validate_slow(raw)
            if isinstance(slow, tuple):
                rejected.append(reject(raw, partition, position, *slow))
                continue
            event, ts_us = slow, epoch_us(slow.ts)
        if ts_us > limit:
            rejected.append(reject(raw, partition, position, Reason.future_timestamp, "ts: future"))
            continue
        keep(Accepted(event, ts_us, partition, position))
    return accepted, rejected
