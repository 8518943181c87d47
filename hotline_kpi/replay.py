"""``hotline-kpi replay FILE|-``: a JSONL file through the same pipeline into a store.

The position after each committed batch is stored with it, so an interrupted replay resumes
where it stopped; replaying a file again changes nothing, since every event is then a duplicate.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hotline_kpi.config import Settings
from hotline_kpi.errors import UsageError
from hotline_kpi.ingest.decode import Record
from hotline_kpi.metrics.store import open_store
from hotline_kpi.pipeline import Pipeline, Tally, thresholds_of


def file_batches(
    stream: BinaryIO, start: int, batch_size: int
) -> Iterator[tuple[list[Record], int]]:
    """Batches of non-empty lines as records (partition 0, offset after the line)."""
    position = start
    batch: list[Record] = []
    for line in stream:
        position += len(line)
        stripped = line.strip()
        if stripped:
            batch.append((stripped, 0, position))
        if len(batch) >= batch_size:
            yield batch, position
            batch = []
    if batch:
        yield batch, position


def replay_stream(
    pipeline: Pipeline, stream: BinaryIO, source: str, start: int, batch_size: int
) -> Tally:
    """Feed ``stream`` (already positioned at ``start``) through ``pipeline``."""
    tally = Tally()
    for records, position in file_batches(stream, start, batch_size):
        pipeline.process(records, source, {0: position}, tally)
    return tally


def summary(tally: Tally) -> str:
    """One line: accepted, rejected, and the rejections by reason."""
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(tally.rejected.items()))
    line = f"accepted {tally.accepted} events, rejected {tally.total_rejected}"
    return f"{line} ({reasons})" if reasons else line


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Replay a file (or stdin) into the configured store and print the tally."""
    if args.batch_size <= 0:
        raise UsageError("--batch-size must be positive")
    if args.file != "-":
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"no such file: {args.file}")
    store = open_store(settings.store)
    try:
        pipeline = Pipeline(store, thresholds_of(settings))
        if args.file == "-":
            tally = replay_stream(pipeline, sys.stdin.buffer, "stdin", 0, args.batch_size)
        else:
            source = f"file:{path.resolve()}"
            start = 0 if args.from_start else store.positions(source).get(0, 0)
            with path.open("rb") as stream:
                if start > path.stat().st_size:
                    start = 0  # the file was replaced by a shorter one: read it all again
                stream.seek(start)
                tally = replay_stream(pipeline, stream, source, start, args.batch_size)
    finally:
        store.close()
    print(summary(tally))
    return 0
