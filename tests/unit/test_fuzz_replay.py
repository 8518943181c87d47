"""Fuzzed streams through `hotline-kpi replay` into a SQLite store (issue 18).

Whatever the bytes, replay never crashes, every line is either accepted or rejected (accepted +
rejected = lines), each rejection of an invalid line has the reason the reference decoder gives
(not merely some reason), and every valid line after a bad one is still taken in.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import fuzzed_stream, reference_verdicts
from tests.support.fuzz_check import check_replay_outcome, replay_fuzzed, write_lines


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=fuzzed_stream(), batch_size=st.sampled_from([1, 3, 10_000]))
def test_replay_of_a_fuzzed_stream_loses_nothing_and_gives_the_reference_reasons(
    lines: list[bytes],
    batch_size: int,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    store = folder / "store.db"
    _path, positions, summary = replay_fuzzed(
        lines, folder, str(store), capsys, "--batch-size", str(batch_size)
    )
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT position, reason FROM rejected").fetchall()
    check_replay_outcome(lines, positions, reference_verdicts(lines), rows, summary)


def test_a_stream_of_only_bad_bytes_is_counted_line_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotline_kpi.cli import main

    lines = [b"\xff" * 3, b"[" * 5000, b'{"a": NaN}', b"\x00", b'{"event_id": "e\xff"}']
    path, _positions = write_lines(tmp_path / "bad.jsonl", lines)
    store = tmp_path / "store.db"
    assert main(["replay", str(path), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("accepted 0 events, rejected 5 (invalid_json 5)"), out
    # Replaying again resumes after the last line: nothing is counted twice.
    assert main(["replay", str(path), "--store", str(store)]) == 0
    assert capsys.readouterr().out.startswith("accepted 0 events, rejected 0")
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM rejected").fetchone() == (5,)
