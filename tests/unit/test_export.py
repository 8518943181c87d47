"""The monthly export: month boundaries in any zone, exact ratios, no data as null, revision."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from hotline_kpi.config import Targets, load_settings
from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics.catalogue import Measure, kpi
from hotline_kpi.metrics.export import KpiFigures, kpi_entry, month_bounds, parse_month, to_csv
from hotline_kpi.metrics.fold import FactThresholds
from hotline_kpi.metrics.store import SqliteStore, open_store
from hotline_kpi.pipeline import Pipeline
from hotline_kpi.reports import build_report
from hotline_kpi.reports.html import render_html
from hotline_kpi.reports.xlsx import write_xlsx
from tests.conftest import line, make_event
from tests.support.reports import replay_events

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
    pipeline = Pipeline(store, FactThresholds.of_seconds(5, 20, 8), clock=lambda: 1 << 62)
    pipeline.process([(line(e), 0, i) for i, e in enumerate(events)], "t", {})
    report = KpiFigures(store, load_settings(None, timezone=zone_name)).month(month)
    store.close()
    queued = report["overall"]["manual_connection_rate"]["denominator"]
    assert queued == expected_in_month
    lo, hi = month_bounds(month, zone)
    assert (hi - lo) % (1800 * 10**6) == 0  # whole local days, give or take a DST shift


def test_a_kpi_without_denominator_is_null_and_neither_met_nor_missed() -> None:
    connection, drop = kpi("manual_connection_rate"), kpi("drop_rate")
    targets = Targets(manual_connection_rate=0.9, drop_rate=0.005)
    assert kpi_entry(connection, {}, targets) == {
        "value": None,
        "numerator": 0,
        "denominator": 0,
        "target": 0.9,
        "met": None,
    }
    answered = {Measure.REQUESTS: 10, Measure.ANSWERED: 9}
    assert kpi_entry(connection, answered, targets)["met"] is True
    dropped = {Measure.ANSWERED: 1000, Measure.DROPPED: 5}
    assert kpi_entry(drop, dropped, targets)["met"] is False  # drop rate must stay below
    assert kpi_entry(drop, {**dropped, Measure.DROPPED: 4}, targets)["met"] is True


def test_month_bounds_are_local_midnights() -> None:
    lo, hi = month_bounds("2026-11", ZoneInfo("Asia/Shanghai"))
    assert lo == epoch_us(datetime.fromisoformat("2026-10-31T16:00:00+00:00"))
    assert hi == epoch_us(datetime.fromisoformat("2026-11-30T16:00:00+00:00"))


# --- the revision: which figures an export shows ----------------------------------------------

OCTOBER = "2026-10"


def _calls(prefix: str, day: str, answered: int, abandoned: int) -> list[dict[str, Any]]:
    """Calls queued on ``day`` (UTC): some answered after 10 s, some abandoned after 60 s."""
    events = []
    for index in range(answered + abandoned):
        call = f"{prefix}{index}"
        queued = f"{day}T03:{index % 60:02d}:00Z"
        events.append(make_event("call.queued", queued, call_id=call, queue="billing"))
        if index < answered:
            events.append(
                make_event(
                    "call.answered",
                    f"{day}T03:{index % 60:02d}:10Z",
                    call_id=call,
                    queue="billing",
                    agent_id=f"A{index % 3}",
                )
            )
        else:
            events.append(
                make_event(
                    "call.abandoned",
                    f"{day}T03:{index % 60:02d}:59Z",
                    call_id=call,
                    queue="billing",
                )
            )
    return events


def _export(store: Path, month: str = OCTOBER) -> dict[str, Any]:
    opened = open_store(str(store))
    try:
        return KpiFigures(opened, load_settings(None, store=str(store))).export(month)
    finally:
        opened.close()


def test_the_revision_changes_with_the_months_figures_and_only_with_them(tmp_path: Path) -> None:
    month = _calls("c", "2026-10-20", answered=19, abandoned=1) + _calls(
        "d", "2026-10-31", answered=1, abandoned=0
    )
    first = _export(replay_events(month, tmp_path / "a.db"))
    # The same events replayed into another store, later: the same revision.
    again = _export(replay_events(month, tmp_path / "b.db"))
    assert first["revision"] == again["revision"]
    assert re.fullmatch(r"[0-9a-f]{12}", first["revision"])
    assert list(first)[:4] == ["month", "timezone", "as_of", "revision"]

    # Weeks later, late events for October: the abandon rate moves, "now" (as_of) does not.
    late = replay_events(_calls("late", "2026-10-05", answered=0, abandoned=2), tmp_path / "a.db")
    revised = _export(late)
    assert revised["as_of"] == first["as_of"]
    assert revised["overall"]["abandon_rate"]["value"] != first["overall"]["abandon_rate"]["value"]
    assert revised["revision"] != first["revision"]

    # Events of other months (before and after) leave October's figures, and revision, alone.
    other = _calls("sep", "2026-09-12", 3, 3) + _calls("nov", "2026-11-02", 3, 3)
    moved = _export(replay_events(other, tmp_path / "a.db"))
    assert moved["as_of"] != revised["as_of"]  # "now" moved on to November
    assert {k: v for k, v in moved.items() if k not in ("as_of", "revision")} == {
        k: v for k, v in revised.items() if k not in ("as_of", "revision")
    }
    assert moved["revision"] == revised["revision"]


def test_every_format_shows_the_revision(tmp_path: Path) -> None:
    store = replay_events(_calls("c", "2026-10-20", answered=9, abandoned=1), tmp_path / "s.db")
    expected = _export(store)["revision"]
    opened = open_store(str(store))
    try:
        full = build_report(KpiFigures(opened, load_settings(None, store=str(store))), OCTOBER)
    finally:
        opened.close()
    assert full["revision"] == expected
    rows = list(csv.DictReader(io.StringIO(to_csv(_export(store)))))
    assert rows and {row["revision"] for row in rows} == {expected}
    book = load_workbook(io.BytesIO(write_xlsx(full, "en")))
    assert all(f"revision {expected}" in sheet["A2"].value for sheet in book.worksheets)
    page = render_html(full, "en", charts={})
    assert page.count(f"revision {expected}") == 2  # under the title, and in every page footer
    assert re.search(rf'@bottom-left {{ content: "[^"]*revision {expected}', page)
