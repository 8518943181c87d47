"""Asterisk ``queue_log`` as SPEC §2 events (SPEC §9, ``--format asterisk-queue-log``).

A line is ``epoch|callid|queue|agent|EVENT|data1|data2|data3|data4|data5``: Asterisk writes the
five fields up to ``EVENT`` and then only the data the event has (6 to 11 fields); an empty data
field is absent, and fields after data5 belong to data5, ``|`` included. The epoch is decimal
seconds, read from its text (no float) and kept to the microsecond.

Legs and contacts: an ``ENTERQUEUE`` opens a leg ``callid@queue#n`` (the n-th time that callid
entered that queue), and the callid is the contact. The other call lines of the callid and queue
belong to the leg opened last, and ``ABANDON``, ``EXIT*``, ``COMPLETE*`` and ``*TRANSFER`` close
it. A blocking line (``FULL``, ``JOINEMPTY``, ``JOINUNAVAIL``, ``CLOSED``, ``DIVERT_*``) is a leg
of its own, opened and settled at once. Agent states follow the member lines with SPEC §9's
multi-queue rules, and the agent side of each answered leg (busy, then back to ready or to
not-ready if the agent paused during the call).

Where the caller id is, as read in ``apps/app_queue.c`` (Asterisk master): ``ENTERQUEUE`` writes
``url|caller id number|original position`` and, with ``log_caller_id_name``, the caller id name
as data4. ``app_queue`` itself writes no line for a caller turned away (``FULL``, ``JOINEMPTY``
and ``JOINUNAVAIL`` are only ``QUEUESTATUS`` values there); these lines, and ``CLOSED`` and
``DIVERT_*``, come from the dialplan (``QueueLog()``, as Wazo's dialplan does), whose layout is
the dialplan author's. They are read with ``ENTERQUEUE``'s layout (data2 is the caller), and all
their data fields are blanked for ids and rejections, wherever a dialplan put the number.

What queue_log cannot know, and so what the figures of this source do not have:

- **No drop causes.** queue_log has no Q.850 hang-up cause: a call cut by a network or switch
  fault ends as ``COMPLETECALLER`` or ``COMPLETEAGENT`` like any other. Every answered leg ends
  ``customer_hangup``, ``agent_hangup`` or ``transfer``, so the call drop rate (电话中断率) reads
  0 on this source; it needs the CDR (or CEL) of the platform, which has the cause.
- **No hold, talk or wait seconds from the data fields.** ``CONNECT``'s wait, ``COMPLETE*``'s
  hold and talk times are ignored: waits and handle times come from line times only, and no
  ``hold_seconds`` is given (the data field "holdtime" is the wait in the queue, not hold).
- **No after-call work.** queue_log has no wrap-up line: an agent goes from busy straight back to
  ready (``call.wrapped`` and ``wrap_up`` time never appear).
- **No cut calls at a restart.** ``QUEUESTART`` ends no leg: legs open then stay without
  outcome or end. Their agents stay busy until they leave their last queue (or log off).

Nothing kept here holds a caller number or name: event ids are derived from the line with those
fields blanked, rejections carry the blanked line (a line whose fields are not in place has all
its data fields emptied and its phone-like digits masked), and the checkpoint keeps callids,
queues and agents only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hotline_kpi.ingest.converters import (
    Converted,
    Event,
    LineRejection,
    checkpoint_json,
    line_digest,
)
from hotline_kpi.ingest.decode import Reason, safe_text

_EPOCH = re.compile(r"[0-9]+(?:\.[0-9]*)?")
MAX_EPOCH = 253_402_300_799
"""The last second an RFC 3339 timestamp can hold (9999-12-31T23:59:59Z): a later epoch is a
``naive_timestamp`` rejection (and an epoch of thousands of digits is never given to ``int``)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DATA_FIELDS = 5
"""queue_log has data1 to data5; anything after data5 belongs to data5."""

COUNT_WINDOW_SECONDS = 60
"""How long (in line time) a line is remembered to number identical lines. Identical lines have
the same epoch, and Asterisk writes lines in time order, so a minute is ample."""

CALL_HORIZON_SECONDS = 12 * 3600
"""How long (in line time) a callid with no open leg keeps its leg ordinals and its offered
contact: a channel that re-enters a queue later than this would start again at ``#1``."""

PRUNE_SECONDS = 300
"""Line time between two passes that forget old counts and calls (see ``_advance``)."""

MAX_STEP_SECONDS = 2 * 86400
"""How far from line time a line may be stamped and still move it at once. A line stamped
further away (a clock set wrong for one line, far in the future or the past) leaves line time
where it is, unless the next line is as far away too and within this of it (a real gap in the
log, or a clock that was put right): one stray line never makes the converter forget callids."""

BLOCKED = {
    "FULL": "queue_full",
    "JOINEMPTY": "no_agents",
    "JOINUNAVAIL": "no_agents",
    "CLOSED": "closed",
    "DIVERT_CA_RATIO": "queue_full",
    "DIVERT_HOLDTIME": "queue_full",
}
LEFT = {
    "EXITWITHTIMEOUT": "timeout",
    "EXITEMPTY": "no_agents",
    "LEAVEEMPTY": "no_agents",
    "EXITWITHKEY": "callback_requested",
    "WITHDRAW": "callback_requested",
}
ENDED = {
    "COMPLETECALLER": "customer_hangup",
    "COMPLETEAGENT": "agent_hangup",
    "TRANSFER": "transfer",
    "BLINDTRANSFER": "transfer",
    "ATTENDEDTRANSFER": "transfer",
}
READY = frozenset({"ADDMEMBER", "AGENTLOGIN", "AGENTCALLBACKLOGIN", "UNPAUSE", "UNPAUSEALL"})
LOGIN = frozenset({"AGENTLOGIN", "AGENTCALLBACKLOGIN", "AGENTLOGOFF", "AGENTCALLBACKLOGOFF"})
AGENT_LINES = READY | LOGIN | {"PAUSE", "PAUSEALL", "REMOVEMEMBER"}

# Data fields (0-based among data1..data5) that may hold a caller number or name, by event.
_CALLER_FIELDS: dict[str, tuple[int, ...]] = {"ENTERQUEUE": (1, 3)}
_CALLER_FIELDS.update(dict.fromkeys(BLOCKED, (0, 1, 2, 3, 4)))

KNOWN_EVENTS = frozenset(
    {"ENTERQUEUE", "CONNECT", "ABANDON", *BLOCKED, *LEFT, *ENDED, *AGENT_LINES}
    | {"RINGNOANSWER", "RINGCANCELED", "QUEUESTART", "CONFIGRELOAD", "AGENTDUMP", "SYSCOMPAT"}
)
"""Events whose data fields are known (which of them may hold a caller, or none does): a line
with one of them as its fifth field has its fields in place."""


def blank_line(line: bytes) -> bytes:
    """The line with the caller id number and name fields emptied (SPEC §9, §7), by bytes, so
    that a line that is not UTF-8 is blanked too."""
    fields = line.split(b"|", 4 + DATA_FIELDS)
    if len(fields) < 6:
        return line
    event = fields[4].decode("utf-8", errors="replace")
    for index in _CALLER_FIELDS.get(event, ()):
        if 5 + index < len(fields):
            fields[5 + index] = b""
    return b"|".join(fields)


def _printable(line: bytes) -> str:
    """A blanked line as text for a rejection: undecodable bytes replaced, control characters
    escaped, so that it is one readable line."""
    text = line.decode("utf-8", errors="replace")
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _in_place(line: bytes) -> bool:
    """Whether the line's fifth field is an event whose data fields are known."""
    fields = line.split(b"|", 5)
    return len(fields) >= 5 and fields[4].decode("utf-8", errors="replace") in KNOWN_EVENTS


def rejected_payload(line: bytes) -> str:
    """What a rejection keeps of a line: no caller number or name, whatever its layout.

    A line with its fields in place (a known event as its fifth field) is kept with its caller
    fields blanked (:func:`blank_line`). Any other line (fields missing or shifted, an unknown
    event) cannot be blanked by position: every field after its event name (the first field
    that is a known event, else the fifth) is emptied, and phone-like runs of digits in what is
    left are masked (``decode.safe_text``).
    """
    if _in_place(line):
        return _printable(blank_line(line))
    fields = line.split(b"|")
    names = [field.decode("utf-8", errors="replace") for field in fields]
    event = next((index for index, name in enumerate(names) if name in KNOWN_EVENTS), 4)
    kept = fields[: event + 1] + [b""] * (len(fields) - event - 1)
    text = _printable(b"|".join(kept))
    return safe_text(text, max(len(text), 1))


def _timestamp(epoch: str) -> tuple[str, int] | None:
    """RFC 3339 UTC with microseconds (finer digits truncated) and the whole seconds, or None
    when the epoch is not a decimal number of seconds up to :data:`MAX_EPOCH`."""
    if not _EPOCH.fullmatch(epoch):
        return None
    whole, _, fraction = epoch.partition(".")
    if len(whole.lstrip("0")) > len(str(MAX_EPOCH)):  # never int() of thousands of digits
        return None
    seconds = int(whole)
    if seconds > MAX_EPOCH:
        return None
    micros = int((fraction + "000000")[:6])
    try:
        moment = _UNIX_EPOCH + timedelta(seconds=seconds, microseconds=micros)
    except OverflowError:
        return None
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z"), seconds


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _mapping(value: Any, check: Any) -> bool:
    """Whether ``value`` is a JSON object of text keys whose values pass ``check``."""
    return isinstance(value, dict) and all(
        isinstance(key, str) and check(item) for key, item in value.items()
    )


def _call(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _whole(value.get("t"))
        and _mapping(value.get("q"), _whole)
        and _mapping(
            value.get("o"),
            lambda leg: (
                isinstance(leg, dict) and _whole(leg.get("n")) and _text_or_none(leg.get("a"))
            ),
        )
    )


def _agent_record(value: Any) -> bool:
    shown = value.get("s") if isinstance(value, dict) else None
    return (
        isinstance(value, dict)
        and _mapping(value.get("q"), _text_or_none)
        and isinstance(value.get("l"), bool)
        and _text_or_none(value.get("lp"))
        and _text_or_none(value.get("r"))
        and _texts(value.get("c"))
        and _texts(value.get("x", []))
        and (
            shown is None
            or (
                isinstance(shown, list)
                and len(shown) == 2
                and isinstance(shown[0], str)
                and _text_or_none(shown[1])
            )
        )
    )


def _damage(state: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a checkpoint's state (None: nothing), so that a damaged
    one is one clear error rather than an exception at some later line."""
    checks: dict[str, Any] = {
        "latest": _whole,
        "j": lambda value: value is None or _whole(value),
        "calls": lambda value: _mapping(value, _call),
        "agents": lambda value: _mapping(value, _agent_record),
        "aliases": lambda value: _mapping(value, lambda item: isinstance(item, str)),
        "seen": lambda value: _mapping(
            value, lambda item: isinstance(item, list) and len(item) == 2 and all(map(_whole, item))
        ),
    }
    for key, check in checks.items():
        if key in state and not check(state[key]):
            return f"{key!r} is not what this version writes"
    return None


def _twin(name: str) -> str:
    """The other spelling of an agent under SPEC §9's default map: ``N`` ↔ ``Agent/N``."""
    return name[len("Agent/") :] if name.startswith("Agent/") else f"Agent/{name}"


class AsteriskQueueLog:
    """The converter of ``asterisk-queue-log`` (see the module docstring)."""

    def __init__(self, state: Mapping[str, Any], agent_map: Mapping[str, str]) -> None:
        self._agent_map = dict(agent_map)
        # callid -> {"t": last line second, "q": {queue: ordinal}, "o": {queue: open leg}}
        # where an open leg is {"n": ordinal, "a": answering agent or None}. A callid present
        # here has had its first leg (its contact was offered).
        self._calls: dict[str, dict[str, Any]] = {
            callid: {"t": call["t"], "q": dict(call["q"]), "o": dict(call["o"])}
            for callid, call in state.get("calls", {}).items()
        }
        # agent -> {"q": {queue: None (ready) or pause reason ("" without one)}, "l": logged
        # in by AGENTLOGIN, "lp": pause of a login without queues, "r": the last pause's
        # reason, "c": legs on call, "x": those of them cut by a restart (QUEUESTART), "s":
        # [state, reason] last emitted}
        self._agents: dict[str, dict[str, Any]] = {
            name: {"x": [], **agent} for name, agent in state.get("agents", {}).items()
        }
        # the other spelling of an agent -> the name CONNECT writes, learnt from CONNECT lines
        self._aliases: dict[str, str] = dict(state.get("aliases", {}))
        # digest of a blanked line -> [its second, lines like it so far]
        self._seen: dict[str, list[int]] = {
            key: list(value) for key, value in state.get("seen", {}).items()
        }
        self._latest: int = state.get("latest", 0)
        # a line stamped far from line time, waiting for the next line to confirm it
        self._jump: int | None = state.get("j")

    @classmethod
    def restore(cls, checkpoint: str | None, options: Mapping[str, Any]) -> AsteriskQueueLog:
        """A converter resumed from ``checkpoint`` (None: a fresh start). ``options`` may hold
        ``agents``: interface or login name → member name as ``CONNECT`` writes it."""
        try:
            state = orjson.loads(checkpoint) if checkpoint else {}
        except orjson.JSONDecodeError as error:
            raise ValueError(
                f"the asterisk-queue-log checkpoint is not JSON ({error}): start from the file's "
                "beginning without it"
            ) from error
        if not isinstance(state, dict) or state.get("v", 1) != 1:
            raise ValueError(
                "the asterisk-queue-log checkpoint is not one this version wrote: start from "
                "the file's beginning without it"
            )
        problem = _damage(state)
        if problem is not None:
            raise ValueError(
                f"the asterisk-queue-log checkpoint is damaged ({problem}): start from the "
                "file's beginning without it"
            )
        agents = options.get("agents") or {}
        return cls(state, {str(key): str(value) for key, value in agents.items()})

    def checkpoint(self) -> str:
        """The state after the lines converted so far: open legs, ordinals, agents, and the
        recent lines' counts; closed legs and old callids are dropped."""
        text: str = checkpoint_json(
            {
                "v": 1,
                "latest": self._latest,
                "calls": self._calls,
                "agents": self._agents,
                "aliases": self._aliases,
                "seen": self._seen,
                "j": self._jump,
            }
        )
        return text

    # ---------------------------------------------------------------- one line

    def convert(self, line: bytes) -> Converted:
        """The events of one queue_log line (without its line ending)."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return self._reject(Reason.invalid_json, "the line is not UTF-8", line)
        fields = text.split("|", 4 + DATA_FIELDS)
        if len(fields) < 5:
            detail = f"{len(fields)} fields, at least 5 needed (epoch|callid|queue|agent|EVENT)"
            return self._reject(Reason.missing_field, detail, line)
        epoch, callid, queue, agent, kind = fields[:5]
        data = [value or None for value in fields[5:]] + [None] * (DATA_FIELDS - len(fields[5:]))
        stamp = _timestamp(epoch)
        if stamp is None:
            # Fields out of place may put a caller number in the epoch's place: masked then.
            shown = epoch[:40] if _in_place(line) else safe_text(epoch, 40)
            if _EPOCH.fullmatch(epoch):
                detail = f"epoch {shown!r} is after 9999-12-31T23:59:59Z (RFC 3339's last second)"
            else:
                detail = f"epoch {shown!r} is not a decimal number of seconds"
            return self._reject(Reason.naive_timestamp, detail, line)
        ts, second = stamp
        self._advance(second)
        events = self._events(ts, second, callid, queue, agent, kind, data)
        if not events:
            return Converted(skipped=True)
        blanked = blank_line(line)
        occurrence = self._occurrence(blanked, second)
        base = line_digest(blanked, str(occurrence).encode())
        for index, event in enumerate(events):
            event["event_id"] = f"{base}:{index}"
        return Converted(events=events)

    def _reject(self, reason: Reason, detail: str, line: bytes) -> Converted:
        return Converted(rejection=LineRejection(reason, detail, rejected_payload(line)))

    def _occurrence(self, blanked: bytes, second: int) -> int:
        """How many identical (blanked) lines came before this one."""
        key = line_digest(blanked)
        seen = self._seen.get(key)
        count = seen[1] if seen else 0
        self._seen[key] = [second, count + 1]
        return count

    def _advance(self, second: int) -> None:
        """Moves line time on and forgets what is too old to matter (keeps the state small).

        Forgetting costs a pass over the state, so it is done when line time enters a new
        :data:`PRUNE_SECONDS` step, not at every line: a pure function of the lines read, so a
        converter restored from a checkpoint forgets at the same lines as one that read the
        whole log (their events are the same).

        A line stamped more than :data:`MAX_STEP_SECONDS` from line time moves it only when the
        next line confirms it (see there); a line stamped earlier than line time but not that far
        leaves it as it is (lines slightly out of order).
        """
        far = self._latest > 0 and abs(second - self._latest) > MAX_STEP_SECONDS
        if far:
            confirmed = self._jump is not None and abs(second - self._jump) <= MAX_STEP_SECONDS
            if not confirmed:
                self._jump = second
                return
        self._jump = None
        if second <= self._latest and not far:
            return
        step = second // PRUNE_SECONDS != self._latest // PRUNE_SECONDS
        self._latest = second
        if not step:
            return
        # What a stray line stamped far ahead left is dated now, so that it is forgotten in time.
        ahead = second + MAX_STEP_SECONDS
        seen: dict[str, list[int]] = {}
        for key, value in self._seen.items():
            if value[0] > ahead:
                value[0] = second
            if value[0] >= second - COUNT_WINDOW_SECONDS:
                seen[key] = value
        self._seen = seen
        calls: dict[str, dict[str, Any]] = {}
        for callid, call in self._calls.items():
            if call["t"] > ahead:
                call["t"] = second
            if call["o"] or call["t"] >= second - CALL_HORIZON_SECONDS:
                calls[callid] = call
        self._calls = calls

    def _events(
        self,
        ts: str,
        second: int,
        callid: str,
        queue: str,
        agent: str,
        kind: str,
        data: list[str | None],
    ) -> list[Event]:
        if kind == "ENTERQUEUE":
            return self._enter(ts, second, callid, queue, data[1])
        if kind in BLOCKED:
            return self._blocked(ts, second, callid, queue, BLOCKED[kind], data[1])
        if kind == "CONNECT":
            return self._connect(ts, second, callid, queue, agent)
        if kind == "ABANDON":
            return self._close(ts, second, callid, queue, "call.abandoned", {}, "customer_hangup")
        if kind in LEFT:
            reason = {"reason": LEFT[kind]}
            return self._close(ts, second, callid, queue, "call.left", reason, "transfer")
        if kind in ENDED:
            return self._close(ts, second, callid, queue, None, {}, ENDED[kind])
        if kind in AGENT_LINES:
            return self._member(ts, queue, agent, kind, data[0])
        if kind == "QUEUESTART":
            # A restart ends no leg (SPEC §9), but the legs then on call are cut: their agents
            # are no longer on them once they leave their last queue (see ``_member``).
            for record in self._agents.values():
                record["x"] = list(record["c"])
        return []

    # ---------------------------------------------------------------- legs

    def _open(self, second: int, callid: str, queue: str) -> tuple[str, bool]:
        """A new leg of ``callid`` in ``queue``: its call_id, and whether it is the callid's
        first leg (which offers the contact)."""
        call = self._calls.get(callid)
        first = call is None
        if call is None:
            call = self._calls[callid] = {"t": second, "q": {}, "o": {}}
        call["t"] = max(call["t"], second)
        ordinal = call["q"].get(queue, 0) + 1
        call["q"][queue] = ordinal
        return f"{callid}@{queue}#{ordinal}", first

    def _offered(self, ts: str, call_id: str, callid: str, caller: str | None) -> Event:
        event: Event = {"type": "call.offered", "ts": ts, "call_id": call_id, "contact_id": callid}
        if caller is not None:
            event["caller"] = caller
        return event

    def _enter(
        self, ts: str, second: int, callid: str, queue: str, caller: str | None
    ) -> list[Event]:
        call_id, first = self._open(second, callid, queue)
        self._calls[callid]["o"][queue] = {"n": self._calls[callid]["q"][queue], "a": None}
        events = [self._offered(ts, call_id, callid, caller)] if first else []
        events.append(
            {
                "type": "call.queued",
                "ts": ts,
                "call_id": call_id,
                "queue": queue,
                "contact_id": callid,
            }
        )
        return events

    def _blocked(
        self, ts: str, second: int, callid: str, queue: str, reason: str, caller: str | None
    ) -> list[Event]:
        call_id, first = self._open(second, callid, queue)
        events = [self._offered(ts, call_id, callid, caller)] if first else []
        events.append(
            {
                "type": "call.blocked",
                "ts": ts,
                "call_id": call_id,
                "queue": queue,
                "reason": reason,
                "contact_id": callid,
            }
        )
        return events

    def _leg(self, second: int, callid: str, queue: str) -> tuple[str, dict[str, Any]] | None:
        call = self._calls.get(callid)
        leg = call["o"].get(queue) if call else None
        if call is None or leg is None:
            return None
        call["t"] = max(call["t"], second)
        return f"{callid}@{queue}#{leg['n']}", leg

    def _connect(self, ts: str, second: int, callid: str, queue: str, agent: str) -> list[Event]:
        found = self._leg(second, callid, queue)
        if found is None:
            return []
        call_id, leg = found
        events: list[Event] = [
            {
                "type": "call.answered",
                "ts": ts,
                "call_id": call_id,
                "queue": queue,
                "agent_id": agent,
                "contact_id": callid,
            }
        ]
        # States are keyed by the name CONNECT writes: learn its other spelling (SPEC §9), and
        # join to it what was kept under that spelling before (a login line's guess).
        if agent.startswith("Agent/") or "/" not in agent:
            twin = _twin(agent)
            self._aliases[twin] = agent
            if twin in self._agents and self._name(twin, "AGENTLOGIN") == agent:
                events += self._merge(ts, twin, agent)
        previous = leg["a"]
        leg["a"] = agent
        if previous is not None and previous != agent:
            events += self._on_call(ts, previous, call_id, on=False)
        record = self._agent(agent)
        record["q"].setdefault(queue, None)  # a static member shows up only in its calls
        events += self._on_call(ts, agent, call_id, on=True)
        return events

    def _close(
        self,
        ts: str,
        second: int,
        callid: str,
        queue: str,
        outcome: str | None,
        extra: dict[str, Any],
        cause: str,
    ) -> list[Event]:
        found = self._leg(second, callid, queue)
        if found is None:
            return []
        call_id, leg = found
        del self._calls[callid]["o"][queue]
        events: list[Event] = []
        if outcome is not None:
            events.append(
                {
                    "type": outcome,
                    "ts": ts,
                    "call_id": call_id,
                    "queue": queue,
                    **extra,
                    "contact_id": callid,
                }
            )
        events.append(
            {
                "type": "call.ended",
                "ts": ts,
                "call_id": call_id,
                "cause": cause,
                "contact_id": callid,
            }
        )
        if leg["a"] is not None:
            events += self._on_call(ts, leg["a"], call_id, on=False)
        return events

    # ---------------------------------------------------------------- agents

    def _name(self, agent: str, kind: str) -> str:
        """The member name as CONNECT writes it, for the agent field of a member line: the
        configured map first, then the spelling CONNECT lines were seen to use (``N`` and
        ``Agent/N`` are one agent, both ways); before any CONNECT, a login line's ``N`` is
        ``Agent/N`` (app_agent_pool's queue member), and any other line's name is as written."""
        if agent in self._agent_map:
            return self._agent_map[agent]
        if agent in self._aliases:
            return self._aliases[agent]
        if agent in self._aliases.values():  # a name CONNECT wrote: kept as it is
            return agent
        if kind in LOGIN and "/" not in agent:
            # app_agent_pool logs the agent id N; the queue member CONNECT names is Agent/N.
            return f"Agent/{agent}"
        return agent

    def _agent(self, name: str) -> dict[str, Any]:
        record = self._agents.get(name)
        if record is None:
            record = self._agents[name] = {
                "q": {},
                "l": False,
                "lp": None,
                "r": None,
                "c": [],
                "x": [],
                "s": None,
            }
        return record

    def _merge(self, ts: str, twin: str, name: str) -> list[Event]:
        """Joins the record kept under ``twin`` (before a CONNECT showed the spelling ``name``)
        to ``name``'s, and logs ``twin`` out if it was shown in another state."""
        ghost = self._agents.pop(twin)
        record = self._agent(name)
        for queue, pause in ghost["q"].items():
            record["q"].setdefault(queue, pause)
        record["l"] = record["l"] or ghost["l"]
        for key in ("lp", "r"):
            if record[key] is None:
                record[key] = ghost[key]
        for key in ("c", "x"):
            record[key] += [call_id for call_id in ghost[key] if call_id not in record[key]]
        if ghost["s"] in (None, ["logged_out", None]):
            return []
        return [{"type": "agent.state", "ts": ts, "agent_id": twin, "state": "logged_out"}]

    def _member(
        self, ts: str, queue: str, agent: str, kind: str, reason: str | None
    ) -> list[Event]:
        name = self._name(agent, kind)
        record = self._agent(name)
        queues: dict[str, str | None] = record["q"]
        every_queue = kind in ("PAUSEALL", "UNPAUSEALL") or queue in ("NONE", "")
        if kind in ("AGENTLOGIN", "AGENTCALLBACKLOGIN"):
            record["l"], record["lp"] = True, None
        elif kind in ("AGENTLOGOFF", "AGENTCALLBACKLOGOFF"):
            # The agent's channel is gone: it is unavailable in every queue at once.
            record["l"], record["lp"] = False, None
            queues.clear()
        elif kind == "ADDMEMBER":
            queues[queue] = "" if reason == "PAUSED" else None
            if reason == "PAUSED":
                record["r"] = None
        elif kind == "REMOVEMEMBER":
            queues.pop(queue, None)
        elif kind in ("PAUSE", "PAUSEALL"):
            record["r"] = reason
            if every_queue:
                for member_of in queues:
                    queues[member_of] = reason or ""
                record["lp"] = reason or ""
            else:
                queues[queue] = reason or ""
        elif kind in ("UNPAUSE", "UNPAUSEALL"):
            if every_queue:
                for member_of in queues:
                    queues[member_of] = None
                record["lp"] = None
            else:
                queues[queue] = None
        if not queues and not record["l"] and record["x"]:
            # Out of its last queue: the legs a restart cut (which will never end) end for it.
            record["c"] = [call_id for call_id in record["c"] if call_id not in record["x"]]
            record["x"] = []
        events = self._emit(ts, name, record)
        self._forget(name, record)
        return events

    def _on_call(self, ts: str, name: str, call_id: str, *, on: bool) -> list[Event]:
        if not on and name not in self._agents:
            return []  # let go of the leg already (a leg cut by a restart): nothing to end
        record = self._agent(name)
        calls: list[str] = record["c"]
        if on and call_id not in calls:
            calls.append(call_id)
        elif not on and call_id in calls:
            calls.remove(call_id)
            if call_id in record["x"]:
                record["x"].remove(call_id)
        events = self._emit(ts, name, record)
        self._forget(name, record)
        return events

    def _emit(self, ts: str, name: str, record: dict[str, Any]) -> list[Event]:
        """An ``agent.state`` when the agent's state (SPEC §9's rules) changed."""
        state, reason = self._state(record)
        if record["s"] == [state, reason]:
            return []
        record["s"] = [state, reason]
        event: Event = {"type": "agent.state", "ts": ts, "agent_id": name, "state": state}
        if reason:
            event["reason"] = reason
        return [event]

    @staticmethod
    def _state(record: dict[str, Any]) -> tuple[str, str | None]:
        """Busy while on a call; else not-ready only when paused in every queue it is in (the
        last pause's reason), logged out only when in none and not logged in, else ready."""
        if record["c"]:
            return "busy", None
        queues: dict[str, str | None] = record["q"]
        if queues:
            pauses = list(queues.values())
            if all(pause is not None for pause in pauses):
                return "not_ready", record["r"] or None
            return "ready", None
        if record["l"]:
            if record["lp"] is not None:
                return "not_ready", record["lp"] or None
            return "ready", None
        return "logged_out", None

    def _forget(self, name: str, record: dict[str, Any]) -> None:
        gone = not record["q"] and not record["l"] and not record["c"]
        if gone and record["s"] == ["logged_out", None]:
            del self._agents[name]
