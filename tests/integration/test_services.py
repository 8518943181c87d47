"""The test infrastructure itself works against the real components (SPEC §8).

If these fail, every other integration test is suspect: run them first when a broker or a
database misbehaves.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError

from tests.support.services import KafkaBroker, ScramBroker, free_port, wait_until

pytestmark = pytest.mark.integration


class Record(NamedTuple):
    """A consumed message, decoded."""

    partition: int
    key: str
    value: dict[str, Any]


def _producer(bootstrap: str, **config: object) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        reconnect_backoff_max_ms=1000,
        **config,
    )


def _consumer(bootstrap: str, topic: str, **config: object) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"group-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        reconnect_backoff_max_ms=1000,
        # A group that joins before it has the new topic's metadata is assigned nothing until
        # the next refresh (5 min by default): refresh often so that the rejoin comes quickly.
        metadata_max_age_ms=1000,
        **config,
    )


def _send(producer: KafkaProducer, topic: str, key: str, value: dict[str, Any]) -> None:
    producer.send(topic, key=key.encode(), value=json.dumps(value).encode())


def _consume(consumer: KafkaConsumer, count: int, timeout: float = 30.0) -> list[Record]:
    """Poll until ``count`` records arrived; fail on a timeout or on extra records."""
    records: list[Record] = []

    def enough() -> bool:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(Record(r.partition, r.key.decode(), json.loads(r.value)) for r in batch)
        return len(records) >= count

    wait_until(enough, timeout, interval=0, message=f"{count} records (got {len(records)})")
    assert len(records) == count, f"expected {count} records, got {len(records)}"
    return records


def test_free_port_is_bindable_on_localhost() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_until_returns_the_value_or_times_out_naming_what_it_waited_for() -> None:
    calls = iter([0, None, "ready"])
    assert wait_until(lambda: next(calls), timeout=5, interval=0) == "ready"
    with pytest.raises(TimeoutError, match="the moon"):
        wait_until(lambda: False, timeout=0.2, interval=0.05, message="the moon")


def test_messages_on_a_three_partition_topic_are_all_consumed_in_key_order(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(3)
    producer = _producer(kafka_broker.bootstrap)
    sent = [(f"call-{i % 12}", {"seq": i, "call_id": f"call-{i % 12}"}) for i in range(36)]
    for key, value in sent:
        _send(producer, topic, key, value)
    producer.flush(timeout=10)
    producer.close()

    consumer = _consumer(kafka_broker.bootstrap, topic)
    try:
        records = _consume(consumer, len(sent))
    finally:
        consumer.close()

    assert {r.partition for r in records} == {0, 1, 2}
    # One key, one partition, in the order produced: what the fold relies on (SPEC §2).
    by_key: dict[str, list[tuple[int, int]]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append((r.partition, r.value["seq"]))
    for key, seen in by_key.items():
        assert len({partition for partition, _ in seen}) == 1, key
        assert [seq for _, seq in seen] == sorted(seq for _, seq in seen), key
    assert sorted(r.value["seq"] for r in records) == list(range(36))


def test_a_restarted_broker_keeps_its_data_and_a_consumer_resumes_after_it(
    kafka_broker_factory: Callable[..., KafkaBroker],
) -> None:
    broker = kafka_broker_factory()
    topic = broker.create_topic("restart", 2)
    bootstrap = broker.bootstrap
    producer = _producer(bootstrap)
    for i in range(5):
        _send(producer, topic, f"k{i}", {"seq": i})
    producer.flush(timeout=10)

    consumer = _consumer(bootstrap, topic)
    try:
        first = _consume(consumer, 5)
        consumer.commit()

        broker.restart()
        assert broker.bootstrap == bootstrap, "a restart must keep the ports"

        for i in range(5, 10):
            _send(producer, topic, f"k{i}", {"seq": i})
        producer.flush(timeout=30)
        started = time.monotonic()
        second = _consume(consumer, 5, timeout=30)
        resumed_after = time.monotonic() - started
    finally:
        consumer.close()
        producer.close()

    assert sorted(r.value["seq"] for r in first) == [0, 1, 2, 3, 4]
    assert sorted(r.value["seq"] for r in second) == [5, 6, 7, 8, 9]
    # With reconnect_backoff_max_ms=1000 the consumer is back within seconds, not ~30 s.
    assert resumed_after < 20, f"the consumer resumed only after {resumed_after:.1f}s"

    # The data written before the restart is still on disk: a new group reads all ten. A new
    # group right after a restart waits for the broker to load its offsets topic, which took
    # over 30 s once on a loaded CI machine; this checks persistence, not speed.
    fresh = _consumer(bootstrap, topic)
    try:
        assert sorted(r.value["seq"] for r in _consume(fresh, 10, timeout=90)) == list(range(10))
    finally:
        fresh.close()


def test_scram_login_with_the_right_password_produces_and_consumes(
    kafka_scram_broker: ScramBroker, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(1, prefix="scram")
    config = kafka_scram_broker.client_config()
    bootstrap = config.pop("bootstrap_servers")
    producer = _producer(bootstrap, **config)
    _send(producer, topic, "call-1", {"over": "sasl"})
    producer.flush(timeout=10)
    producer.close()

    consumer = _consumer(bootstrap, topic, **config)
    try:
        [record] = _consume(consumer, 1)
    finally:
        consumer.close()
    assert record.value == {"over": "sasl"}


def test_scram_login_with_a_wrong_password_fails_with_a_timeout(
    kafka_scram_broker: ScramBroker,
) -> None:
    # kafka-python 3.0 drops the broker's authentication error: a wrong password looks like an
    # unreachable broker, a KafkaTimeoutError after bootstrap_timeout_ms.
    config = kafka_scram_broker.client_config(password="not-" + kafka_scram_broker.password)
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError):
        KafkaConsumer(bootstrap_timeout_ms=5000, request_timeout_ms=5000, **config)
    assert time.monotonic() - started < 15


def test_postgres_accepts_a_connection_and_a_query(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1 + 1, current_setting('fsync')").fetchone()
    assert row == (2, "off")


def test_postgres_database_is_fresh_and_writable(postgres_database: str) -> None:
    with psycopg.connect(postgres_database, connect_timeout=5) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        conn.execute("CREATE TABLE facts (call_id text PRIMARY KEY, answered boolean)")
        conn.execute("INSERT INTO facts VALUES ('c1', true)")
        stored = conn.execute("SELECT answered FROM facts WHERE call_id = 'c1'").fetchone()
    assert tables == (0,)
    assert stored == (True,)
