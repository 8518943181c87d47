"""The dead-letter outbox publisher without a broker: fake Kafka clients and a manual clock.

What it protects (README, issue 18): a missing dead-letter topic is reported once and looked up
again; nothing ever waits on an acknowledgement in the consume loop; a row in flight is not sent
twice; a failed send is retried; a topic deleted under the publisher gets a new producer; a stop
waits a bounded time even for sends that never complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError
from kafka.future import Future
from prometheus_client import CollectorRegistry

from hotline_kpi.ingest import dead_letters as kafka_module
from hotline_kpi.ingest.dead_letters import (
    DEAD_LETTER_RECHECK_S,
    DEAD_LETTER_STALL_S,
    DeadLetterPublisher,
)

TOPIC = "hotline-dead"


class Broker:
    """What the fakes share: whether the topic exists, and every producer made."""

    def __init__(self) -> None:
        self.topic_exists = False
        self.producers: list[FakeProducer] = []


class FakeAdmin:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.closed = False

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        if self.broker.topic_exists:
            return [{"name": topics[0], "error_code": 0, "partitions": [{"partition_index": 0}]}]
        return [
            {"name": topics[0], "error_code": UnknownTopicOrPartitionError.errno, "partitions": []}
        ]

    def close(self) -> None:
        self.closed = True


class FakeFuture(Future):  # type: ignore[misc]  # untyped library
    """A send's future, completed by the test; ``get`` as kafka-python's record future."""

    def get(self, timeout: float) -> Any:
        if not self.is_done:
            time.sleep(timeout)
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
        if self.failed():
            raise self.exception
        return self.value


class FakeProducer:
    """Futures the test completes (or never does); close() raises as kafka-python's does when
    a batch is still unacknowledged."""

    def __init__(self, broker: Broker) -> None:
        self.sent: list[tuple[bytes, dict[str, bytes], FakeFuture]] = []
        self.closed = False
        self._sender = SimpleNamespace(force_close=self._force, join=lambda timeout: None)
        self.forced = False

    def send(self, topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> FakeFuture:
        assert topic == TOPIC
        future = FakeFuture()
        self.sent.append((value, dict(headers), future))
        return future

    def ack_all(self) -> None:
        for _, _, future in self.sent:
            if not future.is_done:
                future.success(None)

    def close(self, timeout: float) -> None:
        if any(not future.is_done for _, _, future in self.sent):
            raise KafkaTimeoutError("Timeout waiting for future")
        self.closed = True

    def _force(self) -> None:
        self.forced = self.closed = True


class Outbox:
    """The store's side: the rejected rows and which were dead-lettered."""

    def __init__(self, rows: int) -> None:
        self.rows = dict.fromkeys(range(1, rows + 1), False)

    def add(self, count: int) -> None:
        start = len(self.rows) + 1
        self.rows.update(dict.fromkeys(range(start, start + count), False))

    def undelivered_rejections(self, limit: int) -> list[tuple[Any, ...]]:
        ids = [i for i, done in sorted(self.rows.items()) if not done][:limit]
        return [(i, "kafka:calls", 0, i, "invalid_json", None, None, "not JSON", "x") for i in ids]

    def mark_dead_lettered(self, ids: list[int]) -> None:
        for i in ids:
            assert not self.rows[i], f"row {i} marked twice"
            self.rows[i] = True

    def undelivered_count(self) -> int:
        return sum(not done for done in self.rows.values())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    shared = Broker()

    def producer(**config: Any) -> FakeProducer:
        assert config["max_block_ms"] <= 1000, "send() must not block the stream for long"
        made = FakeProducer(shared)
        shared.producers.append(made)
        return made

    monkeypatch.setattr(kafka_module, "KafkaProducer", producer)
    monkeypatch.setattr(kafka_module, "KafkaAdminClient", lambda **config: FakeAdmin(shared))
    yield shared


def publisher(store: Outbox, clock: Clock) -> tuple[DeadLetterPublisher, CollectorRegistry]:
    registry = CollectorRegistry()
    return DeadLetterPublisher(TOPIC, store, registry, {}, clock=clock), registry


def gauge(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("hotline_dead_letter_outbox")


def test_a_missing_topic_is_reported_once_and_its_outbox_sent_once_it_exists(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    store, clock = Outbox(3), Clock()
    with caplog.at_level(logging.INFO, logger="hotline_kpi.ingest.dead_letters"):
        letters, registry = publisher(store, clock)
        for _ in range(5):
            letters.flush()
            clock.now += 1
    missing = [r for r in caplog.records if "does not exist" in r.getMessage()]
    assert len(missing) == 1 and f"'{TOPIC}'" in missing[0].getMessage()
    assert broker.producers == [], "nothing is sent to a missing topic"
    assert gauge(registry) == 3

    broker.topic_exists = True
    clock.now += DEAD_LETTER_RECHECK_S
    letters.flush()
    (producer,) = broker.producers
    assert len(producer.sent) == 3
    letters.flush()  # still in flight: not sent again
    assert len(producer.sent) == 3
    producer.ack_all()
    letters.flush()
    assert all(store.rows.values()) and len(producer.sent) == 3
    clock.now += 10
    letters.flush()
    assert gauge(registry) == 0


def test_flush_never_waits_for_acknowledgements_and_a_failed_send_is_retried(
    broker: Broker,
) -> None:
    broker.topic_exists = True
    store, clock = Outbox(2), Clock()
    letters, registry = publisher(store, clock)
    started = time.monotonic()
    letters.flush()
    letters.flush()
    assert time.monotonic() - started < 0.5
    (producer,) = broker.producers
    first, second = producer.sent[0][2], producer.sent[1][2]
    first.success(None)
    second.failure(KafkaTimeoutError("not acknowledged"))
    letters.flush()  # marks the first, sends the second again
    assert store.rows == {1: True, 2: False}
    assert len(producer.sent) == 3 and producer.sent[2][1]["origin_offset"] == b"1"
    assert registry.get_sample_value("hotline_dead_letter_failures_total") == 1
    producer.ack_all()
    letters.flush()
    assert all(store.rows.values())


def test_a_topic_deleted_under_the_publisher_gets_a_new_producer_once_it_is_back(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.topic_exists = True
    store, clock = Outbox(2), Clock()
    letters, _ = publisher(store, clock)
    letters.flush()
    stuck = broker.producers[0]
    broker.topic_exists = False  # deleted: the sends never complete
    with caplog.at_level(logging.INFO, logger="hotline_kpi.ingest.dead_letters"):
        clock.now += DEAD_LETTER_STALL_S + 1
        letters.flush()
    assert stuck.closed and stuck.forced
    assert sum("does not exist" in r.getMessage() for r in caplog.records) == 1
    broker.topic_exists = True
    clock.now += DEAD_LETTER_RECHECK_S
    letters.flush()
    fresh = broker.producers[1]
    assert len(fresh.sent) == 2
    fresh.ack_all()
    letters.flush()
    assert all(store.rows.values())


def test_a_stop_waits_a_bounded_time_for_sends_that_never_complete(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka_module, "DEAD_LETTER_CLOSE_S", 0.2)
    broker.topic_exists = True
    store = Outbox(1)
    letters, _ = publisher(store, Clock())
    letters.flush()
    store.add(1)  # what the last batch rejected
    started = time.monotonic()
    letters.clock = time.monotonic  # close() measures its bound in real time
    letters.close()
    assert time.monotonic() - started < 1.0
    (producer,) = broker.producers
    assert len(producer.sent) == 2, "the last batch's rejections are sent on the way out"
    assert producer.closed and producer.forced
    assert store.rows == {1: False, 2: False}, "unacknowledged rows stay in the outbox"
