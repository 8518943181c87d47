"""Monthly reports: the extra figures, and every number of the XLSX and HTML equal to the JSON.

One small simulated store (late September to early November, 150 calls a day) is built once per
module through the real command line, in process; charts are not drawn here (see
``tests/integration/test_reports_pdf.py`` for the rendered PDF).
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from hotline_kpi.cli import main
from hotline_kpi.config import Settings, load_settings
from hotline_kpi.metrics.export import KPI_KEYS, KpiFigures
from hotline_kpi.metrics.staffing import analyse_staffing
from hotline_kpi.metrics.store import open_store
from hotline_kpi.reports import build_report
from hotline_kpi.reports.charts import staffing_heatmap
from hotline_kpi.reports.data import MIN_SURVEYS, agent_ranking, factor_analysis
from hotline_kpi.reports.html import AGENT_ROWS, BEST_SHOWN, WORST_SHOWN, render_html
from hotline_kpi.reports.labels import Words, kpi_kind
from hotline_kpi.reports.xlsx import HEADER_ROW, SECONDS_PER_DAY, write_xlsx
from hotline_kpi.staffing import month_calls, month_period, staffing_settings
from tests.support.reports import HtmlFigures, build_store, parse_shown, resolve

MONTH = "2026-10"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="module")
def settings(store_path: Path) -> Settings:
    return load_settings(None, store=str(store_path))


@pytest.fixture(scope="module")
def reports(store_path: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """The extended report of October (with data) and of June (without)."""
    settings = load_settings(None, store=str(store_path))
    store = open_store(str(store_path))
    try:
        report = KpiFigures(store, settings)
        yield {
            "october": build_report(report, MONTH),
            "june": build_report(report, "2026-06"),
            "september": report.month("2026-09"),
        }
    finally:
        store.close()


def test_the_month_has_data_and_the_previous_month_for_comparison(reports: dict) -> None:
    october = reports["october"]
    assert october["has_data"] is True
    assert october["previous"]["month"] == "2026-09"
    assert october["previous"]["overall"] == reports["september"]["overall"]
    assert october["previous"]["volumes"]["requests"] > 0
    assert len(october["daily"]) == 31
    json.dumps(october)  # the extended report is still plain JSON


def test_wait_distribution_counts_every_answered_and_abandoned_call(reports: dict) -> None:
    october = reports["october"]
    buckets = october["wait_distribution"]
    assert sum(b["answered"] for b in buckets) == october["volumes"]["overall"]["answered"]
    assert sum(b["abandoned"] for b in buckets) == october["volumes"]["overall"]["abandoned"]
    # Short abandons (wait < S = 5 s) are exactly the first bucket's abandons.
    assert buckets[0]["to"] == 5
    assert buckets[0]["abandoned"] == october["volumes"]["overall"]["short_abandoned"]
    assert buckets[-1]["to"] is None


def test_score_distribution_adds_up_to_the_satisfaction_kpis(reports: dict) -> None:
    october = reports["october"]
    counts = {int(score): n for score, n in october["score_distribution"].items()}
    assert sorted(counts) == list(range(1, 11))
    rate = october["overall"]["satisfaction_rate"]
    mean = october["overall"]["satisfaction_mean"]
    assert sum(counts.values()) == rate["denominator"]
    assert sum(n for score, n in counts.items() if score >= 8) == rate["numerator"]
    assert sum(score * n for score, n in counts.items()) == mean["numerator"]


def test_overdue_list_is_the_settled_work_orders_not_on_time_without_personal_data(
    reports: dict,
) -> None:
    october = reports["october"]
    timeliness = october["overall"]["timeliness"]
    overdue = october["overdue_tickets"]
    assert len(overdue) == timeliness["denominator"] - timeliness["numerator"] > 0
    assert {t["status"] for t in overdue} <= {"open", "closed_late"}
    for ticket in overdue:
        assert set(ticket) == {
            "ticket_id",
            "kind",
            "queue",
            "opened_at",
            "due",
            "closed_at",
            "status",
            "overdue_hours",
        }
        assert ticket["overdue_hours"] > 0
        assert ticket["due"].startswith(MONTH)
    hours = [t["overdue_hours"] for t in overdue]
    assert hours == sorted(hours, reverse=True)


def test_factor_importance_is_the_correlation_with_the_overall_score() -> None:
    scores = [3, 5, 6, 7, 8, 8, 9, 9, 10, 10, 4, 6]
    surveys = [(s, {"mirror": s, "flat": 7, "noise": (s * 7) % 10 + 1}) for s in scores]
    analysis = factor_analysis(surveys)
    items = {item["factor"]: item for item in analysis["items"]}
    assert items["mirror"]["importance"] == pytest.approx(1.0)
    assert items["flat"]["importance"] is None  # no variance: no correlation, no quadrant
    assert items["flat"]["quadrant"] is None
    assert items["mirror"]["mean"] == pytest.approx(sum(s for s, _ in surveys) / len(surveys))
    assert factor_analysis(surveys[:3])["items"][0]["importance"] is None  # too few responses


def test_quadrants_split_at_the_mean_importance_and_mean_satisfaction() -> None:
    # Four factors: overall score follows a and b closely (important), c and d loosely.
    surveys = []
    for index in range(40):
        overall = 2 + index % 9
        surveys.append(
            (
                overall,
                {
                    "a": max(1, overall - 2),  # important, low satisfaction
                    "b": min(10, overall + 1),  # important, high
                    "c": 3 + (index * 5) % 4 + (1 if overall > 6 else 0),  # less important, low
                    "d": 9 + (index % 2) - (1 if overall < 4 else 0),  # less important, high
                },
            )
        )
    analysis = factor_analysis(surveys)
    quadrant = {item["factor"]: item["quadrant"] for item in analysis["items"]}
    assert quadrant == {"a": "improve", "b": "maintain", "c": "low_priority", "d": "irrelevant"}
    placed = analysis["items"]
    assert analysis["mean_importance"] == pytest.approx(
        sum(i["importance"] for i in placed) / len(placed)
    )
    assert analysis["mean_satisfaction"] == pytest.approx(sum(i["mean"] for i in placed) / 4)


def test_the_month_has_survey_factors_in_quadrants(reports: dict) -> None:
    items = reports["october"]["factors"]["items"]
    assert len(items) >= 4
    assert {i["quadrant"] for i in items} >= {"improve", "maintain"}


def test_bottom_performers_are_the_lowest_rated_ranked_agents(reports: dict) -> None:
    october = reports["october"]
    ranking = october["agent_ranking"]
    by_id = {a["agent_id"]: a for a in october["agents"]}
    assert sorted(ranking["order"] + ranking["unranked"]) == sorted(by_id)
    means = [by_id[a]["satisfaction_mean"] for a in ranking["order"]]
    assert means == sorted(means, reverse=True)
    assert ranking["bottom"] and ranking["bottom"] == ranking["order"][-len(ranking["bottom"]) :]
    assert all(by_id[a]["surveys"] < MIN_SURVEYS for a in ranking["unranked"])


def test_ranking_names_a_tenth_of_the_agents_at_least_one() -> None:
    def agent(name: str, mean: float) -> dict[str, Any]:
        return {
            "agent_id": name,
            "satisfaction_mean": mean,
            "answer_accuracy": 0.99,
            "answered": 100,
            "surveys": MIN_SURVEYS,
        }

    agents = [agent(f"A{i:02d}", 5 + i / 10) for i in range(25)]
    agents.append({**agent("NEW", 1.0), "surveys": MIN_SURVEYS - 1})
    ranking = agent_ranking(agents)
    assert ranking["bottom"] == ["A02", "A01", "A00"]  # ceil(25 × 10%) = 3, worst last
    assert ranking["unranked"] == ["NEW"]
    assert agent_ranking([])["bottom"] == []


def test_staffing_cells_are_the_hour_by_weekday_shortfalls_of_the_staffing_analysis(
    reports: dict, settings: Settings
) -> None:
    staffing = reports["october"]["staffing"]
    assert staffing["message"] is None
    # The same analysis as `hotline-kpi staffing --month 2026-10`, from the same facts.
    analysis = analyse_staffing(
        month_calls(settings.store, settings, MONTH, None),
        staffing_settings(settings),
        period=month_period(MONTH),
    )
    expected: dict[str, list[list[Any]]] = {}
    for row in analysis.hour_weekday:
        expected.setdefault(row.queue, []).append([row.weekday, int(row.start[:2]), row.shortfall])
    assert staffing["queues"] == expected
    assert set(staffing["queues"]) == set(reports["october"]["queues"])
    for cells in staffing["queues"].values():
        places = [(weekday, hour) for weekday, hour, _ in cells]
        assert len(set(places)) == len(places)
        assert all(1 <= weekday <= 7 and 0 <= hour <= 23 for weekday, hour in places)
    assert staffing["backtest"] == analysis.to_rows("backtest")
    queued = reports["october"]["volumes"]["queues"]
    for summary in staffing["backtest"]:
        assert 0 < summary["calls"] <= queued[summary["queue"]]["requests"]
        assert 0 <= summary["mae_abandon_rate"] <= 1 and 0 <= summary["mae_service_level"] <= 1


def test_staffing_heat_map_draws_short_spare_and_unknown_hours() -> None:
    report = {"staffing": {"queues": {"vip": [[1, 9, 2.5], [1, 10, -1.0], [7, 23, None]]}}}
    for lang in ("zh", "en"):
        png = staffing_heatmap(report, Words(lang), "vip")
        assert png.startswith(b"\x89PNG")


# --- every number in the XLSX equals the JSON -------------------------------------------------


def _rows(sheet: Any, count: int) -> list[dict[str, Any]]:
    header = [cell.value for cell in sheet[HEADER_ROW]]
    rows = []
    for row in sheet.iter_rows(min_row=HEADER_ROW + 1, max_row=HEADER_ROW + count):
        rows.append({name: cell.value for name, cell in zip(header, row, strict=False) if name})
    return rows


def _from_sheet(key: str, value: Any) -> Any:
    """A sheet value back in the JSON's unit: durations are Excel times (mm:ss)."""
    if value is None:
        return None
    if isinstance(value, timedelta):  # openpyxl reads a [mm]:ss cell back as a duration
        return value.total_seconds()
    if isinstance(value, time):
        return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    return value * SECONDS_PER_DAY if kpi_kind(key) == "seconds" else value


def _same(key: str, cell: Any, expected: float | None) -> bool:
    """The cell holds the JSON number (durations to the millisecond openpyxl reads back)."""
    tolerance = 1e-3 if kpi_kind(key) == "seconds" else 1e-9
    return _from_sheet(key, cell) == pytest.approx(expected, abs=tolerance)


def test_every_number_in_the_xlsx_equals_the_json(reports: dict) -> None:
    october = reports["october"]
    words = Words("en")
    book = load_workbook(io.BytesIO(write_xlsx(october, "en")))
    assert book.sheetnames == [
        "KPI summary",
        "Queues",
        "Agents",
        "Agent state time",
        "Daily trend",
        "Daily contacts and agents",
        "Work-order timeliness",
        "Overdue work orders",
        "Satisfaction",
        "Staffing shortfall",
        "Notes",
    ]
    for sheet in book.worksheets[:-1]:  # the notes are prose
        assert sheet.freeze_panes is not None and sheet.freeze_panes.endswith(str(HEADER_ROW + 1))

    summary = _rows(book["KPI summary"], len(KPI_KEYS))
    for key, row in zip(KPI_KEYS, summary, strict=True):
        entry, before = october["overall"][key], october["previous"]["overall"][key]["value"]
        assert row["KPI"] == words.kpi(key)
        assert _same(key, row["This month"], entry["value"])
        assert row["Numerator"] == pytest.approx(entry["numerator"])
        assert row["Denominator"] == entry["denominator"]
        assert _same(key, row["Last month"], before)
        if "target" in entry:
            assert _from_sheet(key, row["Target"]) == pytest.approx(entry["target"])
            assert row["Status"] == ("✔ met" if entry["met"] else "✘ missed")
        scale = 100 if kpi_kind(key) == "ratio" else 1
        if entry["value"] is None or before is None:  # e.g. the caller-key KPIs without a key
            assert row["Change"] is None, key
            continue
        assert row["Change"] == pytest.approx((entry["value"] - before) * scale, abs=1e-9)

    queues = _rows(book["Queues"], len(october["queues"]) + 1)
    scopes = [*october["queues"].items(), ("", october["overall"])]
    for (queue, kpis), row in zip(scopes, queues, strict=True):
        assert row["Queue"] == (words.queue(queue) if queue else "All")
        volumes = october["volumes"]["queues"][queue] if queue else october["volumes"]["overall"]
        assert (row["Requests"], row["Answered"]) == (volumes["requests"], volumes["answered"])
        for key in KPI_KEYS:
            if key not in october["queues"][next(iter(october["queues"]))]:
                assert words.kpi(key) not in row  # overall only: on the summary sheet
                continue
            expected = kpis[key]["value"]
            assert _same(key, row[words.kpi(key)], expected)

    ranking = october["agent_ranking"]
    order = ranking["order"] + ranking["unranked"]
    agents = _rows(book["Agents"], len(order))
    by_id = {a["agent_id"]: a for a in october["agents"]}
    for index, (agent_id, row) in enumerate(zip(order, agents, strict=True)):
        agent = by_id[agent_id]
        assert row["Agent"] == agent_id
        assert row["Rank"] == (index + 1 if agent_id in ranking["order"] else None)
        assert row["Answered"] == agent["answered"]
        assert row["QA reviews"] == agent["qa_reviews"]
        assert row["Surveys"] == agent["surveys"]
        for key in ("answer_accuracy", "satisfaction_mean", "average_handle_time", "drop_rate"):
            assert _same(key, row[words.kpi(key)], agent[key])
        assert (row["Note"] == "Bottom") == (agent_id in ranking["bottom"])

    days = _rows(book["Daily trend"], 31)
    more = _rows(book["Daily contacts and agents"], 31)
    for (day, kpis), row, other in zip(october["daily"].items(), days, more, strict=True):
        assert row["Date"].date().isoformat() == day == other["Date"].date().isoformat()
        for key in KPI_KEYS:  # every daily KPI is on one of the two daily sheets
            cell = row[words.kpi(key)] if words.kpi(key) in row else other[words.kpi(key)]
            assert _same(key, cell, kpis[key]["value"]), (day, key)

    states = _rows(book["Agent state time"], len(october["agents"]))
    for agent, row in zip(october["agents"], states, strict=True):
        assert row["Agent"] == agent["agent_id"]
        assert _from_sheet("average_handle_time", row["Logged in"]) == pytest.approx(
            agent["logged_in_seconds"], abs=1e-3
        )
        for state, seconds in agent["state_seconds"].items():
            cell = _from_sheet("average_handle_time", row[words.state(state)])
            assert cell == pytest.approx(seconds, abs=1e-3), (agent["agent_id"], state)
        for key in ("occupancy", "utilisation", "not_ready_share"):
            assert _same(key, row[words.kpi(key)], agent[key]["value"])

    kinds = _rows(book["Work-order timeliness"], len(october["ticket_kinds"]) + 1)
    entries = [*october["ticket_kinds"].values(), october["overall"]["timeliness"]]
    for entry, row in zip(entries, kinds, strict=True):
        assert row["Work orders due"] == entry["denominator"]
        assert row["On time"] == entry["numerator"]
        assert row["This month"] == pytest.approx(entry["value"])

    overdue = _rows(book["Overdue work orders"], len(october["overdue_tickets"]))
    for ticket, row in zip(october["overdue_tickets"], overdue, strict=True):
        assert row["Work order"] == ticket["ticket_id"]
        assert row["Overdue (h)"] == pytest.approx(ticket["overdue_hours"])
        due = datetime.fromisoformat(ticket["due"]).replace(tzinfo=None)
        assert row["Due"] == due

    satisfaction = book["Satisfaction"]
    for index, (score, count) in enumerate(october["score_distribution"].items()):
        row = HEADER_ROW + 1 + index
        assert satisfaction.cell(row, 1).value == int(score)
        assert satisfaction.cell(row, 2).value == count
    for index, item in enumerate(october["factors"]["items"]):
        row = HEADER_ROW + 1 + index
        assert satisfaction.cell(row, 6).value == item["responses"]
        assert satisfaction.cell(row, 7).value == pytest.approx(item["mean"])
        assert satisfaction.cell(row, 8).value == pytest.approx(item["importance"])
        assert satisfaction.cell(row, 9).value == words.quadrant(item["quadrant"])

    sheet = book["Staffing shortfall"]
    staffing = october["staffing"]
    grid = _rows(sheet, 7 * len(staffing["queues"]))
    for index, (queue, cells) in enumerate(staffing["queues"].items()):
        shortfall = {(weekday, hour): value for weekday, hour, value in cells}
        for weekday in range(1, 8):
            row = grid[index * 7 + weekday - 1]
            assert (row["Queue"], row["Weekday"]) == (words.queue(queue), words.weekday(weekday))
            for hour in range(24):
                assert row[f"{hour:02d}:00"] == shortfall.get((weekday, hour)), (queue, weekday)
    header = HEADER_ROW + 7 * len(staffing["queues"]) + 3
    assert sheet.cell(header, 1).value == "Queue"
    for offset, summary in enumerate(staffing["backtest"]):
        values = [sheet.cell(header + 1 + offset, column).value for column in range(1, 8)]
        assert values[:3] == [words.queue(summary["queue"]), summary["intervals"], summary["calls"]]
        errors = [summary[key] * 100 for key in ("mae_abandon_rate", "bias_abandon_rate")]
        errors += [summary[key] * 100 for key in ("mae_service_level", "bias_service_level")]
        assert values[3:] == pytest.approx(errors, abs=1e-9)


# --- every number in the HTML equals the JSON --------------------------------------------------


def test_every_number_in_the_html_equals_the_json(reports: dict) -> None:
    october = reports["october"]
    for lang in ("zh", "en"):
        page = render_html(october, lang, charts={})
        parser = HtmlFigures()
        parser.feed(page)
        figures = parser.figures
        assert len(figures) > 200
        # Every number cell says where its number comes from, the agents' ranks aside.
        assert parser.untraced == len(october["agents"])
        backtest = [path for path, _, _ in figures if path.startswith("staffing/backtest/")]
        assert len(backtest) == 6 * len(october["staffing"]["backtest"]) > 0
        none = Words(lang)("none")
        for path, kind, text in figures:
            expected = resolve(october, path)
            if text in (none, "–"):
                assert expected is None, path
                continue
            shown, half = parse_shown(text, kind)
            assert shown == pytest.approx(expected, abs=half + 1e-9), (path, text, expected)


def test_english_report_has_no_chinese_text(reports: dict) -> None:
    page = render_html(reports["october"], "en", charts={})
    text = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    assert not re.search(r"[\u4e00-\u9fff]", text)
    assert "Hotline KPI report, October 2026" in page


def test_a_month_without_data_gives_an_empty_valid_report_that_says_so(reports: dict) -> None:
    june = reports["june"]
    assert june["has_data"] is False
    assert june["agents"] == [] and june["overdue_tickets"] == []
    assert all(entry["value"] is None for entry in june["overall"].values())
    for lang in ("zh", "en"):
        words = Words(lang)
        page = render_html(june, lang)
        assert words("no_data") in page
        assert "<img" not in page  # no chart of nothing
        book = load_workbook(io.BytesIO(write_xlsx(june, lang)))
        summary = book.worksheets[0]
        assert summary["A3"].value == words("no_data")
        assert summary.cell(HEADER_ROW + 1, 2).value is None  # no data, not 0%
        assert summary.cell(HEADER_ROW + 1, 4).value == words("none")
        assert book[words("staffing")].cell(HEADER_ROW + 1, 1).value == words("no_staffing")
    assert june["staffing"]["queues"] == {} and june["staffing"]["backtest"] == []
    assert "2026-06-01" in june["staffing"]["message"]


def test_export_with_a_bad_month_is_a_one_line_usage_error(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for fmt in ("xlsx", "html", "pdf"):
        code = main(["export", "--month", "2026/10", "--format", fmt, "--store", str(store_path)])
        err = capsys.readouterr().err.strip()
        assert code != 0
        assert "YYYY-MM" in err and "\n" not in err and "Traceback" not in err


def test_the_export_command_writes_xlsx_and_html(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for fmt, magic in (("xlsx", b"PK"), ("json", b"{")):
        out = tmp_path / f"october.{fmt}"
        args = ["export", "--month", MONTH, "--format", fmt, "--store", str(store_path)]
        assert main([*args, "--output", str(out), "--lang", "en"]) == 0
        assert out.read_bytes().startswith(magic)
    exported = json.loads((tmp_path / "october.json").read_text(encoding="utf-8"))
    assert {
        "wait_distribution",
        "factors",
        "overdue_tickets",
        "agent_ranking",
        "daily",
        "staffing",
    } <= set(exported)


# --- the printed report stays short whatever the number of agents -------------------------------


def _many_agents(october: dict[str, Any], count: int) -> dict[str, Any]:
    """October with ``count`` agents (a tenth with too few surveys to be ranked)."""
    template = october["agents"][0]
    agents = []
    for index in range(count):
        surveys = MIN_SURVEYS - 1 if index % 10 == 0 else MIN_SURVEYS + index % 7
        mean = 5 + (index * 37 % count) / count * 5
        agents.append(
            {
                **template,
                "agent_id": f"B{index:05d}",
                "surveys": surveys,
                "score_sum": round(mean * surveys),
                "satisfaction_mean": round(mean * surveys) / surveys,
            }
        )
    report = copy.deepcopy(october)
    report["agents"] = agents
    report["agent_ranking"] = agent_ranking(agents)
    return report


def _agent_rows(page: str) -> list[str]:
    """The agent ids of the printed agent table, in order."""
    return list(dict.fromkeys(re.findall(r'data-src="agents/([^/"]+)/', page)))


def test_the_printed_agent_table_is_bounded_and_shows_the_best_and_the_worst(
    reports: dict,
) -> None:
    report = _many_agents(reports["october"], 500)
    ranking = report["agent_ranking"]
    order = ranking["order"]
    assert len(order) == 450 and len(ranking["bottom"]) == 45
    for lang in ("zh", "en"):
        page = render_html(report, lang, charts={})
        shown = _agent_rows(page)
        assert len(shown) <= AGENT_ROWS
        assert shown == order[:BEST_SHOWN] + order[-WORST_SHOWN:]  # the worst is the last row
        assert page.count('<tr class="bottom">') == WORST_SHOWN
    page = render_html(report, "en", charts={})
    assert f"… ranks {BEST_SHOWN + 1}–{450 - WORST_SHOWN} (420 agents): see the XLSX …" in page
    assert "all 500 agents (50 with too few surveys to be ranked)" in page
    # The workbook keeps every agent.
    book = load_workbook(io.BytesIO(write_xlsx(report, "en")))
    assert book["Agents"].max_row == HEADER_ROW + 500


def test_a_small_agent_table_is_printed_whole(reports: dict) -> None:
    report = _many_agents(reports["october"], AGENT_ROWS)
    ranking = report["agent_ranking"]
    shown = _agent_rows(render_html(report, "en", charts={}))
    assert shown == ranking["order"] + ranking["unranked"]


def test_a_month_of_many_unranked_agents_prints_where_they_are_not_a_table_of_them(
    reports: dict,
) -> None:
    report = _many_agents(reports["october"], 100)
    for agent in report["agents"]:
        agent["surveys"] = MIN_SURVEYS - 1
    report["agent_ranking"] = agent_ranking(report["agents"])
    page = render_html(report, "en", charts={})
    assert _agent_rows(page) == []
    assert "all 0 ranked agents; all 100 agents (100 with too few surveys" in page
    section = page[page.index("<h2>Agents</h2>") :]
    assert "<table>" not in section[: section.index("</section>")]
