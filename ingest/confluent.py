"""Kafka in with confluent-kafka (librdkafka): the ``run`` consumer when ``kafka.client`` says so.

The same :class:`~hotline_kpi.ingest.sources.Source` as
:class:`~hotline_kpi.ingest.kafka.KafkaSource`, with the same guarantees, on a client whose record
decoding costs a seventh of kafka-python's (issue 17). The store is the only source of truth for
offsets: the consumer never commits by itself (``enable.auto.commit`` false) and its committed
offsets are never read; on assignment each partition starts at the store's next offset (or the
beginning). Each batch carries the stored offsets it was read from (the store's position fence),
so a member that lost a partition cannot commit over its successor: it seeks back to the stored
offsets and reads again. Revoked or lost partitions are forgotten; no batch is ever in hand
across a poll, since the pipeline commits each batch before polling again. Dead letters keep
their kafka-python producer (:mod:`~hotline_kpi.ingest.dead_letters`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from prometheus_client import Gauge

from hotline_kpi.config import ConfigError, KafkaCredentials, KafkaSettings
from hotline_kpi.errors import SourceError
from hotline_kpi.ingest.decode import Record
from hotline_kpi.ingest.kafka import POLL_TIMEOUT_MS, unreachable
from hotline_kpi.ingest.sources import EMPTY, Batch

log = logging.getLogger(__name__)
# librdkafka's own lines go through the "kafka" logger, so the command line's rules for
# kafka-python apply to them too: shown with -v, else only errors, each once a minute.
LIBRDKAFKA_LOG = logging.getLogger("kafka.librdkafka")

POLL_TIMEOUT_S = POLL_TIMEOUT_MS / 1000
REPEAT_WINDOW_S = 60.0  # a client error that recurs (a broker away) is logged once a minute


def consumer_config(kafka: KafkaSettings, credentials: KafkaCredentials) -> dict[str, Any]:
    """librdkafka connection settings (servers, TLS and SASL) mapped from the settings that
    kafka-python's :func:`~hotline_kpi.ingest.kafka.client_config` reads, secrets passed in."""
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol.lower(),
        # A broker back after a restart is seen within a second (kafka-python: the same).
        "reconnect.backoff.max.ms": 1000,
    }
    if kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        if kafka.sasl_mechanism is None or kafka.sasl_username is None:
            raise ConfigError(
                "kafka.sasl_mechanism and kafka.sasl_username are needed for "
                f"security_protocol {kafka.security_protocol}"
            )
        config.update(
            {
                "sasl.mechanism": kafka.sasl_mechanism,
                "sasl.username": kafka.sasl_username,
                "sasl.password": credentials.sasl_password,
            }
        )
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        for key, name in (
            ("ssl_cafile", "ssl.ca.location"),
            ("ssl_certfile", "ssl.certificate.location"),
            ("ssl_keyfile", "ssl.key.location"),
        ):
            value = getattr(kafka, key)
            if value is not None:
                config[name] = str(value)
        if credentials.ssl_password:
            config["ssl.key.password"] = credentials.ssl_password
    return config


class ConfluentKafkaSource:
    """A topic read by one member of a consumer group with confluent-kafka, resuming from the
    store's offsets."""

    def __init__(
        self,
        kafka: KafkaSettings,
        config: Mapping[str, Any],
        stored: Callable[[str], Mapping[int, int]],
        *,
        lag: Gauge | None = None,
        max_records: int = 10_000,
        stop: threading.Event | None = None,
    ) -> None:
        """Join ``kafka.group`` on ``kafka.topic`` with the librdkafka ``config`` (see
        :func:`consumer_config`); ``stored`` gives the store's positions of a source name,
        ``lag`` is the per-partition lag gauge. A broker that does not answer within
        ``kafka.connect_timeout_seconds`` is a :class:`SourceError`."""
        self.kafka = kafka
        self.topic = kafka.topic
        self.stored = stored
        self.lag = lag
        self.max_records = max_records
        self.stop = stop if stop is not None else threading.Event()
        self._owned: dict[int, int | None] = {}  # partition -> next offset, as in the store
        self._lag_labels: set[tuple[str, str]] = set()
        self._logged: dict[int, float] = {}  # error code -> when last logged
        self._fatal: KafkaError | None = None
        self._connected = False  # until then a failed attempt ends in SourceError, not a log line
        self.consumer = Consumer(
            {
                **config,
                "group.id": kafka.group,
                # The store holds the offsets: librdkafka neither commits nor stores them.
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": kafka.session_timeout_ms,
                "max.partition.fetch.bytes": 8 * 1024 * 1024,
                # A topic created after joining is assigned at the next refresh (10 s, not 5 min).
                "topic.metadata.refresh.interval.ms": 10_000,
                "error_cb": self._client_error,
                "logger": LIBRDKAFKA_LOG,
            }
        )
        try:
            # librdkafka connects lazily and retries for ever: ask for the topic's metadata to
            # fail at start-up with one line, as kafka-python's bootstrap does.
            self.consumer.list_topics(self.topic, timeout=kafka.connect_timeout_seconds)
            self._connected = True
            self.consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked)
        except KafkaException as exc:
            self.consumer.close()
            raise unreachable(kafka, exc) from None

    @property
    def name(self) -> str:
        """``kafka:TOPIC``: the key of the topic's offsets in the store."""
        return f"kafka:{self.topic}"

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each assigned partition at the next offset the store holds for it."""
        stored = self.stored(self.name)
        for tp in partitions:
            offset = stored.get(tp.partition)
            tp.offset = OFFSET_BEGINNING if offset is None else offset
            self._owned[tp.partition] = offset
        consumer.assign(partitions)
        log.info(
            "partitions assigned: %s",
            {tp.partition: stored.get(tp.partition, "beginning") for tp in partitions},
        )

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Revoked or lost (on_lost defaults to this): batches are committed before the next
        # poll, so none is in hand; librdkafka drops the messages fetched for them.
        self.forget([tp.partition for tp in partitions])
        log.info("partitions revoked: %s", sorted(tp.partition for tp in partitions))

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: no longer ours, and no lag shown for them."""
        for partition in partitions:
            self._owned.pop(partition, None)
            labels = (self.topic, str(partition))
            if labels in self._lag_labels and self.lag is not None:
                self.lag.remove(*labels)
            self._lag_labels.discard(labels)

    def _client_error(self, error: KafkaError) -> None:
        """librdkafka's error callback: a broker away or a refused login is retried by the
        client (logged once a minute); a fatal error ends ``run`` at the next poll."""
        if error.fatal():
            self._fatal = error
            return
        now = time.monotonic()
        if (
            self._connected
            and now - self._logged.get(error.code(), -REPEAT_WINDOW_S) >= REPEAT_WINDOW_S
        ):
            self._logged[error.code()] = now
            log.warning("Kafka unavailable (%s); retrying", error.str())

    def poll(self) -> Batch:
        """The messages ready now (up to ``max_records``), or the first to arrive within the
        poll timeout and those behind it, fenced by the offsets they were read from; an empty
        batch while the broker is away (librdkafka reconnects by itself)."""
        messages = self.consumer.consume(self.max_records, 0)
        if not messages:
            messages = self.consumer.consume(1, POLL_TIMEOUT_S)
            if messages and self.max_records > 1:
                messages.extend(self.consumer.consume(self.max_records - 1, 0))
        if self._fatal is not None:
            raise SourceError(f"Kafka client failed: {self._fatal.str()}")
        self._update_lag()
        return self._batch(messages) if messages else EMPTY

    def _batch(self, messages: Sequence[Message]) -> Batch:
        records: list[Record] = []
        positions: dict[int, int] = {}
        owned = self._owned
        for message in messages:
            error = message.error()
            if error is not None:
                self._client_error(error)
                continue
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None or partition not in owned:
                continue  # fetched before a revocation: its new owner reads it
            position = offset + 1
            records.append((message.value() or b"", partition, position))
            positions[partition] = position
        if not positions:
            return EMPTY
        expected = {partition: owned.get(partition) for partition in positions}
        return Batch(records, positions, expected)

    def owned(self) -> Collection[int]:
        """The partitions assigned to this member now."""
        return set(self._owned)

    def commit(self, batch: Batch) -> None:
        """Remember the committed offsets; write them to Kafka too, for lag tools only."""
        self._owned.update(batch.positions)
        try:
            self.consumer.commit(
                offsets=[TopicPartition(self.topic, p, o) for p, o in batch.positions.items()],
                asynchronous=True,
            )
        except KafkaException as exc:
            log.debug("Kafka offset commit for lag tools failed: %s", exc)

    def rewind(self, batch: Batch) -> None:
        """Another consumer owns a partition of ``batch`` now: seek to the stored offsets."""
        stored = self.stored(self.name)
        for partition in batch.positions:
            if partition not in self._owned:
                continue  # revoked meanwhile: nothing to read again
            offset = stored.get(partition)
            try:
                self.consumer.seek(
                    TopicPartition(
                        self.topic, partition, OFFSET_BEGINNING if offset is None else offset
                    )
                )
            except KafkaException as exc:
                # Not fetching it (revoked by a rebalance in progress): its next assignment
                # starts from the store anyway.
                log.info("partition %d not sought to the store (%s)", partition, exc)
                continue
            self._owned[partition] = offset

    def _update_lag(self) -> None:
        if self.lag is None or not self._owned:
            return
        partitions = [TopicPartition(self.topic, p) for p in self._owned]
        try:
            positions = self.consumer.position(partitions)
        except KafkaException:
            return
        for tp in positions:
            watermarks = self.consumer.get_watermark_offsets(tp, cached=True)
            if watermarks is None:
                continue
            lowwater, highwater = watermarks
            # Nothing returned from it yet: it starts at the stored offset, or the beginning.
            position = tp.offset if tp.offset >= 0 else self._owned.get(tp.partition)
            if position is None and lowwater >= 0:
                position = lowwater
            if highwater < 0 or position is None:
                continue
            labels = (self.topic, str(tp.partition))
            self._lag_labels.add(labels)
            self.lag.labels(*labels).set(max(0, highwater - position))

    def close(self) -> None:
        """Leave the group and close the client (nothing is committed)."""
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.debug("closing the consumer: %s", exc)
