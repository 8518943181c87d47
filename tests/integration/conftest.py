"""Fixtures for integration tests against real components (SPEC §8), all on 127.0.0.1.

Session-scoped: ``kafka_broker`` (one Kafka 4.4 broker, also serving a SCRAM user),
``kafka_scram_broker`` (the same broker seen through its SASL listener) and ``postgres_url``.
Function-scoped: ``kafka_topic`` (a factory of fresh topics), ``kafka_broker_factory`` (private
brokers that a test may stop and restart) and ``postgres_database`` (a fresh, empty database).

Nothing is skipped: a missing Java, Maven or PostgreSQL fails the tests that need it with the
script's one-line reason. Every process started here is stopped at teardown, and the scripts'
watchdogs stop them too if the test run is killed before.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import psycopg
import pytest
from kafka.errors import KafkaError

from tests.support.services import (
    KafkaBroker,
    Postgres,
    ScramBroker,
    ScramCredentials,
    ServiceError,
)

SCRAM_USER = "hotline-kpi"
SCRAM_PASSWORD = "test-password-" + uuid.uuid4().hex[:8]


def _start(service: KafkaBroker | Postgres, what: str) -> None:
    try:
        service.start()
    except ServiceError as exc:
        reason = str(exc)
    else:
        return
    # Outside the except block, so that the report is the script's reason, not a chain.
    pytest.fail(f"could not start {what}: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """The session's Kafka broker: ``.bootstrap`` is ``127.0.0.1:PORT`` (PLAINTEXT).

    Shared by all tests: do not stop or restart it (use ``kafka_broker_factory``), and use
    ``kafka_topic`` for topics so that tests do not see each other's messages.
    """
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka"),
        scram=ScramCredentials(SCRAM_USER, SCRAM_PASSWORD),
    )
    _start(broker, "the Kafka broker")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_scram_broker(kafka_broker: KafkaBroker) -> ScramBroker:
    """The session broker's SCRAM-SHA-256 listener, with its user and password."""
    return ScramBroker(
        broker=kafka_broker,
        bootstrap=kafka_broker.sasl_bootstrap,
        user=SCRAM_USER,
        password=SCRAM_PASSWORD,
    )


@pytest.fixture
def kafka_topic(kafka_broker: KafkaBroker) -> Iterator[Callable[..., str]]:
    """A factory: ``kafka_topic(partitions=1, *, prefix="test", configs=None) -> name``.

    Each call creates a uniquely named topic on ``kafka_broker`` (every partition has a leader
    when it returns); the topics are deleted after the test.
    """
    created: list[str] = []

    def make(
        partitions: int = 1, *, prefix: str = "test", configs: Mapping[str, str] | None = None
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        kafka_broker.create_topic(name, partitions, configs=configs)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            kafka_broker.delete_topic(name)
        except KafkaError as exc:
            # Leftover topics are harmless on a throw-away broker; say so and go on.
            print(f"could not delete topic {name}: {exc}", file=sys.stderr)


@pytest.fixture
def kafka_broker_factory(tmp_path: Path) -> Iterator[Callable[..., KafkaBroker]]:
    """A factory of private brokers: ``kafka_broker_factory(*, scram=None, port=None)``.

    For tests that stop or restart a broker mid-stream (``broker.restart()`` keeps data and
    ports). Each costs a JVM start (about 5 s, 400 MB); all are stopped after the test.
    """
    brokers: list[KafkaBroker] = []

    def make(*, scram: ScramCredentials | None = None, port: int | None = None) -> KafkaBroker:
        broker = KafkaBroker(tmp_path / f"kafka-{len(brokers)}", scram=scram, port=port)
        brokers.append(broker)
        _start(broker, "a private Kafka broker")
        return broker

    yield make
    errors = []
    for broker in brokers:
        try:
            broker.stop()
        except ServiceError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("could not stop a private broker: " + "; ".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """The session's PostgreSQL server (trust authentication, no fsync)."""
    server = Postgres()
    _start(server, "PostgreSQL")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: Postgres) -> str:
    """``postgresql://postgres@127.0.0.1:PORT/postgres`` of the session's server."""
    return postgres_server.url


@pytest.fixture
def postgres_database(postgres_server: Postgres) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.database_url(name)
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
