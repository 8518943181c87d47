"""FreeSWITCH ``mod_callcenter`` legs from ``mod_json_cdr`` CDRs (SPEC §9, ``freeswitch-cdr``).

One CDR is one channel: a JSON object with ``core-uuid``, ``switchname``, ``channel_data``,
``variables`` (URL-encoded values with ``encode-values=true``, the default), ``app_log`` and
``callflow`` (one object, or an array of them, each with ``caller_profile`` and ``times``).
``mod_callcenter`` sets ``cc_*`` variables on the caller's channel (``cc_side=member``) when it
enters a queue and when it leaves it; that channel's CDR is one leg. CDRs are self-contained, so
the converter carries no leg state from one CDR to the next: its checkpoint is a few counters.

The full mapping (cancel reasons, hang-up causes and dispositions to SPEC §2 values) is in
``docs/freeswitch.md``; the tables below are the code of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson

from hotline_kpi.ingest.converters import (
    Converted,
    Event,
    LineRejection,
    checkpoint_json,
    line_digest,
)
from hotline_kpi.ingest.decode import MAX_DEPTH, Reason, _too_deep

# cc_cancel_reason (mod_callcenter's MEMBER_CANCEL_REASON_CHART) → (event type, left reason,
# end cause). BREAK_OUT is the caller hanging up while waiting; NONE is a cancel without a
# recorded reason, which in practice is the caller's channel going away too.
CANCEL_REASONS: Mapping[str, tuple[str, str | None, str]] = {
    "BREAK_OUT": ("call.abandoned", None, "customer_hangup"),
    "NONE": ("call.abandoned", None, "customer_hangup"),
    "TIMEOUT": ("call.left", "timeout", "transfer"),
    "NO_AGENT_TIMEOUT": ("call.left", "no_agents", "transfer"),
    "EXIT_WITH_KEY": ("call.left", "callback_requested", "transfer"),
}

# Hang-up cause names (switch_call_cause_t, with their Q.850 code) that end an answered leg
# because the path to the caller failed: the network, the carrier or the media stream. Q.850
# classes "resource unavailable" (network side), "invalid message / protocol error" and
# interworking, plus FreeSWITCH's own media and gateway faults (which report Q.850 16 in
# hangup_cause_q850, hence the name is what is read).
NETWORK_FAULTS: Mapping[str, int] = {
    "DESTINATION_OUT_OF_ORDER": 27,
    "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38,
    "ACCESS_INFO_DISCARDED": 43,
    "REQUESTED_CHAN_UNAVAIL": 44,
    "PRE_EMPTED": 45,
    "INVALID_CALL_REFERENCE": 81,
    "INVALID_MSG_UNSPECIFIED": 95,
    "MANDATORY_IE_MISSING": 96,
    "MESSAGE_TYPE_NONEXIST": 97,
    "WRONG_MESSAGE": 98,
    "IE_NONEXIST": 99,
    "INVALID_IE_CONTENTS": 100,
    "WRONG_CALL_STATE": 101,
    "RECOVERY_ON_TIMER_EXPIRE": 102,
    "MANDATORY_IE_LENGTH_ERROR": 103,
    "PROTOCOL_ERROR": 111,
    "INTERWORKING": 127,
    "MEDIA_TIMEOUT": 604,
    "PROGRESS_TIMEOUT": 607,
    "GATEWAY_DOWN": 609,
    "SRTP_READ_ERROR": 613,
}

# Causes that say the switch itself could not go on: congestion or a temporary failure of the
# switching equipment, a service it does not offer, its own crash or shutdown, an operator's
# command (hupall, uuid_kill with this cause), a call limit it enforces, or its configuration.
SWITCH_FAULTS: Mapping[str, int] = {
    "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42,
    "SERVICE_UNAVAILABLE": 63,
    "MANAGER_REQUEST": 503,
    "ALLOTTED_TIMEOUT": 602,
    "INVALID_GATEWAY": 608,
    "INVALID_URL": 610,
    "INVALID_PROFILE": 611,
    "CRASH": 700,
    "SYSTEM_SHUTDOWN": 701,
}

# The channel was handed over, not hung up by a person.
TRANSFERS: Mapping[str, int] = {"BLIND_TRANSFER": 600, "ATTENDED_TRANSFER": 601}

# sip_hangup_disposition of the caller's channel: who sent the end. recv_* = the caller's side;
# send_* = FreeSWITCH, which (with a normal cause) ends the caller's channel because the agent's
# leg ended. Anything else (no SIP: verto, FreeTDM, loopback) falls back to DEFAULT_END.
DISPOSITIONS: Mapping[str, str] = {
    "recv_bye": "customer_hangup",
    "recv_cancel": "customer_hangup",
    "recv_refuse": "customer_hangup",
    "send_bye": "agent_hangup",
    "send_cancel": "agent_hangup",
    "send_refuse": "agent_hangup",
}
DEFAULT_END = "customer_hangup"

# Variables and caller-profile fields that hold the caller's number or name (or a SIP header
# built from them). Their values are blanked in anything kept, and every string they held is
# then scrubbed from the rest of the CDR.
_PERSONAL_KEY = re.compile(
    r"caller_id|callee_id|^ani|^aniii$|cid_|_cid|^username$|rdnis|chan(nel)?_name"
    r"|sip_from|sip_full_from|sip_contact|sip_p_asserted|sip_rpid|remote_party|identity"
    r"|presence_id|sip_req_user|sip_to_user",
    re.IGNORECASE,
)
_EPOCH = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
# The epochs datetime can stamp in any time zone: 0001-01-02 to 9999-12-30 (UTC).
_FIRST_EPOCH = int(datetime(1, 1, 2, tzinfo=UTC).timestamp())
_LAST_EPOCH = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp())
_SHOWN = 64  # characters of a wrong value quoted in a rejection's detail
_COUNTERS = ("cdrs", "legs", "skipped", "rejected")  # the checkpoint's fields


class CdrRejected(Exception):
    """A member CDR that cannot become a leg: the SPEC §2 reason and what was wrong."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class FreeswitchCdr:
    """The ``freeswitch-cdr`` converter: one ``mod_json_cdr`` CDR in, a leg's events out.

    The counters are the whole state (CDRs are self-contained): they are committed with the
    read position only so that ``replay`` and ``ship`` can report what was read across restarts.
    """

    encoded_values: bool = True
    cdrs: int = 0
    legs: int = 0
    skipped: int = 0
    rejected: int = 0

    @classmethod
    def restore(cls, checkpoint: str | None, options: Mapping[str, Any]) -> FreeswitchCdr:
        """A converter resumed from ``checkpoint`` (None: a fresh start).

        ``options["encode_values"]`` (default true) says whether variable values are
        URL-encoded, as ``mod_json_cdr``'s ``encode-values`` setting; other options are ignored.
        """
        if not isinstance(options, Mapping):
            raise ValueError(f"freeswitch-cdr options must be a mapping, not {options!r}")
        encoded = options.get("encode_values", True)
        if not isinstance(encoded, bool):
            raise ValueError(
                f"freeswitch-cdr option encode_values must be true or false, not {encoded!r}"
            )
        converter = cls(encoded_values=encoded)
        if checkpoint is None:
            return converter
        if not isinstance(checkpoint, str | bytes):
            raise ValueError(
                f"freeswitch-cdr checkpoint is {type(checkpoint).__name__}, not JSON text: "
                "replay from the start"
            )
        try:
            state = orjson.loads(checkpoint)
        except orjson.JSONDecodeError as error:
            raise ValueError(
                f"freeswitch-cdr checkpoint is not JSON ({error}): replay from the start"
            ) from None
        if not isinstance(state, dict):
            raise ValueError(
                "freeswitch-cdr checkpoint is not a JSON object: replay from the start"
            )
        unknown = sorted(str(name) for name in state if name not in _COUNTERS)
        if unknown:
            raise ValueError(
                f"freeswitch-cdr checkpoint has unknown fields {', '.join(map(repr, unknown))} "
                "(not a freeswitch-cdr state): replay from the start"
            )
        for name in _COUNTERS:
            value = state.get(name, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(
                    f"freeswitch-cdr checkpoint field {name!r} is {value!r}, not a count: "
                    "replay from the start"
                )
            setattr(converter, name, value)
        return converter

    def checkpoint(self) -> str:
        """The counters so far, as the JSON text committed with the read position."""
        return checkpoint_json(
            {
                "cdrs": self.cdrs,
                "legs": self.legs,
                "skipped": self.skipped,
                "rejected": self.rejected,
            }
        )

    def convert(self, line: bytes) -> Converted:
        """The events of one CDR (one JSON object: one line, or one file's content)."""
        self.cdrs += 1
        if _too_deep(line):
            # Checked before parsing, so that no walk of the CDR can go too deep (SPEC §2).
            return self._reject(Reason.invalid_json, f"nested deeper than {MAX_DEPTH} levels", "")
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            # Nothing of an unreadable CDR is kept: where its caller number is cannot be known.
            return self._reject(Reason.invalid_json, f"not a UTF-8 JSON CDR: {error}", "")
        if not isinstance(document, dict):
            return self._reject(Reason.not_an_object, "a CDR is a JSON object", "")
        try:
            variables = self._variables(document)
            if variables.get("cc_side") != "member":
                self.skipped += 1
                return Converted(skipped=True)
            events = _leg_events(variables, document)
        except CdrRejected as rejected:
            return self._reject(rejected.reason, rejected.detail, blanked_cdr(document))
        self.legs += 1
        return Converted(events=events)

    def _reject(self, reason: Reason, detail: str, payload: str) -> Converted:
        self.rejected += 1
        return Converted(rejection=LineRejection(reason=reason, detail=detail, payload=payload))

    def _variables(self, document: Mapping[str, Any]) -> dict[str, str]:
        """The CDR's variables, URL-decoded (numbers as their text)."""
        raw = document.get("variables")
        if raw is None:
            raise CdrRejected(Reason.missing_field, "the CDR has no variables object")
        if not isinstance(raw, dict):
            raise CdrRejected(Reason.wrong_type, "the CDR's variables are not a JSON object")
        variables: dict[str, str] = {}
        for name, value in raw.items():
            if isinstance(value, str):
                variables[name] = unquote(value) if self.encoded_values else value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                variables[name] = str(value)
        return variables


def _leg_events(variables: Mapping[str, str], document: Mapping[str, Any]) -> list[Event]:
    """The SPEC §9 events of a member CDR, in time order (see docs/freeswitch.md)."""
    uuid = variables.get("uuid") or _profile_field(document, "uuid")
    if not uuid:
        raise CdrRejected(Reason.missing_field, "member CDR without uuid")
    queue = _required(variables, "cc_queue")
    joined = _required_epoch(variables, "cc_queue_joined_epoch")
    cause = _required(variables, "cc_cause")
    start = _epoch(variables, "start_epoch")
    offered = start if start is not None and start <= joined else joined
    caller = variables.get("caller_id_number") or _profile_field(document, "caller_id_number")

    leg: list[tuple[str, int, dict[str, Any]]] = [
        ("call.offered", offered, {"caller": caller} if caller else {}),
        ("call.queued", joined, {"queue": queue}),
    ]
    if cause == "answered":
        answered = _required_epoch(variables, "cc_queue_answered_epoch")
        agent = _required(variables, "cc_agent")
        ended = _epoch(variables, "cc_queue_terminated_epoch")
        if ended is None:
            ended = _epoch(variables, "end_epoch")
        if ended is None:
            raise CdrRejected(
                Reason.missing_field,
                "answered member CDR without cc_queue_terminated_epoch or end_epoch",
            )
        leg.append(("call.answered", answered, {"queue": queue, "agent_id": agent}))
        leg.append(("call.ended", ended, {"cause": end_cause(variables)}))
    elif cause == "cancel":
        canceled = _required_epoch(variables, "cc_queue_canceled_epoch")
        reason = _required(variables, "cc_cancel_reason")
        if reason not in CANCEL_REASONS:
            raise CdrRejected(
                Reason.out_of_range,
                f"cc_cancel_reason {_shown(reason)} is not one of {', '.join(CANCEL_REASONS)}",
            )
        outcome, left_reason, ended_cause = CANCEL_REASONS[reason]
        fields: dict[str, Any] = {"queue": queue}
        if left_reason is not None:
            fields["reason"] = left_reason
        leg.append((outcome, canceled, fields))
        leg.append(("call.ended", canceled, {"cause": ended_cause}))
    else:
        raise CdrRejected(
            Reason.out_of_range, f"cc_cause {_shown(cause)} is not answered or cancel"
        )

    events: list[Event] = []
    for index, (event_type, epoch, extra) in enumerate(leg):
        role = event_type.removeprefix("call.")
        event: Event = {
            "event_id": f"{line_digest(uuid.encode(), role.encode())}:{index}",
            "type": event_type,
            "ts": datetime.fromtimestamp(epoch, tz=UTC).isoformat(),
            "call_id": uuid,
            "contact_id": uuid,
        }
        event.update(extra)
        events.append(event)
    return events


def end_cause(variables: Mapping[str, str]) -> str:
    """The SPEC §2 end cause of an answered member leg, from its hang-up cause *name* first
    (hangup_cause_q850 reads 16 for FreeSWITCH's own causes), then its SIP disposition."""
    cause = variables.get("hangup_cause", "")
    if cause in NETWORK_FAULTS:
        return "network_failure"
    if cause in SWITCH_FAULTS:
        return "system_failure"
    if cause in TRANSFERS:
        return "transfer"
    return DISPOSITIONS.get(variables.get("sip_hangup_disposition", ""), DEFAULT_END)


def _shown(text: str) -> str:
    """``text`` quoted for a rejection's detail, cut to a few dozen characters."""
    return repr(text[:_SHOWN]) + ("..." if len(text) > _SHOWN else "")


def _required(variables: Mapping[str, str], name: str) -> str:
    value = variables.get(name)
    if not value:
        raise CdrRejected(Reason.missing_field, f"member CDR without {name}")
    return value


def _epoch(variables: Mapping[str, str], name: str) -> int | None:
    """A ``*_epoch`` variable in whole seconds; FreeSWITCH writes 0 for what did not happen."""
    text = variables.get(name, "")
    if text and not _EPOCH.fullmatch(text):
        raise CdrRejected(Reason.naive_timestamp, f"{name} {_shown(text)} is not epoch seconds")
    seconds = int(float(text)) if text else 0
    if seconds and not _FIRST_EPOCH <= seconds <= _LAST_EPOCH:
        raise CdrRejected(
            Reason.naive_timestamp, f"{name} {_shown(text)} is not a time of years 1 to 9999"
        )
    return seconds or None


def _required_epoch(variables: Mapping[str, str], name: str) -> int:
    seconds = _epoch(variables, name)
    if seconds is None:
        raise CdrRejected(Reason.missing_field, f"member CDR without {name}")
    return seconds


def _profiles(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The callflow's caller profiles, oldest first (``callflow`` is one object in older
    FreeSWITCH, an array newest first in newer ones; ``profile_index`` orders both)."""
    callflow = document.get("callflow")
    flows = callflow if isinstance(callflow, list) else [callflow]
    found: list[tuple[int, Mapping[str, Any]]] = []
    for position, flow in enumerate(flows):
        if isinstance(flow, dict) and isinstance(flow.get("caller_profile"), dict):
            index = str(flow.get("profile_index", ""))
            # ASCII digits only, and few of them: int() refuses "²" and 5,000-digit text.
            digits = index.isascii() and index.isdigit() and len(index) <= 18
            order = int(index) if digits else len(flows) - position
            found.append((order, flow["caller_profile"]))
    return [profile for _, profile in sorted(found, key=lambda item: item[0])]


def _profile_field(document: Mapping[str, Any], name: str) -> str | None:
    for profile in _profiles(document):
        value = profile.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def blanked_cdr(document: Mapping[str, Any]) -> str:
    """The CDR as compact JSON text with every caller number and name blanked: the personal
    fields (variables, caller profiles, originator/originatee profiles) are emptied, whatever
    JSON they hold (text, a number, an array), then every text they held is removed from all
    other strings and numbers (a channel name, an app's data). ``document`` is a parsed CDR,
    so at most :data:`MAX_DEPTH` levels deep (:meth:`FreeswitchCdr.convert` checks it)."""
    secrets: set[str] = set()
    _collect(document, secrets)
    # Longest first, so that a number is removed before a shorter text it contains.
    ordered = sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True)
    return orjson.dumps(_scrub(document, ordered)).decode()


def _texts(node: Any, secrets: set[str]) -> None:
    """Every text of a personal field's value into ``secrets``: strings as written and
    URL-decoded, numbers as JSON and Python write them (13800138000, 13800138000.0)."""
    if isinstance(node, dict):
        for value in node.values():
            _texts(value, secrets)
    elif isinstance(node, list):
        for item in node:
            _texts(item, secrets)
    elif isinstance(node, str):
        secrets.add(node)
        secrets.add(unquote(node))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        secrets.add(str(node))
        if isinstance(node, float) and node.is_integer():
            secrets.add(str(int(node)))


def _collect(node: Any, secrets: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if _PERSONAL_KEY.search(str(key)):
                _texts(value, secrets)
            else:
                _collect(value, secrets)
    elif isinstance(node, list):
        for item in node:
            _collect(item, secrets)


def _scrub(node: Any, secrets: Iterable[str]) -> Any:
    if isinstance(node, dict):
        return {
            key: "" if _PERSONAL_KEY.search(str(key)) else _scrub(value, secrets)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_scrub(item, secrets) for item in node]
    if isinstance(node, str):
        for secret in secrets:
            node = node.replace(secret, "")
        return node
    if isinstance(node, int | float) and not isinstance(node, bool):
        # A number holding a caller number (a variable written as a JSON number) becomes
        # the text left once it is removed.
        text = str(node)
        scrubbed = _scrub(text, secrets)
        return node if scrubbed == text else scrubbed
    return node
