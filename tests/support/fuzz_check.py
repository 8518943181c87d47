"""The checks every fuzzed replay must pass, whatever store it went into."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.fuzz import Verdict

# A valid line may still be rejected later on, for what the decoder cannot know alone.
LATER_REASONS = {"future_timestamp", "duplicate", "conflict"}


def write_lines(path: Path, lines: Sequence[bytes]) -> tuple[Path, list[int]]:
    """Write ``lines`` as a JSONL file; the position replay records for each (after its line)."""
    positions = []
    offset = 0
    with path.open("wb") as out:
        for raw in lines:
            out.write(raw + b"\n")
            offset += len(raw) + 1
            positions.append(offset)
    return path, positions


def replay_fuzzed(
    lines: Sequence[bytes],
    folder: Path,
    store: str,
    capsys: pytest.CaptureFixture[str],
    *options: str,
) -> tuple[Path, list[int], str]:
    """Replay ``lines`` (written to ``folder``) into ``store`` with ``hotline-kpi replay``, which
    must end well: the file replayed, each line's position, and what replay printed."""
    from hotline_kpi.cli import main

    path, positions = write_lines(folder / "events.jsonl", lines)
    code = main(["replay", str(path), "--store", store, *options])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Traceback" not in out.err
    return path, positions, out.out


def check_replay_outcome(
    lines: Sequence[bytes],
    positions: Sequence[int],
    verdicts: Sequence[Verdict],
    rejected_rows: Sequence[tuple[Any, ...]],
    summary: str,
) -> None:
    """accepted + rejected = lines; each invalid line rejected with the reference's reason;
    each valid line accepted or rejected only for a reason the decoder cannot know alone."""
    match = re.match(r"accepted (\d+) events, rejected (\d+)", summary)
    assert match is not None, summary
    accepted, rejected = int(match[1]), int(match[2])
    assert accepted + rejected == len(lines), (summary, len(lines))
    assert len(rejected_rows) == rejected

    reasons = {int(position): reason for position, reason in rejected_rows}
    assert len(reasons) == len(rejected_rows), "two rejections for one line"
    for raw, position, verdict in zip(lines, positions, verdicts, strict=True):
        got = reasons.get(position)
        if verdict.reason is None:
            assert got is None or got in LATER_REASONS, (raw, got)
        else:
            assert got == verdict.reason, (raw, got, verdict.reason)
