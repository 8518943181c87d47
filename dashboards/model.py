"""The dashboards' model: each KPI Prometheus computes, with its configured target, as shown.

This is the "model" step of spec → model → output (STYLE.md): plain values, no Grafana SDK.
What a KPI is (names, unit, direction, window, group) comes from the catalogue
(:mod:`hotline_kpi.metrics.catalogue`), its target from :class:`hotline_kpi.config.Settings`,
and every recording-rule name from :mod:`hotline_kpi.alerts.conventions`, so that dashboards,
rules and exports agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hotline_kpi.alerts.conventions import ratio_rule
from hotline_kpi.alerts.promql import number
from hotline_kpi.alerts.slo import error_budget
from hotline_kpi.config import Settings
from hotline_kpi.metrics.catalogue import (
    CATALOGUE,
    QUEUE_ORDER,
    Direction,
    Kpi,
    Scope,
    Unit,
    kpi,
)
from hotline_kpi.metrics.catalogue import target_of as configured_target

GrafanaUnit = Literal["percentunit", "s"]

# Grafana unit ids: "percentunit" is percent (0.0-1.0), "s" is seconds.
PERCENT: GrafanaUnit = "percentunit"
SECONDS: GrafanaUnit = "s"
_GRAFANA_UNITS: dict[Unit, GrafanaUnit] = {Unit.RATIO: PERCENT, Unit.SECONDS: SECONDS}

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
class Shown:
    """A catalogue KPI with its configured target, as the dashboards show and judge it.

    Its "now" figures use the catalogue's ``window``: call KPIs move within the hour, QA
    reviews, surveys and work orders are sparse and settle over a day.
    """

    entry: Kpi
    target: float | None = None

    @property
    def unit(self) -> GrafanaUnit:
        """Grafana's unit id for the KPI's unit."""
        return _GRAFANA_UNITS[self.entry.unit]

    @property
    def error_budget(self) -> float | None:
        """The share of failures the target allows, or None when it allows none (or no target).

        Timeliness has a 100% target, so any late work order misses it: a burn rate is
        undefined there, and the dashboards show the ratio itself instead.
        """
        if self.target is None:
            return None
        budget = error_budget(self.entry, self.target)
        return budget if budget > 0 else None

    def rule(self, window: str | None = None, *, per_group: bool) -> str:
        """The recording rule for this KPI (never re-derived: see alerts/conventions.py)."""
        name: str = ratio_rule(self.entry.key, window or self.entry.window, per_queue=per_group)
        return name


def kpis(settings: Settings) -> dict[str, Shown]:
    """Every KPI Prometheus computes, keyed by its SPEC §5 key, with targets from ``settings``."""
    return {
        entry.key: Shown(entry, configured_target(entry, settings.targets))
        for entry in CATALOGUE
        if entry.prometheus is not None
    }


# KPIs that have a value per queue, in the order a queue's KPIs are read, then those the
# catalogue adds after that order (blocked, hold, after-call work, transfer), in its order.
# Timeliness is per ticket kind (SPEC §4); KPIs without a Prometheus form are left out.
PER_QUEUE: tuple[str, ...] = tuple(
    key
    for key in (*QUEUE_ORDER, *(e.key for e in CATALOGUE if e.key not in QUEUE_ORDER))
    if kpi(key).prometheus is not None and kpi(key).group is Scope.QUEUE
)


def budget_burn(shown: Shown, window: str, selector: str = "") -> str:
    """PromQL: how fast ``shown`` spends its error budget over ``window`` (1 = exactly on budget).

    For "at least" KPIs the failure share is ``1 - ratio``; for "below" KPIs (drop rate) the
    ratio is the failure share itself.
    """
    budget = shown.error_budget
    if budget is None:
        raise ValueError(f"{shown.entry.key} has no error budget")
    series = f"{shown.rule(window, per_group=bool(selector))}{selector}"
    failures = f"(1 - {series})" if shown.entry.direction is Direction.AT_LEAST else series
    return f"{failures} / {number(budget)}"
