"""Range reports in XLSX and HTML (issue 16: ``export --from --to --by``), drawn from the range's
JSON (:meth:`KpiFigures.range_report`): a workbook with a sheet per breakdown, and a page whose
size does not grow with the number of periods (a month by the quarter hour is 2,976 of them).
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Iterator
from datetime import date, time, timedelta
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from hotline_kpi.metrics.catalogue import KPI_KEYS
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.reports.html import (
    PERIOD_ROWS,
    WORST_PERIODS,
    calls_short,
    render_range_html,
    worst_periods,
)
from hotline_kpi.reports.labels import Words, kpi_kind
from hotline_kpi.reports.xlsx import HEADER_ROW, SECONDS_PER_DAY, sheet_name, write_range_xlsx
from tests.support.reports import assert_html_shows_the_json, build_october_store, open_figures

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KpiFigures]:
    """October simulated at 60 calls a day: sparse quarter hours, many missing their targets."""
    with open_figures(build_october_store(tmp_path_factory.mktemp("range-reports"))) as figures:
        yield figures


@pytest.fixture(scope="module")
def week(figures: KpiFigures) -> dict[str, Any]:
    return figures.range_report(FIRST, date(2026, 10, 7), "day")


@pytest.fixture(scope="module")
def quarter_hours(figures: KpiFigures) -> dict[str, Any]:
    return figures.range_report(FIRST, LAST, "interval")


def _book(report: dict[str, Any], lang: str = "en") -> Any:
    return load_workbook(io.BytesIO(write_range_xlsx(report, lang)))


def _seconds(cell: Any) -> float:
    # openpyxl reads a duration cell (a fraction of a day shown as [mm]:ss) back as a time, or
    # as a timedelta when it is shown as minutes past the hour.
    if isinstance(cell, time):
        return cell.hour * 3600 + cell.minute * 60 + cell.second + cell.microsecond / 1e6
    if isinstance(cell, timedelta):
        return cell.total_seconds()
    return float(cell) * SECONDS_PER_DAY


def test_a_range_workbook_has_a_sheet_per_breakdown(week: dict[str, Any]) -> None:
    book = _book(week)
    queues = [Words("en").queue(queue) for queue in week["queues"]]
    assert book.sheetnames == [
        "KPI summary",
        "Queues",
        "All by day",
        *(f"{queue} by day" for queue in queues),
        "Agents",
        "Agent state time",
        "Work-order timeliness",
    ]
    chinese = _book(week, "zh").sheetnames
    assert chinese[2] == "全部·按日" and len(chinese) == len(book.sheetnames)


def test_every_period_is_a_row_with_the_json_figures(week: dict[str, Any]) -> None:
    book = _book(week)
    scopes = [("All by day", None)]
    scopes += [(f"{Words('en').queue(q)} by day", q) for q in week["queues"]]
    for title, queue in scopes:
        sheet = book[title]
        assert sheet.max_row == HEADER_ROW + len(week["periods"]), title
        heads = [cell.value for cell in sheet[HEADER_ROW]]
        for index, period in enumerate(week["periods"]):
            row = HEADER_ROW + 1 + index
            assert sheet.cell(row, 1).value.date().isoformat() == period["start"][:10]
            kpis = period["queues"][queue] if queue else period["overall"]
            volumes = period["volumes"]["queues"][queue] if queue else period["volumes"]["overall"]
            assert sheet.cell(row, 2).value == volumes["requests"]
            shown = [key for key in KPI_KEYS if Words("en").kpi(key) in heads]
            assert set(shown) == set(kpis) - {  # the contact and agent KPIs: JSON and CSV
                "repeat_contact_rate",
                "first_contact_resolution",
                "repeat_complaint_rate",
                "occupancy",
                "utilisation",
                "not_ready_share",
            }
            for key in shown:
                cell = sheet.cell(row, heads.index(Words("en").kpi(key)) + 1).value
                value = kpis[key]["value"]
                if value is None:
                    assert cell is None, (title, key)
                elif kpi_kind(key) == "seconds":
                    assert _seconds(cell) == pytest.approx(value, abs=1e-3), (title, key)
                else:
                    assert cell == pytest.approx(value), (title, key)
    summary = book["KPI summary"]
    for index, key in enumerate(KPI_KEYS):
        entry = week["overall"][key]
        assert summary.cell(HEADER_ROW + 1 + index, 5).value == pytest.approx(entry["numerator"])
        assert summary.cell(HEADER_ROW + 1 + index, 6).value == entry["denominator"]


def test_a_range_of_one_queue_has_no_sheet_per_queue(figures: KpiFigures) -> None:
    report = figures.range_report(FIRST, FIRST, "hour", "vip")
    book = _book(report)
    assert book.sheetnames == [
        "KPI summary",
        "Queues",
        "All by hour",
        "Agents",
        "Agent state time",
        "Work-order timeliness",
    ]
    assert book["All by hour"].max_row == HEADER_ROW + 24


def test_a_repeated_hour_is_told_apart_by_its_utc_offset(week: dict[str, Any]) -> None:
    report = copy.deepcopy(week)
    # As a zone with daylight saving shows a repeated hour: the same wall time, two offsets.
    report["by"] = "hour"
    first, second = report["periods"][:2]
    first["start"], first["end"] = "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"
    second["start"], second["end"] = "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"
    sheet = _book(report)["All by hour"]
    assert sheet.cell(HEADER_ROW, 2).value == "UTC offset"
    rows = [(sheet.cell(r, 1).value, sheet.cell(r, 2).value) for r in (5, 6)]
    assert rows[0][0] == rows[1][0] and [offset for _, offset in rows] == ["-04:00", "-05:00"]
    html = render_range_html(report, "en", charts={})
    assert "2026-11-01 01:00–01:00 (-04:00)" in html and "(-05:00)" in html
    # A week by day in one zone offset has no such column.
    assert _book(week)["All by day"].cell(HEADER_ROW, 2).value == "Requests"


def test_the_worst_periods_are_those_furthest_below_the_call_targets() -> None:
    def period(mcr: tuple[int, int], sl: tuple[int, int]) -> dict[str, Any]:
        def entry(numerator: int, denominator: int, target: float) -> dict[str, Any]:
            value = numerator / denominator if denominator else None
            met = None if value is None else value >= target
            return {"value": value, "numerator": numerator, "denominator": denominator,
                    "target": target, "met": met}  # fmt: skip

        return {
            "overall": {
                "manual_connection_rate": entry(*mcr, 0.9),
                "service_level": entry(*sl, 0.8),
            }
        }

    report = {
        "periods": [
            period((1, 2), (1, 2)),  # 50 %, but one call: 0.8 short of 90 %
            period((90, 100), (80, 100)),  # both met
            period((70, 100), (75, 100)),  # 20 calls short of the connection rate
            period((0, 0), (0, 0)),  # no calls
            period((95, 100), (60, 100)),  # 20 short of the service level: a tie, later
        ]
    }
    assert calls_short(report["periods"][1]["overall"]) == 0
    assert calls_short(report["periods"][2]["overall"]) == pytest.approx(20)
    assert worst_periods(report) == [2, 4, 0]
    assert worst_periods(report, 1) == [2]


def test_a_month_by_the_quarter_hour_prints_a_bounded_table_of_its_worst_periods(
    quarter_hours: dict[str, Any],
) -> None:
    periods = quarter_hours["periods"]
    assert len(periods) == 31 * 96
    html = render_range_html(quarter_hours, "en", charts={})
    period_rows = re.findall(r'data-src="periods/(\d+)/volumes/overall/requests"', html)
    assert 0 < len(period_rows) <= WORST_PERIODS
    shown = [int(index) for index in period_rows]
    assert shown == worst_periods(quarter_hours)
    # Nothing left out is worse than what is shown.
    least = min(calls_short(periods[index]["overall"]) for index in shown)
    others = (p for i, p in enumerate(periods) if i not in set(shown))
    assert all(calls_short(p["overall"]) <= least for p in others)
    missed = sum(1 for p in periods if calls_short(p["overall"]) > 0)
    assert f"{missed:,} of the 2,976 periods" in html
    assert len(html) < 200_000  # without charts: the same order as a week's page


def test_every_figure_of_the_range_page_is_the_json(
    quarter_hours: dict[str, Any], week: dict[str, Any]
) -> None:
    for report in (quarter_hours, week):
        assert assert_html_shows_the_json(report, render_range_html(report, "zh", charts={})) > 50


def test_a_short_range_lists_every_period(week: dict[str, Any]) -> None:
    html = render_range_html(week, "en", charts={})
    assert len(week["periods"]) <= PERIOD_ROWS
    rows = re.findall(r'data-src="periods/(\d+)/volumes/overall/requests"', html)
    assert [int(index) for index in rows] == list(range(len(week["periods"])))
    assert "Hotline KPI report, 2026-10-01 to 2026-10-07 (by day)" in html


def test_a_range_without_data_says_so(figures: KpiFigures) -> None:
    report = figures.range_report(date(2026, 6, 1), date(2026, 6, 2), "hour")
    html = render_range_html(report, "en")
    assert Words("en")("range_no_data") in html
    book = _book(report)
    assert book["All by hour"].max_row == HEADER_ROW + 48


def test_sheet_names_from_queue_names_are_valid_and_distinct() -> None:
    taken: set[str] = set()
    names = [sheet_name(name, taken) for name in ("a/b:c", "A_b_c", "x" * 40, "x" * 40, "[q]")]
    assert names[0] == "a_b_c" and names[1] == "A_b_c (2)"  # sheet names ignore case
    assert names[2] == "x" * 31 and names[3] == "x" * 27 + " (2)"
    assert names[4] == "_q_"
    book = Workbook()
    for name in names:
        book.create_sheet(name)  # openpyxl refuses an invalid name
