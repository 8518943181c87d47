"""Kafka in and out: the ``run`` consumer, exactly once in effect, and the simulator's producer.

The consumer polls a batch, and the pipeline commits the batch's facts together with the next
offset of every partition in one store transaction. On assignment each partition is sought to the
offset in the store (the source of truth), so a crash at any point neither loses nor repeats an
event; re-delivered messages that were produced twice are rejected as duplicates by ``event_id``.
Kafka's own committed offsets are written too, after the store, only for lag tools.

Rejected events go to the store's ``rejected`` table in the batch's transaction; with a
dead-letter topic configured, an outbox step publishes them from there afterwards (reason and
origin in headers), so a slow or absent dead-letter topic can neither lose a rejection nor stop
the stream: a topic that does not exist is reported once at start, looked up again now and then,
and sent to only once it exists; every wait on the dead-letter producer is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import FrameType
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, KafkaTimeoutError, UnknownTopicOrPartitionError, for_code
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, Counter, Gauge

from hotline_kpi.config import ConfigError, KafkaSettings, Settings, secret_from_env_or_file
from hotline_kpi.errors import SourceError
from hotline_kpi.ingest.decode import Record
from hotline_kpi.metrics.exposition import HotlineMetrics, MetricsServer, QueueLabels
from hotline_kpi.metrics.store import SqlStore, StalePositionError, open_store
from hotline_kpi.pipeline import Pipeline, Tally, max_clock_skew_of, thresholds_of

log = logging.getLogger(__name__)

PASSWORD_ENV = "HOTLINE_KPI_KAFKA_PASSWORD"
SSL_PASSWORD_ENV = "HOTLINE_KPI_KAFKA_SSL_PASSWORD"

# The dead-letter producer must never hold up the stream. kafka-python's send() waits up to
# max_block_ms for a topic's metadata (60 s by default, all of it for a missing topic, deaf to
# SIGTERM): with the topic looked up first, this bound only matters if it vanishes later.
DEAD_LETTER_MAX_BLOCK_MS = 500
DEAD_LETTER_LOOKUP_TIMEOUT_MS = 2000  # one metadata request answers in milliseconds
DEAD_LETTER_RECHECK_S = 10.0  # how often a missing topic is looked up again
DEAD_LETTER_STALL_S = 10.0  # a send unacknowledged this long makes the topic be looked up again
DEAD_LETTER_CLOSE_S = 2.0  # how long a stop waits for the last acknowledgements
DEAD_LETTER_COUNT_INTERVAL_S = 5.0  # how often the outbox gauge is refreshed
DEAD_LETTER_SLICE = 1000  # outbox rows sent per flush
OUTBOX_COUNT_SQL = "SELECT COUNT(*) FROM rejected WHERE dead_lettered = 0"


def client_config(kafka: KafkaSettings) -> dict[str, Any]:
    """kafka-python connection settings: servers, TLS and SASL; secrets never from argv."""
    config: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "security_protocol": kafka.security_protocol,
        "reconnect_backoff_max_ms": 1000,
        "bootstrap_timeout_ms": kafka.connect_timeout_seconds * 1000,
        "request_timeout_ms": 30_000,
    }
    if kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        if kafka.sasl_mechanism is None or kafka.sasl_username is None:
            raise ConfigError(
                "kafka.sasl_mechanism and kafka.sasl_username are needed for "
                f"security_protocol {kafka.security_protocol}"
            )
        password = secret_from_env_or_file(PASSWORD_ENV, kafka.sasl_password_file)
        if password is None:
            raise ConfigError(
                f"the Kafka SASL password must be given in {PASSWORD_ENV} or in the file "
                "named by kafka.sasl_password_file"
            )
        config.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=password,
        )
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(kafka, key)
            if value is not None:
                config[key] = str(value)
        ssl_password = secret_from_env_or_file(SSL_PASSWORD_ENV, None)
        if ssl_password:
            config["ssl_password"] = ssl_password
    return config


def _unreachable(kafka: KafkaSettings, exc: Exception) -> SourceError:
    # A wrong SASL password looks exactly like a dead broker to kafka-python (ENVIRONMENT.md).
    return SourceError(
        f"could not connect or authenticate to Kafka at {kafka.bootstrap_servers} within "
        f"{kafka.connect_timeout_seconds} s ({type(exc).__name__}); check the address, the "
        "security settings and the credentials"
    )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped library
    """Seeks newly assigned partitions to the offsets in the store."""

    def __init__(self, runner: KafkaRunner) -> None:
        self.runner = runner

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Batches are committed before the next poll, so no batch is in hand here.
        for tp in revoked:
            self.runner.owned.pop(tp.partition, None)
            labels = (tp.topic, str(tp.partition))
            if labels in self.runner.lag_labels:
                self.runner.metrics.lag.remove(*labels)
                self.runner.lag_labels.discard(labels)
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.runner.seek_to_stored(list(assigned))


class KafkaRunner:
    """The long-running consumer of ``hotline-kpi run``."""

    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        metrics: HotlineMetrics,
        *,
        max_records: int = 10_000,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = settings.kafka
        self.store = store
        self.metrics = metrics
        self.source = f"kafka:{self.kafka.topic}"
        self.pipeline = Pipeline(
            store, thresholds_of(settings), metrics, max_clock_skew_us=max_clock_skew_of(settings)
        )
        self.max_records = max_records
        self.owned: dict[int, int | None] = {}  # partition -> next offset, as in the store
        self.lag_labels: set[tuple[str, str]] = set()
        self.stop = stop if stop is not None else threading.Event()
        self.tally = Tally()
        config = client_config(self.kafka)
        try:
            self.consumer = KafkaConsumer(
                group_id=self.kafka.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=max_records,
                fetch_max_bytes=64 * 1024 * 1024,
                max_partition_fetch_bytes=8 * 1024 * 1024,
                session_timeout_ms=self.kafka.session_timeout_ms,
                # Joining before a new topic's metadata arrived assigns nothing until the next
                # refresh (5 min by default); a rebalance follows the refresh.
                metadata_max_age_ms=10_000,
                **config,
            )
            self.consumer.subscribe([self.kafka.topic], listener=_Rebalance(self))
        except (KafkaTimeoutError, KafkaError, OSError) as exc:
            raise _unreachable(self.kafka, exc) from None
        self.dead_letters = DeadLetters(self, config) if self.kafka.dead_letter_topic else None

    def seek_to_stored(self, assigned: list[TopicPartition]) -> None:
        """Seek each assigned partition to the next offset the store holds for it."""
        stored = self.store.positions(self.source)
        for tp in assigned:
            offset = stored.get(tp.partition)
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
            self.owned[tp.partition] = offset
        log.info(
            "partitions assigned: %s",
            {tp.partition: stored.get(tp.partition, "beginning") for tp in assigned},
        )

    def run(self) -> None:
        """Poll, process and commit until stopped; each batch is committed or dropped whole."""
        while not self.stop.is_set():
            try:
                polled = self.consumer.poll(timeout_ms=500, max_records=self.max_records)
            except KafkaError as exc:
                if not exc.retriable:  # connection errors and timeouts are retriable
                    raise
                # The broker is away (a restart, a network blip): nothing was read, so wait
                # and poll again; the store still holds where each partition stands.
                log.warning("Kafka unavailable (%s); retrying", type(exc).__name__)
                self.stop.wait(1.0)
                continue
            if self.stop.is_set():
                break  # a signal arrived during the poll: drop the batch in hand, unread
            if polled:
                self._process(polled)
            self._update_lag()
            if self.dead_letters is not None:
                self.dead_letters.flush()

    def _process(self, polled: Mapping[TopicPartition, list[Any]]) -> None:
        records: list[Record] = []
        positions: dict[int, int] = {}
        for tp, messages in polled.items():
            for message in messages:
                records.append((message.value or b"", tp.partition, message.offset + 1))
            if messages:
                positions[tp.partition] = messages[-1].offset + 1
        expected = {partition: self.owned.get(partition) for partition in positions}
        try:
            self.pipeline.process(
                records,
                self.source,
                positions,
                self.tally,
                expected=expected,
                owned=set(self.owned),
            )
        except StalePositionError as exc:
            # Another consumer owns the partition now: forget the batch and re-read.
            log.warning("%s; dropping the batch and seeking to the stored offsets", exc)
            self.seek_to_stored([TopicPartition(self.kafka.topic, p) for p in positions])
            return
        self.owned.update(positions)
        try:
            # Only for lag tools: the store, not Kafka, decides where a consumer resumes.
            self.consumer.commit_async(
                {
                    TopicPartition(self.kafka.topic, p): _offset_meta(offset)
                    for p, offset in positions.items()
                }
            )
        except KafkaError as exc:
            log.debug("Kafka offset commit for lag tools failed: %s", exc)

    def _update_lag(self) -> None:
        for partition in self.owned:
            tp = TopicPartition(self.kafka.topic, partition)
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = self.consumer.position(tp, timeout_ms=100)
            except (KafkaError, AssertionError):
                continue
            if position is None:
                continue
            labels = (self.kafka.topic, str(partition))
            self.lag_labels.add(labels)
            self.metrics.lag.labels(*labels).set(max(0, highwater - position))

    def close(self) -> None:
        """Leave the group and close the clients."""
        try:
            self.consumer.close(autocommit=False)
        except KafkaError as exc:
            log.debug("closing the consumer: %s", exc)
        if self.dead_letters is not None:
            self.dead_letters.close()


def _offset_meta(offset: int) -> OffsetAndMetadata:
    return OffsetAndMetadata(offset, "", -1)


class DeadLetters:
    """Publishes the store's undelivered rejections to the dead-letter topic (an outbox).

    Nothing here may hold up the stream (README). The topic is looked up at start with one
    metadata request; while it is missing (or cannot be looked up) nothing is sent, the
    rejections wait in the outbox (gauge ``hotline_dead_letter_outbox``), and it is looked up
    again every ``DEAD_LETTER_RECHECK_S``. ``flush`` never waits for acknowledgements: it marks
    the rows whose sends have completed and sends the next ones. A row is sent again only once
    its send has failed, so the topic gets each row once (a crash between the broker's ack and
    the store's mark can repeat one). Only ``close`` waits, a bounded time.
    """

    def __init__(
        self,
        runner: KafkaRunner,
        config: dict[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.topic: str = runner.kafka.dead_letter_topic or ""
        self.clock = clock
        # Both clients are made when first needed and bootstrap within a lookup's bound, so that
        # neither can hold up the start or the stream.
        self.producer_config = {
            **config,
            "acks": "all",
            "linger_ms": 5,
            # send() waits up to max_block_ms for a topic's metadata (60 s by default), and a
            # topic that does not exist makes it wait all of it.
            "max_block_ms": DEAD_LETTER_MAX_BLOCK_MS,
            "bootstrap_timeout_ms": DEAD_LETTER_LOOKUP_TIMEOUT_MS,
        }
        self.producer: KafkaProducer | None = None
        self.admin_config = {
            **config,
            "bootstrap_timeout_ms": DEAD_LETTER_LOOKUP_TIMEOUT_MS,
            "request_timeout_ms": DEAD_LETTER_LOOKUP_TIMEOUT_MS,
        }
        self.admin: KafkaAdminClient | None = None
        # Outbox row id -> (its send's future, when it was sent).
        self.in_flight: dict[int, tuple[Any, float]] = {}
        self.available = False
        self.announced: str | None = None  # the last state logged, so each is logged once
        self.next_check = 0.0
        self.next_count = 0.0
        registry = runner.metrics.registry
        self.failures = Counter(
            "hotline_dead_letter_failures",
            "Sends to the dead-letter topic that failed (the rows stay in the outbox and are "
            "sent again).",
            registry=registry,
        )
        self.outbox = Gauge(
            "hotline_dead_letter_outbox",
            "Rejected events in the store's outbox, not yet on the dead-letter topic.",
            registry=registry,
        )
        self.check()

    def check(self) -> None:
        """Look the topic up (one metadata request, bounded); log a change of state once."""
        self.next_check = self.clock() + DEAD_LETTER_RECHECK_S
        state = self._lookup()
        self.available = state == "exists"
        if state == "missing":
            # Deleted under us: the producer would retry its batches (and log every metadata
            # refresh) until their delivery timeout. The rows are sent again by a new one.
            self._close_producer(timeout=0)
        self._announce(state)

    def _announce(self, state: str) -> None:
        if state == self.announced:
            return
        if state == "exists":
            if self.announced is not None:
                log.info(
                    "dead-letter topic '%s' is available now; publishing the store's outbox",
                    self.topic,
                )
        elif state == "missing":
            log.warning(
                "dead-letter topic '%s' does not exist on the broker; rejected events stay in "
                "the store's outbox until it does (checked every %g s)",
                self.topic,
                DEAD_LETTER_RECHECK_S,
            )
        else:
            log.warning(
                "cannot use dead-letter topic '%s' (%s); rejected events stay in the store's "
                "outbox until it can be used (checked every %g s)",
                self.topic,
                state,
                DEAD_LETTER_RECHECK_S,
            )
        self.announced = state
        self.next_count = 0.0  # show the outbox at once on a change

    def _lookup(self) -> str:
        """``"exists"``, ``"missing"``, or why the topic could not be looked up."""
        try:
            if self.admin is None:
                self.admin = KafkaAdminClient(**self.admin_config)
            described = self.admin.describe_topics([self.topic])
        except (KafkaError, OSError) as exc:
            return type(exc).__name__
        for topic in described:
            if topic.get("name") != self.topic:
                continue
            code = topic.get("error_code", 0)
            if code == UnknownTopicOrPartitionError.errno:
                return "missing"
            if code:
                return str(for_code(code).__name__)
            return "exists" if topic.get("partitions") else "no partitions"
        return "missing"

    def flush(self) -> None:
        """Mark what the topic acknowledged and send the next slice of the outbox; never waits
        for an acknowledgement, and looks a missing topic up again when it is time."""
        now = self.clock()
        self._settle()
        stalled = any(now - sent > DEAD_LETTER_STALL_S for _, sent in self.in_flight.values())
        if (stalled or not self.available) and now >= self.next_check:
            self.check()  # a topic deleted under us shows as sends that never complete
        if self.available:
            self._send()
        if now >= self.next_count:
            self.next_count = now + DEAD_LETTER_COUNT_INTERVAL_S
            self.outbox.set(self.runner.store.query(OUTBOX_COUNT_SQL)[0][0])

    def _send(self) -> None:
        rows = self.runner.store.undelivered_rejections(DEAD_LETTER_SLICE)
        rows = [row for row in rows if row[0] not in self.in_flight]
        try:
            if rows and self.producer is None:
                self.producer = KafkaProducer(**self.producer_config)
            for row in rows:
                self.in_flight[row[0]] = (self._send_row(self.producer, row), self.clock())
        except KafkaError as exc:
            # The topic's metadata is gone (deleted), the send buffer is full or the broker is
            # away: stop sending and look the topic up again later; the rows stay in the outbox.
            self.failures.inc()
            self.available = False
            self.next_check = self.clock() + DEAD_LETTER_RECHECK_S
            self._announce(type(exc).__name__)

    def _send_row(self, producer: Any, row: tuple[Any, ...]) -> Any:
        """Send one outbox row (reason and origin in headers); its future."""
        _, source, partition, position, reason, event_id, kind, detail, payload = row
        headers = [
            ("reason", reason.encode()),
            ("origin_topic", source.removeprefix("kafka:").encode()),
            ("origin_partition", str(partition).encode()),
            ("origin_offset", str(position - 1).encode()),
            ("detail", (detail or "").encode()),
        ]
        if event_id:
            headers.append(("event_id", event_id.encode()))
        if kind:
            headers.append(("type", kind.encode()))
        return producer.send(self.topic, value=(payload or "").encode(), headers=headers)

    def _settle(self) -> None:
        """Mark what was acknowledged; a failed row leaves ``in_flight`` to be sent again."""
        delivered: list[int] = []
        for row_id, (future, _) in list(self.in_flight.items()):
            if not future.is_done:
                continue
            del self.in_flight[row_id]
            if future.succeeded():
                delivered.append(row_id)
            else:
                self.failures.inc()
        if delivered:
            self.runner.store.mark_dead_lettered(delivered)

    def _close_producer(self, timeout: float) -> None:
        """Close the producer within about ``timeout`` seconds; its unsent rows stay in the
        outbox, to be sent again."""
        producer, self.producer = self.producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=timeout)
        except KafkaTimeoutError:
            # close() gives up before its force-close when a batch is still unacknowledged,
            # which leaves a non-daemon sender thread holding the process open: force it.
            producer._sender.force_close()
            producer._sender.join(DEAD_LETTER_CLOSE_S)
        self._settle()  # what completed while closing
        self.in_flight.clear()

    def close(self) -> None:
        """Send what the last batch rejected, wait a bounded time for the acks, close."""
        if self.available:
            self._send()
        deadline = self.clock() + DEAD_LETTER_CLOSE_S
        for future, _ in list(self.in_flight.values()):
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            with contextlib.suppress(KafkaError):  # a failure is counted by _settle
                future.get(timeout=remaining)
        self._settle()
        self._close_producer(timeout=max(0.0, deadline - self.clock()))
        if self.admin is not None:
            with contextlib.suppress(KafkaError):
                self.admin.close()


def run_consumer(settings: Settings, args: argparse.Namespace) -> int:
    """``hotline-kpi run``: consume until SIGTERM or Ctrl-C, then stop cleanly."""
    kafka = settings.kafka
    port = settings.metrics.port
    registry = CollectorRegistry()
    metrics = HotlineMetrics(registry, QueueLabels(settings.queues, settings.max_queues))
    store = open_store(settings.store)
    try:
        server = MetricsServer(
            registry,
            settings.metrics.address,
            port,
            certfile=settings.metrics.certfile,
            keyfile=settings.metrics.keyfile,
            basic_auth=_basic_auth(settings),
        )
    except OSError as exc:
        store.close()
        raise SourceError(
            f"cannot serve /metrics on {settings.metrics.address}:{port}: {exc.strerror}"
        ) from None
    runner: KafkaRunner | None = None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before connecting, so that a SIGTERM during start-up is a clean stop too.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runner = KafkaRunner(settings, store, metrics, stop=stop)
        log.info(
            "consuming %s from %s as group %s into %s; metrics on %s:%d",
            kafka.topic,
            kafka.bootstrap_servers,
            kafka.group,
            settings.store,
            settings.metrics.address,
            server.port,
        )
        runner.run()
    finally:
        if runner is not None:
            runner.close()
            log.info(
                "stopped: accepted %d, rejected %d",
                runner.tally.accepted,
                runner.tally.total_rejected,
            )
        server.close()
        store.close()
    return 0


def _basic_auth(settings: Settings) -> tuple[str, str] | None:
    endpoint = settings.metrics
    if endpoint.basic_auth_user is None:
        return None
    password = secret_from_env_or_file(
        "HOTLINE_KPI_METRICS_PASSWORD", endpoint.basic_auth_password_file
    )
    if password is None:
        raise ConfigError(
            "metrics.basic_auth_user is set but no password is given in "
            "HOTLINE_KPI_METRICS_PASSWORD or metrics.basic_auth_password_file"
        )
    return endpoint.basic_auth_user, password


def message_key(line: bytes) -> bytes | None:
    """The partitioning key of an event line (SPEC §2): ``ticket_id`` for ticket events (a
    ``ticket.opened`` may name a call too), ``call_id`` for all others."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    field = "ticket_id" if isinstance(kind, str) and kind.startswith("ticket.") else "call_id"
    key = value.get(field)
    return key.encode() if isinstance(key, str) else None


def produce_lines(settings: Settings, lines: Iterator[tuple[int, bytes]]) -> int:
    """``simulate --to kafka``: produce each line keyed by its call (or ticket) id."""
    kafka = settings.kafka
    try:
        producer = KafkaProducer(
            acks="all", linger_ms=20, batch_size=256 * 1024, **client_config(kafka)
        )
    except (KafkaTimeoutError, KafkaError, OSError) as exc:
        raise _unreachable(kafka, exc) from None
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
