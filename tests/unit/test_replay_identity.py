"""``replay`` remembers which file its position belongs to (issue 18, defect 6): a file replaced
at the same path is read again from the start with a notice, a file that only grew resumes."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hotline_kpi.cli import main
from hotline_kpi.metrics.store import SqliteStore
from tests.conftest import line, make_event
from tests.support.sql import sqlite_rows

T0 = datetime.fromisoformat("2026-10-10T10:00:00+08:00")


def events_file(count: int, prefix: str) -> bytes:
    """``count`` distinct call.offered lines whose ids start with ``prefix``."""
    return b"".join(
        line(
            make_event(
                "call.offered",
                T0 + timedelta(seconds=i),
                event_id=f"{prefix}-{i}",
                call_id=f"{prefix}-c{i}",
            )
        )
        + b"\n"
        for i in range(count)
    )


def replay(
    path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, int], str]:
    """Run ``hotline-kpi replay``; return accepted, rejections by reason, and stderr."""
    code = main(["replay", str(path), "--store", str(path.parent / "s.db"), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    accepted = int(re.search(r"accepted (\d+) events", out).group(1))  # type: ignore[union-attr]
    rejected = {reason: int(n) for reason, n in re.findall(r"(\w+) (\d+)[,)]", out)}
    return accepted, rejected, err


def notices(stderr: str) -> list[str]:
    return [text for text in stderr.splitlines() if "notice:" in text]


def test_a_file_overwritten_in_place_is_read_again_from_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(events_file(40, "old"))
    assert replay(path, capsys)[:2] == (40, {})
    inode = path.stat().st_ino
    path.write_bytes(events_file(300, "new"))  # `cp new old`: same inode, other bytes
    assert path.stat().st_ino == inode
    accepted, rejected, stderr = replay(path, capsys)
    assert (accepted, rejected) == (300, {})  # nothing skipped, no half line
    (notice,) = notices(stderr)
    assert notice == (
        f"hotline-kpi replay: notice: {path}: not resuming at byte {len(events_file(40, 'old'))}"
        ", the bytes before that position changed: the file was replaced; reading it again "
        "from the start (events already stored count as duplicates)"
    )


def test_a_file_moved_over_the_old_one_is_read_again_and_its_old_events_are_duplicates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(events_file(40, "old"))
    replay(path, capsys)
    replacement = tmp_path / "rotated.jsonl"
    replacement.write_bytes(events_file(40, "old") + events_file(5, "new"))
    os.replace(replacement, path)  # `mv`: another inode, even with the same first bytes
    accepted, rejected, stderr = replay(path, capsys)
    assert (accepted, rejected) == (5, {"duplicate": 40})
    (notice,) = notices(stderr)
    assert "another file is at that path: its device or inode changed;" in notice


def test_a_shorter_file_is_read_again_from_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(events_file(40, "old"))
    replay(path, capsys)
    path.write_bytes(events_file(3, "new"))
    accepted, rejected, stderr = replay(path, capsys)
    assert (accepted, rejected) == (3, {})
    (notice,) = notices(stderr)
    assert "the file is shorter: it was replaced;" in notice


def test_a_growing_log_resumes_after_what_was_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(events_file(40, "a"))
    replay(path, capsys, "--batch-size", "7")
    with path.open("ab") as log:
        log.write(events_file(12, "b"))
    accepted, rejected, stderr = replay(path, capsys)
    assert (accepted, rejected) == (12, {})  # only the new lines were read
    assert notices(stderr) == []
    # The identity stored with the position is that of every byte before it.
    stat = path.stat()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    store = SqliteStore(tmp_path / "s.db")
    source = f"file:{path.resolve()}"
    assert store.positions(source) == {0: stat.st_size}
    assert store.identities(source) == {0: f"{stat.st_dev}:{stat.st_ino}:{digest}"}


def test_from_start_reads_everything_again_without_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(events_file(10, "a"))
    replay(path, capsys)
    path.write_bytes(events_file(10, "a") + events_file(2, "b"))
    accepted, rejected, stderr = replay(path, capsys, "--from-start")
    assert (accepted, rejected, notices(stderr)) == (2, {"duplicate": 10}, [])
    assert replay(path, capsys)[:2] == (0, {})  # and the identity it stored lets it resume


def test_a_position_stored_without_an_identity_is_not_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(events_file(6, "a"))
    replay(path, capsys)
    store = SqliteStore(tmp_path / "s.db")
    sqlite_rows(
        store, "DELETE FROM meta WHERE key LIKE 'identity:%'"
    )  # as an older version left it
    store.close()
    accepted, rejected, stderr = replay(path, capsys)
    assert (accepted, rejected) == (0, {"duplicate": 6})
    (notice,) = notices(stderr)
    assert "the store has no identity for that position (written by an older version)" in notice


def test_a_line_still_being_written_is_left_for_the_next_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Review of issue 18: the half-written last line of a growing log was rejected and its
    # position committed, so the rest of it, appended later, was read as a second bad line.
    whole = events_file(3, "grow")
    last = line(make_event("call.offered", T0, event_id="grow-last", call_id="grow-cl")) + b"\n"
    path = tmp_path / "events.jsonl"
    path.write_bytes(whole + last[:25])
    assert replay(path, capsys)[:2] == (3, {})
    assert "left for the next replay" in caplog.text
    with path.open("ab") as log:
        log.write(last[25:])
    assert replay(path, capsys)[:2] == (1, {})
    # A complete last line without its newline is read at once.
    with path.open("ab") as log:
        log.write(line(make_event("call.offered", T0, event_id="grow-nl", call_id="grow-n")))
    assert replay(path, capsys)[:2] == (1, {})


def test_white_space_around_a_line_is_what_json_allows_nothing_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A form feed around an event is not JSON white space: replay and run must agree on it.
    event = line(make_event("call.offered", T0, event_id="ws-1", call_id="ws-c"))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b" \t" + event + b"\r\n\x0c" + event.replace(b"ws-1", b"ws-2") + b"\n")
    assert replay(path, capsys)[:2] == (1, {"invalid_json": 1})
