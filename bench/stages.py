"""Where a replay's time goes, per stage, without a profiler's per-call overhead.

    .venv/bin/python bench/stages.py FILE [--rounds N] [--batch-size N] [--metrics]

Replays ``FILE`` in this process into a new SQLite store (as ``hotline-kpi replay`` does, after
start-up; with ``--metrics``, moving the counters of ``run`` too), with a timer around each
stage of the pipeline: reading the file, decoding, the dedup read, loading stored facts, the
fold, the rollups' deltas, the writes, the commit, the counters, and the garbage collector
(timed through ``gc.callbacks``, inside the other stages). What is left is the pipeline's own
bookkeeping.
Prints µs per event of each stage, the median of ``--rounds`` replays.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotline_kpi import pipeline as pipeline_module
from hotline_kpi import replay as replay_module
from hotline_kpi.config import Settings
from hotline_kpi.live import consume, open_live
from hotline_kpi.metrics import exposition as exposition_module
from hotline_kpi.metrics import store as store_module

spent: dict[str, float] = defaultdict(float)


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started

    return wrapper


def _instrument() -> None:
    pipeline_module.decode_batch = _timed("decode", pipeline_module.decode_batch)  # type: ignore[assignment]
    pipeline_module.fold_batch = _timed("fold", pipeline_module.fold_batch)  # type: ignore[assignment]
    if hasattr(pipeline_module, "batch_delta"):  # the interval rollups (issue 17)
        pipeline_module.batch_delta = _timed("rollups", pipeline_module.batch_delta)
    sql = store_module.SqlStore
    sqlite = store_module.SqliteStore
    sqlite.seen = _timed("dedup read", sqlite.seen)  # type: ignore[method-assign]
    sql.load = _timed("load facts", sql.load)  # type: ignore[method-assign]
    sql.load_contacts = _timed("load contacts", sql.load_contacts)  # type: ignore[method-assign]
    sql.overdue_tickets = _timed("overdue tickets", sql.overdue_tickets)  # type: ignore[method-assign]
    sql.write = _timed("write", sql.write)  # type: ignore[method-assign]
    transaction = store_module._SqliteTransaction
    transaction.__exit__ = _timed("commit", transaction.__exit__)  # type: ignore[method-assign]
    source = replay_module.FileSource
    source.poll = _timed("read file", source.poll)  # type: ignore[method-assign]
    metrics = exposition_module.HotlineMetrics
    metrics.apply = _timed("metrics", metrics.apply)  # type: ignore[method-assign]
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            spent["gc"] += time.perf_counter() - gc_started[0]

    gc.callbacks.append(on_gc)


def main() -> None:
    """Replay the file ``--rounds`` times and print the median µs per event of each stage."""
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--metrics", action="store_true", help="with the counters of run (/metrics on a free port)"
    )
    args = parser.parse_args()
    with args.file.open("rb") as stream:
        events = sum(1 for line in stream if line.strip())
    _instrument()
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            spent.clear()
            store = str(Path(tmp) / f"stages-{round_}.db")
            settings = Settings(store=store, metrics={"address": "127.0.0.1", "port": 0})
            live = open_live(settings, serve_metrics=args.metrics, caller_keys=None)
            try:
                with args.file.open("rb") as stream:
                    fingerprint = replay_module.Fingerprint.of(stream)
                    source = replay_module.FileSource(
                        stream, "file:bench", 0, args.batch_size, fingerprint
                    )
                    started = time.perf_counter()
                    consume(live.pipeline, source)
                    total = time.perf_counter() - started
            finally:
                live.close()
            figures = dict(spent)
            figures["other"] = total - sum(figures.values())
            figures["total"] = total
            rounds.append(figures)
    names = list(rounds[0])
    print(f"{events} events, median of {args.rounds} in-process replays, µs per event:")
    for name in names:
        value = statistics.median(r.get(name, 0.0) for r in rounds) / events * 1e6
        print(f"  {name:>16}: {value:6.2f}")


if __name__ == "__main__":
    main()
