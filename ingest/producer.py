"""Kafka out: ``simulate --to kafka`` produces event lines keyed as SPEC §2 partitions them."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from hotline_kpi.config import KafkaCredentials, KafkaSettings
from hotline_kpi.errors import SourceError
from hotline_kpi.ingest.kafka import client_config, unreachable


def message_key(line: bytes) -> bytes | None:
    """The partitioning key of an event line (SPEC §2): ``ticket_id`` for ticket events (a
    ``ticket.opened`` may name a call too), ``agent_id`` for agent states (so that an agent's
    changes keep their order on one partition), ``call_id`` for all others."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    kind = kind if isinstance(kind, str) else ""
    field = (
        "ticket_id"
        if kind.startswith("ticket.")
        else "agent_id"
        if kind == "agent.state"
        else "call_id"
    )
    key = value.get(field)
    return key.encode() if isinstance(key, str) else None


def produce_lines(
    kafka: KafkaSettings, credentials: KafkaCredentials, lines: Iterator[tuple[int, bytes]]
) -> int:
    """Produce each line to ``kafka.topic`` keyed by :func:`message_key`; how many."""
    try:
        producer = KafkaProducer(
            acks="all", linger_ms=20, batch_size=256 * 1024, **client_config(kafka, credentials)
        )
    except (KafkaTimeoutError, KafkaError, OSError) as exc:
        raise unreachable(kafka, exc) from None
    count = 0
    try:
        for _, line in lines:
            producer.send(kafka.topic, key=message_key(line), value=line)
            count += 1
        producer.flush(timeout=120)
    except KafkaTimeoutError as exc:
        raise SourceError(f"producing to {kafka.topic} timed out: {exc}") from None
    finally:
        producer.close(timeout=10)
    return count
