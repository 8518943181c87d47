"""The rules generator in plain Python: golden file, burn-rate factors, guards, names, labels."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from hotline_kpi.alerts import conventions
from hotline_kpi.alerts.generate import RULES_FILE, build_rules, render_rules
from hotline_kpi.alerts.health import business_hours_expr, offset_changes
from hotline_kpi.alerts.slo import (
    BURN_WINDOWS,
    RulesError,
    burn_conditions,
    burn_factors,
    error_budget,
    format_duration,
    ratio_kpi,
)
from hotline_kpi.cli import main
from hotline_kpi.config import Alerts, Definitions, Settings, Targets


def rules_by_name(data: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    for group in data["groups"]:  # type: ignore[attr-defined]
        for rule in group["rules"]:
            found.setdefault(rule.get("record") or rule["alert"], []).append(rule)
    return found


def test_committed_rules_file_is_up_to_date_with_the_generator() -> None:
    expected = render_rules(Settings())
    assert RULES_FILE.read_text(encoding="utf-8") == expected, (
        "alerts/rules/hotline-kpi.rules.yml is stale: run "
        "`hotline-kpi rules --output alerts/rules/hotline-kpi.rules.yml`"
    )


def test_rendering_is_deterministic_and_free_of_float_noise() -> None:
    text = render_rules(Settings())
    assert text == render_rules(Settings())
    assert not re.search(r"\d\.\d{7,}", text), "a float printed with binary noise"
    assert "0.9990000000000001" not in render_rules(Settings(targets=Targets(service_level=0.999)))


def test_cli_writes_the_rules_to_a_file_and_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "rules.yml"
    assert main(["rules", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == render_rules(Settings())
    assert main(["rules", "--output", "-"]) == 0
    assert capsys.readouterr().out == render_rules(Settings())


def test_cli_refuses_a_target_without_error_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("targets: {manual_connection_rate: 1.0}\n", encoding="utf-8")
    assert main(["rules", "--config", str(config), "--output", str(tmp_path / "r.yml")]) == 1
    err = capsys.readouterr().err
    assert "no error budget" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_workbook_factors_stand_when_the_budget_is_tight() -> None:
    # 99.5% (drop rate < 0.5%): 14.4 × 0.005 = 7.2% failures is reachable.
    assert burn_factors(BURN_WINDOWS["drop_rate"], 0.005) == (14.4, 6.0, 3.0, 1.0)


def test_factors_are_compressed_when_the_workbook_page_could_never_fire() -> None:
    # A 90% target: 14.4 × 10% = 144% failures is impossible; 5 × 10% = 50% is the ceiling.
    assert burn_factors(BURN_WINDOWS["manual_connection_rate"], 0.10) == (5.0, 2.95, 1.94, 1.0)
    assert burn_factors(BURN_WINDOWS["service_level"], 0.20) == (2.5, 1.85, 1.46, 1.0)


@pytest.mark.parametrize("target", [0.5, 0.6, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999])
def test_every_factor_times_budget_is_reachable_and_ordered(target: float) -> None:
    for key in ("manual_connection_rate", "service_level", "answer_accuracy"):
        conditions = burn_conditions(ratio_kpi(key), target)
        factors = [c.factor for c in conditions]
        assert factors == sorted(factors, reverse=True)
        assert min(factors) >= 1, "a ticket below 1× would fire while within budget"
        for c in conditions:
            assert c.error_threshold <= 0.5
            assert 0 < c.kpi_threshold <= target


def test_loose_or_empty_budgets_are_refused() -> None:
    with pytest.raises(RulesError, match="no error budget"):
        burn_conditions(ratio_kpi("manual_connection_rate"), 1.0)
    with pytest.raises(RulesError, match="too loose"):
        burn_conditions(ratio_kpi("manual_connection_rate"), 0.4)


def test_traffic_guard_expects_ten_failures_at_the_threshold_without_float_noise() -> None:
    conditions = burn_conditions(ratio_kpi("manual_connection_rate"), 0.9)
    # 10 / 0.1 is 100.00000000000001 in binary floating point: the guard must still be 100.
    assert [c.min_events for c in conditions] == [20, 34, 52, 100]
    drop = burn_conditions(ratio_kpi("drop_rate"), 0.005)
    assert [c.min_events for c in drop] == [139, 334, 667, 2000]


def test_answer_accuracy_alerts_only_as_tickets_over_long_windows_with_many_reviews() -> None:
    conditions = burn_conditions(ratio_kpi("answer_accuracy"), 0.98)
    assert {c.window.severity for c in conditions} == {"ticket"}
    assert [(c.window.long, c.window.short) for c in conditions] == [("1d", "6h"), ("3d", "1d")]
    assert [c.min_events for c in conditions] == [167, 500]


def test_error_budget_follows_the_direction_of_the_target() -> None:
    assert error_budget(ratio_kpi("answer_accuracy"), 0.98) == 0.02
    assert error_budget(ratio_kpi("drop_rate"), 0.005) == 0.005


def test_every_ratio_kpi_is_recorded_per_group_and_overall_for_every_window() -> None:
    names = rules_by_name(build_rules(Settings()))
    for kpi in conventions.RATIO_KPIS:
        for window in conventions.WINDOWS:
            for per_queue in (True, False):
                assert conventions.ratio_rule(kpi, window, per_queue=per_queue) in names
                assert conventions.denominator_rule(kpi, window, per_queue=per_queue) in names
    for kpi in conventions.AVERAGE_KPIS:
        assert conventions.ratio_rule(kpi, "1h", per_queue=True) in names
    assert "kind:hotline_timeliness:ratio_rate1d" in names


def test_kpi_alerts_carry_labels_and_bilingual_annotations_with_value_target_and_link() -> None:
    names = rules_by_name(build_rules(Settings(dashboard_url="https://grafana.example/d")))
    kpi_alerts = [
        rule
        for rules in names.values()
        for rule in rules
        if "alert" in rule and rule["labels"]["component"] == "kpi"  # type: ignore[index]
    ]
    # 3 KPIs × page/ticket × queue/hotline, accuracy × 2, overdue, blocked share, repeat rise
    assert len(kpi_alerts) == 17
    for rule in kpi_alerts:
        labels, notes = rule["labels"], rule["annotations"]
        assert labels["severity"] in ("page", "ticket")  # type: ignore[index]
        assert labels["kpi"] in conventions.RATIO_KPIS  # type: ignore[index]
        assert re.search(r"[\u4e00-\u9fff]", notes["summary"])  # type: ignore[index]
        assert re.search(r"[A-Za-z]{4,}", notes["summary"])  # type: ignore[index]
        assert "{{ $value" in notes["description"]  # type: ignore[index]
        assert notes["target"].startswith(("≥", "<", "≤"))  # type: ignore[index]
        assert notes["dashboard"].startswith(  # type: ignore[index]
            "https://grafana.example/d/hotline-kpi-overview"
        )
    fast = names["HotlineManualConnectionRateFastBurn"]
    assert {r["labels"]["scope"] for r in fast} == {"queue", "hotline"}  # type: ignore[index]
    per_queue = next(r for r in fast if r["labels"]["scope"] == "queue")  # type: ignore[index]
    assert "{{ $labels.queue }}" in per_queue["annotations"]["dashboard"]  # type: ignore[index]
    assert per_queue["annotations"]["target"] == "≥ 90%"  # type: ignore[index]


def test_health_alerts_cover_the_monitor_itself() -> None:
    names = rules_by_name(build_rules(Settings()))
    for alert in (
        "HotlineKpiExporterDown",
        "HotlineKpiExporterAbsent",
        "HotlineKpiNoEvents",
        "HotlineKpiConsumerLagGrowing",
        "HotlineKpiEventsRejected",
        "HotlineKpiStoreCommitsFailing",
        "HotlineKpiStoreCommitsSlow",
    ):
        (rule,) = names[alert]
        assert rule["labels"]["component"] == "monitor"  # type: ignore[index]
    assert 'up{job="other"}' in str(build_rules(Settings(), job="other"))


def test_business_hours_in_a_zone_without_dst_use_a_constant_offset() -> None:
    expr = business_hours_expr(ZoneInfo("Asia/Shanghai"), (8, 22))
    assert "time() + 28800" in expr and ">= 8 < 22" in expr


def test_business_hours_in_a_zone_with_dst_follow_a_table_of_offsets() -> None:
    changes = offset_changes(ZoneInfo("Europe/Berlin"))
    assert changes[0] == (0, 3600)
    # 2026-03-29 01:00 UTC: CET → CEST.
    assert (1774746000, 7200) in changes
    assert len(changes) == 1 + 2 * 20
    assert "vector(7200)" in business_hours_expr(ZoneInfo("Europe/Berlin"), (8, 22))


def test_business_hours_may_wrap_around_midnight() -> None:
    assert "or on ()" in business_hours_expr(ZoneInfo("UTC"), (20, 6))
    with pytest.raises(RulesError):
        business_hours_expr(ZoneInfo("UTC"), (8, 8))


def test_time_scale_shrinks_ranges_for_tests_but_keeps_the_rule_names() -> None:
    scaled = build_rules(Settings(), time_scale=1 / 60)
    names = rules_by_name(scaled)
    (rule,) = names["job:hotline_manual_connection_rate_denominator:increase1h"]
    assert "[1m]" in rule["expr"]  # type: ignore[operator]
    (rule,) = names["job:hotline_manual_connection_rate_denominator:increase3d"]
    assert "[1h12m]" in rule["expr"]  # type: ignore[operator]
    assert format_duration(86400) == "1d" and format_duration(5) == "5s"


def test_offered_load_is_recorded_per_queue_without_dividing_by_zero() -> None:
    (rule,) = rules_by_name(build_rules(Settings()))[conventions.OFFERED_LOAD_RULE]
    expr = rule["expr"]
    assert isinstance(expr, str)
    assert "rate(hotline_agent_requests_total" in expr and "[15m]" in expr
    assert "rate(hotline_handle_seconds_count" in expr and "> 0)" in expr  # no 0/0
    scaled = rules_by_name(build_rules(Settings(), time_scale=1 / 60))
    assert "[15s]" in str(scaled[conventions.OFFERED_LOAD_RULE][0]["expr"])


def test_committed_file_parses_as_yaml_with_groups() -> None:
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    assert [g["name"] for g in data["groups"]][:2] == ["hotline-kpi-sli-5m", "hotline-kpi-sli-30m"]


def test_counted_requests_leave_out_blocked_legs_only_when_they_are_not_requests() -> None:
    """SPEC §3/§6 definitions.blocked_are_requests: false subtracts the blocked counter from
    counted requests (connection rate, service level, abandon rate), never from the blocked
    rate's own denominator."""
    blocked = "increase(hotline_calls_blocked_total"
    for are_requests in (True, False):
        settings = Settings(definitions=Definitions(blocked_are_requests=are_requests))
        names = rules_by_name(build_rules(settings))
        for key in ("manual_connection_rate", "service_level", "abandon_rate"):
            for per_queue in (True, False):
                name = conventions.denominator_rule(key, "1h", per_queue=per_queue)
                (rule,) = names[name]
                assert (blocked in str(rule["expr"])) is not are_requests, name
        (rule,) = names["queue:hotline_blocked_rate_denominator:increase1h"]
        assert blocked not in str(rule["expr"])
        assert "hotline_calls_short_abandoned_total" in str(rule["expr"])


def test_blocked_share_and_repeat_rise_alerts_read_their_configured_thresholds() -> None:
    settings = Settings(alerts=Alerts(blocked_share=0.08, repeat_contact_rise=2))
    names = rules_by_name(build_rules(settings))
    (blocked,) = names[conventions.BLOCKED_SHARE_ALERT]
    assert "queue:hotline_blocked_rate:ratio_rate30m > 0.08" in str(blocked["expr"])
    assert blocked["for"] == "5m" and blocked["labels"]["severity"] == "page"  # type: ignore[index]
    (rising,) = names[conventions.REPEAT_CONTACT_RISE_ALERT]
    assert f"> 2 * {conventions.REPEAT_CONTACT_BASELINE_RULE}" in str(rising["expr"])
    assert rising["labels"]["severity"] == "ticket"  # type: ignore[index]
    assert conventions.REPEAT_CONTACT_BASELINE_RULE in names
    # Repeat contacts have no queue: only whole-hotline rules.
    assert not [name for name in names if name.startswith("overall:")]
