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
    BLOCKED_SHARE_ALERT,
    COMPONENT_KPI,
    OFFERED_LOAD_RULE,
    OFFERED_LOAD_WINDOW,
    OVERDUE_TICKETS_RULE,
    OVERVIEW_DASHBOARD_UID,
    RATIO_KPIS,
    REPEAT_BASELINE_WINDOW,
    REPEAT_CONTACT_BASELINE_DENOMINATOR_RULE,
    REPEAT_CONTACT_BASELINE_RULE,
    REPEAT_CONTACT_RISE_ALERT,
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
from hotline_kpi.metrics import catalogue
from hotline_kpi.metrics.catalogue import Direction, Kpi, Measure, Scope, kpi

DEFAULT_JOB = "hotline-kpi"
RULES_FILE = Path(__file__).parent / "rules" / "hotline-kpi.rules.yml"
# How long the timeliness alert stays firing after the last newly overdue work order.
OVERDUE_WINDOW = "1h"
# The blocked legs, by queue and reason (SPEC §4): the blocked rate's numerator.
BLOCKED_COUNTER = catalogue.BLOCKED_RATE.counters.numerator


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
    blocked_are_requests = settings.definitions.blocked_are_requests
    groups = [
        RuleGroup(
            name=f"hotline-kpi-sli-{window}",
            rules=_sli_rules(job, window, duration, blocked_are_requests=blocked_are_requests),
        )
        for window in WINDOWS
    ]
    groups.append(RuleGroup(name="hotline-kpi-burn-rate", rules=_burn_alerts(settings, link)))
    groups.append(
        RuleGroup(
            name="hotline-kpi-timeliness", rules=_timeliness_rules(settings, job, link, duration)
        )
    )
    groups.append(
        RuleGroup(name="hotline-kpi-calls", rules=_call_alerts(settings, job, link, duration))
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


def _sli_rules(
    job: str, window: str, duration: Any, *, blocked_are_requests: bool
) -> list[RecordingRule | AlertingRule]:
    rules: list[RecordingRule | AlertingRule] = []
    span = duration(window)
    for key in RATIO_KPIS:
        entry = kpi(key)
        # A KPI of the whole hotline only (repeat contacts) has no per-group rule.
        for per_group in (True, False) if entry.group is not Scope.OVERALL else (False,):
            rules += _ratio_rules(
                entry,
                job,
                window,
                span,
                per_group=per_group,
                blocked_are_requests=blocked_are_requests,
            )
    for key in AVERAGE_KPIS:
        for per_group in (True, False):
            rules.append(_average_rule(kpi(key), job, window, span, per_group=per_group))
    return rules


def _ratio_rules(
    entry: Kpi,
    job: str,
    window: str,
    span: str,
    *,
    per_group: bool,
    blocked_are_requests: bool = True,
) -> list[RecordingRule]:
    """The denominator count and the ratio of ``entry`` (SPEC §3) over ``window``.

    Counted requests (SPEC §3) are agent requests minus short abandons, and minus blocked legs
    when ``definitions.blocked_are_requests`` is false: the catalogue marks such a denominator
    with ``BLOCKED_EXCLUDED``, and the rule then subtracts the blocked counter (every reason).
    """
    by = entry.group if per_group else None
    counters = entry.counters
    den_name = denominator_rule(entry.key, window, per_queue=per_group)
    den = summed_increase(counters.denominator, job, span, by)
    subtracted = [counters.denominator_minus] if counters.denominator_minus else []
    if not blocked_are_requests and Measure.BLOCKED_EXCLUDED in entry.denominator.minus:
        subtracted.append(BLOCKED_COUNTER)
    den = minus(den, *(summed_increase(name, job, span, by) for name in subtracted))
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


# --- Blocked calls and repeat contacts --------------------------------------------------------

# The blocked share alert: the share over BLOCKED_WINDOW, still above it over the last
# BLOCKED_SHORT_WINDOW (so that it resolves minutes after blocking stops), for BLOCKED_FOR.
BLOCKED_WINDOW = "30m"
BLOCKED_SHORT_WINDOW = "5m"
BLOCKED_FOR = "5m"
# Low-traffic guards: a queue with a handful of requests in the window (one blocked call out of
# four is 25%) does not page; nor do fewer than this many blocked calls.
MIN_BLOCKED_REQUESTS = 20
MIN_BLOCKED_CALLS = 3
# The repeat contact alert: the last hour against the baseline, for REPEAT_FOR.
REPEAT_WINDOW = "1h"
REPEAT_FOR = "15m"
# An hour with fewer keyed contacts or repeats than these says nothing about a rise.
MIN_KEYED_CONTACTS = 30
MIN_REPEAT_CONTACTS = 5


def _call_alerts(
    settings: Settings, job: str, link: str, duration: Any
) -> list[RecordingRule | AlertingRule]:
    """SPEC §6 ``alerts.*``: a page when too many agent requests are blocked in a queue, a ticket
    when repeat contacts rise above their 7-day baseline, and the baseline's recording rules."""
    return [
        *_repeat_baseline_rules(job, duration),
        _blocked_share_alert(settings, link, duration),
        _repeat_contact_rise_alert(settings, link, duration),
    ]


def _blocked_share_alert(settings: Settings, link: str, duration: Any) -> AlertingRule:
    """Blocked legs ÷ agent requests (short abandons aside: the blocked rate of SPEC §3, so the
    alert reads the KPI the wallboard shows) above ``alerts.blocked_share`` in a queue."""
    entry = catalogue.BLOCKED_RATE
    share = number(settings.alerts.blocked_share)
    long_rule = ratio_rule(entry.key, BLOCKED_WINDOW, per_queue=True)
    short_rule = ratio_rule(entry.key, BLOCKED_SHORT_WINDOW, per_queue=True)
    requests = denominator_rule(entry.key, BLOCKED_WINDOW, per_queue=True)
    match = f" on ({entry.group})"
    expr = (
        f"{long_rule} > {share}\n"
        f"and{match} {short_rule} > {share}\n"
        f"and{match} {requests} >= {MIN_BLOCKED_REQUESTS}\n"
        f"and{match} {long_rule} * {requests} >= {MIN_BLOCKED_CALLS}"
    )
    share_text = percent(settings.alerts.blocked_share)
    return AlertingRule(
        alert=BLOCKED_SHARE_ALERT,
        expr=expr,
        for_=duration(BLOCKED_FOR),
        labels={
            "severity": "page",
            "kpi": entry.key,
            "component": COMPONENT_KPI,
            "scope": str(entry.group),
        },
        annotations={
            "summary": (
                f"{entry.zh}过高（队列 {{{{ $labels.queue }}}}） / "
                f"Too many calls blocked (queue {{{{ $labels.queue }}}})"
            ),
            "description": (
                f"最近 {BLOCKED_WINDOW} 内 {{{{ $value | humanizePercentage }}}} 的人工请求无法进入"
                f"等待队列，超过 {share_text}（请求 ≥ {MIN_BLOCKED_REQUESTS}）。\n"
                f"{{{{ $value | humanizePercentage }}}} of the agent requests in the last"
                f" {BLOCKED_WINDOW} could not enter the queue, more than {share_text}"
                f" (with ≥ {MIN_BLOCKED_REQUESTS} requests)."
            ),
            "value": "{{ $value | humanizePercentage }}",
            "target": f"≤ {share_text}",
            "dashboard": f"{link}?var-queue={{{{ $labels.queue }}}}",
        },
    )


def _repeat_baseline_rules(job: str, duration: Any) -> list[RecordingRule | AlertingRule]:
    """The repeat contact rate over the baseline window, for the whole hotline (SPEC §3)."""
    counters = catalogue.REPEAT_CONTACT_RATE.counters
    span = duration(REPEAT_BASELINE_WINDOW)
    den = REPEAT_CONTACT_BASELINE_DENOMINATOR_RULE
    num = summed_increase(counters.numerator, job, span, None)
    return [
        RecordingRule(record=den, expr=summed_increase(counters.denominator, job, span, None)),
        RecordingRule(
            record=REPEAT_CONTACT_BASELINE_RULE,
            expr=f"(\n  {num}\n  or {den} * 0\n)\n/ ({den} > 0)",
        ),
    ]


def _repeat_contact_rise_alert(settings: Settings, link: str, duration: Any) -> AlertingRule:
    """The repeat contact rate over the last hour above ``alerts.repeat_contact_rise`` times
    its 7-day baseline, with enough keyed contacts and repeats in the hour to mean something.
    Without a baseline (no keyed contact in 7 days) there is nothing to compare: no alert."""
    entry = catalogue.REPEAT_CONTACT_RATE
    rise = number(settings.alerts.repeat_contact_rise)
    rate = ratio_rule(entry.key, REPEAT_WINDOW, per_queue=False)
    contacts = denominator_rule(entry.key, REPEAT_WINDOW, per_queue=False)
    expr = (
        f"{rate} > {rise} * {REPEAT_CONTACT_BASELINE_RULE}\n"
        f"and {contacts} >= {MIN_KEYED_CONTACTS}\n"
        f"and {rate} * {contacts} >= {MIN_REPEAT_CONTACTS}"
    )
    return AlertingRule(
        alert=REPEAT_CONTACT_RISE_ALERT,
        expr=expr,
        for_=duration(REPEAT_FOR),
        labels={
            "severity": "ticket",
            "kpi": entry.key,
            "component": COMPONENT_KPI,
            "scope": "hotline",
        },
        annotations={
            "summary": f"{entry.zh}上升 / {entry.en} is rising",
            "description": (
                f"最近 {REPEAT_WINDOW} {entry.zh}为 {{{{ $value | humanizePercentage }}}}，"
                f"超过 {REPEAT_BASELINE_WINDOW} 基线的 {rise} 倍（来电 ≥ {MIN_KEYED_CONTACTS}，"
                f"重复 ≥ {MIN_REPEAT_CONTACTS}）。\n"
                f"{entry.en} over the last {REPEAT_WINDOW} is"
                f" {{{{ $value | humanizePercentage }}}}, above {rise}× its"
                f" {REPEAT_BASELINE_WINDOW} baseline (≥ {MIN_KEYED_CONTACTS} keyed contacts,"
                f" ≥ {MIN_REPEAT_CONTACTS} repeats)."
            ),
            "value": "{{ $value | humanizePercentage }}",
            "target": f"≤ {rise}× {REPEAT_BASELINE_WINDOW} baseline",
            "dashboard": link,
        },
    )


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
        f"blocked share: {BLOCKED_SHARE_ALERT} pages when more than"
        f" {number(settings.alerts.blocked_share)} of a queue's agent requests",
        f"are blocked over {BLOCKED_WINDOW} and {BLOCKED_SHORT_WINDOW}"
        f" (>= {MIN_BLOCKED_REQUESTS} requests, >= {MIN_BLOCKED_CALLS} blocked),"
        f" for {BLOCKED_FOR}.",
        f"repeat contacts: {REPEAT_CONTACT_RISE_ALERT} opens a ticket when the {REPEAT_WINDOW} rate"
        f" exceeds {number(settings.alerts.repeat_contact_rise)} x",
        f"its {REPEAT_BASELINE_WINDOW} baseline (>= {MIN_KEYED_CONTACTS} keyed contacts,"
        f" >= {MIN_REPEAT_CONTACTS} repeats in the hour), for {REPEAT_FOR}.",
        "counted requests"
        + (
            " exclude blocked legs (definitions.blocked_are_requests: false)."
            if not settings.definitions.blocked_are_requests
            else " include blocked legs (definitions.blocked_are_requests: true)."
        ),
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
