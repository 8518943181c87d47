"""``hotline-kpi ship`` against the real Kafka 4.4 broker: an Asterisk queue_log appended to and
rotated (by rename, then by copy and truncation) while it is shipped, the shipper killed with
SIGKILL at deterministic points (``HOTLINE_KPI_SHIP_CRASH_AT``) and restarted, then the topic
consumed by ``run``: the export is exactly what the log says, and every line's events are on
the topic (none lost; the one batch produced twice shows as ``duplicate`` rejections).

The log, 2026-11-02 from 09:00 in Shanghai (T = 1793581200 is 01:00:00Z), six callers:
c1 billing answered by PJSIP/102 (wait 12 s, talk 300 s, caller hangs up); c2 billing abandoned
after 30 s; c3 support answered by PJSIP/201 (wait 15 s, talk 325 s, agent hangs up) — its
ENTERQUEUE and CONNECT straddle a crash; c4 billing answered by PJSIP/102 (wait 20 s, talk 170
s) across the rename rotation; c5 billing left by timeout after 60 s; c6 billing answered by
PJSIP/103 (wait 90 s, talk 100 s) across the truncation.

And FreeSWITCH CDRs one per line (``mod_json_cdr``'s log form): ``ship --once`` twice, the file
grown between, produces each CDR's events once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.consumers import (
    CLI,
    KEYED,
    Consumer,
    cli,
    killed_at_exit,
    read_topic,
    rejection_counts,
    wait_consumed,
)
from tests.support.services import KafkaBroker, wait_until

pytestmark = pytest.mark.integration

T = 1793581200


def q(offset: int, callid: str, queue: str, agent: str, event: str, *data: str) -> str:
    """One queue_log line as Asterisk writes it (only the data fields the event has)."""
    return "|".join([str(T + offset), f"{T}.{callid}", queue, agent, event, *data]) + "\n"


FIRST = [
    q(0, "1", "billing", "NONE", "ENTERQUEUE", "", "13800000001", "1"),
    q(12, "1", "billing", "PJSIP/102", "CONNECT", "12", f"{T + 12}.90", "3"),
    q(20, "2", "billing", "NONE", "ENTERQUEUE", "", "13800000002", "1"),
    "garbage without its fields\n",
    q(50, "2", "billing", "NONE", "ABANDON", "1", "1", "30"),
    q(60, "3", "support", "NONE", "ENTERQUEUE", "", "13800000003", "1"),
    q(75, "3", "support", "PJSIP/201", "CONNECT", "15", f"{T + 75}.91", "2"),
    q(312, "1", "billing", "PJSIP/102", "COMPLETECALLER", "12", "300", "1"),
]
# Appended while a shipper follows the log, just before it is renamed away.
BEFORE_RENAME = [
    q(400, "3", "support", "PJSIP/201", "COMPLETEAGENT", "15", "325", "1"),
    q(410, "4", "billing", "NONE", "ENTERQUEUE", "", "13800000004", "1"),
]
SECOND = [q(430, "4", "billing", "PJSIP/102", "CONNECT", "20", f"{T + 430}.92", "2")]
# Appended while a shipper follows the new log, just before it is copied and truncated.
BEFORE_TRUNCATION = [
    q(480, "5", "billing", "NONE", "ENTERQUEUE", "", "13800000005", "1"),
    q(540, "5", "billing", "NONE", "EXITWITHTIMEOUT", "1", "1", "60"),
]
THIRD = [
    q(600, "4", "billing", "PJSIP/102", "COMPLETEAGENT", "20", "170", "1"),
    q(610, "6", "billing", "NONE", "ENTERQUEUE", "", "13800000006", "1"),
    "\x01\x02 more garbage\n",
    q(700, "6", "billing", "PJSIP/103", "CONNECT", "90", f"{T + 700}.93", "1"),
    q(800, "6", "billing", "PJSIP/103", "COMPLETECALLER", "90", "100", "1"),
]


def write(path: Path, lines: list[str], mode: str = "a") -> None:
    with path.open(mode) as out:
        out.write("".join(lines))


class Ship:
    """``hotline-kpi ship`` as a process, with the crash point given (if any)."""

    def __init__(
        self, cwd: Path, log: Path, bootstrap: str, topic: str, *extra: str, crash: str = ""
    ) -> None:
        self.output = cwd / f"ship-{time.monotonic_ns()}.log"
        with self.output.open("w") as out:
            self.process = subprocess.Popen(
                [
                    *CLI,
                    "ship",
                    "--format",
                    "asterisk-queue-log",
                    str(log),
                    "--to",
                    "kafka",
                    *("--bootstrap-servers", bootstrap, "--topic", topic),
                    *("--poll-interval", "0.1", "--batch-size", "1"),
                    *extra,
                ],
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **KEYED, "HOTLINE_KPI_SHIP_CRASH_AT": crash},
            )

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def text(self) -> str:
        return self.output.read_text()

    def metrics(self) -> dict[str, float]:
        found = re.search(r"metrics on [0-9.]+:(\d+)", self.text())
        assert found, self.text()
        with urllib.request.urlopen(f"http://127.0.0.1:{found[1]}/metrics", timeout=10) as page:
            families = text_string_to_metric_families(page.read().decode())
            return {
                sample.name + "".join(f"{{{v}}}" for v in sample.labels.values()): sample.value
                for family in families
                for sample in family.samples
                if sample.name.startswith("hotline_ship_") and not sample.name.endswith("_created")
            }


@pytest.fixture
def shippers() -> Iterator[list[Ship]]:
    started: list[Ship] = []
    yield started
    for ship in started:
        if ship.process.poll() is None:
            ship.process.kill()
            ship.process.wait(timeout=30)


def shipped_to_end(state: Path, log: Path) -> bool:
    """Whether the state file says the file now at ``log`` was read to its end."""
    try:
        saved = json.loads(state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    stat = log.stat()
    return (saved["inode"], saved["position"]) == (stat.st_ino, stat.st_size)


def test_ship_killed_at_each_point_and_rotated_both_ways_loses_nothing_and_run_is_exact(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    shippers: list[Ship],
) -> None:
    topic = kafka_topic(partitions=3)
    log = tmp_path / "queue_log"
    state = tmp_path / "queue_log.ship-state"

    def ship(*extra: str, crash: str = "") -> Ship:
        started = Ship(tmp_path, log, kafka_broker.bootstrap, topic, *extra, crash=crash)
        shippers.append(started)
        return started

    write(log, FIRST)
    # 1. Killed between the broker's acknowledgement of line 2 and the state write: line 2's
    #    events (CONNECT: answered, and the agent busy) are produced again after the restart.
    assert ship("--once", crash="after-produce:2").wait() == -signal.SIGKILL
    # 2. Killed between c3's ENTERQUEUE (the 5th line this run reads: lines 2 to 6) and its
    #    CONNECT: the open leg lives in the state file's converter state.
    second = ship("--once", crash="after-commit:5")
    assert second.wait() == -signal.SIGKILL
    assert "rejected (missing_field)" in second.text()
    assert "garbage" not in second.text()  # a rejected line is logged without its content
    # 3. The rest of the first file; c3's CONNECT answers the leg opened before the crash.
    assert ship("--once").wait() == 0

    # 4. Following: lines appended, then the log renamed away and a new one begun; killed
    #    just after the rotation (the old file finished, the state not yet on the new one).
    follower = ship(crash="after-rotation")
    wait_until(lambda: "resuming" in follower.text(), timeout=30)
    write(log, BEFORE_RENAME)
    log.rename(tmp_path / "queue_log.1")
    write(log, SECOND, "w")
    assert follower.wait() == -signal.SIGKILL

    # 5. Restarted: the renamed file is found at its end and the new one read from byte 0.
    #    Then copytruncate: lines appended, the log copied and emptied, new lines written;
    #    killed just after noticing the truncation.
    follower = ship(crash="after-rotation")
    wait_until(lambda: shipped_to_end(state, log), timeout=30, message="SECOND not shipped")
    write(log, BEFORE_TRUNCATION)
    (tmp_path / "queue_log.1").rename(tmp_path / "queue_log.2")
    shutil.copyfile(log, tmp_path / "queue_log.1")
    write(log, THIRD, "w")
    assert follower.wait() == -signal.SIGKILL

    # 6. Restarted with its /metrics: the rest, then a clean stop.
    follower = ship("--metrics-port", "0")
    wait_until(lambda: shipped_to_end(state, log), timeout=30, message="THIRD not shipped")
    metrics = follower.metrics()
    follower.process.send_signal(signal.SIGTERM)
    assert follower.wait() == 0
    # THIRD: 5 lines, one of them garbage; 8 events (ended + ready, offered + queued,
    # answered + busy, ended + ready).
    assert metrics == {
        "hotline_ship_lines_read_total": 5,
        "hotline_ship_events_produced_total": 8,
        "hotline_ship_lines_rejected_total{missing_field}": 1,
        "hotline_ship_lines_skipped_total": 0,
        "hotline_ship_lag_bytes": 0,
    }

    # Every line's events are on the topic: those of the three files read in order by one
    # converter, plus the two events of line 2 produced twice.
    whole = tmp_path / "whole_log"
    whole.write_bytes(
        b"".join(
            (tmp_path / name).read_bytes() for name in ("queue_log.2", "queue_log.1", "queue_log")
        )
    )
    assert whole.read_text() == "".join(FIRST + BEFORE_RENAME + SECOND + BEFORE_TRUNCATION + THIRD)
    cli(
        "convert",
        "--format",
        "asterisk-queue-log",
        str(whole),
        "--output",
        "all.jsonl",
        cwd=tmp_path,
    )
    expected = [
        json.loads(line)["event_id"] for line in (tmp_path / "all.jsonl").read_text().splitlines()
    ]
    produced = [
        json.loads(message.value)["event_id"]
        for message in read_topic(kafka_broker.bootstrap, topic)
    ]
    assert sorted(set(produced)) == sorted(expected)
    assert len(produced) == len(expected) + 2

    # run: the export is what the log says, and the repeats are duplicates.
    store = str(tmp_path / "ship.db")
    with killed_at_exit() as consumers:
        consumers.append(Consumer(tmp_path, kafka_broker.bootstrap, topic, store))
        wait_consumed(store, kafka_broker.bootstrap, topic, consumers, timeout=60)
        assert consumers[0].stop() == 0
    assert rejection_counts(store) == {"duplicate": 2}
    report = json.loads(cli("export", "--month", "2026-11", "--store", store, cwd=tmp_path))
    overall = report["overall"]

    def figures(key: str) -> tuple[object, object]:
        return overall[key]["numerator"], overall[key]["denominator"]

    volumes = report["volumes"]["overall"]
    assert (volumes["offered"], volumes["requests"], volumes["answered"]) == (6, 6, 4)
    assert (volumes["abandoned"], volumes["left"], volumes["blocked"]) == (1, 1, 0)
    assert volumes["left_by_reason"]["timeout"] == 1
    assert figures("manual_connection_rate") == (4, 6)
    assert figures("service_level") == (3, 6)  # waits 12, 15, 20 within 20 s; 90 not
    assert figures("average_speed_of_answer") == (12 + 15 + 20 + 90, 4)
    assert figures("average_handle_time") == (300 + 325 + 170 + 100, 4)
    assert figures("abandon_rate") == (1, 6)
    queues = report["volumes"]["queues"]
    assert (queues["billing"]["answered"], queues["support"]["answered"]) == (3, 1)
    agents = {agent["agent_id"]: agent["answered"] for agent in report["agents"]}
    assert agents == {"PJSIP/102": 2, "PJSIP/201": 1, "PJSIP/103": 1}


def test_ship_once_produces_freeswitch_cdrs_one_per_line_and_resumes_after_them(
    tmp_path: Path, kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    from tests.unit.test_freeswitch import T as JOINED
    from tests.unit.test_freeswitch import agent_cdr, answered, as_line, canceled, member_cdr

    topic = kafka_topic(partitions=2)
    cdrs = tmp_path / "cdr.jsonl"
    first = [
        member_cdr("m-1", JOINED, cc=answered(JOINED + 12, JOINED + 312)),
        agent_cdr("m-1", JOINED),  # an agent's channel: skipped
    ]
    cdrs.write_bytes(b"".join(as_line(cdr) + b"\n" for cdr in first))

    def ship_once() -> None:
        cli(
            "ship",
            *("--format", "freeswitch-cdr", str(cdrs), "--to", "kafka", "--once"),
            *("--bootstrap-servers", kafka_broker.bootstrap, "--topic", topic),
            cwd=tmp_path,
        )

    ship_once()
    with cdrs.open("ab") as out:
        out.write(as_line(member_cdr("m-2", JOINED + 60, cc=canceled(JOINED + 90, "BREAK_OUT"))))
        out.write(b"\nnot json\n")
    ship_once()
    cli("convert", "--format", "freeswitch-cdr", str(cdrs), "--output", "all.jsonl", cwd=tmp_path)
    expected = [
        json.loads(line)["event_id"] for line in (tmp_path / "all.jsonl").read_text().splitlines()
    ]
    produced = [
        json.loads(message.value)["event_id"]
        for message in read_topic(kafka_broker.bootstrap, topic)
    ]
    # Each CDR's events once: the second run resumed after the first CDRs.
    assert sorted(produced) == sorted(expected)
    assert len(expected) == len(set(expected)) >= 6
