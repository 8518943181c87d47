"""Two writers on one SQLite store: every batch reads and writes inside one serialised
transaction, so their interleaving gives what one writer would have stored (SPEC §3, issue 18)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hotline_kpi.errors import StoreError
from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics.exposition import HotlineMetrics, QueueLabels
from hotline_kpi.metrics.fold import FactThresholds
from hotline_kpi.metrics.store import BatchWrite, SqliteStore, WriterConflictError
from hotline_kpi.pipeline import BatchOutcome, Pipeline
from tests.conftest import line, make_event
from tests.support.sql import sqlite_rows

T0 = datetime.fromisoformat("2026-10-10T10:00:00+08:00")
NOW = epoch_us(T0 + timedelta(days=30))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pipeline_on(path: Path) -> Pipeline:
    return Pipeline(SqliteStore(path), FactThresholds.of_seconds(5, 20, 8), clock=lambda: NOW)


def feed(pipeline: Pipeline, source: str, events: list[dict[str, Any]]) -> BatchOutcome:
    records = [(line(e), 0, i + 1) for i, e in enumerate(events)]
    return pipeline.process(records, source, {0: len(events)})


def interleave_inside(
    pipeline: Pipeline, other: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> list[threading.Thread]:
    """Run ``other`` in a thread once ``pipeline`` has read its call facts, and give it time to
    commit before ``pipeline`` writes: the interleaving that lost updates when reads ran outside
    the write transaction. (Serialised writers make ``other`` wait for our commit instead.)"""
    store = pipeline.store
    original = store.overdue_tickets  # read after seen() and load()
    threads: list[threading.Thread] = []

    def overdue_then_race(*args: Any, **kwargs: Any) -> Any:
        if not threads:
            thread = threading.Thread(target=other)
            threads.append(thread)
            thread.start()
            thread.join(timeout=1.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "overdue_tickets", overdue_then_race)
    return threads


def test_a_call_split_between_two_writers_keeps_every_fact_and_counts_duplicates_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "shared.db"
    first, second = pipeline_on(path), pipeline_on(path)
    # A mis-keyed producer: one call's events reach both writers, and one event reaches both.
    queued = make_event("call.queued", at(0), call_id="c1", queue="billing")
    answered = make_event("call.answered", at(8), call_id="c1", queue="billing", agent_id="A1")
    ended = make_event("call.ended", at(300), call_id="c1", cause="network_failure")
    tallies: dict[str, BatchOutcome] = {}

    def second_writer() -> None:
        tallies["second"] = feed(second, "even", [ended, queued])

    threads = interleave_inside(first, second_writer, monkeypatch)
    tallies["first"] = feed(first, "odd", [queued, answered])
    for thread in threads:
        thread.join(timeout=30)
    assert threads and not threads[0].is_alive()

    store = SqliteStore(path)
    (call,) = sqlite_rows(store, "SELECT outcome, agent_id, ended_at, cause, queued_at FROM calls")
    assert call == (1, "A1", epoch_us(at(300)), "network_failure", epoch_us(at(0)))
    accepted = tallies["first"].accepted + tallies["second"].accepted
    duplicates = tallies["first"].rejected["duplicate"] + tallies["second"].rejected["duplicate"]
    assert (accepted, duplicates) == (3, 1)
    assert sqlite_rows(store, "SELECT COUNT(*) FROM seen_events") == [(3,)]
    assert store.watermark() == epoch_us(at(300))


def test_a_writer_folds_on_the_watermark_another_writer_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ticket is settled as overdue by the latest "now" in the store, not by a stale copy."""
    path = tmp_path / "shared.db"
    first, second = pipeline_on(path), pipeline_on(path)
    feed(first, "a", [make_event("call.offered", at(0), call_id="c0")])
    feed(second, "b", [make_event("call.offered", at(7200), call_id="c9")])  # "now" moves on
    opened = make_event(
        "ticket.opened", at(10), ticket_id="t1", due=at(3600).isoformat(), kind="fault"
    )
    feed(first, "a", [opened])
    store = SqliteStore(path)
    # Due an hour after opening, before the store's "now" (two hours): settled and overdue.
    assert sqlite_rows(store, "SELECT counted FROM tickets") == [(1,)]
    assert first.watermark == epoch_us(at(7200))


def test_a_writer_that_cannot_get_the_lock_fails_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SqliteStore(path, lock_timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError) as failed:
            store.commit(BatchWrite(source="x", positions={0: 1}))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(failed.value)
    assert "\n" not in message
    assert message == f"store {path} is locked: another writer held it for more than 0.2 s"
    store.commit(BatchWrite(source="x", positions={0: 1}))  # free again: the batch goes in
    assert store.positions("x") == {0: 1}


def test_store_writes_outside_a_batch_are_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    with pytest.raises(RuntimeError, match="open batch"):
        store.write(BatchWrite(source="x", positions={0: 1}))
    assert store.positions("x") == {}


def test_a_batch_another_writer_deadlocked_is_folded_again_and_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    pipeline = Pipeline(
        SqliteStore(tmp_path / "s.db"),
        FactThresholds.of_seconds(5, 20, 8),
        HotlineMetrics(registry, QueueLabels((), 50)),
        clock=lambda: NOW,
    )
    store = pipeline.store
    original = store.write
    attempts: list[int] = []

    def deadlocked_once(batch: BatchWrite) -> None:
        attempts.append(len(batch.calls))
        if len(attempts) == 1:
            raise WriterConflictError("store commit failed: deadlock detected")
        original(batch)

    monkeypatch.setattr(store, "write", deadlocked_once)
    tally = feed(pipeline, "a", [make_event("call.queued", at(0), call_id="c1", queue="vip")])
    assert attempts == [1, 1]
    assert tally.accepted == 1
    assert registry.get_sample_value("hotline_agent_requests_total", {"queue": "vip"}) == 1
    assert registry.get_sample_value("hotline_store_commit_failures_total") == 0
    assert sqlite_rows(store, "SELECT call_id FROM calls") == [("c1",)]


def test_a_batch_that_keeps_conflicting_fails_after_three_attempts_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipeline_on(tmp_path / "s.db")
    attempts: list[BatchWrite] = []

    def always(batch: BatchWrite) -> None:
        attempts.append(batch)
        raise WriterConflictError("store commit failed: deadlock detected")

    monkeypatch.setattr(pipeline.store, "write", always)
    with pytest.raises(WriterConflictError):
        feed(pipeline, "a", [make_event("call.queued", at(0), call_id="c1", queue="vip")])
    assert len(attempts) == 3
    assert pipeline.store.positions("a") == {}


def test_a_writer_whose_thresholds_another_changed_stops_with_one_line(tmp_path: Path) -> None:
    # Review of issue 18: a second process starting with another S or T re-derived the stored
    # fact bits while the first kept folding with its own, and the exports read a mix.
    path = tmp_path / "s.db"
    first = pipeline_on(path)
    feed(first, "a", [make_event("call.queued", at(0), call_id="c1", queue="vip")])
    Pipeline(SqliteStore(path), FactThresholds.of_seconds(5, 30, 8), clock=lambda: NOW)
    with pytest.raises(
        StoreError,
        match=r"other thresholds \(short abandon 5 s, service level 30 s, "
        r"blocked_are_requests True\)",
    ):
        feed(first, "a", [make_event("call.queued", at(1), call_id="c2", queue="vip")])


@pytest.mark.parametrize("json_each", [True, False])
def test_seen_ids_are_written_in_one_statement_whatever_they_hold(
    tmp_path: Path, json_each: bool
) -> None:
    """The batch's event ids go to ``seen_events`` as one JSON array (or one row each where
    SQLite has no JSON functions): quotes, backslashes, non-ASCII and long ids come back
    exactly, and an id seen before is not written twice."""
    store = SqliteStore(tmp_path / "seen.db")
    store._json_each = json_each
    ids = ['a"b', "c\\d", "日本😀", "x" * 128, "e-1", "é\u00a0"]
    with store.batch():
        store.write(BatchWrite(seen=set(ids)))
    with store.batch():
        store.write(BatchWrite(seen={"e-1", "new"}))
    assert store.seen([*ids, "new", "missing"]) == {*ids, "new"}
    rows = store._db.execute("SELECT COUNT(*) FROM seen_events").fetchone()
    assert rows == (len(ids) + 1,)
