"""The dashboards' model: which KPIs exist, how each is shown and judged, from the settings.

This is the "model" step of spec → model → output (STYLE.md): plain values, no Grafana SDK.
Targets and thresholds come from :class:`hotline_kpi.config.Settings`, and every recording-rule
name from :mod:`hotline_kpi.alerts.conventions`, so that dashboards, rules and exports agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hotline_kpi.alerts.conventions import ratio_rule
from hotline_kpi.config import Settings

Direction = Literal["at_least", "below"]
"""How a value is judged against its target (SPEC §6): ``value >= target`` or ``value < target``."""

Unit = Literal["percentunit", "s"]

# Grafana unit ids: "percentunit" is percent (0.0-1.0), "s" is seconds.
PERCENT: Unit = "percentunit"
SECONDS: Unit = "s"

# Colours: Grafana named colours, readable from across the room on a wall screen.
MET = "green"
MISSED = "red"
NEUTRAL = "blue"
WARNING = "orange"

# The Prometheus data source every panel uses, through a dashboard variable so that an operator
# can point the dashboards at another Prometheus; the provisioning file names this uid.
DATASOURCE_VARIABLE = "datasource"
DATASOURCE_UID = "hotline-prometheus"
# The scrape job of the exporter (docs/dashboards.md shows the scrape configuration).
SCRAPE_JOB = "hotline-kpi"
# Tag shared by every dashboard; the dashboards link to each other through it.
TAG = "hotline-kpi"


@dataclass(frozen=True)
class Kpi:
    """One KPI as the dashboards show it.

    ``window`` is the recording-rule window used for "now" figures: call KPIs move within the
    hour, QA reviews, surveys and work orders are sparse and settle over a day.
    """

    key: str
    zh: str
    en: str
    unit: Unit
    window: str
    target: float | None = None
    direction: Direction = "at_least"
    per: Literal["queue", "kind"] = "queue"

    @property
    def title(self) -> str:
        """Chinese title with the English alongside, as the supervisors read it."""
        return f"{self.zh} {self.en}"

    @property
    def error_budget(self) -> float | None:
        """The share of failures the target allows, or None when it allows none (or no target).

        Timeliness has a 100% target, so any late work order misses it: a burn rate is
        undefined there, and the dashboards show the ratio itself instead.
        """
        if self.target is None:
            return None
        budget = 1.0 - self.target if self.direction == "at_least" else self.target
        return budget if budget > 0 else None

    def rule(self, window: str | None = None, *, per_group: bool) -> str:
        """The recording rule for this KPI (never re-derived: see alerts/conventions.py)."""
        name: str = ratio_rule(self.key, window or self.window, per_queue=per_group)
        return name


def kpis(settings: Settings) -> dict[str, Kpi]:
    """Every KPI the dashboards show, keyed by its SPEC §5 key, with targets from ``settings``."""
    targets = settings.targets
    items = [
        Kpi(
            "manual_connection_rate",
            "人工接通率",
            "Manual connection rate",
            PERCENT,
            "1h",
            targets.manual_connection_rate,
        ),
        Kpi(
            "drop_rate",
            "电话中断率",
            "Call drop rate",
            PERCENT,
            "1h",
            targets.drop_rate,
            direction="below",
        ),
        Kpi(
            "timeliness", "工单及时率", "Timeliness", PERCENT, "1d", targets.timeliness, per="kind"
        ),
        Kpi(
            "answer_accuracy",
            "咨询处理准确率",
            "Answer accuracy",
            PERCENT,
            "1d",
            targets.answer_accuracy,
        ),
        Kpi("service_level", "服务水平", "Service level", PERCENT, "1h", targets.service_level),
        Kpi("abandon_rate", "放弃率", "Abandon rate", PERCENT, "1h"),
        Kpi("average_speed_of_answer", "平均应答时长", "Average speed of answer", SECONDS, "1h"),
        Kpi("average_handle_time", "平均处理时长", "Average handle time", SECONDS, "1h"),
        Kpi("satisfaction_rate", "满意率", "Satisfaction rate", PERCENT, "1d"),
    ]
    return {kpi.key: kpi for kpi in items}


# The four KPIs of the mission (SPEC §1), in the order headquarters lists them.
MISSION = ("manual_connection_rate", "drop_rate", "timeliness", "answer_accuracy")
# KPIs that have a value per queue (timeliness is per ticket kind, SPEC §4).
PER_QUEUE = (
    "manual_connection_rate",
    "service_level",
    "abandon_rate",
    "drop_rate",
    "average_speed_of_answer",
    "average_handle_time",
    "answer_accuracy",
    "satisfaction_rate",
)


def number(value: float) -> str:
    """A float as PromQL text, without float noise (``1 - 0.98`` is ``0.02``, not ``0.0200…02``)."""
    text = f"{value:.6g}"
    return text


def budget_burn(kpi: Kpi, window: str, selector: str = "") -> str:
    """PromQL: how fast ``kpi`` spends its error budget over ``window`` (1 = exactly on budget).

    For "at least" KPIs the failure share is ``1 - ratio``; for "below" KPIs (drop rate) the
    ratio is the failure share itself.
    """
    budget = kpi.error_budget
    if budget is None:
        raise ValueError(f"{kpi.key} has no error budget")
    series = f"{kpi.rule(window, per_group=bool(selector))}{selector}"
    failures = f"(1 - {series})" if kpi.direction == "at_least" else series
    return f"{failures} / {number(budget)}"
