"""Benchmark 1: replay of a simulated month into SQLite against merely parsing the same lines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson

from bench.data import FileShape
from bench.machine import load
from bench.process import HOTLINE, run_child


def parse_rate(path: Path, loads: Callable[[bytes], Any]) -> float:
    """Lines per second of reading ``path`` line by line and parsing each line, nothing else."""
    started = time.perf_counter()
    count = 0
    with path.open("rb") as stream:
        for line in stream:
            loads(line)
            count += 1
    return count / (time.perf_counter() - started)


def replay(path: Path, shape: FileShape, store: Path) -> dict[str, Any]:
    """``hotline-kpi replay`` into a new SQLite store, framed by two ``json.loads`` passes."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    before = load()
    json_first = parse_rate(path, json.loads)
    # The replay is a child process: what a user runs, measured from exec to exit.
    empty = store.with_name("startup.jsonl")
    empty.write_bytes(b"")
    startup = run_child([HOTLINE, "replay", str(empty), "--store", str(store) + ".startup"])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}.startup{suffix}").unlink(missing_ok=True)
    run = run_child([HOTLINE, "replay", str(path), "--store", str(store)])
    json_second = parse_rate(path, json.loads)
    orjson_rate = parse_rate(path, orjson.loads)
    msgspec_rate = parse_rate(path, msgspec.json.Decoder().decode)
    json_rate = (json_first + json_second) / 2
    events_per_s = shape.events / run.wall_s
    events_per_s_net = shape.events / max(run.wall_s - startup.wall_s, 1e-9)
    return {
        "file": str(path),
        "events": shape.events,
        "calls": shape.calls,
        "file_mib": round(shape.mib, 1),
        "load_before": before,
        "load_after": load(),
        "replay_summary": run.stdout.strip(),
        "replay_wall_s": round(run.wall_s, 2),
        "replay_cpu_s": round(run.cpu_s, 2),
        "replay_peak_rss_mb": round(run.peak_rss_mb, 1),
        "startup_wall_s": round(startup.wall_s, 2),
        "replay_events_per_s": round(events_per_s),
        "replay_events_per_s_without_startup": round(events_per_s_net),
        "replay_events_per_cpu_s": round(shape.events / run.cpu_s),
        "json_loads_lines_per_s": [round(json_first), round(json_second)],
        "orjson_lines_per_s": round(orjson_rate),
        "msgspec_lines_per_s": round(msgspec_rate),
        "ratio_replay_to_json_loads": round(events_per_s / json_rate, 3),
        "ratio_replay_to_json_loads_without_startup": round(events_per_s_net / json_rate, 3),
        "ratio_replay_to_orjson": round(events_per_s / orjson_rate, 3),
        "ratio_replay_to_msgspec": round(events_per_s / msgspec_rate, 3),
        "target": "replay >= 1.0x json.loads",
        "target_met": events_per_s >= json_rate,
    }
