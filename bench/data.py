"""Simulated event files for the benchmarks, made once and kept in ``bench/.data/`` (gitignored)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from bench.process import HOTLINE, run_child


def month_file(data: Path, calls_per_day: int, seed: int, month: str = "2026-10") -> Path:
    """``hotline-kpi simulate`` of a whole month (about 3.55 events per call), made once."""
    path = data / f"month-{month}-c{calls_per_day}-s{seed}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        run_child(
            [
                HOTLINE,
                "simulate",
                "--month",
                month,
                "--calls-per-day",
                str(calls_per_day),
                "--seed",
                str(seed),
                "--output",
                str(partial),
            ]
        )
        partial.rename(path)
    return path


def day_file(data: Path, calls_per_day: int, seed: int, days: float = 1.0) -> Path:
    """``hotline-kpi simulate`` of ``days`` days from 2026-10-01, made once."""
    path = data / f"days-2026-10-01-d{days:g}-c{calls_per_day}-s{seed}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        run_child(
            [
                HOTLINE,
                "simulate",
                "--start",
                "2026-10-01",
                "--days",
                f"{days:g}",
                "--calls-per-day",
                str(calls_per_day),
                "--seed",
                str(seed),
                "--output",
                str(partial),
            ]
        )
        partial.rename(path)
    return path


def prefix_file(source: Path, lines: int) -> Path:
    """The first ``lines`` lines of ``source``, as a file of its own (made once)."""
    path = source.with_name(f"{source.stem}-first{lines}.jsonl")
    if not path.exists():
        partial = path.with_suffix(".partial")
        with source.open("rb") as src, partial.open("wb") as dst:
            dst.writelines(itertools.islice(src, lines))
        partial.rename(path)
    return path


@dataclass(frozen=True, slots=True)
class FileShape:
    """What a file holds: events, calls, and the most calls open at one moment."""

    events: int
    calls: int
    queued: int
    max_open_calls: int
    mib: float


def shape(path: Path) -> FileShape:
    """Count events and calls; a call is open from its first to its last event (event time)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    events = queued = 0
    with path.open("rb") as stream:
        for line in stream:
            event = orjson.loads(line)
            events += 1
            if event.get("type") == "call.queued":
                queued += 1
            call = event.get("call_id")
            if not call or not event.get("type", "").startswith("call."):
                continue
            ts = _utc_key(event["ts"])
            if call not in first or ts < first[call]:
                first[call] = ts
            if call not in last or ts > last[call]:
                last[call] = ts
    sweep = sorted(
        [(ts, 1) for ts in first.values()] + [(ts, -1) for ts in last.values()],
    )
    open_now = max_open = 0
    for _, step in sweep:
        open_now += step
        max_open = max(max_open, open_now)
    return FileShape(events, len(first), queued, max_open, path.stat().st_size / 2**20)


def _utc_key(ts: str) -> float:
    """Epoch seconds of an RFC 3339 timestamp (the simulator writes ``Z`` and ``+08:00``)."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
