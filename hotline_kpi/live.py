"""A live pipeline, built one way for ``run``, ``demo`` and ``replay``, and the loop that feeds it.

:func:`open_live` makes the store, the metrics and their ``/metrics`` server (with TLS and basic
auth as configured) and the pipeline; the composition root (``hotline_kpi.cli``) calls it with
the secrets it resolved. :func:`consume` feeds the pipeline from any
:class:`~hotline_kpi.ingest.sources.Source`: poll a batch, commit it to the store with its
positions, tell the source, until the source ends or ``stop`` is set.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from hotline_kpi.config import Settings
from hotline_kpi.errors import HotlineError
from hotline_kpi.ingest.callers import CallerKeys
from hotline_kpi.ingest.sources import Source
from hotline_kpi.metrics.exposition import HotlineMetrics, MetricsServer, QueueLabels
from hotline_kpi.metrics.store import SqlStore, StalePositionError, open_store
from hotline_kpi.pipeline import (
    Pipeline,
    Totals,
    key_retention_of,
    max_clock_skew_of,
    rollup_config_of,
    thresholds_of,
)

log = logging.getLogger(__name__)

CALLER_KEY_META = "caller_key_fingerprint"


@dataclass(slots=True)
class LivePipeline:
    """A store, the pipeline into it, and (when served) its metrics and ``/metrics`` server."""

    store: SqlStore
    pipeline: Pipeline
    metrics: HotlineMetrics | None = None
    server: MetricsServer | None = None
    url: str | None = None  # where /metrics is served

    def close(self) -> None:
        """Stop serving and close the store."""
        if self.server is not None:
            self.server.close()
        self.store.close()


def open_live(
    settings: Settings,
    *,
    serve_metrics: bool = True,
    basic_auth: tuple[str, str] | None = None,
    caller_keys: CallerKeys | None = None,
) -> LivePipeline:
    """Open the configured store and build the pipeline into it; with ``serve_metrics``, the
    counters and ``/metrics`` on the configured address, port and certificate, behind
    ``basic_auth`` when given. ``caller_keys`` (SPEC §7) keys the callers of ``call.offered``;
    without it there are no keys and the caller KPIs have no data. The caller closes what it
    gets."""
    store = open_store(settings.store)
    try:
        check_caller_keys(store, caller_keys)
    except BaseException:
        store.close()
        raise
    key = caller_keys.key if caller_keys is not None else None
    if not serve_metrics:
        pipeline = Pipeline(
            store,
            thresholds_of(settings),
            max_clock_skew_us=max_clock_skew_of(settings),
            caller_key=key,
            key_retention_us=key_retention_of(settings),
            rollups=rollup_config_of(settings),
        )
        return LivePipeline(store, pipeline)
    endpoint = settings.metrics
    registry = CollectorRegistry()
    metrics = HotlineMetrics(registry, QueueLabels(settings.queues, settings.max_queues))
    try:
        server = MetricsServer(
            registry,
            endpoint.address,
            endpoint.port,
            certfile=endpoint.certfile,
            keyfile=endpoint.keyfile,
            basic_auth=basic_auth,
        )
    except OSError as exc:
        store.close()
        raise HotlineError(
            f"cannot serve /metrics on {endpoint.address}:{endpoint.port}: {exc.strerror}"
        ) from None
    scheme = "https" if endpoint.certfile is not None else "http"
    url = f"{scheme}://{endpoint.address}:{server.port}/metrics"
    try:
        pipeline = Pipeline(
            store,
            thresholds_of(settings),
            metrics,
            max_clock_skew_us=max_clock_skew_of(settings),
            caller_key=key,
            key_retention_us=key_retention_of(settings),
            rollups=rollup_config_of(settings),
        )
    except BaseException:
        server.close()
        store.close()
        raise
    return LivePipeline(store, pipeline, metrics, server, url)


def check_caller_keys(store: SqlStore, caller_keys: CallerKeys | None) -> None:
    """Say once, at start, what the caller keys of this run can link (SPEC §7): nothing without
    a secret; not the contacts of an earlier secret when it changed (recorded by fingerprint,
    never the secret)."""
    if caller_keys is None:
        log.warning(
            "no caller key secret (HOTLINE_KPI_CALLER_KEY or privacy.caller_key_secret_file): "
            "callers are not keyed, so the repeat contact rate, first contact resolution and "
            "repeat complaint rate have no data"
        )
        return
    stored = store.meta(CALLER_KEY_META)
    if stored is not None and stored != caller_keys.fingerprint:
        log.warning(
            "the caller key secret changed since this store was last written: contacts keyed "
            "with the old secret no longer link to new ones (repeat figures restart)"
        )
    if stored != caller_keys.fingerprint:
        store.set_meta(CALLER_KEY_META, caller_keys.fingerprint)


# Allocations between two young-generation collections while a loop is consuming (Python's
# default is 700). A batch makes a few objects per event and no reference cycles, so the
# default collected thousands of times a replayed month for nothing: 0.7 µs of an event's
# 14-16 µs before the rollups, 1.2-1.5 µs with them at 10,000, 0.03 at 50,000 (issue 17).
GC_YOUNG_THRESHOLD = 50_000


class _Collector:
    """The collector's settings while loops consume, restored when the last one ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loops = 0
        self._threshold = gc.get_threshold()

    @contextmanager
    def few_collections(self) -> Iterator[None]:
        """Start-up objects (modules, models, config) frozen out of the collector's scans,
        and young collections every :data:`GC_YOUNG_THRESHOLD` allocations."""
        with self._lock:
            if self._loops == 0:
                self._threshold = gc.get_threshold()
                gc.freeze()
                gc.set_threshold(GC_YOUNG_THRESHOLD, *self._threshold[1:])
            self._loops += 1
        try:
            yield
        finally:
            with self._lock:
                self._loops -= 1
                if self._loops == 0:
                    gc.set_threshold(*self._threshold)
                    gc.unfreeze()


_COLLECTOR = _Collector()


def consume(
    pipeline: Pipeline,
    source: Source,
    stop: threading.Event | None = None,
    between: Callable[[Totals], None] | None = None,
    *,
    totals: Totals | None = None,
) -> Totals:
    """Feed ``pipeline`` from ``source`` until it ends or ``stop`` is set, and return what it
    counted (added to ``totals`` when given, so that a caller interrupted still has them).

    ``between`` runs after every poll (a dead-letter flush, a view's refresh). Each batch is
    committed or dropped whole; an exception (a crash) leaves the store at the last committed
    batch, from which a new source resumes."""
    totals = totals if totals is not None else Totals()
    stop = stop if stop is not None else threading.Event()
    with _COLLECTOR.few_collections():
        _consume(pipeline, source, stop, between, totals)
    return totals


def _consume(
    pipeline: Pipeline,
    source: Source,
    stop: threading.Event,
    between: Callable[[Totals], None] | None,
    totals: Totals,
) -> None:
    """The loop of :func:`consume`."""
    while not stop.is_set():
        batch = source.poll()
        if batch is None:
            break
        if stop.is_set():
            break  # a signal arrived during the poll: drop the batch in hand, unread
        if batch:
            try:
                outcome = pipeline.process(
                    batch.records,
                    source.name,
                    batch.positions,
                    expected=batch.expected,
                    owned=source.owned(),
                    identities=batch.checkpoints,
                    rejected=batch.rejected,
                    converter_states=batch.converter_states,
                )
            except StalePositionError as exc:
                # Another consumer owns a partition now: forget the batch and read again.
                log.warning("%s; dropping the batch and reading again from the store", exc)
                source.rewind(batch)
            else:
                totals.add(outcome, batch.skipped)
                source.commit(batch)
        if between is not None:
            between(totals)
