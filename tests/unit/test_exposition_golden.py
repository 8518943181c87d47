"""The ``/metrics`` exposition of a fixed batch, byte for byte (SPEC §4 is an output contract).

As prometheus/client_python's ``tests/test_exposition.py`` does: a registry of its own, a fixed
input, the clock patched (counters and histograms expose ``_created`` from ``time.time()``), and
the bytes of ``generate_latest`` compared exactly. Any change of a metric name, label, help
text, bucket, value or order fails here. The batch goes through the decoder and the pure fold
to ``HotlineMetrics.apply``, as the pipeline hands it over after a commit. Re-record
deliberately, after checking the change is intended:

    HOTLINE_KPI_RECORD_GOLDEN=1 .venv/bin/pytest tests/unit/test_exposition_golden.py
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from hotline_kpi.ingest.decode import decode_batch
from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics import catalogue
from hotline_kpi.metrics.exposition import (
    HotlineMetrics,
    ProcessedBatch,
    QueueLabels,
    counter_family,
    timing_family,
)
from hotline_kpi.metrics.fold import Count, Deltas, FactThresholds, Timing, fold_batch
from tests.conftest import line, make_event

GOLDEN = Path(__file__).parent.parent / "golden" / "metrics.prom"
T0 = datetime.fromisoformat("2026-10-15T10:00:00+08:00")
CREATED = 1_790_000_000.25  # what time.time() says while the metrics are made and moved
THRESHOLDS = FactThresholds.of_seconds(5, 20, 8)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def call(call_id: str, queue: str, queued: float, **outcome: Any) -> list[dict[str, Any]]:
    """A queued call, with ``answered``/``abandoned`` seconds, an ``ended`` (s, cause), its
    ``hold`` seconds and a ``wrapped`` time (s)."""
    events = [make_event("call.queued", at(queued), call_id=call_id, queue=queue)]
    if "answered" in outcome:
        events.append(
            make_event(
                "call.answered",
                at(outcome["answered"]),
                call_id=call_id,
                queue=queue,
                agent_id="A1",
            )
        )
    if "abandoned" in outcome:
        events.append(
            make_event("call.abandoned", at(outcome["abandoned"]), call_id=call_id, queue=queue)
        )
    if "ended" in outcome:
        seconds, cause = outcome["ended"]
        hold = {"hold_seconds": outcome["hold"]} if "hold" in outcome else {}
        events.append(make_event("call.ended", at(seconds), call_id=call_id, cause=cause, **hold))
    if "wrapped" in outcome:
        events.append(
            make_event("call.wrapped", at(outcome["wrapped"]), call_id=call_id, agent_id="A1")
        )
    return events


def batch_events() -> list[dict[str, Any]]:
    """One batch that moves every counter and histogram, in two listed queues and one other."""
    return [
        make_event("call.offered", at(0), call_id="c1", caller="13800000001", event_id="o1"),
        *call("c1", "billing", 10, answered=22, ended=(250.5, "customer_hangup")),
        *call("c2", "billing", 30, answered=75.25, ended=(1000, "network_failure")),
        make_event("call.offered", at(40), call_id="c3", caller="13800000003", event_id="o3"),
        *call("c3", "mobile", 50, abandoned=53),
        *call("c4", "mobile", 60, abandoned=120),
        *call("c5", "vip", 70, answered=75, ended=(4000, "transfer"), hold=42.5, wrapped=4030),
        *call("c6", "mobile", 3000),  # still waiting at the end of the batch
        make_event("call.offered", at(80), call_id="c7"),
        make_event("call.ended", at(110), call_id="c7", cause="customer_hangup"),
        # Blocked and left legs (呼损), the second from c1's caller again: a repeat contact.
        make_event("call.blocked", at(90), call_id="c11", queue="billing", reason="queue_full"),
        make_event("call.offered", at(95), call_id="c12", caller="13800000001", event_id="o12"),
        make_event("call.queued", at(100), call_id="c12", queue="mobile"),
        make_event("call.left", at(160), call_id="c12", queue="mobile", reason="timeout"),
        make_event("agent.state", at(5), agent_id="A1", state="ready"),
        make_event("agent.state", at(22), agent_id="A1", state="busy"),
        make_event("agent.state", at(30), agent_id="A2", state="not_ready", reason="lunch"),
        make_event("agent.state", at(40), agent_id="A3", state="wrap_up"),
        make_event("qa.reviewed", at(500), call_id="c1", agent_id="A1", accurate=True),
        make_event(
            "qa.reviewed", at(600), call_id="c2", agent_id="A1", accurate=False, queue="billing"
        ),
        make_event("survey.answered", at(700), call_id="c1", score=9),
        make_event("survey.answered", at(800), call_id="c3", score=4, queue="mobile"),
        make_event("survey.answered", at(900), call_id="c5", score=8),
        make_event(
            "ticket.opened",
            at(300),
            ticket_id="t1",
            due=at(3600).isoformat(),
            kind="complaint",
            call_id="c1",
        ),
        make_event("ticket.closed", at(1800), ticket_id="t1"),
        make_event(
            "ticket.opened", at(310), ticket_id="t2", due=at(2400).isoformat(), kind="fault"
        ),  # open past due at the watermark: settled, late
        make_event(
            "ticket.opened", at(320), ticket_id="t3", due=at(9000).isoformat(), kind="callback"
        ),  # open, not due yet: not settled
        make_event("qa.reviewed", at(3100), call_id="c9", agent_id="A2", accurate=True),
    ]


@pytest.fixture
def frozen_clock() -> Iterator[None]:
    with mock.patch("time.time", return_value=CREATED):
        yield


def exposition() -> bytes:
    registry = CollectorRegistry()
    metrics = HotlineMetrics(registry, QueueLabels(("billing", "mobile"), cap=50))
    records = [(line(event), 0, i) for i, event in enumerate(batch_events())]
    records.append((b'{"event_id": "bad", "type": ', 0, len(records)))
    now = epoch_us(at(100_000))
    items, rejected = decode_batch(records, now)
    # Caller keys come from outside the fold (it holds no secret): c1's and c12's caller match.
    keys = {"o1": "key-1", "o3": "key-3", "o12": "key-1"}
    result = fold_batch(items, {}, {}, THRESHOLDS, None, caller_keys=keys)
    reasons = Counter(rejection.reason.name for rejection in rejected)
    # The wall clock a minute behind the latest event: the gauges use the earlier of the two.
    wall = epoch_us(at(3100 - 60))
    metrics.apply(
        ProcessedBatch(
            result.deltas,
            reasons,
            result.calls.values(),
            result.watermark,
            wall,
            states=result.states,
        )
    )
    metrics.lag.labels("hotline.events", "0").set(12)
    metrics.commit_seconds.observe(0.004)
    return generate_latest(registry)


def test_the_metrics_exposition_of_a_fixed_batch_is_unchanged(frozen_clock: None) -> None:
    got = exposition()
    if os.environ.get("HOTLINE_KPI_RECORD_GOLDEN"):
        GOLDEN.write_bytes(got)
    assert got.decode() == GOLDEN.read_text(encoding="utf-8")


def test_the_golden_exposition_covers_every_metric_family(frozen_clock: None) -> None:
    """Each family of the registry has a sample other than zero in the golden batch: a metric
    added to ``HotlineMetrics`` but left out of the batch would be guarded by name only."""
    text = exposition().decode()
    families = [row.split()[2] for row in text.splitlines() if row.startswith("# TYPE")]
    unmoved = {"hotline_store_commit_failures_total"}  # only a failed commit moves it
    for family in families:
        values = [
            float(row.rsplit(" ", 1)[1])
            for row in text.splitlines()
            if row.startswith(family)
            and not row.startswith(f"{family}_created")
            and "_bucket" not in row
        ]
        assert family in unmoved or any(values), family


def test_every_kind_of_delta_moves_exactly_one_metric_of_its_own() -> None:
    names = [counter_family(count).name for count in Count]
    names += [timing_family(timing).name for timing in Timing]
    assert len(set(names)) == len(Count) + len(Timing)
    value_of = {"queue": "billing", "kind": "complaint", "queue_reason": "", None: ""}
    registry = CollectorRegistry()
    metrics = HotlineMetrics(registry, QueueLabels((), cap=50))
    deltas = Deltas()
    for count in Count:
        if counter_family(count).label == "queue_reason":
            deltas.add_reason(count, "billing", "queue_full")
        else:
            deltas.add(count, value_of[counter_family(count).label])
    for timing in Timing:
        deltas.observe(timing, "billing", 1.5)
    metrics.apply(ProcessedBatch(deltas, {}, (), None))
    for count in Count:
        family = counter_family(count)
        labels = {} if family.label is None else {family.label: value_of[family.label]}
        if family.label == "queue_reason":
            labels = {"queue": "billing", "reason": "queue_full"}
        assert registry.get_sample_value(f"{family.name}_total", labels) == 1, count
    for timing in Timing:
        name = f"{timing_family(timing).name}_sum"
        assert registry.get_sample_value(name, {"queue": "billing"}) == 1.5, timing


def test_the_catalogue_names_only_metrics_that_the_deltas_move() -> None:
    """The recording rules read the catalogue's Prometheus names; each must be a counter or a
    histogram that :class:`HotlineMetrics` makes from the fold's deltas."""
    moved = {f"{counter_family(count).name}_total" for count in Count}
    moved |= {timing_family(timing).name for timing in Timing}
    # A ratio may count a histogram's observations (transfers per handled call).
    moved |= {f"{timing_family(timing).name}_count" for timing in Timing}
    for entry in catalogue.CATALOGUE:
        source = entry.prometheus
        if isinstance(source, catalogue.Counters):
            minus = (source.numerator_minus, source.denominator_minus)
            names = {source.numerator, source.denominator, *(name for name in minus if name)}
        elif isinstance(source, catalogue.Histogram):
            names = {source.name}
        else:
            continue
        assert names <= moved, entry.key
