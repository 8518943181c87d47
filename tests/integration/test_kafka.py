"""``hotline-kpi run`` against a real Apache Kafka 4.4 broker: exactly once in effect.

Every test produces simulated traffic (with its ground truth) to a real topic, consumes it with
the real consumer process, and compares the export with the ground truth number by number —
after SIGKILLs, a broker restart, duplicates, poison messages, two consumers sharing PostgreSQL,
and a SCRAM-authenticated listener — and keeps going, and stops promptly, while its dead-letter
topic does not exist. The crash, broker-restart, rebalance and fence tests run with each Kafka
client ``run`` can use (``kafka.client``: kafka-python, confluent-kafka).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from hotline_kpi.config import KafkaCredentials, KafkaSettings
from hotline_kpi.ingest.confluent import ConfluentKafkaSource, consumer_config
from hotline_kpi.ingest.kafka import KafkaSource, client_config
from hotline_kpi.ingest.sources import Batch
from tests.support.consumers import (
    CLI,
    Consumer,
    assert_exact,
    assert_published_once,
    consume_all,
    end_offsets,
    export_matches,
    killed_at_exit,
    outbox,
    produce,
    produce_wave,
    read_topic,
    rejected_origins,
    rejection_counts,
    stored_positions,
    topic_exists,
    wait_consumed,
)
from tests.support.services import KafkaBroker, ScramBroker, wait_until

# test_concurrent_writers.py imports these from here (their home is tests/support/consumers.py).
__all__ = ["Consumer", "export_matches", "rejection_counts", "wait_consumed"]

pytestmark = pytest.mark.integration


CLIENTS = ("kafka-python", "confluent-kafka")


@pytest.fixture
def consumers() -> Iterator[list[Consumer]]:
    with killed_at_exit() as started:
        yield started


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """The ``kafka.client`` the test's ``run`` processes consume with: each test taking it runs
    once per client."""
    return str(request.param)


def test_a_stream_with_duplicates_and_poison_is_consumed_exactly_and_dead_lettered(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
) -> None:
    topic = kafka_topic(partitions=4)
    dead = kafka_topic(partitions=1, prefix="dead")
    truth = produce(
        tmp_path,
        kafka_broker.bootstrap,
        topic,
        "2026-10-31",
        1,
        2500,
        seed=21,
        extra=("--duplicates", "0.03", "--bad", "0.01"),
    )
    assert truth["rejections"]["duplicate"] > 50 and truth["rejections"]["invalid_json"] > 0
    store = str(tmp_path / "k.db")
    consumers.append(
        Consumer(tmp_path, kafka_broker.bootstrap, topic, store, "--dead-letter-topic", dead)
    )
    wait_consumed(store, kafka_broker.bootstrap, topic, consumers)
    expected_dead = sum(truth["rejections"].values())
    reader = KafkaConsumer(
        dead,
        bootstrap_servers=kafka_broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
    )
    letters: list[Any] = []
    deadline = time.monotonic() + 60
    while len(letters) < expected_dead and time.monotonic() < deadline:
        letters.extend(reader)
    reader.close()
    assert consumers[0].stop() == 0
    assert_exact(tmp_path, store, truth)
    assert len(letters) == expected_dead
    headers = dict(letters[0].headers)
    assert headers["origin_topic"] == topic.encode()
    assert {"reason", "origin_partition", "origin_offset"} <= set(headers)
    reasons = sorted(dict(letter.headers)["reason"].decode() for letter in letters)
    assert {r: reasons.count(r) for r in set(reasons)} == truth["rejections"]
    assert not any(b"13912345678" in letter.value for letter in letters)


def test_sigkill_mid_stream_and_restart_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
    client: str,
) -> None:
    topic = kafka_topic(partitions=3)
    truth = produce(
        tmp_path,
        kafka_broker.bootstrap,
        topic,
        "2026-10-30",
        2,
        4000,
        seed=22,
        extra=("--duplicates", "0.01", "--shuffle"),
    )
    store = str(tmp_path / "k.db")
    ends = end_offsets(kafka_broker.bootstrap, topic)
    total = sum(ends.values())
    kills = 0
    for fraction in (0.15, 0.45, 0.7):
        consumer = Consumer(tmp_path, kafka_broker.bootstrap, topic, store, client=client)
        consumers.append(consumer)
        wait_until(
            lambda f=fraction, c=consumer: (
                c.alive() and sum(stored_positions(store, topic).values()) >= f * total
            ),
            timeout=240,
            interval=0.05,
        )
        if stored_positions(store, topic) != ends:
            consumer.kill()  # SIGKILL: no chance to finish anything
            kills += 1
        else:
            assert consumer.stop() == 0
    assert kills >= 2, "the stream was consumed too fast to be killed mid-way"
    consumers.append(Consumer(tmp_path, kafka_broker.bootstrap, topic, store, client=client))
    wait_consumed(store, kafka_broker.bootstrap, topic, consumers[-1:])
    assert consumers[-1].stop() == 0
    assert_exact(tmp_path, store, truth)


def test_the_consumer_waits_out_a_broker_restart_and_stays_exact(
    tmp_path: Path,
    kafka_broker_factory: Callable[..., KafkaBroker],
    consumers: list[Consumer],
    client: str,
) -> None:
    broker = kafka_broker_factory()
    broker.create_topic("calls", partitions=2)
    truth = produce(
        tmp_path,
        broker.bootstrap,
        "calls",
        "2026-10-31",
        1.5,
        4000,
        seed=23,
        extra=("--duplicates", "0.01"),
    )
    store = str(tmp_path / "k.db")
    total = sum(end_offsets(broker.bootstrap, "calls").values())
    consumers.append(Consumer(tmp_path, broker.bootstrap, "calls", store, client=client))
    wait_until(
        lambda: (
            consumers[0].alive() and sum(stored_positions(store, "calls").values()) > total * 0.2
        ),
        timeout=240,
        interval=0.05,
    )
    broker.stop()
    time.sleep(2)
    assert consumers[0].process.poll() is None, "the consumer must wait for the broker"
    broker.restart()
    wait_consumed(store, broker.bootstrap, "calls", consumers)
    assert consumers[0].stop() == 0
    export_matches(tmp_path, store, truth)


def test_two_consumers_in_one_group_share_a_postgresql_store_exactly(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    postgres_database: str,
    consumers: list[Consumer],
    client: str,
) -> None:
    topic = kafka_topic(partitions=4)
    truth = produce(
        tmp_path,
        kafka_broker.bootstrap,
        topic,
        "2026-10-31",
        1,
        4000,
        seed=24,
        extra=("--duplicates", "0.02", "--bad", "0.002"),
    )
    consume_all(tmp_path, kafka_broker.bootstrap, topic, postgres_database, consumers, 2, client)
    assert_exact(tmp_path, postgres_database, truth)


def test_a_consumer_frozen_past_its_session_is_fenced_by_the_store_and_stays_exact(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
    client: str,
) -> None:
    # A zombie: frozen (SIGSTOP) mid-stream with a batch in hand, it loses its partitions to a
    # successor that consumes to the end; thawed, whatever it still commits is refused by the
    # store's position fence, and it reads again from the store.
    topic = kafka_topic(partitions=2)
    truth = produce(
        tmp_path,
        kafka_broker.bootstrap,
        topic,
        "2026-10-29",
        2,
        4000,
        seed=26,
        extra=("--duplicates", "0.01"),
    )
    store = str(tmp_path / "k.db")
    total = sum(end_offsets(kafka_broker.bootstrap, topic).values())
    quick = {"HOTLINE_KPI_KAFKA__SESSION_TIMEOUT_MS": "6000"}
    zombie = Consumer(tmp_path, kafka_broker.bootstrap, topic, store, env=quick, client=client)
    consumers.append(zombie)
    wait_until(
        lambda: zombie.alive() and sum(stored_positions(store, topic).values()) >= total * 0.2,
        timeout=240,
        interval=0.02,
    )
    zombie.process.send_signal(signal.SIGSTOP)
    frozen_at = sum(stored_positions(store, topic).values())
    successor = Consumer(tmp_path, kafka_broker.bootstrap, topic, store, env=quick, client=client)
    consumers.append(successor)
    wait_consumed(store, kafka_broker.bootstrap, topic, [successor])
    zombie.process.send_signal(signal.SIGCONT)
    # Thawed, it finds it was left out of the group and rejoins (the successor gives up half).
    wait_until(
        lambda: zombie.output().count("partitions assigned") >= 2,
        timeout=60,
        message="the thawed consumer did not rejoin the group",
    )
    time.sleep(1)
    assert [zombie.stop(), successor.stop()] == [0, 0]
    fenced = "reading again from the store" in Path(zombie.log.name).read_text()
    print(f"{client}: frozen at {frozen_at} of {total}; its batch in hand fenced: {fenced}")
    assert frozen_at < total, "the stream was consumed too fast to freeze the consumer mid-way"
    assert_exact(tmp_path, store, truth)


def _open_source(
    client: str, kafka: KafkaSettings, stored: dict[int, int]
) -> KafkaSource | ConfluentKafkaSource:
    """The ``run`` source of ``client`` in this process, reading its positions from ``stored``."""
    if client == "confluent-kafka":
        config = consumer_config(kafka, KafkaCredentials())
        return ConfluentKafkaSource(kafka, config, lambda _: dict(stored))
    return KafkaSource(kafka, client_config(kafka, KafkaCredentials()), lambda _: dict(stored))


def _next_batch(source: KafkaSource | ConfluentKafkaSource, timeout: float = 30) -> Batch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = source.poll()
        if batch.records:
            return batch
    raise AssertionError(f"nothing read within {timeout} s")


def test_each_client_starts_at_the_stored_offsets_and_reads_a_fenced_batch_again(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str], client: str
) -> None:
    topic = kafka_topic(partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    for i in range(30):
        producer.send(topic, value=f"m{i}".encode(), partition=0)
    producer.flush(timeout=30)
    producer.close()
    kafka = KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap, topic=topic, group=f"g-{topic}", client=client
    )
    stored = {0: 10}
    source = _open_source(client, kafka, stored)
    try:
        # Assigned: sought to the store's offset, and the batch is fenced by it.
        batch = _next_batch(source)
        assert batch.records[0] == (b"m10", 0, 11) and batch.expected == {0: 10}
        assert source.owned() == {0}
        # Another member moved the partition to 20 meanwhile; the store refused the batch.
        stored[0] = 20
        source.rewind(batch)
        again = _next_batch(source)
        assert again.records[0] == (b"m20", 0, 21) and again.expected == {0: 20}
        while again.positions[0] < 30:
            source.commit(again)
            again = _next_batch(source)
        source.commit(again)
        # Kafka's committed offsets are written for lag tools only ...
        group = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=kafka.group)
        try:
            wait_until(
                lambda: source.poll() is not None and group.committed(TopicPartition(topic, 0)),
                timeout=20,
                message="the offsets were not committed to Kafka for lag tools",
            )
            assert group.committed(TopicPartition(topic, 0)) == 30
        finally:
            group.close()
    finally:
        source.close()
    # ... and never read: a member whose store holds nothing starts at the beginning.
    stored.clear()
    fresh = _open_source(client, kafka, stored)
    try:
        first = _next_batch(fresh)
        assert first.records[0] == (b"m0", 0, 1) and first.expected == {0: None}
    finally:
        fresh.close()


def test_run_consumes_through_a_scram_listener_and_a_wrong_password_is_one_line(
    tmp_path: Path,
    kafka_scram_broker: ScramBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
) -> None:
    topic = kafka_topic(partitions=2)
    plain = kafka_scram_broker.broker.bootstrap
    truth = produce(tmp_path, plain, topic, "2026-10-31", 0.2, 3000, seed=25)
    config = tmp_path / "scram.yaml"
    config.write_text(
        "kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl_mechanism: SCRAM-SHA-256\n"
        f"  sasl_username: {kafka_scram_broker.user}\n  connect_timeout_seconds: 5\n"
    )
    store = str(tmp_path / "k.db")
    good = {"HOTLINE_KPI_KAFKA_PASSWORD": kafka_scram_broker.password}
    consumers.append(
        Consumer(
            tmp_path, kafka_scram_broker.bootstrap, topic, store, "--config", str(config), env=good
        )
    )
    wait_consumed(store, plain, topic, consumers, timeout=120)
    assert consumers[0].stop() == 0
    export_matches(tmp_path, store, truth)

    wrong = subprocess.run(
        [
            *CLI,
            "run",
            "--config",
            str(config),
            "--bootstrap-servers",
            kafka_scram_broker.bootstrap,
            "--topic",
            topic,
            "--store",
            str(tmp_path / "w.db"),
            "--metrics-port",
            "0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOTLINE_KPI_KAFKA_PASSWORD": "not-the-password"},
    )
    assert wrong.returncode != 0
    errors = [line for line in wrong.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "could not connect or authenticate" in errors[0], wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert "not-the-password" not in wrong.stderr


@dataclass
class DeadLetterRun:
    """A fresh topic consumed into a SQLite store with a dead-letter topic named ``dead``,
    which does not exist until a test creates it."""

    cwd: Path
    broker: KafkaBroker
    topic: str
    consumers: list[Consumer]
    dead: str = field(default_factory=lambda: f"dead-{uuid.uuid4().hex[:12]}")

    @property
    def store(self) -> str:
        return str(self.cwd / "k.db")

    @property
    def consumer(self) -> Consumer:
        return self.consumers[-1]

    def start(self) -> Consumer:
        """A consumer process of the topic, publishing to ``dead``."""
        consumer = Consumer(
            self.cwd,
            self.broker.bootstrap,
            self.topic,
            self.store,
            "--dead-letter-topic",
            self.dead,
        )
        self.consumers.append(consumer)
        return consumer

    def wave(self, wave: int, calls: int, timeout: float = 30) -> tuple[int, int]:
        """Produce a wave (a poison message before each valid one) and wait until the
        consumer stored it; (good, bad) produced."""
        produced = produce_wave(self.broker.bootstrap, self.topic, wave, calls)
        wait_consumed(self.store, self.broker.bootstrap, self.topic, [self.consumer], timeout)
        return produced

    def outbox_sent(self, message: str, timeout: float = 20) -> None:
        """Wait until every rejection in the store is on the dead-letter topic (the consumer
        alive all along); ``message`` says what was not sent otherwise."""
        wait_until(
            lambda: self.consumer.alive() and outbox(self.store) == 0,
            timeout=timeout,
            message=message,
        )

    def published_once(self, origins: set[tuple[str, str]]) -> None:
        """Each of ``origins`` is on the dead-letter topic exactly once, and nothing else."""
        assert_published_once(read_topic(self.broker.bootstrap, self.dead), origins)


@pytest.fixture
def dead_letter_run(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
) -> Callable[[int], DeadLetterRun]:
    """Factory: a :class:`DeadLetterRun` on a topic of so many partitions."""
    return lambda partitions: DeadLetterRun(
        tmp_path, kafka_broker, kafka_topic(partitions=partitions), consumers
    )


def test_a_missing_dead_letter_topic_neither_blocks_nor_kills_run_and_is_filled_once_later(
    dead_letter_run: Callable[[int], DeadLetterRun],
) -> None:
    # kafka.sh starts brokers with auto.create.topics.enable=false, as production brokers are.
    run = dead_letter_run(2)
    consumer = run.start()
    good, bad = run.wave(1, 20, timeout=60)
    # A second wave after the first batch: the stream goes on (it used to hang 60 s in send
    # and then die).
    more_good, more_bad = run.wave(2, 20)
    good, bad = good + more_good, bad + more_bad
    wait_until(
        lambda: consumer.metrics().get("hotline_dead_letter_outbox") == bad,
        timeout=30,
        message="the outbox gauge did not count the waiting rejections",
    )
    figures = consumer.metrics()
    assert figures["hotline_events_total"] == good
    assert figures["hotline_events_rejected_total"] == bad

    code, elapsed = consumer.stop_timed()
    output = Path(consumer.log.name).read_text()
    print(f"SIGTERM to exit with the dead-letter topic missing: {elapsed:.1f} s")
    assert code == 0, output[-3000:]
    assert elapsed < 5, f"run took {elapsed:.1f} s to stop"
    assert "Traceback" not in output
    missing = [line for line in output.splitlines() if f"'{run.dead}' does not exist" in line]
    assert len(missing) == 1, missing
    assert outbox(run.store) == bad
    assert not topic_exists(run.broker, run.dead), "the broker must not have created the topic"

    run.broker.create_topic(run.dead, 2)
    try:
        consumer = run.start()
        wait_until(
            lambda: (
                consumer.alive()
                and sum(end_offsets(run.broker.bootstrap, run.dead).values()) >= bad
            ),
            timeout=60,
            message="the outbox did not reach the dead-letter topic",
        )
        time.sleep(2)  # a few more flushes: nothing may be sent twice
        code, elapsed = consumer.stop_timed()
        assert code == 0 and elapsed < 5, (code, elapsed)
        assert outbox(run.store) == 0
        run.published_once(rejected_origins(run.store))
    finally:
        run.broker.delete_topic(run.dead)


def test_a_dead_letter_topic_created_while_run_runs_gets_the_outbox_without_a_restart(
    dead_letter_run: Callable[[int], DeadLetterRun],
) -> None:
    run = dead_letter_run(1)
    consumer = run.start()
    _, bad = run.wave(1, 10, timeout=60)
    # Not waiting for the topic either: a batch after the first is consumed while it is missing.
    _, more_bad = run.wave(2, 10, timeout=20)
    bad += more_bad
    assert outbox(run.store) == bad
    run.broker.create_topic(run.dead, 1)
    try:
        # Looked up again every 10 s (DEAD_LETTER_RECHECK_S).
        run.outbox_sent("the outbox was not published after the topic appeared", timeout=40)
        _, more_bad = run.wave(3, 5)
        run.outbox_sent("new rejections not sent")
        assert consumer.stop() == 0
        run.published_once(rejected_origins(run.store))
        assert len(rejected_origins(run.store)) == bad + more_bad
        assert "available now" in Path(consumer.log.name).read_text()
    finally:
        run.broker.delete_topic(run.dead)


def test_a_dead_letter_topic_deleted_under_run_is_noticed_and_refilled_once_recreated(
    dead_letter_run: Callable[[int], DeadLetterRun],
) -> None:
    run = dead_letter_run(1)
    run.broker.create_topic(run.dead, 1)
    try:
        consumer = run.start()
        run.wave(1, 5, timeout=60)
        run.outbox_sent("first wave not sent")
        published = rejected_origins(run.store)

        run.broker.delete_topic(run.dead)
        wait_until(lambda: not topic_exists(run.broker, run.dead), timeout=20)
        for wave in (2, 3):  # the producer still has the topic's metadata, then it has not
            run.wave(wave, 5, timeout=20)
            time.sleep(3)
        wait_until(
            lambda: f"'{run.dead}' does not exist" in consumer.output(),
            timeout=40,
            message="the deleted topic was not noticed",
        )
        assert outbox(run.store) == 10
        run.broker.create_topic(run.dead, 1)
        run.outbox_sent("the outbox was not published to the recreated topic", timeout=40)
        code, elapsed = consumer.stop_timed()
        output = Path(consumer.log.name).read_text()
        assert code == 0 and elapsed < 5 and "Traceback" not in output, (code, elapsed)
        run.published_once(rejected_origins(run.store) - published)
    finally:
        run.broker.delete_topic(run.dead)
