"""Review of the telephony sources (issue 15; SPEC §5, §9): one failing test per bug found.

Each test is marked ``xfail(strict=True)``: it states the behaviour SPEC §9 (or §2, §5, §7)
asks for and fails today; when the bug is fixed the test passes and the strict mark makes the
suite say so, so the mark must then be removed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from hotline_kpi.cli import main
from hotline_kpi.errors import HotlineError
from hotline_kpi.ingest.converters import Converted, converter
from hotline_kpi.ingest.decode import Reason
from hotline_kpi.ship import ShipMetrics, Shipper

T = 1_793_581_200  # 2026-11-02T01:00:00Z
NUMBER = "13800138000"
NAME = "Zhang San"


def queue_log() -> Any:
    return converter("asterisk-queue-log")


def convert_all(lines: list[str], conv: Any = None) -> list[Converted]:
    conv = conv if conv is not None else queue_log()
    return [conv.convert(line.encode()) for line in lines]


def member_cdr(**variables: Any) -> dict[str, Any]:
    """A cancelled (BREAK_OUT) member leg as mod_json_cdr writes it, with overrides."""
    base: dict[str, Any] = {
        "cc_side": "member",
        "uuid": "5d3b7c1e-0000-4000-8000-000000000001",
        "cc_queue": "support@default",
        "cc_queue_joined_epoch": str(T),
        "cc_cause": "cancel",
        "cc_cancel_reason": "BREAK_OUT",
        "cc_queue_canceled_epoch": str(T + 30),
        "caller_id_number": NUMBER,
        "caller_id_name": "Zhang%20San",
    }
    base.update(variables)
    return {
        "core-uuid": "c0de0000-0000-4000-8000-000000000000",
        "switchname": "fs1",
        "channel_data": {"state": "CS_REPORTING", "direction": "inbound"},
        "variables": base,
        "callflow": [{"profile_index": "1", "caller_profile": {"caller_id_number": NUMBER}}],
    }


# ------------------------------------------------------------------ lines that raise


def test_a_queue_log_epoch_of_thousands_of_digits_is_a_rejection_not_an_exception() -> None:
    line = "1" * 5000 + f"|c1|q|NONE|ENTERQUEUE||{NUMBER}|1"
    converted = queue_log().convert(line.encode())
    assert converted.rejection is not None
    assert converted.rejection.reason is Reason.naive_timestamp


def test_ship_goes_on_past_a_queue_log_line_with_a_huge_epoch(tmp_path: Path) -> None:
    from tests.unit.test_ship import FakeProducer

    log = tmp_path / "queue_log"
    log.write_text(
        "1" * 5000 + "|c0|q|NONE|ENTERQUEUE||1|1\n" + f"{T}|c1|q|NONE|ENTERQUEUE||{NUMBER}|1\n"
    )
    producer = FakeProducer()
    metrics = ShipMetrics(CollectorRegistry())
    shipping = Shipper(
        log,
        "asterisk-queue-log",
        tmp_path / "queue_log.ship-state",
        producer,
        lambda checkpoint: converter("asterisk-queue-log", checkpoint, {}),
        metrics,
    )
    shipping.run(once=True)
    shipping.close()
    assert len(producer.acked) == 2  # c1's call.offered and call.queued
    assert metrics.lines_rejected.labels("naive_timestamp")._value.get() == 1


def test_a_cdr_epoch_beyond_year_9999_is_a_rejection_not_an_exception() -> None:
    cdr = member_cdr(cc_queue_joined_epoch="999999999999", cc_queue_canceled_epoch="999999999999")
    converted = converter("freeswitch-cdr").convert(orjson.dumps(cdr))
    assert converted.rejection is not None
    assert converted.rejection.reason is Reason.naive_timestamp


def test_a_deeply_nested_member_cdr_is_a_rejection_not_an_exception() -> None:
    cdr = member_cdr(cc_queue="")  # missing cc_queue: rejected, so its payload is blanked
    text = orjson.dumps(cdr)[:-1] + b',"app_log":' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert isinstance(orjson.loads(text), dict)  # orjson reads it: it is a JSON CDR
    converted = converter("freeswitch-cdr").convert(text)
    assert converted.rejection is not None


# ------------------------------------------------------------------ caller data kept


def test_a_numeric_caller_id_is_blanked_in_a_rejected_cdr() -> None:
    cdr = member_cdr(cc_queue="", caller_id_number=int(NUMBER))
    cdr["callflow"][0]["caller_profile"]["caller_id_number"] = int(NUMBER)
    converted = converter("freeswitch-cdr").convert(orjson.dumps(cdr))
    assert converted.rejection is not None
    assert NUMBER not in converted.rejection.payload


def test_a_rejected_queue_log_line_with_shifted_fields_keeps_no_caller_number_or_name() -> None:
    # The epoch field is missing (a line cut at its start): EVENT is not the fifth field, so
    # the blanking, which goes by the event name there, blanks nothing; the line is stored
    # as a naive_timestamp rejection with the number and the name in clear.
    converted = queue_log().convert(f"c1|q|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}".encode())
    assert converted.rejection is not None
    assert NUMBER not in converted.rejection.payload
    assert NAME not in converted.rejection.payload


# ------------------------------------------------------------------ converter state


def test_a_future_stamped_line_does_not_make_a_callid_start_again_at_its_first_leg() -> None:
    # The far-future line is rejected downstream as future_timestamp, but the converter has
    # already moved its clock there and forgotten every closed callid: c1 re-entering gets
    # c1@q#1 again (the same call_id as its first, settled leg) and a second call.offered.
    converted = convert_all(
        [
            f"{T}|c1|q|NONE|ENTERQUEUE||{NUMBER}|1",
            f"{T + 5}|c1|q|NONE|ABANDON|1|1|5",
            f"{T * 10}|c2|q|NONE|ENTERQUEUE||13900139000|1",
            f"{T + 20}|c1|q|NONE|ENTERQUEUE||{NUMBER}|1",
        ]
    )
    assert [(e["type"], e["call_id"]) for e in converted[3].events] == [("call.queued", "c1@q#2")]


def test_an_agent_removed_from_its_last_queue_is_logged_out_after_a_restart() -> None:
    # QUEUESTART ends no leg (SPEC §9), but the agent of the leg left open must not stay busy
    # when it leaves its last queue: REMOVEMEMBER of the last queue is logged_out.
    converted = convert_all(
        [
            f"{T}|MANAGER|q|PJSIP/101|ADDMEMBER|",
            f"{T + 1}|c1|q|NONE|ENTERQUEUE||{NUMBER}|1",
            f"{T + 2}|c1|q|PJSIP/101|CONNECT|1|c1.2|1",
            f"{T + 3}|NONE|NONE|NONE|QUEUESTART|",
            f"{T + 60}|MANAGER|q|PJSIP/101|REMOVEMEMBER|",
        ]
    )
    states = [e["state"] for e in converted[4].events if e["type"] == "agent.state"]
    assert states == ["logged_out"]


def test_an_agent_logged_in_before_its_first_connect_is_one_agent_and_logs_out() -> None:
    # AGENTLOGIN 1001 is keyed Agent/1001 (no CONNECT seen yet); CONNECT then writes 1001, so
    # states move to 1001 and AGENTLOGOFF logs 1001 out, while Agent/1001 stays ready for ever
    # (logged-in seconds counted twice, utilisation diluted).
    converted = convert_all(
        [
            f"{T}|NONE|NONE|1001|AGENTLOGIN|PJSIP/1001",
            f"{T + 1}|c1|q|NONE|ENTERQUEUE||{NUMBER}|1",
            f"{T + 2}|c1|q|1001|CONNECT|1|c1.2|1",
            f"{T + 62}|c1|q|1001|COMPLETECALLER|1|60|1",
            f"{T + 100}|NONE|NONE|1001|AGENTLOGOFF|PJSIP/1001|100",
        ]
    )
    last: dict[str, str] = {}
    for item in converted:
        for event in item.events:
            if event["type"] == "agent.state":
                last[event["agent_id"]] = event["state"]
    assert last and all(state == "logged_out" for state in last.values()), last


def test_replay_of_a_rotated_queue_log_continues_the_leg_left_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SPEC §9: the converter's state, committed in the store for replay, spans files and
    # rotation. The log is rotated (renamed) and replayed again at the same path: the new file
    # is read from its start with a fresh converter, so the CONNECT and COMPLETECALLER of the
    # leg opened before the rotation are skipped and the leg never gets its answer.
    monkeypatch.setenv("HOTLINE_KPI_CALLER_KEY", "test secret")
    log, store = tmp_path / "queue_log", tmp_path / "store.db"
    replay = ["replay", "--format", "asterisk-queue-log", str(log), "--store", str(store)]
    log.write_text(f"{T}|c1|q|NONE|ENTERQUEUE||{NUMBER}|1\n")
    assert main(replay) == 0
    log.rename(tmp_path / "queue_log.1")
    log.write_text(
        f"{T + 5}|c1|q|PJSIP/101|CONNECT|5|c1.2|1\n{T + 65}|c1|q|PJSIP/101|COMPLETECALLER|5|60|1\n"
    )
    capsys.readouterr()
    assert main(replay) == 0
    out = capsys.readouterr().out
    assert "skipped" not in out, out
    assert "accepted 4 events" in out, out  # answered, agent busy, ended, agent ready


# ------------------------------------------------------------------ user mistakes


@pytest.mark.parametrize("command", ["replay", "convert"])
def test_a_cdr_directory_holding_a_directory_named_json_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    cdrs = tmp_path / "cdrs"
    (cdrs / "archive.json").mkdir(parents=True)
    (cdrs / "a.json").write_bytes(orjson.dumps(member_cdr()))
    args = [command, "--format", "freeswitch-cdr", str(cdrs)]
    args += ["--store", str(tmp_path / "s.db")] if command == "replay" else ["--output", "-"]
    try:
        status = main(args)
    except OSError as exc:  # what happens today: IsADirectoryError out of main
        pytest.fail(f"{command} raised {exc!r}")
    assert status != 0 or "archive.json" in capsys.readouterr().err


def test_convert_to_a_directory_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "queue_log"
    log.write_text(f"{T}|c1|q|NONE|ENTERQUEUE||{NUMBER}|1\n")
    out = tmp_path / "out"
    out.mkdir()
    try:
        status = main(["convert", "--format", "asterisk-queue-log", str(log), "--output", str(out)])
    except OSError as exc:
        pytest.fail(f"convert raised {exc!r}")
    assert status == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize(
    "state", ['{"v":1,"calls":[]}', '{"v":1,"calls":{"c1":5}}', '{"v":1,"agents":{"a":1}}']
)
def test_a_state_file_with_a_damaged_converter_state_is_one_clear_error(
    tmp_path: Path, state: str
) -> None:
    from tests.unit.test_ship import FakeProducer

    log = tmp_path / "queue_log"
    log.write_text(f"{T}|c1|q|NONE|ENTERQUEUE||{NUMBER}|1\n")

    def shipper() -> Shipper:
        return Shipper(
            log,
            "asterisk-queue-log",
            tmp_path / "queue_log.ship-state",
            FakeProducer(),
            lambda checkpoint: converter("asterisk-queue-log", checkpoint, {}),
            ShipMetrics(CollectorRegistry()),
        )

    first = shipper()
    first.run(once=True)
    first.close()
    saved = json.loads((tmp_path / "queue_log.ship-state").read_text())
    saved["converter"] = state
    (tmp_path / "queue_log.ship-state").write_text(json.dumps(saved))
    with pytest.raises(HotlineError):
        shipper().run(once=True)
