"""The live exposition: queue label slots kept in the store, gauges that never run ahead of the
wall clock (SPEC §3 "Now", §4 labels; issue 18)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics.exposition import HotlineMetrics, QueueLabels
from hotline_kpi.metrics.fold import FactThresholds
from hotline_kpi.metrics.store import SqliteStore
from hotline_kpi.pipeline import Pipeline
from tests.conftest import line, make_event

WALL = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> int:
        return epoch_us(self.now)


def process_on(
    path: Path, clock: Clock, *, known: tuple[str, ...] = (), cap: int = 50
) -> tuple[Pipeline, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = HotlineMetrics(registry, QueueLabels(known, cap))
    pipeline = Pipeline(
        SqliteStore(path), FactThresholds.of_seconds(5, 20, 8), metrics, clock=clock
    )
    return pipeline, registry


def feed(pipeline: Pipeline, events: list[dict[str, Any]], start: int = 0) -> None:
    records = [(line(e), 0, start + i + 1) for i, e in enumerate(events)]
    pipeline.process(records, "test", {0: start + len(events)})


def requests(registry: CollectorRegistry, queue: str) -> float:
    found = registry.get_sample_value("hotline_agent_requests_total", {"queue": queue})
    return 0.0 if found is None else found


def queued(call_id: str, queue: str, at: datetime) -> dict[str, Any]:
    return make_event("call.queued", at, call_id=call_id, queue=queue)


def test_queue_label_slots_are_kept_in_the_store_across_restarts_and_processes(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "s.db", Clock(WALL)
    early = WALL - timedelta(days=1)
    first, first_registry = process_on(path, clock, cap=2)
    other, other_registry = process_on(path, clock, cap=2)  # a second process, same store
    feed(first, [queued("a1", "q1", early), queued("a2", "q2", early)])
    # The other process had seen nothing when the first took both slots: "q0" gets none.
    feed(other, [queued("b1", "q0", early), queued("b2", "q2", early)], start=10)
    assert requests(other_registry, "q0") == 0
    assert requests(other_registry, "other") == 1
    assert requests(other_registry, "q2") == 1
    first.store.close()
    restarted, registry = process_on(path, clock, cap=2)
    feed(restarted, [queued("c1", "q0", early), queued("c2", "q1", early)], start=20)
    assert requests(registry, "q1") == 1
    assert requests(registry, "other") == 1
    assert requests(registry, "q0") == 0
    assert restarted.store.queue_labels() == ["q1", "q2"]
    assert requests(first_registry, "q1") == 1


def test_a_configured_queue_list_decides_the_labels_and_takes_no_slot(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.db", Clock(WALL)
    early = WALL - timedelta(days=1)
    listed, registry = process_on(path, clock, known=("vip", "billing"), cap=1)
    feed(listed, [queued("a", "billing", early), queued("b", "vip", early)])
    feed(listed, [queued("c", "mystery", early)], start=5)
    assert [requests(registry, q) for q in ("billing", "vip", "other")] == [1, 1, 1]
    assert listed.store.queue_labels() == []


def test_live_gauges_use_the_wall_clock_when_events_run_ahead_of_it(tmp_path: Path) -> None:
    """SPEC §3: "now" is the latest accepted ts, but the gauges that compare with the present
    use the smaller of "now" and the wall clock: an event 3 minutes ahead (within the allowed
    clock skew) must not date the last event or age the callers on hold in the future."""
    clock = Clock(WALL)
    pipeline, registry = process_on(tmp_path / "s.db", clock)
    feed(
        pipeline,
        [
            queued("w1", "vip", WALL - timedelta(seconds=60)),
            queued("w2", "vip", WALL + timedelta(seconds=120)),  # not waiting yet at the present
            make_event("call.offered", WALL + timedelta(seconds=180), call_id="ahead"),
        ],
    )
    assert pipeline.watermark == epoch_us(WALL + timedelta(seconds=180))  # "now" is unchanged

    def gauge(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert gauge("hotline_last_event_timestamp_seconds") == WALL.timestamp()
    assert gauge("hotline_calls_waiting", queue="vip") == 1
    assert gauge("hotline_oldest_wait_seconds", queue="vip") == 60
    clock.now = WALL + timedelta(seconds=600)  # the wall clock passes the events
    later = WALL + timedelta(seconds=200)
    feed(pipeline, [make_event("call.offered", later, call_id="x")], 5)
    assert gauge("hotline_last_event_timestamp_seconds") == later.timestamp()
    assert gauge("hotline_calls_waiting", queue="vip") == 2
    assert gauge("hotline_oldest_wait_seconds", queue="vip") == 260


def test_a_restarted_process_gauges_waiting_callers_against_the_wall_clock(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.db", Clock(WALL)
    first, _ = process_on(path, clock)
    feed(
        first,
        [
            queued("w1", "vip", WALL - timedelta(seconds=30)),
            make_event("call.offered", WALL + timedelta(seconds=240), call_id="ahead"),
        ],
    )
    first.store.close()
    _, registry = process_on(path, clock)
    assert registry.get_sample_value("hotline_oldest_wait_seconds", {"queue": "vip"}) == 30
    assert registry.get_sample_value("hotline_last_event_timestamp_seconds") == WALL.timestamp()
