"""Simulated ids are unique across runs and the same run is the same file, byte for byte.

Two simulated files replayed into one store must not collide: a repeated ``event_id`` is dropped
as a duplicate, a repeated ``call_id`` or ``ticket_id`` merges two calls into conflicts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hotline_kpi.cli import main

BASE = ("--seed", "3", "--calls-per-day", "1500", "--duplicates", "0.01", "--bad", "0.01")


def simulate(tmp_path: Path, name: str, *args: str) -> Path:
    path = tmp_path / name
    assert main(["simulate", *BASE, *args, "--output", str(path)]) == 0
    return path


def ids(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"event_id": set(), "call_id": set(), "ticket_id": set()}
    for line in path.read_bytes().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        for key, values in found.items():
            if isinstance(event.get(key), str):
                values.add(event[key])
    return found


@pytest.mark.parametrize(
    "other",
    [
        ("--start", "2026-10-02", "--days", "1"),
        ("--start", "2026-10-01", "--days", "2"),
        ("--start", "2026-10-01", "--days", "1", "--scenario", "understaffed"),
        ("--start", "2026-10-01", "--days", "1", "--shuffle"),
    ],
    ids=["start", "days", "scenario", "shuffle"],
)
def test_runs_with_the_same_seed_and_another_configuration_share_no_id(
    other: tuple[str, ...], tmp_path: Path
) -> None:
    first = ids(simulate(tmp_path, "a.jsonl", "--start", "2026-10-01", "--days", "1"))
    second = ids(simulate(tmp_path, "b.jsonl", *other))
    for key in ("event_id", "call_id", "ticket_id"):
        assert first[key] and second[key]
        assert not first[key] & second[key], f"{len(first[key] & second[key])} {key}s repeat"


def test_the_same_arguments_give_the_same_file_byte_for_byte(tmp_path: Path) -> None:
    args = ("--start", "2026-10-01", "--days", "1", "--shuffle")
    first = simulate(tmp_path, "a.jsonl", *args)
    second = simulate(tmp_path, "b.jsonl", *args)
    assert first.read_bytes() == second.read_bytes()


def test_two_runs_replayed_into_one_store_lose_no_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # v1: today's pipeline knows only the v1 event types
    one = simulate(
        tmp_path, "a.jsonl", "--start", "2026-10-01", "--days", "1", "--event-model", "v1"
    )
    two = simulate(
        tmp_path, "b.jsonl", "--start", "2026-10-02", "--days", "1", "--event-model", "v1"
    )
    store = str(tmp_path / "kpi.db")
    capsys.readouterr()
    assert main(["replay", str(one), "--store", store]) == 0
    assert main(["replay", str(two), "--store", store]) == 0
    printed = capsys.readouterr().out
    # Only the duplicates each file carries on purpose (--duplicates) are rejected as such.
    expected = [len(lines) - len(set(lines)) for lines in (_lines(one), _lines(two))]
    assert [int(n) for n in re.findall(r"duplicate (\d+)", printed)] == expected, printed
    assert "conflict" not in printed, printed


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()
