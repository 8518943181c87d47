"""The Grafana dashboards generator: golden files, SDK round trip, targets, rule names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as sdk_dashboard

from hotline_kpi.alerts import conventions
from hotline_kpi.alerts.conventions import AVERAGE_KPIS, RATIO_KPIS, WINDOWS, ratio_rule
from hotline_kpi.cli import main
from hotline_kpi.config import Settings, Targets
from hotline_kpi.dashboards.boards import HEALTH_UID, OVERVIEW_UID, QUALITY_UID, QUEUE_UID
from hotline_kpi.dashboards.generate import JSON_DIR, build_dashboards, render
from hotline_kpi.dashboards.model import DATASOURCE_UID, kpis
from hotline_kpi.metrics.catalogue import MISSION

PROVISIONING_DIR = JSON_DIR.parent / "provisioning"
RULE_NAME = re.compile(r"\b(?:job|queue|kind):hotline_\w+:\w+")
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]{3}")


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    built: dict[str, dict[str, Any]] = build_dashboards(Settings())
    return built


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def _exprs(board: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in _panels(board) for target in panel["targets"]]


def test_committed_json_is_what_the_generator_makes_now(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    committed = {path.stem for path in JSON_DIR.glob("*.json")}
    assert committed == set(dashboards), "run `hotline-kpi dashboards build` and commit the JSON"
    for uid, dashboard in dashboards.items():
        text = (JSON_DIR / f"{uid}.json").read_text(encoding="utf-8")
        assert text == render(dashboard), (
            f"dashboards/json/{uid}.json is out of date: run `hotline-kpi dashboards build`"
        )


def test_the_four_dashboards_of_issue_5_exist(dashboards: dict[str, dict[str, Any]]) -> None:
    assert set(dashboards) == {OVERVIEW_UID, QUEUE_UID, QUALITY_UID, HEALTH_UID}


@pytest.mark.parametrize("uid", [OVERVIEW_UID, QUEUE_UID, QUALITY_UID, HEALTH_UID])
def test_every_dashboard_parses_back_into_the_sdk_model_unchanged(
    dashboards: dict[str, dict[str, Any]], uid: str
) -> None:
    register_default_plugins()  # typed panel options and Prometheus queries, not raw dicts
    data = json.loads((JSON_DIR / f"{uid}.json").read_text(encoding="utf-8"))
    model = sdk_dashboard.Dashboard.from_json(data)
    assert model.uid == uid
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == data
    for panel in model.panels or []:
        if isinstance(panel, sdk_dashboard.Panel):
            assert panel.type_val in {"stat", "timeseries", "table", "bargauge", "heatmap"}
            assert type(panel.options).__name__ == "Options", panel.title


def test_panels_have_ids_refids_datasource_and_fit_the_grid(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for board in dashboards.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids) and 0 not in ids
        for panel in _panels(board):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert ref_ids and len(set(ref_ids)) == len(ref_ids), panel["title"]
        variables = {item["name"]: item for item in board["templating"]["list"]}
        assert variables["datasource"]["current"]["value"] == DATASOURCE_UID


def test_titles_and_descriptions_are_chinese_with_english_alongside(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for board in dashboards.values():
        texts = [board["title"], board["description"]]
        texts += [panel["title"] for panel in board["panels"]]
        texts += [panel["description"] for panel in _panels(board)]
        for text in texts:
            assert CJK.search(text) and LATIN.search(text), text


def test_every_recording_rule_queried_is_named_by_the_conventions(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    known = {
        ratio_rule(kpi, window, per_queue=per_queue)
        for kpi in RATIO_KPIS + AVERAGE_KPIS
        for window in WINDOWS
        for per_queue in (True, False)
    } | {conventions.OFFERED_LOAD_RULE, conventions.REPEAT_CONTACT_BASELINE_RULE}
    used = {
        name
        for board in dashboards.values()
        for e in _exprs(board)
        for name in RULE_NAME.findall(e)
    }
    assert used and used <= known, used - known


def test_overview_shows_the_offered_load_per_queue_beside_the_calls_waiting(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    panels = _panels(dashboards[OVERVIEW_UID])
    titles = [panel["title"] for panel in panels]
    waiting = titles.index("排队中 Calls waiting")
    load = panels[waiting + 1]
    assert load["title"].startswith("话务负荷 Offered load")
    assert [t["expr"] for t in load["targets"]] == [conventions.OFFERED_LOAD_RULE]
    assert load["targets"][0]["legendFormat"] == "{{queue}}" and load["targets"][0]["instant"]
    # Same row, side by side; no data is not shown as 0 Erlangs.
    assert load["gridPos"]["y"] == panels[waiting]["gridPos"]["y"]
    assert load["gridPos"]["x"] == panels[waiting]["gridPos"]["x"] + panels[waiting]["gridPos"]["w"]
    assert load["fieldConfig"]["defaults"]["noValue"] != "0"


def _stat(board: dict[str, Any], title_start: str) -> dict[str, Any]:
    return next(
        p for p in _panels(board) if p["type"] == "stat" and p["title"].startswith(title_start)
    )


def _steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(step["value"], step["color"]) for step in steps]


def test_mission_stats_are_coloured_against_the_configured_targets() -> None:
    targets = Targets(
        manual_connection_rate=0.85, drop_rate=0.01, timeliness=0.95, answer_accuracy=0.97
    )
    board = build_dashboards(Settings(targets=targets))[OVERVIEW_UID]
    catalogue = kpis(Settings(targets=targets))
    assert _steps(_stat(board, catalogue["manual_connection_rate"].entry.zh)) == [
        (None, "red"),
        (0.85, "green"),
    ]
    # Drop rate is met when *below* its target: green up to it, red from it on (SPEC §6).
    assert _steps(_stat(board, catalogue["drop_rate"].entry.zh)) == [(None, "green"), (0.01, "red")]
    assert _steps(_stat(board, catalogue["timeliness"].entry.zh)) == [
        (None, "red"),
        (0.95, "green"),
    ]
    assert _steps(_stat(board, catalogue["answer_accuracy"].entry.zh)) == [
        (None, "red"),
        (0.97, "green"),
    ]
    for key in MISSION:
        stat = _stat(board, catalogue[key].entry.zh)
        assert stat["fieldConfig"]["defaults"]["unit"] == "percentunit"
        assert stat["options"]["graphMode"] == "area"  # the trend sparkline
        assert stat["options"]["colorMode"] == "background"
        assert stat["targets"][0]["expr"] == ratio_rule(
            key, catalogue[key].entry.window, per_queue=False
        )


def test_queue_drilldown_filters_every_panel_by_the_queue_variable(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    board = dashboards[QUEUE_UID]
    queue = next(item for item in board["templating"]["list"] if item["name"] == "queue")
    assert queue["type"] == "query" and "hotline_agent_requests_total" in queue["query"]
    for expr in _exprs(board):
        assert 'queue="$queue"' in expr, expr
    lines = [p for p in _panels(board) if p["type"] == "timeseries" and "thresholdsStyle" in str(p)]
    assert len(lines) >= 7  # every KPI with a target, the wait threshold and the burn rates


def test_error_budget_burn_divides_by_the_budget_without_float_noise() -> None:
    board = build_dashboards(Settings())[QUEUE_UID]
    exprs = " ".join(_exprs(board))
    assert "/ 0.1" in exprs and "/ 0.02" in exprs and "/ 0.005" in exprs and "/ 0.2" in exprs
    assert "0000000" not in exprs
    # Timeliness has a 100% target: no budget, so no burn rate divides by zero.
    assert "hotline_timeliness" not in exprs


def test_provisioning_files_name_the_datasource_and_folder_the_dashboards_use() -> None:
    datasource = yaml.safe_load((PROVISIONING_DIR / "datasource.yaml").read_text("utf-8"))
    assert [d["uid"] for d in datasource["datasources"]] == [DATASOURCE_UID]
    assert datasource["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load((PROVISIONING_DIR / "dashboards.yaml").read_text("utf-8"))
    (only,) = provider["providers"]
    assert only["type"] == "file" and only["folderUid"] == "hotline-kpi"


def test_cli_build_writes_one_file_per_dashboard(tmp_path: Path) -> None:
    assert main(["dashboards", "build", "--output", str(tmp_path)]) == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(f"{uid}.json" for uid in build_dashboards(Settings()))


def test_dashboard_uids_are_those_the_alert_annotations_link_to(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    assert conventions.OVERVIEW_DASHBOARD_UID in dashboards
    assert conventions.HEALTH_DASHBOARD_UID in dashboards
