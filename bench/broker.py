"""The benchmark's Kafka broker (kept in ``bench/.data/kafka`` so that the preloaded topic is
produced once and reused) and the topics it holds."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from confluent_kafka import Producer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import TopicAlreadyExistsError

from bench.process import PYTHON, REPO

KAFKA_SH = REPO / "scripts" / "kafka" / "kafka.sh"


def _script(*args: str) -> dict[str, str]:
    done = subprocess.run(
        [str(KAFKA_SH), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HOTLINE_KPI_PYTHON": PYTHON},
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kafka.sh {args[0]} failed: {done.stderr.strip()[-2000:]}")
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


class BenchBroker:
    """Start (or restart on its kept data) a single-node broker; ``stop`` stops what we started."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started_here = False
        self.bootstrap = ""

    def __enter__(self) -> BenchBroker:
        status = subprocess.run(
            [str(KAFKA_SH), "status", "--dir", str(self.directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        if status.returncode == 0:
            endpoints = dict(
                line.split("=", 1) for line in status.stdout.splitlines() if "=" in line
            )
        elif (self.directory / "server.properties").exists():
            endpoints = _script("restart", "--dir", str(self.directory), "--timeout", "120")
            self.started_here = True
        else:
            self.directory.parent.mkdir(parents=True, exist_ok=True)
            endpoints = _script("start", "--dir", str(self.directory), "--timeout", "120")
            self.started_here = True
        self.bootstrap = endpoints["bootstrap"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started_here:
            _script("stop", "--dir", str(self.directory))

    def admin(self) -> KafkaAdminClient:
        """A new admin client (close it)."""
        return KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30_000)

    def create_topic(self, name: str, partitions: int) -> bool:
        """Create ``name``; False if it was there already."""
        admin = self.admin()
        try:
            admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": 1}},
                timeout_ms=30_000,
            )
            admin.wait_for_topics([name], timeout_ms=30_000)
            return True
        except TopicAlreadyExistsError:
            return False
        finally:
            admin.close()

    def end_offsets(self, topic: str) -> dict[int, int]:
        """partition -> end offset (the next offset to be written)."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            consumer.close()

    def preload(self, topic: str, path: Path, events: int, partitions: int = 6) -> float | None:
        """Make ``topic`` hold every line of ``path`` keyed by call (or ticket) id, once.

        Returns the seconds producing took, or None when the topic already held them. Loading
        uses confluent-kafka's producer for speed: only which partition a call lands on
        matters, and one key always lands on one partition.
        """
        self.create_topic(topic, partitions)
        held = sum(self.end_offsets(topic).values())
        if held == events:
            return None
        if held:
            raise RuntimeError(
                f"topic {topic} holds {held} messages, not {events}: delete "
                f"{self.directory} (or use another --topic) and run again"
            )
        from hotline_kpi.ingest.producer import message_key

        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "linger.ms": 50,
                "batch.size": 1_000_000,
                "acks": "all",
                "enable.idempotence": True,
            }
        )
        started = time.perf_counter()
        with path.open("rb") as stream:
            for line in stream:
                value = line.rstrip(b"\n")
                while True:
                    try:
                        producer.produce(topic, value=value, key=message_key(value))
                        break
                    except BufferError:
                        producer.poll(0.1)
                producer.poll(0)
        if producer.flush(300):
            raise RuntimeError(f"producing to {topic}: messages left unacknowledged")
        return time.perf_counter() - started
