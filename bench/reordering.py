"""Counters vs export under heavy reordering: how far the live counters drift from the facts.

    .venv/bin/python bench/reordering.py [--calls-per-day N] [--batch-sizes 500,2000,10000]

Simulates October 2026 twice with the same seed, in order and with ``--shuffle`` (each call's and
each ticket's events trade arrival times, so a survey or review stamped up to three days after
its call can arrive first), replays each file into a fresh SQLite store at several batch sizes,
and compares for the month:

- the **export** (``hotline-kpi export --format json``): computed from the facts, which do not
  depend on processing order (SPEC §3), and
- the **counters**: what ``hotline_*_total`` would show. Each counter moves by the fold's deltas,
  which are exactly the fact bits it marks ``counted`` in the store, once each, when the bit is
  first true at the end of a batch (``metrics/fold.py``). Summing the stored ``counted`` bits over
  the same calls and tickets is therefore the counters' tally, without a Prometheus in the loop.

For timeliness it also predicts, from the file alone, which on-time tickets a counter must count
late: those opened in an earlier batch than their close, with an event stamped after their
``due`` processed before the close's batch (the watermark, "now", passed ``due`` while the ticket
was open). The prediction is compared with the store ticket by ticket.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
HOTLINE = str(REPO / ".venv" / "bin" / "hotline-kpi")
MONTH = "2026-10"
# Call fact bits (metrics/fold.py).
REQUESTED, ANSWERED, WITHIN, SHORT = 1 << 1, 1 << 2, 1 << 3, 1 << 5
DUE, ON_TIME = 1 << 0, 1 << 1


def hotline(*args: str) -> str:
    """Run the CLI; its standard output."""
    done = subprocess.run([HOTLINE, *args], capture_output=True, text=True, check=True)
    return done.stdout


def month_bounds_us() -> tuple[int, int]:
    """October 2026 in Asia/Shanghai, epoch microseconds."""
    zone = ZoneInfo("Asia/Shanghai")
    lo = datetime(2026, 10, 1, tzinfo=zone).timestamp()
    hi = datetime(2026, 11, 1, tzinfo=zone).timestamp()
    return int(lo * 1_000_000), int(hi * 1_000_000)


def ts_us(text: str) -> int:
    """An event's RFC 3339 time in epoch microseconds (the simulator writes milliseconds)."""
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000) * 1000


@dataclass
class Figures:
    """One store's month: export KPIs and counter-derived KPIs, with the ticket tallies."""

    export: dict[str, float | None]
    counters: dict[str, float | None]
    tickets_due: int
    on_time_fact: int
    on_time_counted: int
    late_by_counter: set[str]


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def figures(store: Path) -> Figures:
    """The month's KPIs from the export and from the counted bits of the same facts."""
    report = json.loads(hotline("export", "--month", MONTH, "--store", str(store)))
    overall = report["overall"] if "overall" in report else report["month"]["overall"]
    keys = ("timeliness", "service_level", "manual_connection_rate")
    export = {key: _value(overall[key]) for key in keys}
    lo, hi = month_bounds_us()
    db = sqlite3.connect(store)
    counted = {"requested": 0, "answered": 0, "within": 0, "short": 0}
    for (bits,) in db.execute(
        "SELECT counted FROM calls WHERE queued_at >= ? AND queued_at < ?", (lo, hi)
    ):
        counted["requested"] += bool(bits & REQUESTED)
        counted["answered"] += bool(bits & ANSWERED)
        counted["within"] += bool(bits & WITHIN)
        counted["short"] += bool(bits & SHORT)
    (watermark,) = db.execute("SELECT value FROM meta WHERE key = 'watermark'").fetchone()
    due = on_time_fact = on_time_counted = 0
    late_by_counter: set[str] = set()
    for ticket_id, due_at, closed_at, bits in db.execute(
        "SELECT ticket_id, due, closed_at, counted FROM tickets WHERE due >= ? AND due < ?",
        (lo, hi),
    ):
        settled = closed_at is not None or due_at < int(watermark)
        due += settled
        fact = closed_at is not None and closed_at <= due_at
        on_time_fact += fact
        on_time_counted += bool(bits & ON_TIME)
        if fact and not bits & ON_TIME:
            late_by_counter.add(ticket_id)
    db.close()
    counters = {
        "timeliness": ratio(on_time_counted, due),
        "service_level": ratio(counted["within"], counted["requested"] - counted["short"]),
        "manual_connection_rate": ratio(
            counted["answered"], counted["requested"] - counted["short"]
        ),
    }
    return Figures(export, counters, due, on_time_fact, on_time_counted, late_by_counter)


def _value(entry: object) -> float | None:
    if isinstance(entry, dict):
        value = entry.get("value")
        return None if value is None else float(value)
    return None if entry is None else float(entry)  # type: ignore[arg-type]


def predicted_late(path: Path, batch_size: int) -> tuple[set[str], int]:
    """On-time tickets the counters must count late at this batch size, and the largest
    distance (seconds) an event arrived behind the latest time already processed."""
    watermark: int | None = None  # at the end of the previous batch
    batch_max: int | None = None
    opened: dict[str, tuple[int, int]] = {}  # ticket -> (batch it was opened in, due)
    closes: dict[str, tuple[int, int, int | None]] = {}  # ticket -> (batch, closed_at, W before)
    behind = 0
    running: int | None = None
    with path.open("rb") as lines:
        for index, line in enumerate(lines):
            batch = index // batch_size
            if index % batch_size == 0 and index:
                watermark = batch_max
            event = json.loads(line)
            ts = ts_us(event["ts"])
            if running is not None:
                behind = max(behind, running - ts)
            running = ts if running is None else max(running, ts)
            if event["type"] == "ticket.opened":
                opened[event["ticket_id"]] = (batch, ts_us(event["due"]))
            elif event["type"] == "ticket.closed":
                closes[event["ticket_id"]] = (batch, ts, watermark)
            batch_max = ts if batch_max is None else max(batch_max, ts)
    lo, hi = month_bounds_us()
    late = set()
    # The watermark at the end of the batch before the close's batch; it only grows, so the
    # ticket was open and past due at some batch end between its opening and its close iff the
    # opening came in an earlier batch and that watermark passed due.
    for ticket_id, (close_batch, closed_at, before) in closes.items():
        if ticket_id not in opened:
            continue
        open_batch, due_at = opened[ticket_id]
        if not lo <= due_at < hi:
            continue  # the export and the tallies look at tickets due in the month only
        on_time = closed_at <= due_at
        if on_time and open_batch < close_batch and before is not None and before > due_at:
            late.add(ticket_id)
    return late, behind // 1_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-per-day", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-sizes", default="500,2000,10000")
    parser.add_argument("--data", type=Path, default=REPO / "bench" / ".data" / "reordering")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    rows = []
    for shuffle in (False, True):
        name = f"{MONTH}-c{args.calls_per_day}-s{args.seed}{'-shuffled' if shuffle else ''}"
        path = args.data / f"{name}.jsonl"
        if not path.exists():
            extra = ["--shuffle"] if shuffle else []
            hotline(
                "simulate", "--month", MONTH, "--calls-per-day", str(args.calls_per_day),
                "--seed", str(args.seed), "--output", str(path), *extra,
            )  # fmt: skip
        for size in sizes if shuffle else sizes[:1]:
            store = args.data / f"{name}-b{size}.db"
            store.unlink(missing_ok=True)
            started = time.perf_counter()
            hotline("replay", str(path), "--store", str(store), "--batch-size", str(size))
            seconds = time.perf_counter() - started
            got = figures(store)
            predicted, behind = predicted_late(path, size)
            rows.append(
                {
                    "file": path.name,
                    "shuffled": shuffle,
                    "batch_size": size,
                    "replay_s": round(seconds, 1),
                    "max_behind_s": behind,
                    "export": got.export,
                    "counters": got.counters,
                    "tickets_due": got.tickets_due,
                    "on_time_fact": got.on_time_fact,
                    "on_time_counted": got.on_time_counted,
                    "counted_late_but_on_time": len(got.late_by_counter),
                    "predicted": len(predicted),
                    "prediction_exact": predicted == got.late_by_counter,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    (args.data / f"results-c{args.calls_per_day}.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
