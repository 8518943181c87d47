"""The monthly export: month boundaries in any zone, exact ratios, no data as null."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline_kpi.config import load_settings
from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics.export import Report, kpi, month_bounds, parse_month
from hotline_kpi.metrics.fold import Thresholds
from hotline_kpi.metrics.store import SqliteStore
from hotline_kpi.pipeline import Pipeline, Tally
from tests.conftest import line, make_event

ZONES = ["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    zone_name=st.sampled_from(ZONES),
    month=st.sampled_from(["2026-01", "2026-03", "2026-10", "2026-11", "2026-12"]),
    offsets=st.lists(st.integers(-7200, 7200), min_size=1, max_size=12),
)
def test_calls_around_local_midnight_fall_in_the_right_month(
    zone_name: str, month: str, offsets: list[int], tmp_path_factory: object
) -> None:
    zone = ZoneInfo(zone_name)
    year, number = parse_month(month)
    # The last local midnight of the month, and calls up to two hours either side of it.
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    events = []
    expected_in_month = 0
    for index, offset in enumerate(offsets):
        queued = following + timedelta(seconds=offset) + timedelta(microseconds=index)
        expected_in_month += queued.astimezone(zone).strftime("%Y-%m") == month
        events.append(
            make_event(
                "call.queued",
                queued.astimezone(ZoneInfo("UTC")),
                call_id=f"c{index}",
                queue="billing",
            )
        )
    path = Path(str(tmp_path_factory.mktemp("b"))) / "s.db"  # type: ignore[attr-defined]
    store = SqliteStore(path)
    pipeline = Pipeline(store, Thresholds.of_seconds(5, 20, 8), clock=lambda: 1 << 62)
    pipeline.process([(line(e), 0, i) for i, e in enumerate(events)], "t", {}, Tally())
    report = Report(store, load_settings(None, timezone=zone_name)).month(month)
    store.close()
    queued = report["overall"]["manual_connection_rate"]["denominator"]
    assert queued == expected_in_month
    lo, hi = month_bounds(month, zone)
    assert (hi - lo) % (1800 * 10**6) == 0  # whole local days, give or take a DST shift


def test_a_kpi_without_denominator_is_null_and_neither_met_nor_missed() -> None:
    assert kpi(0, 0, 0.9) == {
        "value": None,
        "numerator": 0,
        "denominator": 0,
        "target": 0.9,
        "met": None,
    }
    assert kpi(9, 10, 0.9)["met"] is True
    assert kpi(5, 1000, 0.005, "drop_rate")["met"] is False  # drop rate must stay below
    assert kpi(4, 1000, 0.005, "drop_rate")["met"] is True


def test_month_bounds_are_local_midnights() -> None:
    lo, hi = month_bounds("2026-11", ZoneInfo("Asia/Shanghai"))
    assert lo == epoch_us(datetime.fromisoformat("2026-10-31T16:00:00+00:00"))
    assert hi == epoch_us(datetime.fromisoformat("2026-11-30T16:00:00+00:00"))
