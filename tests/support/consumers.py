"""Driving ``hotline-kpi run`` processes against a real broker, and reading what they stored.

Shared by the Kafka integration tests (``test_kafka.py``, ``test_kafka_fuzz.py``,
``test_concurrent_writers.py``): the command line as a subprocess, a consumer process with its
log and ``/metrics``, waiting until the store holds the topic's end offsets, and the checks on
the store and the dead-letter topic.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import KafkaBroker, wait_until
from tests.support.truth import assert_matches_truth

CLI = [sys.executable, "-m", "hotline_kpi.cli"]
# Every process of these tests keys callers with one secret (SPEC §7), so the exports carry the
# repeat contact, first contact resolution and repeat complaint figures the truth has.
KEYED = {"HOTLINE_KPI_CALLER_KEY": "consumers test secret"}


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **KEYED, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def produce(
    cwd: Path,
    bootstrap: str,
    topic: str,
    start: str,
    days: float,
    calls_per_day: int,
    *,
    seed: int,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Simulate ``days`` of traffic from local day ``start`` straight to ``topic`` (``extra``:
    more ``simulate`` options); the ground truth."""
    cli(
        "simulate",
        *("--to", "kafka", "--bootstrap-servers", bootstrap, "--topic", topic),
        *("--start", start, "--days", str(days), "--calls-per-day", str(calls_per_day)),
        *("--seed", str(seed), "--truth", "truth.json", *extra),
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
        client: str | None = None,
    ) -> None:
        """``client``: the ``kafka.client`` setting (None: the default, kafka-python)."""
        chosen = {} if client is None else {"HOTLINE_KPI_KAFKA__CLIENT": client}
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
            env={**os.environ, **KEYED, **chosen, **(env or {})},
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


@contextmanager
def killed_at_exit() -> Iterator[list[Consumer]]:
    """A list for the consumer processes a test starts; those still running at exit are killed
    (a test's ``consumers`` fixture)."""
    started: list[Consumer] = []
    try:
        yield started
    finally:
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


def consume_all(
    cwd: Path,
    bootstrap: str,
    topic: str,
    store: str,
    consumers: list[Consumer],
    count: int,
    client: str | None = None,
) -> None:
    """``count`` consumers of ``topic`` in one group into ``store`` (with the Kafka ``client``),
    until it holds the end offsets; each then stops cleanly on SIGTERM."""
    started = [Consumer(cwd, bootstrap, topic, store, client=client) for _ in range(count)]
    consumers.extend(started)
    wait_consumed(store, bootstrap, topic, started)
    assert [consumer.stop() for consumer in started] == [0] * count


def assert_exact(cwd: Path, store: str, truth: dict[str, Any]) -> None:
    """The store's exports and rejections are the ground truth's, number by number."""
    export_matches(cwd, store, truth)
    assert rejection_counts(store) == truth["rejections"]


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
