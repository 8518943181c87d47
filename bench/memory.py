"""Benchmark 4: peak RSS of ``hotline-kpi replay`` against total events at a fixed traffic rate
(so a fixed number of calls open at once), and against the number of calls open at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.data import day_file, prefix_file, shape
from bench.machine import load
from bench.process import HOTLINE, run_child


def _replay_rss(path: Path, store: Path) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    info = shape(path)
    run = run_child([HOTLINE, "replay", str(path), "--store", str(store)])
    return {
        "file": path.name,
        "events": info.events,
        "calls": info.calls,
        "max_open_calls": info.max_open_calls,
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "wall_s": round(run.wall_s, 1),
        "events_per_s": round(info.events / run.wall_s),
        "store_mib": round(store.stat().st_size / 2**20, 1),
    }


def memory(
    data: Path,
    month: Path,
    seed: int,
    *,
    prefixes: tuple[int, ...] = (125_000, 500_000),
    rates: tuple[int, ...] = (5_000, 20_000, 80_000, 160_000),
) -> dict[str, Any]:
    """Two series: prefixes of the month file (same rate, more history), and one simulated day
    at several rates (more calls open at once)."""
    store = data / "bench-memory.db"
    before = load()
    by_total = [_replay_rss(prefix_file(month, n), store) for n in prefixes]
    by_total.append(_replay_rss(month, store))
    by_open = [_replay_rss(day_file(data, rate, seed), store) for rate in rates]
    low, high = by_total[0], by_total[-1]
    growth = high["peak_rss_mb"] - low["peak_rss_mb"]
    return {
        "by_total_events": by_total,
        "by_open_calls": by_open,
        "rss_growth_mb_over_total_events": round(growth, 1),
        "rss_growth_mb_per_million_events": round(
            growth / ((high["events"] - low["events"]) / 1e6), 2
        ),
        "load_before": before,
        "load_after": load(),
        "target": "peak RSS flat in total events at fixed open calls",
    }
