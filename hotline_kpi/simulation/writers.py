"""Where a simulated stream goes: a file (or stdout), or a Kafka topic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from hotline_kpi.config import KafkaCredentials, Settings


def write_events(lines: Iterator[tuple[int, bytes]], out: IO[bytes]) -> int:
    """Write JSON lines; returns how many."""
    count = 0
    for _, line in lines:
        out.write(line)
        out.write(b"\n")
        count += 1
    return count


def produce_events(
    settings: Settings, credentials: KafkaCredentials, lines: Iterator[tuple[int, bytes]]
) -> int:
    """Produce each line to the configured topic keyed by its call (or ticket) id; how many."""
    from hotline_kpi.ingest.producer import produce_lines

    return produce_lines(settings.kafka, credentials, lines)
