"""``ship``'s following, rotation and state (hotline_kpi.ship) with a toy converter and a fake
producer: every line's events are acknowledged before its position is written, a crash at any
point re-produces at most the unacknowledged-then-uncommitted lines, and rotation by rename or
by truncation loses nothing, even while the shipper is stopped.

The toy format is ``call|ENTER`` (opens a leg), ``call|ANSWER`` (answers the open leg, else is
skipped), ``call|NOISE`` (skipped) and ``bad`` (fewer than 2 fields: ``missing_field``). Each
event's id is the line itself, so re-produced lines show as repeated ids.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hotline_kpi.errors import SourceError, UsageError
from hotline_kpi.ingest.converters import Converted, LineRejection, checkpoint_json
from hotline_kpi.ingest.decode import Reason
from hotline_kpi.ship import (
    CrashPoints,
    ProduceError,
    ShipMetrics,
    Shipper,
    read_state,
)


class Toy:
    """See the module docstring; its state is the open legs."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self.open: list[str] = list((state or {}).get("open", []))

    def convert(self, line: bytes) -> Converted:
        fields = line.decode().split("|")
        if len(fields) < 2:
            return Converted(rejection=LineRejection(Reason.missing_field, "fields", ""))
        call, kind = fields[:2]
        if kind == "ENTER":
            self.open.append(call)
            return Converted([{"event_id": line.decode(), "type": "call.queued", "call_id": call}])
        if kind == "ANSWER" and call in self.open:
            self.open.remove(call)
            return Converted(
                [{"event_id": line.decode(), "type": "call.answered", "call_id": call}]
            )
        return Converted(skipped=True)

    def checkpoint(self) -> str:
        return checkpoint_json({"open": self.open})


def toy(checkpoint: str | None) -> Toy:
    return Toy(json.loads(checkpoint) if checkpoint is not None else None)


class FakeProducer:
    """Acknowledges on ``flush`` (unless told to fail), keeping what was acknowledged."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.acked: list[bytes] = []
        self.failures = 0

    def send(self, value: bytes) -> None:
        self.pending.append(value)

    def flush(self) -> None:
        if self.failures:
            self.failures -= 1
            self.pending.clear()
            raise ProduceError("broker away")
        self.acked.extend(self.pending)
        self.pending.clear()

    def close(self) -> None:
        pass

    def ids(self) -> list[str]:
        return [json.loads(value)["event_id"] for value in self.acked]


class Crash(Exception):
    """What the SIGKILL of a crash point stands for here."""


def _kill() -> None:
    raise Crash


def shipper(
    tmp_path: Path,
    producer: FakeProducer,
    *,
    crash: CrashPoints | None = None,
    batch_size: int = 1000,
    metrics: ShipMetrics | None = None,
) -> Shipper:
    return Shipper(
        tmp_path / "queue_log",
        "toy",
        tmp_path / "queue_log.ship-state",
        producer,
        toy,
        metrics or ShipMetrics(CollectorRegistry()),
        batch_size=batch_size,
        crash=crash,
        kill=_kill,
    )


def ship_once(tmp_path: Path, producer: FakeProducer, **options: Any) -> Shipper:
    shipping = shipper(tmp_path, producer, **options)
    shipping.run(once=True)
    shipping.close()
    return shipping


def append(path: Path, text: str) -> None:
    with path.open("a") as out:
        out.write(text)


def test_once_ships_every_complete_line_and_writes_the_state_after(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\nc2|ENTER\nbad\nc1|ANSWER\nc3|NOISE\n\nc2|ANS")
    producer = FakeProducer()
    metrics = ShipMetrics(CollectorRegistry())
    ship_once(tmp_path, producer, metrics=metrics)
    assert producer.ids() == ["c1|ENTER", "c2|ENTER", "c1|ANSWER"]
    state = read_state(tmp_path / "queue_log.ship-state")
    assert state is not None
    # The unfinished last line is left for the next look; c2 stays open in the converter.
    assert state.position == len(b"c1|ENTER\nc2|ENTER\nbad\nc1|ANSWER\nc3|NOISE\n\n")
    assert (state.device, state.inode) == (os.stat(log).st_dev, os.stat(log).st_ino)
    assert json.loads(state.converter) == {"open": ["c2"]}
    registry = metrics.registry
    assert registry.get_sample_value("hotline_ship_lines_read_total") == 5
    assert registry.get_sample_value("hotline_ship_events_produced_total") == 3
    assert registry.get_sample_value("hotline_ship_lines_skipped_total") == 1
    assert (
        registry.get_sample_value("hotline_ship_lines_rejected_total", {"reason": "missing_field"})
        == 1
    )
    assert registry.get_sample_value("hotline_ship_lag_bytes") == len(b"c2|ANS")


def test_a_restart_resumes_at_the_position_with_the_converters_state(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\n")
    producer = FakeProducer()
    ship_once(tmp_path, producer)
    append(log, "c1|ANSWER\n")
    ship_once(tmp_path, producer)
    # Read once each, and the answer found the leg opened before the restart.
    assert producer.ids() == ["c1|ENTER", "c1|ANSWER"]


def test_a_crash_between_the_acknowledgement_and_the_state_write_produces_again(
    tmp_path: Path,
) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\nc2|ENTER\nc1|ANSWER\nc2|ANSWER\n")
    producer = FakeProducer()
    with pytest.raises(Crash):
        ship_once(tmp_path, producer, crash=CrashPoints(after_produce=3), batch_size=1)
    ship_once(tmp_path, producer, batch_size=1)
    # The third line was acknowledged but not committed: produced twice (a duplicate
    # downstream), nothing lost, and the state restored before it answers c1 again.
    assert producer.ids() == ["c1|ENTER", "c2|ENTER", "c1|ANSWER", "c1|ANSWER", "c2|ANSWER"]


def test_a_crash_after_a_commit_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\n")
    producer = FakeProducer()
    with pytest.raises(Crash):
        ship_once(tmp_path, producer, crash=CrashPoints(after_commit=1), batch_size=1)
    append(log, "c1|ANSWER\n")
    ship_once(tmp_path, producer, batch_size=1)
    assert producer.ids() == ["c1|ENTER", "c1|ANSWER"]


def test_an_unacknowledged_batch_is_sent_again_before_its_position_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hotline_kpi.ship.RETRY_WAIT_S", (0.0,))
    (tmp_path / "queue_log").write_text("c1|ENTER\nc1|ANSWER\n")
    producer = FakeProducer()
    producer.failures = 2
    following = shipper(tmp_path, producer)
    following.start()
    while following.step():
        pass
    following.close()
    assert producer.ids() == ["c1|ENTER", "c1|ANSWER"]


def test_once_ends_with_one_error_when_the_broker_does_not_acknowledge(tmp_path: Path) -> None:
    (tmp_path / "queue_log").write_text("c1|ENTER\n")
    producer = FakeProducer()
    producer.failures = 1
    with pytest.raises(SourceError, match="shipped again at the next run"):
        ship_once(tmp_path, producer)
    # No position was written past what the broker did not acknowledge.
    assert read_state(tmp_path / "queue_log.ship-state") is None
    ship_once(tmp_path, producer)
    assert producer.ids() == ["c1|ENTER"]


def test_rename_rotation_finishes_the_old_file_then_reads_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\n")
    producer = FakeProducer()
    shipping = shipper(tmp_path, producer)
    shipping.start()
    assert shipping.step()
    append(log, "c2|ENTER\n")  # written just before the rotation, not read yet
    log.rename(tmp_path / "queue_log.1")
    assert not shipping.step() or producer.ids()[-1] == "c2|ENTER"
    log.write_text("c1|ANSWER\nc2|ANSWER\n")
    while shipping.step():
        pass
    shipping.close()
    assert producer.ids() == ["c1|ENTER", "c2|ENTER", "c1|ANSWER", "c2|ANSWER"]
    state = read_state(tmp_path / "queue_log.ship-state")
    assert state is not None and state.inode == os.stat(log).st_ino
    assert json.loads(state.converter) == {"open": []}


def test_truncate_rotation_reads_the_file_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\nc2|ENTER\n")
    producer = FakeProducer()
    shipping = shipper(tmp_path, producer)
    shipping.start()
    shipping.step()
    # copytruncate: a copy, then the file emptied and written again (longer than before).
    (tmp_path / "queue_log.1").write_bytes(log.read_bytes() + b"c3|ENTER\n")
    log.write_text("c1|ANSWER\nc2|ANSWER\nc3|ANSWER\nc9|NOISE\n")
    while shipping.step():
        pass
    shipping.close()
    # c3 entered after the last look and before the copy: taken from the copy.
    assert producer.ids() == [
        "c1|ENTER",
        "c2|ENTER",
        "c3|ENTER",
        "c1|ANSWER",
        "c2|ANSWER",
        "c3|ANSWER",
    ]


def test_a_truncation_to_a_shorter_file_without_a_copy_starts_again(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\nc2|ENTER\n")
    producer = FakeProducer()
    shipping = shipper(tmp_path, producer)
    shipping.start()
    shipping.step()
    log.write_text("c1|ANSWER\n")
    while shipping.step():
        pass
    shipping.close()
    assert producer.ids() == ["c1|ENTER", "c2|ENTER", "c1|ANSWER"]


def test_a_rotation_while_stopped_finishes_the_renamed_file_first(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\n")
    producer = FakeProducer()
    ship_once(tmp_path, producer)
    append(log, "c2|ENTER\n")
    log.rename(tmp_path / "queue_log.1")
    log.write_text("c1|ANSWER\nc2|ANSWER\n")
    ship_once(tmp_path, producer)
    assert producer.ids() == ["c1|ENTER", "c2|ENTER", "c1|ANSWER", "c2|ANSWER"]


def test_a_truncation_while_stopped_finishes_the_copy_first(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\n")
    producer = FakeProducer()
    ship_once(tmp_path, producer)
    append(log, "c2|ENTER\n")
    (tmp_path / "queue_log.1").write_bytes(log.read_bytes())
    log.write_text("c1|ANSWER\nc2|ANSWER\n")
    ship_once(tmp_path, producer)
    assert producer.ids() == ["c1|ENTER", "c2|ENTER", "c1|ANSWER", "c2|ANSWER"]


@pytest.mark.parametrize("rotation", ["rename", "truncate"])
def test_a_crash_just_after_a_rotation_loses_and_repeats_nothing(
    tmp_path: Path, rotation: str
) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\n")
    producer = FakeProducer()
    shipping = shipper(tmp_path, producer, crash=CrashPoints(after_rotation=True))
    shipping.start()
    shipping.step()
    if rotation == "rename":
        append(log, "c2|ENTER\n")
        log.rename(tmp_path / "queue_log.1")
        log.write_text("c1|ANSWER\nc2|ANSWER\n")
    else:
        log.write_text("c2|ENTER\nc1|ANSWER\nc2|ANSWER\n")
    with pytest.raises(Crash):
        while shipping.step():
            pass
    shipping.close()
    ship_once(tmp_path, producer)
    assert sorted(producer.ids()) == sorted(["c1|ENTER", "c2|ENTER", "c1|ANSWER", "c2|ANSWER"])
    assert len(producer.ids()) == 4


def test_the_state_file_of_another_format_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "queue_log").write_text("c1|ENTER\n")
    ship_once(tmp_path, FakeProducer())
    other = Shipper(
        tmp_path / "queue_log",
        "other",
        tmp_path / "queue_log.ship-state",
        FakeProducer(),
        toy,
        ShipMetrics(CollectorRegistry()),
    )
    with pytest.raises(UsageError, match="is of a toy log"):
        other.start()


def test_a_damaged_state_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "queue_log").write_text("c1|ENTER\n")
    (tmp_path / "queue_log.ship-state").write_text("{not json")
    with pytest.raises(SourceError, match="cannot be read"):
        shipper(tmp_path, FakeProducer()).start()


def test_a_missing_log_without_state_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        shipper(tmp_path, FakeProducer()).start()


def test_crash_points_parse_and_refuse_what_they_do_not_know() -> None:
    assert CrashPoints.parse("after-produce:3, after-rotation") == CrashPoints(
        after_produce=3, after_rotation=True
    )
    assert CrashPoints.parse(None) == CrashPoints()
    with pytest.raises(UsageError):
        CrashPoints.parse("after-lunch")


def test_a_truncation_while_stopped_without_a_copy_reads_the_file_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "queue_log"
    log.write_text("c1|ENTER\nc2|ENTER\n")
    producer = FakeProducer()
    ship_once(tmp_path, producer)
    log.write_text("c1|ANSWER\n")
    ship_once(tmp_path, producer)
    assert producer.ids() == ["c1|ENTER", "c2|ENTER", "c1|ANSWER"]
    assert "truncated without a copy" in caplog.text


def test_the_state_file_is_replaced_whole_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    (tmp_path / "queue_log").write_text("c1|ENTER\n")
    ship_once(tmp_path, FakeProducer())
    state = tmp_path / "queue_log.ship-state"
    assert state.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / ".queue_log.ship-state.tmp").exists()
    saved = json.loads(state.read_text())
    assert set(saved) == {
        "version",
        "format",
        "path",
        "device",
        "inode",
        "position",
        "head_bytes",
        "head_sha256",
        "converter",
    }


def test_the_state_file_of_another_log_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "queue_log").write_text("c1|ENTER\n")
    (tmp_path / "other_log").write_text("c1|ENTER\n")
    ship_once(tmp_path, FakeProducer())
    other = Shipper(
        tmp_path / "other_log",
        "toy",
        tmp_path / "queue_log.ship-state",
        FakeProducer(),
        toy,
        ShipMetrics(CollectorRegistry()),
    )
    with pytest.raises(UsageError, match="give another --state"):
        other.start()
