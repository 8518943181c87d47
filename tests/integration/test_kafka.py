"""``hotline-kpi run`` against a real Apache Kafka 4.4 broker: exactly once in effect.

Every test produces simulated traffic (with its ground truth) to a real topic, consumes it with
the real consumer process, and compares the export with the ground truth number by number —
after SIGKILLs, a broker restart, duplicates, poison messages, two consumers sharing PostgreSQL,
and a SCRAM-authenticated listener.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

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

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code

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
