"""Kafka in: the ``run`` consumer as a :class:`~hotline_kpi.ingest.sources.Source` (kafka-python).

The consumer polls a batch, and the pipeline commits the batch's facts together with the next
offset of every partition in one store transaction. On assignment each partition is sought to the
offset in the store (the source of truth), so a crash at any point neither loses nor repeats an
event; re-delivered messages that were produced twice are rejected as duplicates by ``event_id``.
Kafka's own committed offsets are written too, after the store, only for lag tools. Each batch
carries the stored offsets it was read from, so a consumer that lost a partition in a rebalance
cannot commit over its successor (the store's position fence); it seeks to the stored offsets
and reads again.

Secrets are resolved by the composition root and passed in (:class:`KafkaCredentials`). The
dead-letter outbox lives in :mod:`~hotline_kpi.ingest.dead_letters`, the producer of
``simulate --to kafka`` in :mod:`~hotline_kpi.ingest.producer`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata
from prometheus_client import Gauge

from hotline_kpi.config import ConfigError, KafkaCredentials, KafkaSettings
from hotline_kpi.errors import SourceError
from hotline_kpi.ingest.decode import Record
from hotline_kpi.ingest.sources import EMPTY, Batch

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
BROKER_AWAY_WAIT_S = 1.0  # how long to wait before polling a broker that is away again


def client_config(kafka: KafkaSettings, credentials: KafkaCredentials) -> dict[str, Any]:
    """kafka-python connection settings: servers, TLS and SASL, with the secrets passed in."""
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
        config.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=credentials.sasl_password,
        )
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(kafka, key)
            if value is not None:
                config[key] = str(value)
        if credentials.ssl_password:
            config["ssl_password"] = credentials.ssl_password
    return config


def unreachable(kafka: KafkaSettings, exc: Exception) -> SourceError:
    """The one-line error for a broker that cannot be reached or refused the credentials."""
    # A wrong SASL password looks exactly like a dead broker to kafka-python (ENVIRONMENT.md).
    return SourceError(
        f"could not connect or authenticate to Kafka at {kafka.bootstrap_servers} within "
        f"{kafka.connect_timeout_seconds} s ({type(exc).__name__}); check the address, the "
        "security settings and the credentials"
    )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped library
    """Seeks newly assigned partitions to the offsets in the store."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Batches are committed before the next poll, so no batch is in hand here.
        self.source.forget([tp.partition for tp in revoked])
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.source.seek_to_stored(list(assigned))


class KafkaSource:
    """A topic read by one member of a consumer group, resuming from the store's offsets."""

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
        """Join ``kafka.group`` on ``kafka.topic`` with the client ``config``; ``stored`` gives
        the store's positions of a source name, ``lag`` is the per-partition lag gauge, and
        ``stop`` cuts short the wait for a broker that is away."""
        self.kafka = kafka
        self.topic = kafka.topic
        self.stored = stored
        self.lag = lag
        self.max_records = max_records
        self.stop = stop if stop is not None else threading.Event()
        self._owned: dict[int, int | None] = {}  # partition -> next offset, as in the store
        self._lag_labels: set[tuple[str, str]] = set()
        try:
            self.consumer = KafkaConsumer(
                group_id=kafka.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=max_records,
                fetch_max_bytes=64 * 1024 * 1024,
                max_partition_fetch_bytes=8 * 1024 * 1024,
                session_timeout_ms=kafka.session_timeout_ms,
                # Joining before a new topic's metadata arrived assigns nothing until the next
                # refresh (5 min by default); a rebalance follows the refresh.
                metadata_max_age_ms=10_000,
                **config,
            )
            self.consumer.subscribe([self.topic], listener=_Rebalance(self))
        except (KafkaTimeoutError, KafkaError, OSError) as exc:
            raise unreachable(kafka, exc) from None

    @property
    def name(self) -> str:
        """``kafka:TOPIC``: the key of the topic's offsets in the store."""
        return f"kafka:{self.topic}"

    def seek_to_stored(self, assigned: list[TopicPartition]) -> None:
        """Seek each assigned partition to the next offset the store holds for it."""
        stored = self.stored(self.name)
        for tp in assigned:
            offset = stored.get(tp.partition)
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
            self._owned[tp.partition] = offset
        log.info(
            "partitions assigned: %s",
            {tp.partition: stored.get(tp.partition, "beginning") for tp in assigned},
        )

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: no longer ours, and no lag shown for them."""
        for partition in partitions:
            self._owned.pop(partition, None)
            labels = (self.topic, str(partition))
            if labels in self._lag_labels and self.lag is not None:
                self.lag.remove(*labels)
            self._lag_labels.discard(labels)

    def poll(self) -> Batch:
        """The messages polled (up to ``max_records``), fenced by the offsets they were read
        from; an empty batch while the broker is away (the store still knows where each
        partition stands)."""
        try:
            polled = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=self.max_records)
        except KafkaError as exc:
            if not exc.retriable:  # connection errors and timeouts are retriable
                raise
            # The broker is away (a restart, a network blip): nothing was read, so wait and
            # poll again.
            log.warning("Kafka unavailable (%s); retrying", type(exc).__name__)
            self.stop.wait(BROKER_AWAY_WAIT_S)
            return EMPTY
        self._update_lag()
        return self._batch(polled) if polled else EMPTY

    def _batch(self, polled: Mapping[TopicPartition, list[Any]]) -> Batch:
        records: list[Record] = []
        positions: dict[int, int] = {}
        for tp, messages in polled.items():
            for message in messages:
                records.append((message.value or b"", tp.partition, message.offset + 1))
            if messages:
                positions[tp.partition] = messages[-1].offset + 1
        expected = {partition: self._owned.get(partition) for partition in positions}
        return Batch(records, positions, expected)

    def owned(self) -> Collection[int]:
        """The partitions assigned to this member now."""
        return set(self._owned)

    def commit(self, batch: Batch) -> None:
        """Remember the committed offsets; write them to Kafka too, for lag tools only."""
        self._owned.update(batch.positions)
        try:
            self.consumer.commit_async(
                {
                    TopicPartition(self.topic, p): OffsetAndMetadata(offset, "", -1)
                    for p, offset in batch.positions.items()
                }
            )
        except KafkaError as exc:
            log.debug("Kafka offset commit for lag tools failed: %s", exc)

    def rewind(self, batch: Batch) -> None:
        """Another consumer owns a partition of ``batch`` now: seek to the stored offsets."""
        self.seek_to_stored([TopicPartition(self.topic, p) for p in batch.positions])

    def _update_lag(self) -> None:
        if self.lag is None:
            return
        for partition in self._owned:
            tp = TopicPartition(self.topic, partition)
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = self.consumer.position(tp, timeout_ms=100)
            except (KafkaError, AssertionError):
                continue
            if position is None:
                continue
            labels = (self.topic, str(partition))
            self._lag_labels.add(labels)
            self.lag.labels(*labels).set(max(0, highwater - position))

    def close(self) -> None:
        """Leave the group and close the client."""
        try:
            self.consumer.close(autocommit=False)
        except KafkaError as exc:
            log.debug("closing the consumer: %s", exc)
