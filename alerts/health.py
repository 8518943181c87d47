"""Alerts on the monitor itself: the exporter, the event stream, the consumer and the store.

A broken monitor must never look like a quiet hotline (SPEC §1: "never silent failure"). These
rules read only the service's own metrics (SPEC §4, plus the store-commit metrics of
docs/alerts.md) and ``up``; :mod:`hotline_kpi.alerts.generate` places them in the rules file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hotline_kpi.alerts.conventions import (
    BUSINESS_HOURS_RULE,
    COMPONENT_MONITOR,
    CONSUMER_LAG_RULE,
    HEALTH_DASHBOARD_UID,
    REJECTED_RATIO_RULE,
)
from hotline_kpi.alerts.promql import number as _number
from hotline_kpi.alerts.promql import percent as _percent
from hotline_kpi.alerts.promql import selector
from hotline_kpi.alerts.slo import RulesError, format_duration

# Offsets of zones with daylight saving time are tabulated over these years (UTC instants), so
# that the generated file does not depend on the day it was generated; after the last change
# the last offset stays in force.
ZONE_TABLE_YEARS = (2020, 2040)


@dataclass(frozen=True)
class HealthPolicy:
    """Thresholds of the health alerts; the defaults are the documented ones."""

    min_lag_messages: int = 1000
    rejected_ratio: float = 0.05
    min_events_for_rejected_ratio: int = 100
    commit_failures: int = 3
    commit_p99_seconds: float = 2.0


Duration = Callable[[str], str]
"""Turns a nominal duration (``10m``) into the one written in the rules (scaled for tests)."""


def offset_changes(zone: ZoneInfo) -> list[tuple[int, int]]:
    """``(utc_instant, offset_seconds)`` from which each UTC offset of ``zone`` holds.

    The first entry's instant is 0 (the offset before the table starts). Changes are found by
    stepping a day at a time over :data:`ZONE_TABLE_YEARS` and bisecting to the second.
    """

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    start = datetime(ZONE_TABLE_YEARS[0], 1, 1, tzinfo=UTC)
    end = datetime(ZONE_TABLE_YEARS[1], 1, 1, tzinfo=UTC)
    changes = [(0, offset(start))]
    day = timedelta(days=1)
    at = start
    while at < end:
        following = at + day
        if offset(following) != offset(at):
            low, high = at, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset(middle) == offset(low):
                    low = middle
                else:
                    high = middle
            changes.append((int(high.timestamp()), offset(high)))
        at = following
    return changes


def business_hours_expr(zone: ZoneInfo, hours: tuple[int, int]) -> str:
    """PromQL that is 1 during ``hours`` (local ``[start, end)``) in ``zone``, else 0.

    Prometheus knows only UTC (``hour()``), so the zone's offset is added to ``time()`` first:
    a constant for zones without daylight saving time (Asia/Shanghai: +28800 s), else a table.
    """
    start, end = hours
    if not (0 <= start <= 23 and 1 <= end <= 24 and start != end):
        raise RulesError(f"business_hours: {hours} is not (start 0–23, end 1–24, start != end)")
    changes = offset_changes(zone)
    if len(changes) == 1:
        local = f"hour(vector(time() + {changes[0][1]}))"
    else:
        pieces = []
        for index, (since, offset) in enumerate(changes):
            until = changes[index + 1][0] if index + 1 < len(changes) else None
            when = "vector(time())"
            if index > 0:
                when += f" >= {since}"
            if until is not None:
                when += f" < {until}"
            pieces.append(f"(vector({offset}) and on () ({when}))")
        local = "hour(vector(time()) + on () (\n  " + "\n  or on () ".join(pieces) + "\n))"
    if start < end:
        inside = f"({local} >= {start} < {end})"
    else:  # the hours wrap around midnight (start 20, end 6)
        inside = f"({local} >= {start} or on () {local} < {end})"
    return f"vector(1) and on () {inside}\nor on ()\nvector(0)"


def recording_rules(
    job: str, duration: Duration, zone: ZoneInfo, hours: tuple[int, int]
) -> list[dict[str, str]]:
    """The recording rules the health alerts (and the health dashboard) read."""
    rejected = f"hotline_events_rejected_total{selector(job)}"
    not_duplicate = selector(job, 'reason!="duplicate"')
    return [
        {"record": BUSINESS_HOURS_RULE, "expr": business_hours_expr(zone, hours)},
        {
            "record": CONSUMER_LAG_RULE,
            "expr": f"sum by (topic) (hotline_consumer_lag_messages{selector(job)})",
        },
        {
            "record": REJECTED_RATIO_RULE,
            # Duplicates are left out of the numerator: after a consumer restart, at-least-once
            # redelivery rejects a batch of them by design (SPEC §2), which is not a fault.
            "expr": (
                f"sum(rate(hotline_events_rejected_total{not_duplicate}"
                f"[{duration('15m')}]))\n/\n("
                f"sum(rate(hotline_events_total{selector(job)}[{duration('15m')}]))\n"
                f"  + (sum(rate({rejected}[{duration('15m')}])) or vector(0))\n) > 0"
            ),
        },
    ]


def alerting_rules(
    job: str,
    duration: Duration,
    *,
    no_events_seconds: int,
    dashboard_url: str,
    policy: HealthPolicy,
) -> list[dict[str, object]]:
    """The health alerts: exporter down or absent, no events, lag, rejects, store commits.

    ``no_events_seconds`` is written as given (the caller scales it with the other durations).
    """
    link = f"{dashboard_url.rstrip('/')}/{HEALTH_DASHBOARD_UID}"
    quiet = format_duration(no_events_seconds)
    last_event = f"hotline_last_event_timestamp_seconds{selector(job)}"
    failures = f"hotline_store_commit_failures_total{selector(job)}"
    events = f"sum(increase(hotline_events_total{selector(job)}[{duration('15m')}]))"
    rejects = f"sum(increase(hotline_events_rejected_total{selector(job)}[{duration('15m')}]))"
    commit_buckets = f"hotline_store_commit_seconds_bucket{selector(job)}[{duration('10m')}]"
    alerts = [
        HealthAlert(
            "HotlineKpiExporterDown",
            f"up{selector(job)} == 0",
            duration("2m"),
            "page",
            ("监控导出器无法抓取", "the hotline-kpi exporter cannot be scraped"),
            (
                "Prometheus 抓取 {{ $labels.instance }} 失败，KPI 指标不再更新。",
                "Prometheus fails to scrape {{ $labels.instance }}; the KPI metrics are frozen.",
            ),
        ),
        HealthAlert(
            "HotlineKpiExporterAbsent",
            f"absent(up{selector(job)})",
            duration("5m"),
            "page",
            (f"没有名为 {job} 的抓取目标", f"no scrape target of job {job}"),
            (
                "Prometheus 中没有该作业的目标：服务发现或抓取配置可能有误。",
                "Prometheus has no target for this job: check service discovery and scrape config.",
            ),
        ),
        HealthAlert(
            "HotlineKpiNoEvents",
            # The gauge is the newest event's own time; 0 or absent means none since start,
            # which alerts once the exporter has been up for the whole quiet period (and was
            # scraped already at its start: not merely since Prometheus itself started).
            (
                f"(\n  (time() - max({last_event} > 0)) > {no_events_seconds}\n"
                f"  or on ()\n  (\n"
                f"    (max(max_over_time({last_event}[{quiet}])) == 0"
                f" or on () absent_over_time({last_event}[{quiet}]))\n"
                f"    and on () min(min_over_time(up{selector(job)}[{quiet}])) == 1\n"
                f"    and on () count(up{selector(job)} offset {quiet})\n  )\n)\n"
                f"and on () {BUSINESS_HOURS_RULE} == 1"
            ),
            None,
            "page",
            ("营业时间内没有收到事件", "no hotline events during business hours"),
            (
                f"营业时间内超过 {no_events_seconds} 秒没有新事件（上一个事件距今"
                " {{ $value | humanizeDuration }}；0s 表示启动以来没有事件）。"
                "检查 Kafka 与消费者。",
                f"No new event for over {no_events_seconds} s during business hours (last one"
                " {{ $value | humanizeDuration }} ago; 0s means none since start). Check Kafka"
                " and the consumer.",
            ),
        ),
        HealthAlert(
            "HotlineKpiConsumerLagGrowing",
            (
                f"{CONSUMER_LAG_RULE} > {policy.min_lag_messages}\n"
                f"and deriv({CONSUMER_LAG_RULE}[{duration('15m')}]) > 0"
            ),
            duration("15m"),
            "ticket",
            ("消费者积压持续增长", "consumer lag keeps growing"),
            (
                "主题 {{ $labels.topic }} 积压 {{ $value | humanize }} 条且仍在增长："
                "KPI 落后于实际。",
                "Topic {{ $labels.topic }} lags {{ $value | humanize }} messages and growing:"
                " the KPIs trail reality.",
            ),
        ),
        HealthAlert(
            "HotlineKpiEventsRejected",
            (
                f"{REJECTED_RATIO_RULE} > {_number(policy.rejected_ratio)}\n"
                f"and on () (\n  {events}\n  + ({rejects} or vector(0))\n) >= "
                f"{policy.min_events_for_rejected_ratio}"
            ),
            duration("15m"),
            "ticket",
            ("被拒绝的事件比例过高", "too many events are rejected"),
            (
                "{{ $value | humanizePercentage }} 的事件被拒绝（不含重复，阈值"
                f" {_percent(policy.rejected_ratio)}）：KPI 少计。按原因查看"
                " hotline_events_rejected_total。",
                "{{ $value | humanizePercentage }} of events are rejected (duplicates aside,"
                f" threshold {_percent(policy.rejected_ratio)}): the KPIs undercount. See"
                " hotline_events_rejected_total by reason.",
            ),
        ),
        HealthAlert(
            "HotlineKpiStoreCommitsFailing",
            f"sum(increase({failures}[{duration('10m')}])) >= {policy.commit_failures}",
            duration("5m"),
            "page",
            ("存储提交失败", "store commits are failing"),
            (
                "最近 10 分钟存储提交失败 {{ $value | humanize }} 次："
                "事实与偏移量未写入，KPI 停滞。",
                "{{ $value | humanize }} store commits failed in 10 minutes: facts and offsets"
                " are not written, the KPIs stall.",
            ),
        ),
        HealthAlert(
            "HotlineKpiStoreCommitsSlow",
            (
                f"histogram_quantile(0.99, sum by (le) (rate({commit_buckets})))\n"
                f"> {_number(policy.commit_p99_seconds)}"
            ),
            duration("15m"),
            "ticket",
            ("存储提交过慢", "store commits are slow"),
            (
                "存储提交 p99 为 {{ $value | humanizeDuration }}：消费者可能跟不上。",
                "Store commit p99 is {{ $value | humanizeDuration }}: the consumer may fall"
                " behind.",
            ),
        ),
    ]
    return [alert.rule(link) for alert in alerts]


@dataclass(frozen=True)
class HealthAlert:
    """One health alert: labels ``severity`` and ``component="monitor"``, bilingual text."""

    name: str
    expr: str
    for_: str | None
    severity: str
    summary: tuple[str, str]
    description: tuple[str, str]

    def rule(self, link: str) -> dict[str, object]:
        """The alerting rule as data, with ``link`` to the health dashboard."""
        rule: dict[str, object] = {"alert": self.name, "expr": self.expr}
        if self.for_ is not None:
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity, "component": COMPONENT_MONITOR}
        rule["annotations"] = {
            "summary": " / ".join(self.summary),
            "description": "\n".join(self.description),
            "dashboard": link,
        }
        return rule
