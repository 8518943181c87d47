"""The KPI catalogue is sound: its keys, targets, counters and measures exist where used."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from hotline_kpi.config import Targets
from hotline_kpi.metrics.catalogue import (
    CATALOGUE,
    KPI_KEYS,
    MISSION,
    QUEUE_ORDER,
    Counters,
    Direction,
    Histogram,
    Measure,
    kpi,
    met,
    target_of,
)
from hotline_kpi.metrics.exposition import HotlineMetrics, QueueLabels


def test_every_target_key_is_a_configured_target() -> None:
    configured = set(Targets.model_fields)
    assert {entry.target for entry in CATALOGUE if entry.target} == configured
    assert set(MISSION) <= set(KPI_KEYS)


def test_every_counter_a_kpi_is_computed_from_is_exported() -> None:
    registry = CollectorRegistry()
    HotlineMetrics(registry, QueueLabels((), 50))
    names = {metric.name for metric in registry.collect()}
    for entry in CATALOGUE:
        source = entry.prometheus
        if isinstance(source, Counters):
            for counter in (source.numerator, source.denominator, source.numerator_minus,
                            source.denominator_minus):  # fmt: skip
                # A ratio may count a histogram's observations (transfers per handled call).
                family = None if counter is None else counter.removesuffix("_total")
                if family is not None and family.endswith("_count") and family not in names:
                    family = family.removesuffix("_count")
                assert family is None or family in names, counter
        elif isinstance(source, Histogram):
            assert source.name in names


def test_a_kpi_is_a_ratio_of_measure_sums() -> None:
    counts = {Measure.REQUESTS: 100, Measure.SHORT_ABANDONED: 4, Measure.ANSWERED: 90,
              Measure.ABANDONED: 10, Measure.WAIT_US: 1_800_000_000}  # fmt: skip
    assert kpi("manual_connection_rate").value(counts) == (90, 96)
    assert kpi("abandon_rate").value(counts) == (6, 96)
    assert kpi("average_speed_of_answer").value(counts) == (1800.0, 90)
    assert kpi("drop_rate").value({}) == (0, 0)


def test_targets_are_met_in_each_kpis_fixed_direction() -> None:
    assert kpi("drop_rate").direction is Direction.BELOW
    assert met(kpi("drop_rate"), 0.005, 0.005) is False
    assert met(kpi("manual_connection_rate"), 0.9, 0.9) is True
    assert met(kpi("timeliness"), None, 1.0) is None


def test_the_queue_order_lists_catalogue_kpis_once_each() -> None:
    """The reading order of the per-queue tables; each table places the KPIs of issue 14 itself
    (the reports put the blocked rate beside the abandon rate), so the order must only not
    repeat or invent a key."""
    assert len(set(QUEUE_ORDER)) == len(QUEUE_ORDER)
    assert set(QUEUE_ORDER) <= set(KPI_KEYS)


def test_a_target_reads_the_configured_value_under_the_kpis_target_key() -> None:
    targets = Targets(drop_rate=0.01)
    assert target_of(kpi("drop_rate"), targets) == 0.01
    assert target_of(kpi("abandon_rate"), targets) is None
    assert kpi("drop_rate").direction.sign == "<"
    assert kpi("service_level").direction.sign == "≥"


def test_a_rise_is_bad_news_only_for_kpis_where_lower_is_better() -> None:
    worse = {entry.key for entry in CATALOGUE if entry.worse_when_up}
    assert worse == {
        "drop_rate",
        "abandon_rate",
        "blocked_rate",
        "average_speed_of_answer",
        "average_hold_time",
        "repeat_contact_rate",
        "repeat_complaint_rate",
        "not_ready_share",
    }
    assert [entry.key for entry in CATALOGUE if entry.neutral] == [
        "average_handle_time",
        "average_after_call_work",
        "transfer_rate",
        "occupancy",
        "utilisation",
    ]
