"""The pipeline on a SQLite store: counters move once, after the commit, never on duplicates."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hotline_kpi.errors import StoreError
from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics.exposition import HotlineMetrics, MetricsServer, QueueLabels
from hotline_kpi.metrics.fold import TICKET_DUE, TICKET_ON_TIME, FactThresholds, TicketFact
from hotline_kpi.metrics.store import BatchWrite, SqliteStore
from hotline_kpi.pipeline import BatchOutcome, Pipeline
from tests.conftest import line, make_event
from tests.support.sql import sqlite_rows

T0 = datetime.fromisoformat("2026-10-31T23:59:50+08:00")
NOW = epoch_us(T0 + timedelta(days=30))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def harness(tmp_path: Path) -> Callable[..., Any]:
    """Factory: a pipeline with metrics on a fresh registry over a store file."""

    def make(
        path: Path = tmp_path / "s.db", known: tuple[str, ...] = (), cap: int = 50
    ) -> tuple[Pipeline, HotlineMetrics, CollectorRegistry]:
        registry = CollectorRegistry()
        metrics = HotlineMetrics(registry, QueueLabels(known, cap))
        pipeline = Pipeline(
            SqliteStore(path), FactThresholds.of_seconds(5, 20, 8), metrics, clock=lambda: NOW
        )
        return pipeline, metrics, registry

    return make


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def feed(pipeline: Pipeline, events: list[dict[str, Any]], start: int = 0) -> BatchOutcome:
    records = [(line(e), 0, start + i + 1) for i, e in enumerate(events)]
    return pipeline.process(records, "test", {0: start + len(events)})


def a_call(call_id: str, queue: str = "billing", wait: float = 12) -> list[dict[str, Any]]:
    return [
        make_event("call.offered", at(0), call_id=call_id, caller="13911112222"),
        make_event("call.queued", at(1), call_id=call_id, queue=queue),
        make_event("call.answered", at(1 + wait), call_id=call_id, queue=queue, agent_id="A1"),
        make_event("call.ended", at(200), call_id=call_id, cause="network_failure"),
    ]


def test_duplicates_never_move_a_counter(harness: Callable[..., Any]) -> None:
    pipeline, _, registry = harness()
    events = a_call("c1")
    tally = feed(pipeline, events + events[:2])
    tally2 = feed(pipeline, events, start=10)
    assert (tally.accepted, dict(tally.rejected)) == (4, {"duplicate": 2})
    assert (tally2.accepted, dict(tally2.rejected)) == (0, {"duplicate": 4})
    assert value(registry, "hotline_agent_answered_total", queue="billing") == 1
    assert value(registry, "hotline_calls_dropped_total", queue="billing") == 1
    assert value(registry, "hotline_answered_within_threshold_total", queue="billing") == 1
    assert value(registry, "hotline_calls_offered_total") == 1
    assert value(registry, "hotline_events_total", type="call.queued") == 1
    assert value(registry, "hotline_events_rejected_total", reason="duplicate") == 6
    assert value(registry, "hotline_answer_wait_seconds_count", queue="billing") == 1
    assert value(registry, "hotline_answer_wait_seconds_sum", queue="billing") == 12


def test_rejections_are_counted_by_reason_and_the_stream_goes_on(
    harness: Callable[..., Any],
) -> None:
    pipeline, _, registry = harness()
    bad = [b"{oops", b"[]", b'{"type": "call.exploded"}']
    records = [(raw, 0, i + 1) for i, raw in enumerate(bad)]
    records += [(line(e), 0, 10 + i) for i, e in enumerate(a_call("c2"))]
    outcome = pipeline.process(records, "test", {0: 13})
    assert outcome.accepted == 4
    for reason in ("invalid_json", "not_an_object", "unknown_type"):
        assert value(registry, "hotline_events_rejected_total", reason=reason) == 1
    assert value(registry, "hotline_events_rejected_total", reason="wrong_type") == 0
    stored = pipeline.store.rejection_counts()
    assert stored == {"invalid_json": 1, "not_an_object": 1, "unknown_type": 1}


def test_a_failed_commit_moves_no_counter_and_stores_nothing(
    harness: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, _, registry = harness()
    store = pipeline.store
    original = store._sql_call_upsert
    monkeypatch.setattr(store, "_sql_call_upsert", "INSERT INTO no_such_table VALUES (?)")
    with pytest.raises(StoreError, match="store commit failed"):
        feed(pipeline, a_call("c3"))
    assert value(registry, "hotline_agent_requests_total", queue="billing") == 0
    assert value(registry, "hotline_store_commit_failures_total") == 1
    assert store.positions("test") == {}
    assert sqlite_rows(store, "SELECT COUNT(*) FROM calls") == [(0,)]
    monkeypatch.setattr(store, "_sql_call_upsert", original)
    feed(pipeline, a_call("c3"))  # the source re-delivers the batch: counted once
    assert value(registry, "hotline_agent_requests_total", queue="billing") == 1
    assert store.positions("test") == {0: 4}


def test_a_restarted_pipeline_resumes_from_the_store(
    harness: Callable[..., Any], tmp_path: Path
) -> None:
    pipeline, _, _ = harness()
    feed(pipeline, a_call("c4")[:2])
    pipeline.store.close()
    restarted, _, registry = harness()
    assert restarted.store.positions("test") == {0: 2}
    feed(restarted, a_call("c4")[2:], start=2)
    # The call's earlier facts came from the store; only the new facts move the new counters.
    assert value(registry, "hotline_agent_requests_total", queue="billing") == 0
    assert value(registry, "hotline_agent_answered_total", queue="billing") == 1
    (call,) = sqlite_rows(restarted.store, "SELECT queue, outcome FROM calls WHERE call_id = 'c4'")
    assert call == ("billing", 1)


def test_queue_labels_are_capped_and_unknown_names_become_other(
    harness: Callable[..., Any], tmp_path: Path
) -> None:
    pipeline, _, registry = harness(tmp_path / "a.db", cap=2)
    for index, queue in enumerate(["q1", "q2", "q3", "q1"]):
        feed(pipeline, a_call(f"x{index}", queue=queue), start=index * 10)
    assert value(registry, "hotline_agent_requests_total", queue="q1") == 2
    assert value(registry, "hotline_agent_requests_total", queue="other") == 1
    known, _, known_registry = harness(tmp_path / "b.db", known=("billing",))
    feed(known, a_call("y1", queue="billing") + a_call("y2", queue="mystery"))
    assert value(known_registry, "hotline_agent_requests_total", queue="billing") == 1
    assert value(known_registry, "hotline_agent_requests_total", queue="other") == 1
    assert value(known_registry, "hotline_agent_requests_total", queue="mystery") == 0


def test_callers_on_hold_are_gauged_per_queue(harness: Callable[..., Any]) -> None:
    pipeline, _, registry = harness()
    feed(
        pipeline,
        [
            make_event("call.queued", at(0), call_id="w1", queue="vip"),
            make_event("call.queued", at(30), call_id="w2", queue="vip"),
            make_event("call.offered", at(90), call_id="later"),
        ],
    )
    assert value(registry, "hotline_calls_waiting", queue="vip") == 2
    assert value(registry, "hotline_oldest_wait_seconds", queue="vip") == 90
    feed(pipeline, [make_event("call.abandoned", at(95), call_id="w1", queue="vip")], start=5)
    assert value(registry, "hotline_calls_waiting", queue="vip") == 1
    assert value(registry, "hotline_oldest_wait_seconds", queue="vip") == 65


def test_metrics_are_served_over_http_with_basic_auth(harness: Callable[..., Any]) -> None:
    pipeline, _, registry = harness()
    feed(pipeline, a_call("h1"))
    server = MetricsServer(registry, "127.0.0.1", 0, basic_auth=("prom", "s3cret"))
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url, timeout=5)
        assert denied.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": "Basic cHJvbTpzM2NyZXQ="})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        assert b'hotline_agent_answered_total{queue="billing"} 1.0' in body
        assert b'hotline_events_rejected_total{reason="conflict"} 0.0' in body
    finally:
        server.close()


def test_a_stale_overdue_settle_never_overwrites_a_newer_close(tmp_path: Path) -> None:
    """A consumer that lost a partition may still settle one of its tickets as overdue."""
    store = SqliteStore(tmp_path / "race.db")
    due = epoch_us(at(60))
    open_ticket = TicketFact("t1", epoch_us(at(0)), due, "fault", "vip", None, None, 0)
    store.commit(BatchWrite(tickets=[open_ticket], ticket_partitions={"t1": 3}))
    closed = TicketFact(
        "t1",
        epoch_us(at(0)),
        due,
        "fault",
        "vip",
        None,
        epoch_us(at(50)),
        TICKET_DUE | TICKET_ON_TIME,
    )
    store.commit(BatchWrite(tickets=[closed]))  # the successor closed it, on time
    stale = TicketFact("t1", epoch_us(at(0)), due, "fault", "vip", None, None, TICKET_DUE)
    store.commit(BatchWrite(overdue=[(stale, 0)]))
    assert sqlite_rows(store, "SELECT closed_at, counted, partition FROM tickets") == [
        (epoch_us(at(50)), TICKET_DUE | TICKET_ON_TIME, 3)
    ]
    assert store.overdue_tickets(epoch_us(at(100)), partitions={3}) == []


def test_metrics_can_be_served_over_tls(harness: Callable[..., Any], tmp_path: Path) -> None:
    import shutil
    import ssl
    import subprocess

    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed to make a test certificate"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pipeline, _, registry = harness()
    feed(pipeline, a_call("tls1"))
    server = MetricsServer(registry, "127.0.0.1", 0, certfile=cert, keyfile=key)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{server.port}/metrics"
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(url.replace("https", "http"), timeout=5)
        # A client that failed the handshake does not stop the server.
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            assert b'hotline_agent_answered_total{queue="billing"} 1.0' in response.read()
    finally:
        server.close()


def test_a_clock_that_runs_ahead_never_becomes_now(harness: Callable[..., Any]) -> None:
    # Issue 18, defect 5: one valid event 23 h ahead became "now", settled every open ticket due
    # within 23 h as late (for good, in the counters) and silenced the "no events" alert.
    pipeline, _, registry = harness()
    wall = datetime.fromtimestamp(NOW // 1_000_000, tz=UTC)
    ticket = make_event(
        "ticket.opened",
        wall - timedelta(hours=1),
        ticket_id="t1",
        due=(wall + timedelta(hours=2)).isoformat(),
    )
    ticket["kind"] = "fault"
    feed(pipeline, [ticket])
    ahead = make_event("call.offered", wall + timedelta(hours=23), call_id="c-ahead")
    tally = feed(pipeline, [ahead], start=1)
    assert tally.rejected == {"future_timestamp": 1}
    assert pipeline.watermark == epoch_us(wall - timedelta(hours=1))
    assert value(registry, "hotline_tickets_due_total", kind="fault") == 0
    # Within the allowed skew (300 s by default) an event is taken in as it is.
    near = make_event("call.offered", wall + timedelta(seconds=299), call_id="c-near")
    assert feed(pipeline, [near], start=2).accepted == 1


def test_the_allowed_clock_skew_is_configuration(tmp_path: Path) -> None:
    wall = datetime.fromtimestamp(NOW // 1_000_000, tz=UTC)
    events = [
        make_event("call.offered", wall + timedelta(seconds=s), call_id=f"c{s}") for s in (1, 61)
    ]
    for skew, accepted in ((0, 0), (60, 1), (300, 2)):
        pipeline = Pipeline(
            SqliteStore(tmp_path / f"s{skew}.db"),
            FactThresholds.of_seconds(5, 20, 8),
            clock=lambda: NOW,
            max_clock_skew_us=skew * 1_000_000,
        )
        assert feed(pipeline, events).accepted == accepted


def test_a_duplicate_or_conflict_keeps_no_phone_number(harness: Callable[..., Any]) -> None:
    # Issue 18, defect 12: ids are masked in every stored rejection, not only in decoding's.
    pipeline, _, _ = harness()
    event = make_event("call.offered", at(0), event_id="13912345678", call_id="139-1234-5678")
    event["caller"] = "13912345678"
    feed(pipeline, [event])
    feed(pipeline, [event], start=1)
    rows = sqlite_rows(pipeline.store, "SELECT event_id, payload, reason FROM rejected")
    assert [row[2] for row in rows] == ["duplicate"]
    assert all("1234" not in f"{row[0]} {row[1]}" for row in rows), rows
