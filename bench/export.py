"""Benchmark 5: the monthly JSON and XLSX export of a month of about 9 million calls.

Simulating and replaying 9 million calls (about 32 million events) would take about an hour on
two cores, so the store is built by a documented shortcut: the store of a replayed simulated
month (benchmark 1's) is copied k times *within the same month* under new ids (``call_id``,
``ticket_id`` and ``event_id`` suffixed ``~k``), with every time, queue, agent and fact kept. Each
copy holds the same facts, so the export's totals are exactly k times the original's, which the
benchmark checks; the interval rollups are multiplied by k (exact, see ``scaled_store``), and
agent states are not copied (the same agents, the same state time). The copy has no
``seen_events`` rows (the export does not read them) and the agents of the original (a real
9-million-call month has more agents: more rows in the agent table of the report). Exports are
timed as ``hotline-kpi export`` child processes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.machine import load
from bench.process import HOTLINE, run_child

COPIED = {
    "calls": ("call_id", "contact_key"),
    "contacts": ("contact_key", "call_id"),
    "tickets": ("ticket_id", "call_id", "contact_key"),
    "reviews": ("event_id", "call_id"),
    "surveys": ("event_id", "call_id"),
}


def scaled_store(base: Path, copies: int, target: Path) -> tuple[Path, float]:
    """``base`` with its facts copied ``copies`` times in all (made once); seconds it took."""
    if target.exists():
        return target, 0.0
    started = time.perf_counter()
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(base) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(base, partial)
    db = sqlite3.connect(partial)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("DELETE FROM seen_events")
    for table, ids in COPIED.items():
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        # NULL stays NULL (a ticket without a contact): `NULL || '~k'` is NULL in SQLite.
        for k in range(1, copies):
            select = ", ".join(
                f"{column} || '~{k}'" if column in ids else column for column in columns
            )
            db.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT {select} FROM {table} WHERE {ids[0]} NOT LIKE '%~%'"
            )
        db.commit()
    # Each copy holds the same facts at the same times, so every rollup sum is exactly
    # ``copies`` times the original's (contacts too: a copy at the same instant as its original
    # is neither before nor after it, so the caller-key flags of each copy are the original's).
    # Agent states are not copied (the same agents): their state-time rollups stay as they are.
    db.execute("UPDATE rollups SET value = value * ? WHERE grain <> 3", (copies,))
    db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()
    partial.rename(target)
    return target, time.perf_counter() - started


def _export(store: Path, month: str, fmt: str, output: Path) -> tuple[float, float, float]:
    run = run_child(
        [
            HOTLINE,
            "export",
            "--month",
            month,
            "--format",
            fmt,
            "--store",
            str(store),
            "--output",
            str(output),
        ]
    )
    return run.wall_s, run.cpu_s, run.peak_rss_mb


def export(
    data: Path, base: Path, month: str, scales: tuple[int, ...] = (1, 5, 15)
) -> dict[str, Any]:
    """Time JSON and XLSX exports at each scale; check totals scale exactly."""
    rows: list[dict[str, Any]] = []
    base_offered: int | None = None
    before = load()
    for copies in scales:
        store, built_s = (
            (base, 0.0)
            if copies == 1
            else scaled_store(base, copies, data / f"export-x{copies}.db")
        )
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            calls = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        row: dict[str, Any] = {
            "copies": copies,
            "calls": calls,
            "build_s": round(built_s, 1),
            "store_mib": round(store.stat().st_size / 2**20),
        }
        for fmt in ("json", "xlsx"):
            output = data / f"export-x{copies}.{fmt}"
            wall, cpu, rss = _export(store, month, fmt, output)
            row[f"{fmt}_s"] = round(wall, 2)
            row[f"{fmt}_cpu_s"] = round(cpu, 2)
            row[f"{fmt}_peak_rss_mb"] = round(rss, 1)
        report = json.loads((data / f"export-x{copies}.json").read_text())
        offered = report.get("volumes", {}).get("overall", {}).get("offered")
        row["offered_in_report"] = offered
        if copies == 1:
            base_offered = offered
        elif base_offered is not None and offered is not None:
            row["totals_scale_exactly"] = offered == base_offered * copies
        row["agents_in_report"] = len(report.get("agents", []))
        rows.append(row)
    nine = 9_000_000
    last = rows[-1]
    per_call = {fmt: last[f"{fmt}_s"] / last["calls"] for fmt in ("json", "xlsx")}
    return {
        "month": month,
        "scales": rows,
        "estimate_9m_calls_s": {fmt: round(per_call[fmt] * nine, 1) for fmt in per_call},
        "load_before": before,
        "load_after": load(),
        "target": "9-million-call month exported in < 30 s",
    }
