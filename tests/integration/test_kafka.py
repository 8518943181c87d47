"""``hotline-kpi run`` against a real Apache Kafka 4.4 broker: exactly once in effect.

Every test produces simulated traffic (with its ground truth) to a real topic, consumes it with
the real consumer process, and compares the export with the ground truth number by number —
after SIGKILLs, a broker restart, duplicates, poison messages, two consumers sharing PostgreSQL,
and a SCRAM-authenticated listener — and keeps going, and stops promptly, while its dead-letter
topic does not exist.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import KafkaBroker, ScramBroker, wait_until
from tests.support.truth import assert_matches_truth

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "hotline_kpi.cli"]


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def produce(cwd: Path, bootstrap: str, topic: str, *extra: str) -> dict[str, Any]:
    """Simulate traffic straight to ``topic``; return the ground truth."""
    cli(
        "simulate",
        "--to",
        "kafka",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--truth",
        "truth.json",
        *extra,
        cwd=cwd,
    )
    return json.loads((cwd / "truth.json").read_text())


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def stored_positions(store: str, topic: str) -> dict[int, int]:
    sql = "SELECT partition, position FROM positions WHERE source = 'kafka:' || %s"
    if store.startswith("postgresql://"):
        with psycopg.connect(store) as con:
            return dict(con.execute(sql, (topic,)).fetchall())
    if not Path(store).exists():
        return {}
    con = sqlite3.connect(store, timeout=10)
    try:
        return dict(con.execute(sql.replace("%s", "?"), (topic,)).fetchall())
    except sqlite3.OperationalError:
        return {}  # the consumer has not created its tables yet
    finally:
        con.close()


class Consumer:
    """One ``hotline-kpi run`` process."""

    def __init__(
        self,
        cwd: Path,
        bootstrap: str,
        topic: str,
        store: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log = (cwd / f"run-{time.monotonic_ns()}.log").open("w")
        self.process = subprocess.Popen(
            [
                *CLI,
                "run",
                "--bootstrap-servers",
                bootstrap,
                "--topic",
                topic,
                "--group",
                f"g-{topic}",
                "--store",
                store,
                "--metrics-port",
                "0",
                *extra,
            ],
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def alive(self) -> bool:
        """Whether the process runs; a dead one fails the test with its log's tail."""
        if self.process.poll() is None:
            return True
        self.log.flush()
        tail = Path(self.log.name).read_text().splitlines()[-5:]
        raise AssertionError(f"hotline-kpi run exited {self.process.returncode}: {tail}")

    def ready(self) -> bool:
        """Whether it has joined the group and sought its partitions (so handles SIGTERM)."""
        self.log.flush()
        return self.alive() and "partitions assigned" in Path(self.log.name).read_text()

    def output(self) -> str:
        """Everything the process has logged so far."""
        self.log.flush()
        return Path(self.log.name).read_text()

    def metrics(self) -> dict[str, float]:
        """Its /metrics, each family's samples summed over their labels."""
        found = re.search(r"metrics on [0-9.]+:(\d+)", self.output())
        assert found, "the consumer has not said where /metrics is"
        url = f"http://127.0.0.1:{found.group(1)}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code

    def stop_timed(self, timeout: float = 150) -> tuple[int | None, float]:
        """SIGTERM; the exit status (None: still running after ``timeout``, then killed) and
        the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
            code = None
        elapsed = time.monotonic() - started
        self.log.close()
        return code, elapsed

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def consumers() -> Iterator[list[Consumer]]:
    started: list[Consumer] = []
    yield started
    for consumer in started:
        if consumer.process.poll() is None:
            consumer.kill()


def wait_consumed(
    store: str, bootstrap: str, topic: str, running: list[Consumer], timeout: float = 240
) -> None:
    ends = end_offsets(bootstrap, topic)
    wait_until(
        lambda: all(c.ready() for c in running) and stored_positions(store, topic) == ends,
        timeout=timeout,
        interval=0.5,
        message=f"the store did not reach the end offsets {ends}",
    )


def export_matches(cwd: Path, store: str, truth: dict[str, Any]) -> None:
    for month, expected in truth["months"].items():
        report = json.loads(cli("export", "--month", month, "--store", store, cwd=cwd))
        assert_matches_truth(report, expected)


def rejection_counts(store: str) -> dict[str, int]:
    sql = "SELECT reason, COUNT(*) FROM rejected GROUP BY reason"
    if store.startswith("postgresql://"):
        with psycopg.connect(store) as con:
            return dict(con.execute(sql).fetchall())
    con = sqlite3.connect(store)
    try:
        return dict(con.execute(sql).fetchall())
    finally:
        con.close()


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
        "--start",
        "2026-10-31",
        "--days",
        "1",
        "--calls-per-day",
        "2500",
        "--seed",
        "21",
        "--duplicates",
        "0.03",
        "--bad",
        "0.01",
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
    export_matches(tmp_path, store, truth)
    assert rejection_counts(store) == truth["rejections"]
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
) -> None:
    topic = kafka_topic(partitions=3)
    truth = produce(
        tmp_path,
        kafka_broker.bootstrap,
        topic,
        "--start",
        "2026-10-30",
        "--days",
        "2",
        "--calls-per-day",
        "4000",
        "--seed",
        "22",
        "--duplicates",
        "0.01",
        "--shuffle",
    )
    store = str(tmp_path / "k.db")
    ends = end_offsets(kafka_broker.bootstrap, topic)
    total = sum(ends.values())
    kills = 0
    for fraction in (0.15, 0.45, 0.7):
        consumer = Consumer(tmp_path, kafka_broker.bootstrap, topic, store)
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
    consumers.append(Consumer(tmp_path, kafka_broker.bootstrap, topic, store))
    wait_consumed(store, kafka_broker.bootstrap, topic, consumers[-1:])
    assert consumers[-1].stop() == 0
    export_matches(tmp_path, store, truth)
    assert rejection_counts(store) == truth["rejections"]


def test_the_consumer_waits_out_a_broker_restart_and_stays_exact(
    tmp_path: Path,
    kafka_broker_factory: Callable[..., KafkaBroker],
    consumers: list[Consumer],
) -> None:
    broker = kafka_broker_factory()
    broker.create_topic("calls", partitions=2)
    truth = produce(
        tmp_path,
        broker.bootstrap,
        "calls",
        "--start",
        "2026-10-31",
        "--days",
        "1.5",
        "--calls-per-day",
        "4000",
        "--seed",
        "23",
        "--duplicates",
        "0.01",
    )
    store = str(tmp_path / "k.db")
    total = sum(end_offsets(broker.bootstrap, "calls").values())
    consumers.append(Consumer(tmp_path, broker.bootstrap, "calls", store))
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
) -> None:
    topic = kafka_topic(partitions=4)
    truth = produce(
        tmp_path,
        kafka_broker.bootstrap,
        topic,
        "--start",
        "2026-10-31",
        "--days",
        "1",
        "--calls-per-day",
        "4000",
        "--seed",
        "24",
        "--duplicates",
        "0.02",
        "--bad",
        "0.002",
    )
    consumers.append(Consumer(tmp_path, kafka_broker.bootstrap, topic, postgres_database))
    consumers.append(Consumer(tmp_path, kafka_broker.bootstrap, topic, postgres_database))
    wait_consumed(postgres_database, kafka_broker.bootstrap, topic, consumers)
    assert [c.stop() for c in consumers] == [0, 0]
    export_matches(tmp_path, postgres_database, truth)
    assert rejection_counts(postgres_database) == truth["rejections"]


def test_run_consumes_through_a_scram_listener_and_a_wrong_password_is_one_line(
    tmp_path: Path,
    kafka_scram_broker: ScramBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
) -> None:
    topic = kafka_topic(partitions=2)
    plain = kafka_scram_broker.broker.bootstrap
    truth = produce(
        tmp_path,
        plain,
        topic,
        "--start",
        "2026-10-31",
        "--days",
        "0.2",
        "--calls-per-day",
        "3000",
        "--seed",
        "25",
    )
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


def offered(call_id: str) -> bytes:
    """A valid ``call.offered`` event (in the past, so never ``future_timestamp``)."""
    return json.dumps(
        {
            "event_id": f"e-{call_id}",
            "type": "call.offered",
            "call_id": call_id,
            "ts": "2026-11-01T08:00:00+08:00",
        }
    ).encode()


POISON = (
    b"not json",
    b"[1, 2]",
    b'{"event_id": "p", "type": "call.nope", "ts": "2026-11-01T08:00:00+08:00"}',
    b'{"event_id": "q", "type": "call.queued", "ts": "2026-11-01T08:00:00+08:00"}',
)


def produce_wave(bootstrap: str, topic: str, wave: int, calls: int) -> tuple[int, int]:
    """Produce ``calls`` valid events with a poison message before each; (good, bad) sent."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for i in range(calls):
            call_id = f"w{wave}-c{i}"
            producer.send(topic, key=call_id.encode(), value=POISON[i % len(POISON)])
            producer.send(topic, key=call_id.encode(), value=offered(call_id))
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return calls, calls


def outbox(store: str) -> int:
    """Rejected events not yet published to the dead-letter topic."""
    con = sqlite3.connect(store, timeout=10)
    try:
        return int(
            con.execute("SELECT COUNT(*) FROM rejected WHERE dead_lettered = 0").fetchone()[0]
        )
    finally:
        con.close()


def rejected_origins(store: str) -> set[tuple[str, str]]:
    """(partition, offset) of every rejected event, as the dead-letter headers name them."""
    con = sqlite3.connect(store, timeout=10)
    try:
        rows = con.execute("SELECT partition, position FROM rejected").fetchall()
    finally:
        con.close()
    return {(str(partition), str(position - 1)) for partition, position in rows}


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every message now on ``topic``."""
    ends = end_offsets(bootstrap, topic)
    reader = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=2000)
    try:
        partitions = [TopicPartition(topic, p) for p in ends]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        messages: list[Any] = []
        deadline = time.monotonic() + 60
        while len(messages) < sum(ends.values()) and time.monotonic() < deadline:
            messages.extend(reader)
        return messages
    finally:
        reader.close()


def topic_exists(broker: KafkaBroker, topic: str) -> bool:
    return topic in broker.admin().list_topics()


def assert_published_once(letters: Sequence[Any], origins: set[tuple[str, str]]) -> None:
    """Each rejected event is on the dead-letter topic exactly once."""
    seen = [
        (
            dict(letter.headers)["origin_partition"].decode(),
            dict(letter.headers)["origin_offset"].decode(),
        )
        for letter in letters
    ]
    assert len(seen) == len(set(seen)), "a rejected event was dead-lettered twice"
    assert set(seen) == origins


def test_a_missing_dead_letter_topic_neither_blocks_nor_kills_run_and_is_filled_once_later(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
) -> None:
    # kafka.sh starts brokers with auto.create.topics.enable=false, as production brokers are.
    topic = kafka_topic(partitions=2)
    dead = f"dead-{uuid.uuid4().hex[:12]}"
    bootstrap = kafka_broker.bootstrap
    store = str(tmp_path / "k.db")
    good, bad = produce_wave(bootstrap, topic, 1, 20)
    consumer = Consumer(tmp_path, bootstrap, topic, store, "--dead-letter-topic", dead)
    consumers.append(consumer)
    wait_consumed(store, bootstrap, topic, [consumer], timeout=60)
    # A second wave after the first batch: the stream goes on (it used to hang 60 s in send
    # and then die).
    more_good, more_bad = produce_wave(bootstrap, topic, 2, 20)
    good, bad = good + more_good, bad + more_bad
    wait_consumed(store, bootstrap, topic, [consumer], timeout=30)
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
    missing = [line for line in output.splitlines() if f"'{dead}' does not exist" in line]
    assert len(missing) == 1, missing
    assert outbox(store) == bad
    assert not topic_exists(kafka_broker, dead), "the broker must not have created the topic"

    kafka_broker.create_topic(dead, 2)
    try:
        consumer = Consumer(tmp_path, bootstrap, topic, store, "--dead-letter-topic", dead)
        consumers.append(consumer)
        wait_until(
            lambda: consumer.alive() and sum(end_offsets(bootstrap, dead).values()) >= bad,
            timeout=60,
            message="the outbox did not reach the dead-letter topic",
        )
        time.sleep(2)  # a few more flushes: nothing may be sent twice
        code, elapsed = consumer.stop_timed()
        assert code == 0 and elapsed < 5, (code, elapsed)
        assert outbox(store) == 0
        assert_published_once(read_topic(bootstrap, dead), rejected_origins(store))
    finally:
        kafka_broker.delete_topic(dead)


def test_a_dead_letter_topic_created_while_run_runs_gets_the_outbox_without_a_restart(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
) -> None:
    topic = kafka_topic(partitions=1)
    dead = f"dead-{uuid.uuid4().hex[:12]}"
    bootstrap = kafka_broker.bootstrap
    store = str(tmp_path / "k.db")
    _, bad = produce_wave(bootstrap, topic, 1, 10)
    consumer = Consumer(tmp_path, bootstrap, topic, store, "--dead-letter-topic", dead)
    consumers.append(consumer)
    wait_consumed(store, bootstrap, topic, [consumer], timeout=60)
    # Not waiting for the topic either: a batch after the first is consumed while it is missing.
    _, more_bad = produce_wave(bootstrap, topic, 2, 10)
    bad += more_bad
    wait_consumed(store, bootstrap, topic, [consumer], timeout=20)
    assert outbox(store) == bad
    kafka_broker.create_topic(dead, 1)
    try:
        # Looked up again every 10 s (DEAD_LETTER_RECHECK_S).
        wait_until(
            lambda: consumer.alive() and outbox(store) == 0,
            timeout=40,
            message="the outbox was not published after the topic appeared",
        )
        _, more_bad = produce_wave(bootstrap, topic, 3, 5)
        wait_consumed(store, bootstrap, topic, [consumer], timeout=30)
        wait_until(lambda: outbox(store) == 0, timeout=20, message="new rejections not sent")
        assert consumer.stop() == 0
        assert_published_once(read_topic(bootstrap, dead), rejected_origins(store))
        assert len(rejected_origins(store)) == bad + more_bad
        assert "available now" in Path(consumer.log.name).read_text()
    finally:
        kafka_broker.delete_topic(dead)


def test_a_dead_letter_topic_deleted_under_run_is_noticed_and_refilled_once_recreated(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    consumers: list[Consumer],
) -> None:
    topic = kafka_topic(partitions=1)
    dead = f"dead-{uuid.uuid4().hex[:12]}"
    bootstrap = kafka_broker.bootstrap
    store = str(tmp_path / "k.db")
    kafka_broker.create_topic(dead, 1)
    try:
        consumer = Consumer(tmp_path, bootstrap, topic, store, "--dead-letter-topic", dead)
        consumers.append(consumer)
        produce_wave(bootstrap, topic, 1, 5)
        wait_consumed(store, bootstrap, topic, [consumer], timeout=60)
        wait_until(lambda: outbox(store) == 0, timeout=20, message="first wave not sent")
        published = rejected_origins(store)

        kafka_broker.delete_topic(dead)
        wait_until(lambda: not topic_exists(kafka_broker, dead), timeout=20)
        for wave in (2, 3):  # the producer still has the topic's metadata, then it has not
            produce_wave(bootstrap, topic, wave, 5)
            wait_consumed(store, bootstrap, topic, [consumer], timeout=20)
            time.sleep(3)
        wait_until(
            lambda: f"'{dead}' does not exist" in consumer.output(),
            timeout=40,
            message="the deleted topic was not noticed",
        )
        assert outbox(store) == 10
        kafka_broker.create_topic(dead, 1)
        wait_until(
            lambda: consumer.alive() and outbox(store) == 0,
            timeout=40,
            message="the outbox was not published to the recreated topic",
        )
        code, elapsed = consumer.stop_timed()
        output = Path(consumer.log.name).read_text()
        assert code == 0 and elapsed < 5 and "Traceback" not in output, (code, elapsed)
        assert_published_once(read_topic(bootstrap, dead), rejected_origins(store) - published)
    finally:
        kafka_broker.delete_topic(dead)
