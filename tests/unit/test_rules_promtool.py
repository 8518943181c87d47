"""The committed rules under ``promtool``: syntax, health alerts, the overdue alert, rendering.

Fast (a few seconds): each case loads only the rules its alert needs (see
:func:`hotline_kpi.alerts.testing.only_for_alerts`). Promtool's clock starts at the Unix epoch,
which is 08:00 in Asia/Shanghai: inside the default business hours (08–22 local).
The KPI burn-rate cases are in ``tests/integration/test_alerting_burn_rate.py``; the offered
load recording rule is checked here with ``promql_expr_test``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotline_kpi.alerts.conventions import OFFERED_LOAD_RULE
from hotline_kpi.alerts.generate import RULES_FILE
from hotline_kpi.alerts.testing import (
    only_for_alerts,
    promtool,
    run_rule_tests,
    strip_annotations,
)

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool")

JOB = 'job="hotline-kpi"'
MONITOR = {"severity": "page", "component": "monitor"}
MONITOR_TICKET = {"severity": "ticket", "component": "monitor"}


def committed() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return data


def check(
    alert: str, tests: list[dict[str, Any]], tmp_path: Path, *, annotations: bool = False
) -> None:
    rules = committed() if annotations else strip_annotations(committed())
    result = run_rule_tests(only_for_alerts(rules, {alert}), tests, tmp_path)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def case(
    name: str,
    series: dict[str, str],
    expectations: list[tuple[str, str, list[dict[str, str]]]],
    interval: str = "1m",
) -> dict[str, Any]:
    """A promtool test group: ``series`` → values; expectations (time, alert, label sets)."""
    return {
        "name": name,
        "interval": interval,
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {
                "eval_time": at,
                "alertname": alert,
                "exp_alerts": [{"exp_labels": each} for each in labels],
            }
            for at, alert, labels in expectations
        ],
    }


def test_committed_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", RULES_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_exporter_down_pages_after_two_minutes_and_resolves(tmp_path: Path) -> None:
    a = "HotlineKpiExporterDown"
    down = MONITOR | {"job": "hotline-kpi", "instance": "e:9769"}
    check(
        a,
        [
            case(
                "down",
                {f'up{{{JOB}, instance="e:9769"}}': "1 1 1 0x10 1x5"},
                [("4m", a, []), ("6m", a, [down]), ("16m", a, [])],
            )
        ],
        tmp_path,
    )


def test_exporter_absent_pages_when_no_target_of_the_job_exists(tmp_path: Path) -> None:
    a = "HotlineKpiExporterAbsent"
    check(
        a,
        [
            case(
                "absent",
                {'up{job="other", instance="o:1"}': "1x20"},
                [("3m", a, []), ("7m", a, [MONITOR | {"job": "hotline-kpi"}])],
            ),
            case("present", {f'up{{{JOB}, instance="e:1"}}': "1x20"}, [("10m", a, [])]),
        ],
        tmp_path,
    )


def test_no_events_pages_only_during_business_hours_in_the_configured_zone(tmp_path: Path) -> None:
    a = "HotlineKpiNoEvents"
    last = f"hotline_last_event_timestamp_seconds{{{JOB}}}"
    up = f'up{{{JOB}, instance="e:1"}}'
    check(
        a,
        [
            # Events until minute 20, then silence: 600 s later it pages.
            case(
                "silence",
                {last: "0+60x20 1200x40", up: "1x60"},
                [("25m", a, []), ("35m", a, [MONITOR])],
            ),
            # 21:55 local still business hours; 22:05 not (Asia/Shanghai is UTC+8, no DST).
            case(
                "evening",
                {last: "0+300x6 1800x200", up: "1x200"},
                [("13h55m", a, [MONITOR]), ("14h5m", a, [])],
                interval="5m",
            ),
            # Up for ten minutes without any event at all.
            case(
                "never",
                {up: "1x30"},
                [("5m", a, []), ("15m", a, [MONITOR | {"job": "hotline-kpi"}])],
            ),
        ],
        tmp_path,
    )


def test_consumer_lag_growing_opens_a_ticket_and_resolves_when_it_shrinks(tmp_path: Path) -> None:
    a = "HotlineKpiConsumerLagGrowing"
    lag = f'hotline_consumer_lag_messages{{{JOB}, topic="hotline-events", partition="0"}}'
    labels = MONITOR_TICKET | {"topic": "hotline-events"}
    check(
        a,
        [
            case(
                "lag",
                {lag: "0+100x40 4000-200x20"},
                [("20m", a, []), ("35m", a, [labels]), ("55m", a, [])],
            ),
            case("small", {lag: "0+10x60"}, [("50m", a, [])]),
        ],
        tmp_path,
    )


def test_rejection_ratio_high_opens_a_ticket_but_not_for_duplicates_or_low_volume(
    tmp_path: Path,
) -> None:
    a = "HotlineKpiEventsRejected"
    events = f'hotline_events_total{{{JOB}, type="call.offered"}}'
    check(
        a,
        [
            case(
                "bad",
                {
                    events: "0+100x40",
                    f'hotline_events_rejected_total{{{JOB}, reason="invalid_json"}}': "0+10x40",
                },
                [("10m", a, []), ("25m", a, [MONITOR_TICKET])],
            ),
            case(
                "duplicates",
                {
                    events: "0+100x40",
                    f'hotline_events_rejected_total{{{JOB}, reason="duplicate"}}': "0+50x40",
                },
                [("25m", a, [])],
            ),
            case(
                "quiet",
                {
                    events: "0+1x40",
                    f'hotline_events_rejected_total{{{JOB}, reason="invalid_json"}}': "0+1x40",
                },
                [("25m", a, [])],
            ),
        ],
        tmp_path,
    )


def test_store_commit_failures_page_but_a_single_retried_failure_does_not(tmp_path: Path) -> None:
    a = "HotlineKpiStoreCommitsFailing"
    failures = f"hotline_store_commit_failures_total{{{JOB}}}"
    check(
        a,
        [
            case("failing", {failures: "0+1x30"}, [("2m", a, []), ("12m", a, [MONITOR])]),
            case("once", {failures: "0 0 0 1x30"}, [("12m", a, [])]),
        ],
        tmp_path,
    )


def test_slow_store_commits_open_a_ticket(tmp_path: Path) -> None:
    a = "HotlineKpiStoreCommitsSlow"
    bucket = f"hotline_store_commit_seconds_bucket{{{JOB}, "
    check(
        a,
        [
            case(
                "slow",
                {
                    bucket + 'le="0.5"}': "0x40",
                    bucket + 'le="5"}': "0+10x40",
                    bucket + 'le="+Inf"}': "0+10x40",
                },
                [("10m", a, []), ("25m", a, [MONITOR_TICKET])],
            ),
            case(
                "fast",
                {
                    bucket + 'le="0.5"}': "0+10x40",
                    bucket + 'le="5"}': "0+10x40",
                    bucket + 'le="+Inf"}': "0+10x40",
                },
                [("25m", a, [])],
            ),
        ],
        tmp_path,
    )


def test_any_newly_overdue_work_order_opens_a_ticket_for_an_hour(tmp_path: Path) -> None:
    a = "HotlineTicketsOverdue"
    due = f"hotline_tickets_due_total{{{JOB}, "
    on_time = f"hotline_tickets_on_time_total{{{JOB}, "

    def overdue(kind: str) -> dict[str, str]:
        return {"severity": "ticket", "kpi": "timeliness", "component": "kpi", "kind": kind}

    series = {
        # One complaint overdue at minute 31; every other settled on time.
        due + 'kind="complaint"}': "0+1x30 31x90",
        on_time + 'kind="complaint"}': "0+1x30 30x90",
        # The first fault work order is overdue: there is no on-time series at all.
        due + 'kind="fault"}': "_x9 1x110",
        # Callbacks always on time, the on-time series born a little after the due one.
        due + 'kind="callback"}': "0+1x120",
        on_time + 'kind="callback"}': "_ _ 2+1x118",
    }
    check(
        a,
        [
            case(
                "overdue",
                series,
                [
                    ("20m", a, [overdue("fault")]),
                    ("40m", a, [overdue("complaint"), overdue("fault")]),
                    ("75m", a, [overdue("complaint")]),
                    ("95m", a, []),
                ],
            )
        ],
        tmp_path,
    )


def test_annotations_render_value_target_and_links(tmp_path: Path) -> None:
    """The committed annotations as Prometheus renders them (no annotation is stripped)."""
    a = "HotlineManualConnectionRateFastBurn"
    rule = next(
        r
        for g in committed()["groups"]
        for r in g["rules"]
        if r.get("alert") == a and r["labels"]["scope"] == "hotline"
    )
    rendered = {
        key: value.replace("{{ $value | humanizePercentage }}", "20%")
        for key, value in rule["annotations"].items()
    }
    assert "20%" in rendered["description"] and "≥ 90%" in rendered["description"]
    labels = {"severity": "page", "kpi": "manual_connection_rate", "component": "kpi"}
    series = {
        f'hotline_agent_requests_total{{{JOB}, queue="q"}}': "0+10x90",
        f'hotline_agent_answered_total{{{JOB}, queue="q"}}': "0+2x90",
    }
    test = case("rendered", series, [])
    test["alert_rule_test"] = [
        {
            "eval_time": "70m",
            "alertname": a,
            "exp_alerts": [
                {"exp_labels": labels | {"scope": "hotline"}, "exp_annotations": rendered},
                {
                    "exp_labels": labels | {"scope": "queue", "queue": "q"},
                    "exp_annotations": {
                        key: value.replace("{{ $value | humanizePercentage }}", "20%").replace(
                            "{{ $labels.queue }}", "q"
                        )
                        for key, value in next(
                            r
                            for g in committed()["groups"]
                            for r in g["rules"]
                            if r.get("alert") == a and r["labels"]["scope"] == "queue"
                        )["annotations"].items()
                    },
                },
            ],
        }
    ]
    check(a, [test], tmp_path, annotations=True)


def test_offered_load_is_arrival_rate_times_mean_handle_time_and_absent_without_handle_time(
    tmp_path: Path,
) -> None:
    # Values chosen to be exact in binary floating point over a 15-minute window.
    rules = {
        "groups": [
            {**g, "rules": [r for r in g["rules"] if r.get("record") == OFFERED_LOAD_RULE]}
            for g in committed()["groups"]
            if any(r.get("record") == OFFERED_LOAD_RULE for r in g["rules"])
        ]
    }
    assert len(rules["groups"]) == 1

    def queue(name: str, requests: str, handled: str, seconds: str) -> dict[str, str]:
        labels = f'{{{JOB}, queue="{name}"}}'
        return {
            f"hotline_agent_requests_total{labels}": requests,
            f"hotline_handle_seconds_count{labels}": handled,
            f"hotline_handle_seconds_sum{labels}": seconds,
        }

    series = {
        # 7.5 calls a minute (0.125/s), 15 ended a minute at 160 s each: 0.125 × 160 = 20 E.
        **queue("billing", "0+7.5x30", "0+15x30", "0+2400x30"),
        # No arrivals, a known handle time of 120 s: 0 E.
        **queue("mobile", "0x30", "0+15x30", "0+1800x30"),
        # Arrivals but no call ended in the window: handle time unknown, no sample (not 0/0).
        **queue("vip", "0+7.5x30", "0x30", "0x30"),
    }
    test = {
        "name": "offered load",
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "promql_expr_test": [
            {
                "expr": OFFERED_LOAD_RULE,
                "eval_time": "20m",
                "exp_samples": [
                    {"labels": f'{OFFERED_LOAD_RULE}{{queue="billing"}}', "value": 20},
                    {"labels": f'{OFFERED_LOAD_RULE}{{queue="mobile"}}', "value": 0},
                ],
            },
            {"expr": f'{OFFERED_LOAD_RULE}{{queue="vip"}}', "eval_time": "20m", "exp_samples": []},
        ],
    }
    result = run_rule_tests(rules, [test], tmp_path)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_blocked_share_pages_per_queue_after_its_for_and_not_at_low_volume(tmp_path: Path) -> None:
    a = "HotlineCallsBlocked"
    requests = f"hotline_agent_requests_total{{{JOB}, "
    blocked = f"hotline_calls_blocked_total{{{JOB}, "
    page = {"severity": "page", "kpi": "blocked_rate", "component": "kpi", "scope": "queue"}
    series = {
        # billing: 10 requests a minute; 2 of them blocked from minute 11 to 40 (20%).
        requests + 'queue="billing"}': "0+10x70",
        blocked + 'queue="billing", reason="queue_full"}': "0x10 2+2x29 60x30",
        # mobile: 3% blocked, below the 5% share, for the whole hour.
        requests + 'queue="mobile"}': "0+100x70",
        blocked + 'queue="mobile", reason="no_agents"}': "0+3x70",
        # vip: every request blocked, but 15 requests in 30 minutes: too few to page.
        requests + 'queue="vip"}': "0+0.5x70",
        blocked + 'queue="vip", reason="closed"}': "0+0.5x70",
    }
    check(
        a,
        [
            case(
                "blocked",
                series,
                [
                    ("12m", a, []),
                    ("25m", a, [page | {"queue": "billing"}]),
                    ("38m", a, [page | {"queue": "billing"}]),
                    ("55m", a, []),
                ],
            )
        ],
        tmp_path,
    )


def test_repeat_contacts_rising_above_the_baseline_open_a_ticket_but_not_at_low_volume(
    tmp_path: Path,
) -> None:
    a = "HotlineRepeatContactsRising"
    keyed = f"hotline_contacts_keyed_total{{{JOB}}}"
    repeats = f"hotline_repeat_contacts_total{{{JOB}}}"
    ticket = {"severity": "ticket", "kpi": "repeat_contact_rate", "component": "kpi",
              "scope": "hotline"}  # fmt: skip
    # Two days at 60 keyed contacts an hour, 10% repeats; then 30% repeats for three hours.
    rising = {keyed: "0+10x306", repeats: "0+1x288 291+3x18"}
    # The same shares at 12 keyed contacts an hour: too few to say anything.
    quiet = {keyed: "0+2x306", repeats: "0+0.2x288 58.2+0.6x18"}
    check(
        a,
        [
            case(
                "rising",
                rising,
                [
                    ("47h", a, []),
                    ("48h10m", a, []),
                    ("49h30m", a, [ticket]),
                ],
                interval="10m",
            ),
            case("quiet", quiet, [("49h30m", a, [])], interval="10m"),
        ],
        tmp_path,
    )
