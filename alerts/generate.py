"""The rules generator: settings → rules as data → YAML (``hotline-kpi rules``).

Sloth's pipeline (STYLE.md): the targets are validated into the model of
:mod:`hotline_kpi.alerts.slo`, one builder per concern turns it into rules (SLI recording rules,
KPI burn-rate alerts, the timeliness alert, the offered load in Erlangs, health rules from
:mod:`hotline_kpi.alerts.health`),
and serialisation comes last, with fixed float precision and a deterministic order. Every rule
name comes from :mod:`hotline_kpi.alerts.conventions`. The committed output is
``alerts/rules/hotline-kpi.rules.yml``; a unit test fails when it is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from hotline_kpi.alerts import health
from hotline_kpi.alerts.conventions import (
    AVERAGE_KPIS,
    COMPONENT_KPI,
    OFFERED_LOAD_RULE,
    OFFERED_LOAD_WINDOW,
    OVERDUE_TICKETS_RULE,
    OVERVIEW_DASHBOARD_UID,
    RATIO_KPIS,
    WINDOWS,
    burn_alert_name,
    denominator_rule,
    ratio_rule,
)
from hotline_kpi.alerts.promql import (
    minus,
    number,
    percent,
    selector,
    summed_increase,
    summed_rate,
)
from hotline_kpi.alerts.slo import (
    BURN_WINDOWS,
    MAX_ALERT_ERROR_RATIO,
    MIN_EXPECTED_FAILURES,
    PERIOD_HOURS,
    BurnCondition,
    burn_conditions,
    duration_seconds,
    format_duration,
    ratio_kpi,
    target_of,
)
from hotline_kpi.config import Settings
from hotline_kpi.errors import OutputError
from hotline_kpi.metrics.catalogue import Direction, Kpi, Scope, kpi

DEFAULT_JOB = "hotline-kpi"
RULES_FILE = Path(__file__).parent / "rules" / "hotline-kpi.rules.yml"
# How long the timeliness alert stays firing after the last newly overdue work order.
OVERDUE_WINDOW = "1h"


class RecordingRule(BaseModel):
    """A Prometheus recording rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    record: str
    expr: str


class AlertingRule(BaseModel):
    """A Prometheus alerting rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    alert: str
    expr: str
    for_: str | None = Field(default=None, alias="for")
    labels: dict[str, str]
    annotations: dict[str, str]


class RuleGroup(BaseModel):
    """A group of rules evaluated in order at the global evaluation interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    rules: list[RecordingRule | AlertingRule]


class RuleFile(BaseModel):
    """A Prometheus rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    groups: list[RuleGroup]


def build_rules(
    settings: Settings,
    *,
    job: str = DEFAULT_JOB,
    time_scale: float = 1.0,
    health_policy: health.HealthPolicy | None = None,
) -> dict[str, Any]:
    """Every recording and alerting rule for ``settings``, as the data of a rules file.

    ``job`` is the scrape job of the exporter. ``time_scale`` multiplies every range and
    ``for`` duration while keeping the rule names: **only for tests** (the end-to-end test uses
    1/60, so ``ratio_rate1h`` spans one minute and a burn-rate alert fires within a minute).
    """
    if time_scale <= 0:
        raise ValueError("time_scale must be positive")

    def duration(nominal: str) -> str:
        return str(format_duration(duration_seconds(nominal) * time_scale))

    policy = health_policy or health.HealthPolicy()
    link = f"{settings.dashboard_url.rstrip('/')}/{OVERVIEW_DASHBOARD_UID}"
    groups = [
        RuleGroup(name=f"hotline-kpi-sli-{window}", rules=_sli_rules(job, window, duration))
        for window in WINDOWS
    ]
    groups.append(RuleGroup(name="hotline-kpi-burn-rate", rules=_burn_alerts(settings, link)))
    groups.append(
        RuleGroup(
            name="hotline-kpi-timeliness", rules=_timeliness_rules(settings, job, link, duration)
        )
    )
    groups.append(RuleGroup(name="hotline-kpi-staffing", rules=[_offered_load_rule(job, duration)]))
    no_events = round(settings.no_events_alert_seconds * time_scale)
    health_rules: list[RecordingRule | AlertingRule] = [
        RecordingRule.model_validate(rule)
        for rule in health.recording_rules(job, duration, settings.zone, settings.business_hours)
    ]
    health_rules += [
        AlertingRule.model_validate(rule)
        for rule in health.alerting_rules(
            job,
            duration,
            no_events_seconds=max(no_events, 1),
            dashboard_url=settings.dashboard_url,
            policy=policy,
        )
    ]
    groups.append(RuleGroup(name="hotline-kpi-health", rules=health_rules))
    return RuleFile(groups=groups).model_dump(by_alias=True, exclude_none=True)


# --- SLI recording rules -----------------------------------------------------------------------


def _sli_rules(job: str, window: str, duration: Any) -> list[RecordingRule | AlertingRule]:
    rules: list[RecordingRule | AlertingRule] = []
    span = duration(window)
    for key in RATIO_KPIS:
        for per_group in (True, False):
            rules += _ratio_rules(kpi(key), job, window, span, per_group=per_group)
    for key in AVERAGE_KPIS:
        for per_group in (True, False):
            rules.append(_average_rule(kpi(key), job, window, span, per_group=per_group))
    return rules


def _ratio_rules(
    entry: Kpi, job: str, window: str, span: str, *, per_group: bool
) -> list[RecordingRule]:
    """The denominator count and the ratio of ``entry`` (SPEC §3) over ``window``."""
    by = entry.group if per_group else None
    counters = entry.counters
    den_name = denominator_rule(entry.key, window, per_queue=per_group)
    den = summed_increase(counters.denominator, job, span, by)
    if counters.denominator_minus:
        den = minus(den, summed_increase(counters.denominator_minus, job, span, by))
    num = summed_increase(counters.numerator, job, span, by)
    if counters.numerator_minus:
        num = minus(num, summed_increase(counters.numerator_minus, job, span, by))
    # A counter child is born with its first event: a queue where nobody was answered yet has
    # no answered series, and its rate is 0, not "no data". A zero denominator is "no data"
    # (SPEC §3), so the ratio is left out rather than 0/0.
    ratio = f"(\n  {_indent(num)}\n  or {den_name} * 0\n)\n/ ({den_name} > 0)"
    return [
        RecordingRule(record=den_name, expr=den),
        RecordingRule(record=ratio_rule(entry.key, window, per_queue=per_group), expr=ratio),
    ]


def _average_rule(
    entry: Kpi, job: str, window: str, span: str, *, per_group: bool
) -> RecordingRule:
    by = entry.group if per_group else None
    histogram = entry.histogram.name
    total = summed_increase(f"{histogram}_sum", job, span, by)
    count = summed_increase(f"{histogram}_count", job, span, by)
    return RecordingRule(
        record=ratio_rule(entry.key, window, per_queue=per_group),
        expr=f"{total}\n/ ({count} > 0)",
    )


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


# --- KPI burn-rate alerts ----------------------------------------------------------------------


def _burn_alerts(settings: Settings, link: str) -> list[RecordingRule | AlertingRule]:
    rules: list[RecordingRule | AlertingRule] = []
    for key in BURN_WINDOWS:
        entry = ratio_kpi(key)
        target = target_of(settings, key)
        if target is None:
            continue
        conditions = burn_conditions(entry, target)
        for severity in ("page", "ticket"):
            chosen = [c for c in conditions if c.window.severity == severity]
            if not chosen:
                continue
            for per_group in (True, False):
                rules.append(
                    _burn_alert(entry, target, severity, chosen, link, per_group=per_group)
                )
    return rules


def _burn_alert(
    entry: Kpi,
    target: float,
    severity: str,
    conditions: list[BurnCondition],
    link: str,
    *,
    per_group: bool,
) -> AlertingRule:
    match = f" on ({entry.group})" if per_group else ""
    compare = "<" if entry.direction is Direction.AT_LEAST else ">"
    branches = []
    for c in conditions:
        w = c.window
        long_rule = ratio_rule(entry.key, w.long, per_queue=per_group)
        short_rule = ratio_rule(entry.key, w.short, per_queue=per_group)
        guard = denominator_rule(entry.key, w.long, per_queue=per_group)
        threshold = number(c.kpi_threshold)
        branches.append(
            f"(\n  {long_rule} {compare} {threshold}\n"
            f"  and{match} {short_rule} {compare} {threshold}\n"
            f"  and{match} {guard} >= {c.min_events}\n)"
        )
    expr = f"\nor{match}\n".join(branches)

    target_text = f"{entry.direction.sign} {percent(target)}"
    where_zh = "（队列 {{ $labels.queue }}）" if per_group else "（全部队列）"
    where_en = " (queue {{ $labels.queue }})" if per_group else " (all queues)"
    if per_group:
        link += "?var-queue={{ $labels.queue }}"
    windows_text = "; ".join(
        f"{c.window.long}/{c.window.short} {compare} {percent(c.kpi_threshold)}"
        f" ({number(c.factor)}×, ≥ {c.min_events})"
        for c in conditions
    )
    speed_zh = "快速" if severity == "page" else "持续"
    speed_en = "fast" if severity == "page" else "steadily"
    # ``scope`` tells the per-queue rule from the whole-hotline one (same name, same KPI).
    labels = {
        "severity": severity,
        "kpi": entry.key,
        "component": COMPONENT_KPI,
        "scope": str(entry.group) if per_group else "hotline",
    }
    annotations = {
        "summary": (
            f"{entry.zh}{speed_zh}消耗月度误差预算{where_zh} / "
            f"{entry.en} is burning its monthly error budget {speed_en}{where_en}"
        ),
        "description": (
            f"{entry.zh}为 {{{{ $value | humanizePercentage }}}}（长窗口），目标 {target_text}。"
            f"告警条件：{windows_text}。\n"
            f"{entry.en} is {{{{ $value | humanizePercentage }}}} over the long"
            f" window, target {target_text}. Fires on: {windows_text}."
        ),
        "value": "{{ $value | humanizePercentage }}",
        "target": target_text,
        "dashboard": link,
    }
    return AlertingRule(
        alert=burn_alert_name(entry.key, severity),
        expr=expr,
        labels=labels,
        annotations=annotations,
    )


# --- Timeliness --------------------------------------------------------------------------------


def _timeliness_rules(
    settings: Settings, job: str, link: str, duration: Any
) -> list[RecordingRule | AlertingRule]:
    """Timeliness has a 100% target, so no error budget: any newly overdue work order alerts.

    The overdue count is due − on time per ticket kind (SPEC §3, §4); it only grows while the
    exporter runs, so the alert fires when it is above its value ``OVERDUE_WINDOW`` ago (or
    above 0 when there is no value then) and resolves ``OVERDUE_WINDOW`` after the last one.
    """
    # The work-order KPI: the one Prometheus groups by ticket kind.
    timeliness = next(kpi(key) for key in RATIO_KPIS if kpi(key).group is Scope.KIND)
    sel = selector(job)
    due = f"sum by ({timeliness.group}) ({timeliness.counters.denominator}{sel})"
    on_time = f"sum by ({timeliness.group}) ({timeliness.counters.numerator}{sel})"
    target = target_of(settings, timeliness.key)
    target_text = f"{timeliness.direction.sign} {percent(target if target is not None else 1.0)}"
    record = RecordingRule(record=OVERDUE_TICKETS_RULE, expr=minus(due, on_time))
    expr = (
        f"{OVERDUE_TICKETS_RULE}\n> (\n  {OVERDUE_TICKETS_RULE} offset {duration(OVERDUE_WINDOW)}"
        f"\n  or {OVERDUE_TICKETS_RULE} * 0\n)"
    )
    alert = AlertingRule(
        alert="HotlineTicketsOverdue",
        expr=expr,
        labels={"severity": "ticket", "kpi": timeliness.key, "component": COMPONENT_KPI},
        annotations={
            "summary": (
                "有工单超期（{{ $labels.kind }}） / A work order is overdue ({{ $labels.kind }})"
            ),
            "description": (
                f"{{{{ $labels.kind }}}} 类工单最近 {OVERDUE_WINDOW} 内新增超期，累计超期"
                f" {{{{ $value }}}} 张；工单及时率目标 {target_text}，任何超期都不达标。\n"
                f"New overdue {{{{ $labels.kind }}}} work orders in the last {OVERDUE_WINDOW},"
                f" {{{{ $value }}}} overdue in all; the timeliness target is {target_text}, so"
                " any overdue work order misses it."
            ),
            "value": "{{ $value }}",
            "target": target_text,
            "dashboard": f"{link}?var-kind={{{{ $labels.kind }}}}",
        },
    )
    return [record, alert]


# --- Offered load ------------------------------------------------------------------------------


def _offered_load_rule(job: str, duration: Any) -> RecordingRule:
    """Offered load per queue in Erlangs: arrival rate × mean handle time (issue 10).

    Arrivals are the agent requests (calls queued, SPEC §4) per second; the mean handle time is
    the handle-time histogram's sum ÷ count, both over the same window. When no call of a queue
    ended in the window its handle time is unknown: the count is filtered with ``> 0`` so that
    the queue has no sample ("no data"), never a division by zero (NaN or +Inf) nor 0 Erlangs.
    A queue with a known handle time and no arrivals has 0 Erlangs.
    """
    span = duration(OFFERED_LOAD_WINDOW)
    arrivals = summed_rate("hotline_agent_requests_total", job, span, "queue")
    handled = summed_rate("hotline_handle_seconds_sum", job, span, "queue")
    count = summed_rate("hotline_handle_seconds_count", job, span, "queue")
    return RecordingRule(
        record=OFFERED_LOAD_RULE,
        expr=f"{arrivals}\n* (\n  {handled}\n  / ({count} > 0)\n)",
    )


# --- Serialisation -----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Multi-line PromQL as literal blocks, so that the committed file reads like PromQL."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def header(settings: Settings, *, job: str = DEFAULT_JOB, time_scale: float = 1.0) -> str:
    """The comment block at the top of the rules file: provenance and the burn-rate factors."""
    lines = [
        "Generated by `hotline-kpi rules` (alerts/generate.py) from the configuration: do not",
        "edit; change the targets and run `hotline-kpi rules --output <this file>`.",
        f"Scrape job: {job}. Time zone: {settings.timezone}. Business hours:"
        f" {settings.business_hours[0]:02d}:00-{settings.business_hours[1]:02d}:00.",
    ]
    if time_scale != 1.0:
        lines.append(f"TEST ONLY: every range and `for` is scaled by {time_scale:g}.")
    lines += [
        "",
        f"Burn-rate factors (SLO period {PERIOD_HOURS} h = 30 d; docs/alerts.md derives them):",
        "workbook factor = budget share x 720 h / long window (2% in 1h = 14.4, 5% in 6h = 6,",
        "10% in 1d = 3, 10% in 3d = 1). When factor x budget would exceed"
        f" {number(MAX_ALERT_ERROR_RATIO)},",
        "the fastest factor becomes the ceiling c = 0.5 / budget and each factor w becomes",
        "c ** (ln w / ln 14.4). Guard: the long window must hold >= "
        f"{MIN_EXPECTED_FAILURES} / (factor x budget) events.",
        "",
        "kpi                     target   budget  severity long/short  factor  alert when   min",
    ]
    for key in BURN_WINDOWS:
        entry = ratio_kpi(key)
        target = target_of(settings, key)
        if target is None:
            continue
        at_least = entry.direction is Direction.AT_LEAST
        sign = ">=" if at_least else "<"
        compare = "<" if at_least else ">"
        for c in burn_conditions(entry, target):
            budget = number(round(c.error_threshold / c.factor, 6))
            lines.append(
                f"{key:<23} {sign + ' ' + number(target):<8} {budget:<7} "
                f"{c.window.severity:<8} {c.window.long + '/' + c.window.short:<11} "
                f"{number(c.factor):<7} {compare + ' ' + number(c.kpi_threshold):<12} "
                f"{c.min_events}"
            )
    lines += [
        "",
        "timeliness: 100% target, no error budget: HotlineTicketsOverdue fires on any newly",
        "overdue work order (due - on time growing).",
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render_rules(
    settings: Settings,
    *,
    job: str = DEFAULT_JOB,
    time_scale: float = 1.0,
    health_policy: health.HealthPolicy | None = None,
) -> str:
    """The rules file as YAML text: the header comment, then the rules in a fixed order."""
    data = build_rules(settings, job=job, time_scale=time_scale, health_policy=health_policy)
    body = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=1000,
        default_flow_style=False,
    )
    return header(settings, job=job, time_scale=time_scale) + body


def run_rules(settings: Settings, args: argparse.Namespace) -> int:
    """``hotline-kpi rules``: write the rules to ``--output`` (``-`` is standard output)."""
    text = render_rules(settings)
    output = getattr(args, "output", "-") or "-"
    if output == "-":
        sys.stdout.write(text)
        return 0
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write rules to {path}: {exc.strerror}") from None
    return 0
