"""Fuzzed bytes through a real Kafka topic into ``hotline-kpi run`` (SPEC §2: "a rejected event
never stops the stream and never disappears silently").

Valid simulated events are interleaved with mutated ones — bytes flipped, ``\\xff`` inserted,
lines cut short, 2000 levels of nesting, ``NaN``, U+0000 and broken UTF-8 in ids, empty
messages and tombstones — each bad message followed by valid ones on its partition. The mutations
are deterministic (a seeded ``random.Random``, no hypothesis), so a failure replays exactly. The
consumer must not crash, every message must be accepted or rejected exactly once, no valid event
may be rejected (so every valid event after a bad one was counted), and every rejection must reach
the dead-letter topic once, whatever bytes it carried.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from kafka import KafkaProducer

from hotline_kpi.ingest.producer import message_key
from tests.support.consumers import (
    Consumer,
    assert_published_once,
    cli,
    killed_at_exit,
    read_topic,
    rejected_origins,
    wait_consumed,
)
from tests.support.services import KafkaBroker, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def consumers() -> Iterator[list[Consumer]]:
    with killed_at_exit() as started:
        yield started


SEED = 18
VALID = 300  # valid simulated events produced
DEEP = 2000  # nesting levels (SPEC §2 allows 64)
ID_FIELDS = ("event_id", "call_id", "ticket_id", "contact_id")


@dataclass(frozen=True)
class Message:
    """One message to produce, and what it is."""

    key: bytes | None
    value: bytes | None  # None: a tombstone
    kind: str  # "valid", or the mutation that made it
    reason: str | None = None  # the rejection reason SPEC §2 prescribes, when it is certain


def _renamed(line: bytes, serial: int) -> dict[str, object]:
    """The event of ``line`` with ids of its own, so that a mutant that stays valid can neither
    duplicate nor conflict with a valid event."""
    event: dict[str, object] = json.loads(line)
    for field in ID_FIELDS:
        if isinstance(event.get(field), str):
            event[field] = f"m{serial}-{event[field]}"
    return event


def _dump(event: dict[str, object]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def _with_field(event: dict[str, object], raw: bytes) -> bytes:
    """``event`` with an unknown field whose value is ``raw`` JSON text (which may be invalid)."""
    return _dump(event)[:-1] + b',"extra":' + raw + b"}"


def mutants(source: bytes, serial: int, rng: random.Random) -> Iterator[Message]:
    """The mutations of one source line: each kind in turn, deterministic for ``rng``."""
    event = _renamed(source, serial)
    raw = _dump(event)
    kind = serial % 14
    at = rng.randrange(1, len(raw) - 1)
    if kind == 0:
        flipped = raw[:at] + bytes([raw[at] ^ rng.randrange(1, 256)]) + raw[at + 1 :]
        yield Message(None, flipped, "flip")
    elif kind == 1:
        yield Message(None, raw[:at] + b"\xff" + raw[at:], "insert \\xff", "invalid_json")
    elif kind == 2:
        yield Message(None, raw[:at], "truncate", "invalid_json")
    elif kind == 3:
        yield Message(None, b"[" * DEEP + b"]" * DEEP, "nested array", "invalid_json")
    elif kind == 4:
        deep = b'{"a":' * DEEP + b"1" + b"}" * DEEP
        yield Message(None, _with_field(event, deep), "nested in unknown field", "invalid_json")
    elif kind == 5:
        yield Message(None, _with_field(event, b"NaN"), "NaN", "invalid_json")
        yield Message(None, _with_field(event, b"-Infinity"), "-Infinity", "invalid_json")
    elif kind == 6:
        nul = {**event, "event_id": f"m{serial}-a\u0000b"}
        yield Message(None, _dump(nul), "escaped U+0000 in event_id", "out_of_range")
        raw_nul = raw.replace(b'"m%d-' % serial, b'"m%d-\x00' % serial, 1)
        yield Message(None, raw_nul, "raw U+0000 in an id", "invalid_json")
    elif kind == 7:
        broken = raw.replace(b'"m%d-' % serial, b'"m%d-\xc3\x28' % serial, 1)
        yield Message(None, broken, "invalid UTF-8 in an id", "invalid_json")
        overlong = raw.replace(b'"m%d-' % serial, b'"m%d-\xc0\xaf' % serial, 1)
        yield Message(None, overlong, "overlong UTF-8 in an id", "invalid_json")
    elif kind == 8:
        surrogate = raw.replace(b'"m%d-' % serial, b'"m%d-\\ud800' % serial, 1)
        yield Message(None, surrogate, "lone surrogate escape in an id")
    elif kind == 9:
        yield Message(None, b"", "empty", "invalid_json")
        yield Message(b"tombstone", None, "tombstone", "invalid_json")
    elif kind == 10:
        yield Message(None, b"\xef\xbb\xbf" + raw, "byte order mark")
    elif kind == 11:
        yield Message(None, _with_field(event, b"1e400"), "1e400")
    elif kind == 12:
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        yield Message(None, noise, "random bytes")
    else:
        yield Message(None, b'"just a string"', "a JSON string", "not_an_object")
        yield Message(None, b"null", "null", "not_an_object")


def fuzzed_stream(lines: list[bytes]) -> list[Message]:
    """The first ``VALID`` lines, valid, with mutants of the others before every other one; each
    mutant is keyed like the valid line after it, so that it lands just before it."""
    rng = random.Random(SEED)
    valid, sources = lines[:VALID], lines[VALID:]
    stream: list[Message] = []
    for i, line in enumerate(valid):
        key = message_key(line)
        if i % 2 == 0 and sources:
            for mutant in mutants(sources[(i // 2) % len(sources)], i // 2, rng):
                stream.append(mutant if mutant.key is not None else replace(mutant, key=key))
        stream.append(Message(key, line, "valid"))
    return stream


def produce(bootstrap: str, topic: str, stream: list[Message]) -> list[tuple[int, int]]:
    """Produce ``stream`` in order; the (partition, offset) of each message."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=m.key, value=m.value) for m in stream]
        producer.flush(timeout=60)
        return [(meta.partition, meta.offset) for meta in (f.get(timeout=30) for f in futures)]
    finally:
        producer.close(timeout=10)


def rejections(store: str) -> dict[tuple[int, int], str]:
    """The reason of each rejected message, by (partition, offset)."""
    con = sqlite3.connect(store, timeout=10)
    try:
        rows = con.execute("SELECT partition, position, reason FROM rejected").fetchall()
    finally:
        con.close()
    return {(partition, position - 1): reason for partition, position, reason in rows}


def test_fuzzed_messages_never_crash_run_and_each_is_accepted_or_rejected_once(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
) -> None:
    day = ("--start", "2026-10-31", "--days", "1", "--calls-per-day", "150")
    cli("simulate", *day, "--seed", str(SEED), "--output", "valid.jsonl", cwd=tmp_path)
    lines = (tmp_path / "valid.jsonl").read_bytes().splitlines()
    assert len(lines) > VALID + 100, "the simulator gave too few events to fuzz"
    stream = fuzzed_stream(lines)
    bad = [m for m in stream if m.kind != "valid"]
    assert len(bad) > 150 and len(stream) > 450

    topic = kafka_topic(partitions=3)
    dead = kafka_topic(partitions=1, prefix="dead")
    bootstrap = kafka_broker.bootstrap
    origins = produce(bootstrap, topic, stream)
    store = str(tmp_path / "fuzz.db")
    consumer = Consumer(tmp_path, bootstrap, topic, store, "--dead-letter-topic", dead)
    consumers.append(consumer)
    # Consumer.alive() fails the wait, with the log's tail, as soon as the process dies.
    wait_consumed(store, bootstrap, topic, [consumer], timeout=120)

    figures = consumer.metrics()
    accepted = figures.get("hotline_events_total", 0.0)
    rejected = figures.get("hotline_events_rejected_total", 0.0)
    assert accepted + rejected == len(stream)
    reasons = rejections(store)
    assert len(reasons) == rejected
    kinds = dict(zip(origins, stream, strict=True))
    wrongly = {o: (kinds[o].value, r) for o, r in reasons.items() if kinds[o].kind == "valid"}
    assert not wrongly, f"valid events were rejected: {wrongly}"
    # With no valid event rejected, each one — all of them after a bad message — was accepted.
    assert accepted >= VALID
    # Where SPEC §2 leaves no doubt, the reason too: {mutation: (expected, got)}.
    wrong_reasons = {
        m.kind: (m.reason, reasons.get(o))
        for o, m in kinds.items()
        if m.reason is not None and reasons.get(o) != m.reason
    }
    assert not wrong_reasons

    wait_until(
        lambda: consumer.alive() and consumer.metrics().get("hotline_dead_letter_outbox") == 0,
        timeout=60,
        message="the rejections did not all reach the dead-letter topic",
    )
    code, elapsed = consumer.stop_timed()
    output = Path(consumer.log.name).read_text()
    assert code == 0 and "Traceback" not in output, output[-3000:]
    assert elapsed < 10, f"run took {elapsed:.1f} s to stop"
    assert_published_once(read_topic(bootstrap, dead), rejected_origins(store))
