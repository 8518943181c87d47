"""The Prometheus metrics of SPEC §4, fed from the fold's deltas, served on ``/metrics``.

Counters move only by the deltas of a committed batch, so a duplicate or a batch that failed to
commit never moves them. The registry is passed in (no global default registry).
"""

from __future__ import annotations

import base64
import hmac
import logging
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, Literal, assert_never
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from hotline_kpi.ingest.decode import REASONS
from hotline_kpi.ingest.events import EVENT_TYPES, TICKET_KINDS
from hotline_kpi.metrics.fold import UNASSIGNED, US, CallFact, Count, Deltas, StateChange, Timing
from hotline_kpi.metrics.states import STATES

log = logging.getLogger(__name__)

OTHER = "other"

WAIT_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200)
HANDLE_BUCKETS = (30, 60, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 3600)
HOLD_BUCKETS = (0, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600)
# SPEC §4 hotline_agents: reasons beyond this many distinct values are labelled "other".
MAX_STATE_REASONS = 20
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


@dataclass(frozen=True, slots=True)
class Family:
    """A metric of SPEC §4 that the fold's deltas move: its name (a counter's without
    ``_total``), help text, the one label its values are keyed by (None: unlabelled), and a
    histogram's buckets."""

    name: str
    help: str
    label: Literal["queue", "kind", "queue_reason"] | None = "queue"
    buckets: tuple[float, ...] = ()


def counter_family(count: Count) -> Family:
    """The one counter that moves by ``count`` (mypy checks that every member has one)."""
    match count:
        case Count.OFFERED:
            return Family("hotline_calls_offered", "Calls that reached the hotline (IVR).", None)
        case Count.REQUESTS:
            return Family(
                "hotline_agent_requests", "Calls that asked for a human agent (转人工), by queue."
            )
        case Count.ANSWERED:
            return Family("hotline_agent_answered", "Queued calls answered by an agent.")
        case Count.WITHIN_THRESHOLD:
            return Family(
                "hotline_answered_within_threshold", "Queued calls answered within T seconds."
            )
        case Count.ABANDONED:
            return Family("hotline_calls_abandoned", "Queued calls abandoned by the caller.")
        case Count.SHORT_ABANDONED:
            return Family(
                "hotline_calls_short_abandoned", "Abandons after waiting less than S seconds."
            )
        case Count.DROPPED:
            return Family(
                "hotline_calls_dropped", "Answered calls ended by a network or system failure."
            )
        case Count.QA_REVIEWS:
            return Family("hotline_qa_reviews", "Quality reviews of answers.")
        case Count.QA_ACCURATE:
            return Family("hotline_qa_accurate", "Quality reviews that judged the answer accurate.")
        case Count.SURVEYS:
            return Family("hotline_survey_responses", "Satisfaction survey responses.")
        case Count.SATISFIED:
            return Family(
                "hotline_survey_satisfied", "Survey responses at or above the satisfied score."
            )
        case Count.TICKETS_SETTLED:
            return Family(
                "hotline_tickets_due", "Work orders settled (closed, or open past due).", "kind"
            )
        case Count.TICKETS_ON_TIME:
            return Family("hotline_tickets_on_time", "Work orders closed at or before due.", "kind")
        case Count.TRANSFERRED:
            return Family("hotline_calls_transferred", "Answered calls ended by a transfer.")
        case Count.BLOCKED:
            return Family(
                "hotline_calls_blocked",
                "Agent requests that could not enter the queue (无法进等待队列), by reason.",
                "queue_reason",
            )
        case Count.LEFT:
            return Family(
                "hotline_calls_left",
                "Callers who left the queue unanswered without hanging up, by reason.",
                "queue_reason",
            )
        case Count.CONTACTS_KEYED:
            return Family("hotline_contacts_keyed", "Contacts offered with a caller key.", None)
        case Count.REPEAT_CONTACTS:
            return Family(
                "hotline_repeat_contacts",
                "Keyed contacts whose caller had another contact in the repeat window before.",
                None,
            )
        case _:
            assert_never(count)


def timing_family(timing: Timing) -> Family:
    """The one histogram that observes ``timing``, by queue."""
    match timing:
        case Timing.WAIT:
            wait = "Wait from queued to answered."
            return Family("hotline_answer_wait_seconds", wait, buckets=WAIT_BUCKETS)
        case Timing.HANDLE:
            handle = "Handle time from answered to ended."
            return Family("hotline_handle_seconds", handle, buckets=HANDLE_BUCKETS)
        case Timing.HOLD:
            hold = "Time on hold of an answered call that ended."
            return Family("hotline_hold_seconds", hold, buckets=HOLD_BUCKETS)
        case Timing.AFTER_CALL_WORK:
            work = "After-call work (话后处理): from the call's end to its wrap-up."
            return Family("hotline_after_call_work_seconds", work, buckets=HOLD_BUCKETS)
        case _:
            assert_never(timing)


class QueueLabels:
    """Bounded ``queue`` label values (SPEC §4): the configured list if one is given, else the
    first ``cap`` names.

    With a configured list, exactly its names are labels. Without one, the slots go to the first
    names committed to the store (:meth:`SqlStore.assign_queue_labels`, which the pipeline calls
    in the batch's transaction and then hands to :meth:`adopt`), so that a restart or another
    process on the same store labels the same queues. A ``QueueLabels`` no store was ever
    adopted into falls back to the first names this process sees.
    """

    def __init__(self, known: Sequence[str], cap: int) -> None:
        self._known = frozenset(known)
        self._cap = cap
        self._seen: set[str] = set()
        self._from_store = False

    @property
    def cap(self) -> int:
        """How many distinct names get a label of their own (``max_queues``)."""
        return self._cap

    def unlabelled(self, queues: Iterable[str]) -> set[str]:
        """The names among ``queues`` that may still get a slot from the store."""
        if self._known or len(self._seen) >= self._cap:
            return set()
        return {queue for queue in queues if queue not in self._seen and queue != UNASSIGNED}

    def adopt(self, assigned: Sequence[str]) -> None:
        """Take the store's assignment (names in the order they got their slot)."""
        self._from_store = True
        for queue in assigned[: self._cap]:
            self._seen.add(queue)

    def __call__(self, queue: str) -> str:
        """The label value for ``queue``; names beyond the list or the cap become ``other``."""
        if queue == UNASSIGNED:
            return queue
        if self._known:
            return queue if queue in self._known else OTHER
        if queue in self._seen:
            return queue
        if not self._from_store and len(self._seen) < self._cap:
            self._seen.add(queue)
            return queue
        return OTHER


@dataclass(frozen=True, slots=True)
class ProcessedBatch:
    """What the exporter needs to know about a committed batch."""

    deltas: Deltas
    rejections: Mapping[str, int]
    touched_calls: Iterable[CallFact]
    watermark: int | None
    # The wall clock when the batch was processed (epoch µs): the live gauges use the smaller
    # of it and the watermark (SPEC §3 "Now"). None: the watermark alone.
    wall_clock: int | None = None
    states: Sequence[StateChange] = ()  # the agent state changes the batch committed


class HotlineMetrics:
    """Every metric of SPEC §4 plus the monitor's own health, on one registry."""

    def __init__(self, registry: CollectorRegistry, queue_labels: QueueLabels) -> None:
        self.registry = registry
        self.queue_labels = queue_labels
        self._queue = queue_labels
        # One metric per kind of delta, made in the enums' order (the order of /metrics).
        self._labelled_by: dict[Count, Literal["queue", "kind", "queue_reason"] | None] = {}
        self.counters: dict[Count, Counter] = {}
        for count in Count:
            family = counter_family(count)
            labels: tuple[str, ...] = {
                None: (),
                "queue": ("queue",),
                "kind": ("kind",),
                "queue_reason": ("queue", "reason"),
            }[family.label]
            self.counters[count] = Counter(family.name, family.help, labels, registry=registry)
            self._labelled_by[count] = family.label
        self.histograms: dict[Timing, Histogram] = {}
        for timing in Timing:
            family = timing_family(timing)
            self.histograms[timing] = Histogram(
                family.name, family.help, ["queue"], buckets=family.buckets, registry=registry
            )
        self.waiting = Gauge(
            "hotline_calls_waiting",
            "Callers waiting for an agent now.",
            ["queue"],
            registry=registry,
        )
        self.oldest_wait = Gauge(
            "hotline_oldest_wait_seconds",
            "How long the longest-waiting caller has waited (at the latest event time, or the "
            "wall clock if that is earlier).",
            ["queue"],
            registry=registry,
        )
        self.events = Counter(
            "hotline_events", "Accepted events by type.", ["type"], registry=registry
        )
        self.rejected = Counter(
            "hotline_events_rejected",
            "Rejected events by reason.",
            ["reason"],
            registry=registry,
        )
        self.last_event = Gauge(
            "hotline_last_event_timestamp_seconds",
            "Event time of the latest accepted event (the watermark), or the wall clock if that "
            "is earlier.",
            registry=registry,
        )
        self.lag = Gauge(
            "hotline_consumer_lag_messages",
            "Messages behind the end of each partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.agents = Gauge(
            "hotline_agents",
            "Agents whose latest state is `state` (`reason` only for not_ready).",
            ["state", "reason"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "hotline_store_commit_seconds",
            "Time to commit one batch to the store.",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.commit_failures = Counter(
            "hotline_store_commit_failures",
            "Batches whose store commit failed.",
            registry=registry,
        )
        # Pre-create the closed label sets so that rates start from zero, not from absence.
        for event_type in EVENT_TYPES:
            self.events.labels(event_type)
        for reason in REASONS:
            self.rejected.labels(reason)
        for count, label in self._labelled_by.items():
            if label == "kind":
                for kind in TICKET_KINDS:
                    self.counters[count].labels(kind)
        self._waiting: dict[str, dict[str, int]] = {}
        # agent -> its latest state change, by (ts, event_id): order-independent.
        self._agent_states: dict[str, StateChange] = {}
        self._agents_labelled: set[tuple[str, str]] = set()
        self._state_reasons: set[str] = set()
        for state in STATES:
            self.agents.labels(state, "")

    def queue_names(self, deltas: Deltas, calls: Iterable[CallFact]) -> set[str]:
        """The queue names a batch's deltas and touched calls would be labelled with."""
        names = {label for (count, label) in deltas.counts if self._labelled_by[count] == "queue"}
        names.update(label for _, label, _ in deltas.observations)
        names.update(queue for _, queue, _ in deltas.reasons)
        names.update(call.queue for call in calls if call.queue)
        return names

    def apply(self, batch: ProcessedBatch) -> None:
        """Move the counters by a committed batch's deltas and refresh the gauges."""
        deltas = batch.deltas
        for (count, label), amount in deltas.counts.items():
            counter = self.counters[count]
            labelled_by = self._labelled_by[count]
            if labelled_by is None:
                counter.inc(amount)
            elif labelled_by == "queue":
                counter.labels(self._queue(label)).inc(amount)
            else:
                counter.labels(label).inc(amount)
        for (count, queue, reason), amount in deltas.reasons.items():
            self.counters[count].labels(self._queue(queue), reason).inc(amount)
        # One labels() look-up per histogram and queue, not per observation (a few per call).
        children: dict[tuple[Timing, str], Any] = {}
        for timing, queue, seconds in deltas.observations:
            child = children.get((timing, queue))
            if child is None:
                child = children[timing, queue] = self.histograms[timing].labels(self._queue(queue))
            child.observe(seconds)
        self.track_agents(batch.states)
        for event_type, amount in deltas.events.items():
            self.events.labels(event_type).inc(amount)
        for reason, amount in batch.rejections.items():
            self.rejected.labels(reason).inc(amount)
        self.track_waiting(batch.touched_calls, batch.watermark, batch.wall_clock)

    def track_agents(self, changes: Iterable[StateChange]) -> None:
        """Update ``hotline_agents`` from agent state changes (any order: the latest by
        ``ts``, ties by event id, is an agent's state)."""
        changed = False
        for change in changes:
            known = self._agent_states.get(change.agent_id)
            if known is None or (change.ts, change.event_id) > (known.ts, known.event_id):
                self._agent_states[change.agent_id] = change
                changed = True
        if not changed:
            return
        counts: dict[tuple[str, str], int] = {(state, ""): 0 for state in STATES}
        for labels in self._agents_labelled:
            counts[labels] = 0
        for change in self._agent_states.values():
            key = (change.state, self._state_reason(change))
            counts[key] = counts.get(key, 0) + 1
        self._agents_labelled = set(counts)
        for (state, reason), amount in counts.items():
            self.agents.labels(state, reason).set(amount)

    def _state_reason(self, change: StateChange) -> str:
        """The ``reason`` label: empty but for not_ready; beyond 20 distinct reasons ``other``."""
        if change.state != "not_ready" or not change.reason:
            return ""
        if change.reason in self._state_reasons:
            return change.reason
        if len(self._state_reasons) < MAX_STATE_REASONS:
            self._state_reasons.add(change.reason)
            return change.reason
        return OTHER

    def track_waiting(
        self, calls: Iterable[CallFact], watermark: int | None, wall_clock: int | None = None
    ) -> None:
        """Update the callers on hold from the calls a batch touched.

        The gauges that compare with the present use the smaller of the watermark and the wall
        clock (SPEC §3 "Now"): an event stamped a few minutes ahead (a clock running fast, within
        the allowed skew) must not age the waiting callers nor date the last event in the future.
        A caller queued after that present is not waiting yet.
        """
        for call in calls:
            label = self._queue(call.queue or UNASSIGNED)
            if call.waiting and call.queued_at is not None:
                self._waiting.setdefault(label, {})[call.call_id] = call.queued_at
            else:
                for waiting in self._waiting.values():
                    waiting.pop(call.call_id, None)
        if watermark is None:
            return
        present = watermark if wall_clock is None else min(watermark, wall_clock)
        self.last_event.set(present / US)
        # A call that never got an outcome nor an end (a lost event) must not wait forever.
        horizon = present - 4 * 3600 * US
        for label, waiting in self._waiting.items():
            stale = [call_id for call_id, queued_at in waiting.items() if queued_at < horizon]
            for call_id in stale:
                del waiting[call_id]
            queued = [queued_at for queued_at in waiting.values() if queued_at <= present]
            self.waiting.labels(label).set(len(queued))
            oldest = min(queued, default=None)
            self.oldest_wait.labels(label).set(0 if oldest is None else (present - oldest) / US)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that fails the TLS handshake or hangs up is not worth a traceback."""
        log.debug("metrics request from %s failed", client_address, exc_info=True)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def _with_basic_auth(app: Callable[..., Any], user: str, password: str) -> Callable[..., Any]:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="hotline-kpi"')])
            return [b"unauthorized\n"]
        return app(environ, start_response)

    return guarded


class MetricsServer:
    """``/metrics`` over HTTP(S), optionally with basic auth, in a daemon thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        address: str,
        port: int,
        *,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        app: Callable[..., Any] = make_wsgi_app(registry)
        if basic_auth is not None:
            app = _with_basic_auth(app, *basic_auth)
        self._server = make_server(address, port, app, _Server, handler_class=_QuietHandler)
        if certfile is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            # The handshake runs in the request's thread, not in accept(): a client that never
            # speaks TLS cannot stall the server.
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
