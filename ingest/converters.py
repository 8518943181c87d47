"""Telephony sources (SPEC §9): one converter per log format, behind one interface.

A converter reads a platform's log one line (or one CDR) at a time and gives the SPEC §2 events
it becomes, or the rejection of a line it cannot read, and carries whatever state the format
needs from line to line (open legs, leg ordinals, agents' queues and pauses). Event ids are
derived from the line, so that a line read twice gives the same ids and its events are
``duplicate`` the second time. The state is a short JSON text (:meth:`Converter.checkpoint`),
committed with the read position it belongs to (in the store for ``replay``, in the state file
for ``ship``), and restored from it (:func:`converter`), so that a restart neither loses an
open leg nor opens it twice.

The events are plain dicts of SPEC §2, turned into JSON lines by :func:`event_line`; they then go
through the same decoding, dedup and fold as any event. Nothing here holds a caller number
beyond the ``caller`` field of a ``call.offered`` (which the pipeline keys and drops): the ids,
the rejections and the state are derived with caller numbers and names blanked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from hotline_kpi.ingest.decode import Reason

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LineRejection:
    """Why a source line could not be read (a SPEC §2 reason), and what may be kept of it: the
    line with caller numbers and names blanked, as text."""

    reason: Reason
    detail: str
    payload: str


@dataclass(slots=True)
class Converted:
    """What one source line became: events (maybe none), or a rejection; ``skipped`` when the
    line was read but makes no event (an event type the format does not map, a CDR of an agent
    channel), so that it is counted as skipped rather than lost."""

    events: list[Event] = field(default_factory=list)
    rejection: LineRejection | None = None
    skipped: bool = False


class Converter(Protocol):
    """One log format's reader (see the module docstring)."""

    def convert(self, line: bytes) -> Converted:
        """The events of one line of the source (without its line ending)."""
        ...

    def checkpoint(self) -> str:
        """The converter's state after the lines converted so far, as JSON text."""
        ...


ConverterFactory = Callable[[str | None, Mapping[str, Any]], Converter]
"""Builds a converter from a checkpoint (None: a fresh start) and format options."""


def event_line(event: Event) -> bytes:
    """One event as the JSON line the pipeline decodes."""
    return orjson.dumps(event)


def line_digest(*parts: bytes) -> str:
    """A stable digest of a (blanked) source line and its occurrence, for event ids."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest.hexdigest()[:24]


def checkpoint_json(state: Mapping[str, Any]) -> str:
    """A converter's state as the compact, key-sorted JSON text it is committed as."""
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS).decode()


def _registry() -> dict[str, ConverterFactory]:
    from hotline_kpi.ingest.asterisk import AsteriskQueueLog
    from hotline_kpi.ingest.freeswitch import FreeswitchCdr

    return {
        "asterisk-queue-log": AsteriskQueueLog.restore,
        "freeswitch-cdr": FreeswitchCdr.restore,
    }


FORMATS: Sequence[str] = ("asterisk-queue-log", "freeswitch-cdr")
"""The ``--format`` values of ``replay``, ``convert`` and ``ship`` (SPEC §5, §9)."""


def converter(
    format_name: str, checkpoint: str | None = None, options: Mapping[str, Any] | None = None
) -> Converter:
    """A converter of ``format_name`` resumed from ``checkpoint`` (None: a fresh start)."""
    factories = _registry()
    if format_name not in factories:
        raise ValueError(f"unknown format {format_name!r}: one of {', '.join(FORMATS)}")
    return factories[format_name](checkpoint, options or {})
