"""A pipeline that crashes mid-batch and resumes from the store ends exactly where an
uninterrupted run does (issue 13; bytewax's ``pytests/test_recovery.py`` is the model).

A simulated stream (duplicates, shuffled calls, malformed lines) is dealt over two partitions
and read by a scripted source that crashes: while a batch is being read (its lines are lost with
the process), and between the store's commit and the source's acknowledgement. Each run is
checked exactly: after a crash the store holds every batch committed before it and nothing of
the one in hand; after the resume the monthly exports are byte for byte those of one run
without a crash, and so are the stored rejections and positions.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hotline_kpi.cli import main
from hotline_kpi.config import Settings, load_settings
from hotline_kpi.live import consume, open_live
from hotline_kpi.pipeline import Totals
from tests.support.sources import ABORT, Abort, Script, ScriptedSource, SourceCrashed

MONTHS = ("2026-10", "2026-11")
BATCH = 40
SIMULATE = [
    "simulate", "--start", "2026-10-31", "--days", "1", "--calls-per-day", "120",
    "--seed", "13", "--duplicates", "0.03", "--shuffle", "--bad", "0.01",
    "--event-model", "v1",  # today's pipeline knows only the v1 event types
]  # fmt: skip


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, bytes]]:
    """The simulated day's lines, each dealt to partition 0 or 1."""
    events = tmp_path_factory.mktemp("crash") / "day.jsonl"
    assert main([*SIMULATE, "--output", str(events)]) == 0
    dealer = random.Random(5)
    dealt = [(dealer.randrange(2), line) for line in events.read_bytes().splitlines() if line]
    assert len(dealt) > 6 * BATCH, "too few lines to crash in the middle of the stream"
    return dealt


def settings_for(store: Path) -> Settings:
    return load_settings(None, store=str(store))


def run(settings: Settings, script: Script) -> Totals:
    """One process: the live pipeline fed by a source resumed from the store's positions."""
    live = open_live(settings, serve_metrics=False)
    try:
        source = ScriptedSource(script, live.store.positions("scripted"))
        return consume(live.pipeline, source)
    finally:
        live.close()


def stored(settings: Settings) -> tuple[dict[int, int], dict[str, int]]:
    live = open_live(settings, serve_metrics=False)
    try:
        return live.store.positions("scripted"), live.store.rejection_counts()
    finally:
        live.close()


def exports(settings: Settings, folder: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for month in MONTHS:
        path = folder / f"export-{month}.json"
        argv = ["export", "--month", month, "--output", str(path), "--store", settings.store]
        assert main(argv) == 0
        out[month] = path.read_bytes()
    return out


def positions_after(items: list[tuple[int, bytes] | Abort], count: int) -> dict[int, int]:
    """Per partition, how many of the first ``count`` lines it has."""
    positions: dict[int, int] = {}
    for item in [i for i in items if not isinstance(i, Abort)][:count]:
        positions[item[0]] = positions.get(item[0], 0) + 1
    return positions


@pytest.fixture(scope="module")
def uninterrupted(
    lines: list[tuple[int, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, bytes], tuple[dict[int, int], dict[str, int]], Totals]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    settings = settings_for(folder / "store.db")
    totals = run(settings, Script(list(lines), BATCH))
    return exports(settings, folder), stored(settings), totals


def test_a_crash_mid_batch_loses_the_batch_in_hand_and_the_resume_ends_exact(
    lines: list[tuple[int, bytes]],
    uninterrupted: tuple[dict[str, bytes], tuple[dict[int, int], dict[str, int]], Totals],
    tmp_path: Path,
) -> None:
    # Aborts 17 lines into the 4th batch; the resumed source reads from the stored positions
    # (the 4th batch again, whole) and aborts 5 lines into the 6th.
    first = 3 * BATCH + 17
    second = 5 * BATCH + 5
    items: list[tuple[int, bytes] | Abort] = [*lines[:first], ABORT(), *lines[first:]]
    items.insert(second + 1, ABORT())
    script = Script(items, BATCH)
    settings = settings_for(tmp_path / "store.db")

    with pytest.raises(SourceCrashed, match="17 lines in hand"):
        run(settings, script)
    # Exactly the three batches before the crash are stored; nothing of the fourth.
    assert stored(settings)[0] == positions_after(items, 3 * BATCH)

    with pytest.raises(SourceCrashed, match="5 lines in hand"):
        run(settings, script)
    # The resume re-read the lost lines: whole batches from the stored positions, then the crash.
    assert stored(settings)[0] == positions_after(items, 5 * BATCH)

    resumed = run(settings, script)
    expected_exports, expected_store, expected_totals = uninterrupted
    assert exports(settings, tmp_path) == expected_exports
    assert stored(settings) == expected_store
    assert resumed.accepted < expected_totals.accepted  # the rest, not everything again


def test_a_crash_after_the_commit_and_before_the_acknowledgement_counts_nothing_twice(
    lines: list[tuple[int, bytes]],
    uninterrupted: tuple[dict[str, bytes], tuple[dict[int, int], dict[str, int]], Totals],
    tmp_path: Path,
) -> None:
    script = Script(list(lines), BATCH, crash_on_commit={2, 6})
    settings = settings_for(tmp_path / "store.db")
    with pytest.raises(SourceCrashed, match="batch 2"):
        run(settings, script)
    # The store committed the batch the source never acknowledged: it resumes after it.
    assert stored(settings)[0] == positions_after(script.items, 2 * BATCH)
    with pytest.raises(SourceCrashed, match="batch 6"):
        run(settings, script)
    assert stored(settings)[0] == positions_after(script.items, 6 * BATCH)
    totals = [run(settings, script)]
    expected_exports, expected_store, expected_totals = uninterrupted
    assert exports(settings, tmp_path) == expected_exports
    assert stored(settings) == expected_store
    assert totals[0].accepted < expected_totals.accepted
