"""``replay --format`` and ``convert`` on telephony logs (SPEC §5, §9), through the command line.

A queue_log is replayed, grows, and is replayed again: the leg left open by the first replay is
answered by the second (the converter's state was committed with the position); replaying it
again from the start changes nothing (every event a duplicate). ``convert`` writes the same
events as JSONL. FreeSWITCH CDRs are read from a directory of files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hotline_kpi.cli import main

T = 1_793_581_200  # 2026-11-02T01:00:00Z, 09:00 in Asia/Shanghai
NUMBER = "13800138000"
NAME = "Zhang San"


def log(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def at(seconds: int) -> str:
    return str(T + seconds)


FIRST = [
    f"{at(0)}|MANAGER|billing|PJSIP/101|ADDMEMBER|",
    f"{at(100)}|1793581300.1|billing|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}",
    f"{at(110)}|1793581300.1|billing|PJSIP/101|CONNECT|10|1793581410.2|4",
    f"{at(410)}|1793581300.1|billing|PJSIP/101|BLINDTRANSFER|300|from-queue|10|300|1",
    f"{at(411)}|1793581300.1|tech|NONE|ENTERQUEUE||{NUMBER}|1|{NAME}",
    f"{at(1000)}|1793582200.4|billing|NONE|ENTERQUEUE||010-65521234|1",
    f"{at(1003)}|1793582200.4|billing|NONE|ABANDON|1|1|3",
    f"{at(3000)}|1793584200.6|billing|NONE|FULL||{NUMBER}|1",
    "12345|garbage",
]
LATER = [
    f"{at(441)}|1793581300.1|tech|PJSIP/102|CONNECT|30|1793581741.3|5",
    f"{at(741)}|1793581300.1|tech|PJSIP/102|COMPLETECALLER|30|300|1",
]


def _export(store: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["export", "--month", "2026-11", "--format", "json", "--store", str(store)]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_a_queue_log_is_replayed_resumed_and_replayed_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_KPI_CALLER_KEY", "test secret")
    queue_log, store = tmp_path / "queue_log", tmp_path / "store.db"
    replay = ["replay", "--format", "asterisk-queue-log", str(queue_log), "--store", str(store)]
    queue_log.write_bytes(log(*FIRST))
    assert main(replay) == 0
    printed = capsys.readouterr()
    assert "accepted 14 events, rejected 1 (missing_field 1)" in printed.out
    assert "drop rate" in printed.err and "needs the CDR" in printed.err
    # The log grows: the tech leg left open by the first replay is answered now.
    with queue_log.open("ab") as out:
        out.write(log(*LATER))
    assert main(replay) == 0
    assert "accepted 4 events, rejected 0" in capsys.readouterr().out
    report = _export(store, capsys)
    overall = report["overall"]
    # Legs: billing (answered, transferred), tech (answered), billing (abandoned in 3 s: short),
    # billing (blocked: FULL). Counted requests 4 - 1 short = 3.
    assert (overall["manual_connection_rate"]["numerator"],
            overall["manual_connection_rate"]["denominator"]) == (2, 3)  # fmt: skip
    assert overall["blocked_rate"]["numerator"] == 1
    assert overall["average_handle_time"]["numerator"] == 600  # 300 s + 300 s
    assert overall["transfer_rate"]["numerator"] == 1
    assert report["volumes"]["overall"]["contacts"] == 3
    # The FULL line's caller is the first one again, an hour later: a repeat.
    assert (overall["repeat_contact_rate"]["numerator"],
            overall["repeat_contact_rate"]["denominator"]) == (1, 3)  # fmt: skip
    # From the start again: nothing changes, every event is a duplicate.
    assert main([*replay, "--from-start"]) == 0
    assert "accepted 0 events, rejected 19 (duplicate 18, missing_field 1)" in (
        capsys.readouterr().out
    )
    assert _export(store, capsys)["overall"] == overall
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("store.db*"))
    assert NUMBER.encode() not in stored and NAME.encode() not in stored
    assert b"65521234" not in stored


def test_convert_writes_the_events_as_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_log = tmp_path / "queue_log"
    queue_log.write_bytes(log(*FIRST, *LATER))
    output = tmp_path / "events.jsonl"
    assert main(["convert", "--format", "asterisk-queue-log", str(queue_log),
                 "--output", str(output)]) == 0  # fmt: skip
    assert "wrote 18 events, rejected 1 lines (missing_field 1)" in capsys.readouterr().err
    events = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(events) == 18
    assert {event["type"] for event in events} >= {"call.offered", "call.blocked", "agent.state"}
    # To standard output, the same lines.
    assert main(["convert", "--format", "asterisk-queue-log", str(queue_log)]) == 0
    assert capsys.readouterr().out == output.read_text()


def test_a_directory_is_only_for_cdrs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["replay", "--format", "asterisk-queue-log", str(tmp_path),
                   "--store", str(tmp_path / "s.db")])  # fmt: skip
    assert status != 0
    assert "only freeswitch-cdr reads a directory" in capsys.readouterr().err


def test_a_directory_of_cdrs_is_replayed_file_by_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_freeswitch import answered, epoch, member_cdr

    joined = epoch("2026-11-02T10:00:00")
    cdr = member_cdr("8f9c-0001", joined, cc=answered(joined + 12, joined + 312))
    cdrs = tmp_path / "cdr"
    cdrs.mkdir()
    (cdrs / "a.json").write_text(json.dumps(cdr, indent=2))
    (cdrs / "b.json").write_text("not json")
    (cdrs / "c.json").write_text(json.dumps({"variables": {}}))  # no cc_side: skipped
    store = tmp_path / "s.db"
    replay = ["replay", "--format", "freeswitch-cdr", str(cdrs), "--store", str(store)]
    assert main(replay) == 0
    out = capsys.readouterr().out
    assert "rejected 1 (invalid_json 1)" in out and "skipped 1 source lines" in out
    assert main(replay) == 0  # read whole again: its events are duplicates
    assert "accepted 0 events" in capsys.readouterr().out
