"""The dead-letter outbox: the store's rejected events published to a Kafka topic afterwards.

Rejected events go to the store's ``rejected`` table in their batch's transaction; this publisher
sends them from there between batches (reason and origin in headers) and marks each one the topic
acknowledged, so a slow or absent dead-letter topic can neither lose a rejection nor stop the
stream: a topic that does not exist is reported once, looked up again now and then, and sent to
only once it exists; every wait on the producer is bounded.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, UnknownTopicOrPartitionError, for_code
from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

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


class Outbox(Protocol):
    """The store's side of the outbox: rejected rows not yet on the topic, and marking them."""

    def undelivered_rejections(self, limit: int) -> Sequence[tuple[Any, ...]]:
        """Up to ``limit`` rows (id, source, partition, position, reason, event_id, type,
        detail, payload) not yet on the topic, oldest first."""
        ...

    def mark_dead_lettered(self, ids: Sequence[int]) -> None:
        """These rows are on the topic now."""
        ...

    def undelivered_count(self) -> int:
        """How many rows are not yet on the topic."""
        ...


class DeadLetterPublisher:
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
        topic: str,
        outbox: Outbox,
        registry: CollectorRegistry,
        config: dict[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.store = outbox
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
            self.outbox.set(self.store.undelivered_count())

    def _send(self) -> None:
        rows = self.store.undelivered_rejections(DEAD_LETTER_SLICE)
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
            self.store.mark_dead_lettered(delivered)

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
