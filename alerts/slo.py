"""The model of the rules: which KPIs Prometheus computes, and how fast each may burn its budget.

This is the "model" step of spec → model → output (STYLE.md), pure values with no PromQL text:
:mod:`hotline_kpi.alerts.generate` turns it into rules. What each KPI is (its counters, group,
direction, names and target key) is the catalogue's (:mod:`hotline_kpi.metrics.catalogue`);
this module adds the burn-rate policy: the SRE workbook's multi-window, multi-burn-rate
alerting, with the factors derived from the hotline's monthly error budget (see
:func:`burn_conditions` and docs/alerts.md for the numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from hotline_kpi.alerts.conventions import RATIO_KPIS
from hotline_kpi.config import Settings
from hotline_kpi.errors import HotlineError
from hotline_kpi.metrics.catalogue import Direction, Kpi, Scope, kpi
from hotline_kpi.metrics.catalogue import target_of as configured_target

Severity = Literal["page", "ticket"]


class RulesError(HotlineError):
    """The targets cannot be turned into sound alerts (no error budget, or an unreachable one)."""


def ratio_kpi(key: str) -> Kpi:
    """The catalogue entry of the ratio KPI with SPEC §5 key ``key``."""
    if key not in RATIO_KPIS:
        raise KeyError(key)
    return kpi(key)


def target_of(settings: Settings, key: str) -> float | None:
    """The configured target of KPI ``key``, or None for a KPI without one (SPEC §6)."""
    return configured_target(kpi(key), settings.targets)


def error_budget(entry: Kpi, target: float) -> float:
    """The share of events the target lets fail: ``1 - target`` (at least) or ``target`` (below)."""
    return round(1.0 - target if entry.direction is Direction.AT_LEAST else target, 9)


# --- Burn-rate policy --------------------------------------------------------------------------

# Headquarters judges the KPIs per calendar month; a 30-day month is the SLO period.
PERIOD_HOURS = 30 * 24
# A page means at most this share of the KPI's events succeed where failure is counted (for a
# 90% target: under half the callers reach an agent). It keeps factor × budget reachable, well
# below 1, for the loose targets of a hotline (10% and 20% budgets), where the workbook's 14.4×
# (error ratio 1.44 for a 90% target) could never fire.
MAX_ALERT_ERROR_RATIO = 0.5
# The minimum-traffic guard: at the alert threshold the long window must hold enough events to
# expect this many failures, so a quiet night with three calls pages nobody.
MIN_EXPECTED_FAILURES = 10
MIN_EVENTS_FLOOR = 20


@dataclass(frozen=True)
class BurnWindow:
    """One window pair of a multi-window alert: both windows must burn faster than the factor.

    ``budget_share`` is the share of the monthly error budget that burning for ``long`` at the
    workbook factor would consume (the SRE workbook's 2% in 1 h, 5% in 6 h, 10% in 1 d and 3 d).
    """

    severity: Severity
    long: str
    short: str
    budget_share: float

    @property
    def workbook_factor(self) -> float:
        """Burn rate that consumes ``budget_share`` of the month's budget in ``long``."""
        return self.budget_share * PERIOD_HOURS / _hours(self.long)


# Call KPIs: the workbook's four window pairs (page: 1 h/5 m and 6 h/30 m; ticket: 1 d/2 h and
# 3 d/6 h), as in sloth's google-30d windows.
CALL_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow("page", "1h", "5m", 0.02),
    BurnWindow("page", "6h", "30m", 0.05),
    BurnWindow("ticket", "1d", "2h", 0.10),
    BurnWindow("ticket", "3d", "6h", 0.10),
)
# Sampled KPIs (answer accuracy: quality inspectors review a few calls an hour) settle over a
# day (the catalogue's window): tickets only, long windows, and short windows long enough to
# hold reviews at night.
SAMPLED_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow("ticket", "1d", "6h", 0.10),
    BurnWindow("ticket", "3d", "1d", 0.10),
)


def _burn_windows() -> dict[str, tuple[BurnWindow, ...]]:
    """Every ratio KPI with a target and grouped by queue, with its window pairs.

    Timeliness is grouped by ticket kind and has a 100% target, so no error budget: it has an
    alert of its own (any newly overdue work order), not a burn rate.
    """
    windows = {}
    for key in RATIO_KPIS:
        entry = kpi(key)
        if entry.target is not None and entry.group is Scope.QUEUE:
            windows[key] = CALL_WINDOWS if entry.window == "1h" else SAMPLED_WINDOWS
    return windows


BURN_WINDOWS: dict[str, tuple[BurnWindow, ...]] = _burn_windows()


@dataclass(frozen=True)
class BurnCondition:
    """A window pair with its derived numbers.

    ``error_threshold`` = ``factor`` × budget is the failure share both windows must exceed;
    ``kpi_threshold`` is the same limit stated as a KPI value (``1 - error_threshold`` for an
    at-least KPI); ``min_events`` is the denominator count the long window must hold.
    """

    window: BurnWindow
    factor: float
    error_threshold: float
    kpi_threshold: float
    min_events: int


def burn_factors(windows: tuple[BurnWindow, ...], budget: float) -> tuple[float, ...]:
    """Burn-rate factors for ``windows`` given the error ``budget`` (a share, 0–1).

    The workbook factors (``budget_share × 720 h ÷ long window``: 14.4, 6, 3, 1) stand when the
    fastest one is reachable, ``factor × budget ≤ MAX_ALERT_ERROR_RATIO``. Otherwise the fastest
    becomes the ceiling ``MAX_ALERT_ERROR_RATIO ÷ budget`` and every factor ``w`` is compressed
    on a log scale, ``ceiling ** (ln w ÷ ln 14.4)``: the order of the windows is kept and the
    3-day factor stays 1 (the month's budget spent exactly). Factors carry two decimals.
    """
    if budget <= 0:
        raise RulesError("a target of 100% leaves no error budget for burn-rate alerts")
    ceiling = MAX_ALERT_ERROR_RATIO / budget
    if ceiling < 1:
        raise RulesError(
            f"an error budget of {budget:.0%} is too loose: a page would need over "
            f"{MAX_ALERT_ERROR_RATIO:.0%} failures while burning slower than the budget"
        )
    workbook = [w.workbook_factor for w in windows]
    top = max(workbook)
    if top <= ceiling:
        factors = workbook
    else:
        factors = [ceiling ** (math.log(w) / math.log(top)) if w > 1 else w for w in workbook]
    return tuple(round(f, 2) for f in factors)


def burn_conditions(entry: Kpi, target: float) -> tuple[BurnCondition, ...]:
    """The window pairs of ``entry``'s burn-rate alerts with their factors and traffic guards."""
    windows = BURN_WINDOWS[entry.key]
    budget = error_budget(entry, target)
    conditions = []
    for window, factor in zip(windows, burn_factors(windows, budget), strict=True):
        error = round(factor * budget, 6)
        if error >= 1:  # burn_factors keeps it at most MAX_ALERT_ERROR_RATIO; never unreachable
            raise RulesError(f"{entry.key}: burn factor {factor} × budget {budget} is unreachable")
        kpi_threshold = round(1 - error, 6) if entry.direction is Direction.AT_LEAST else error
        # round() first: 10 / 0.1 is 100.00000000000001 in binary floating point.
        min_events = max(MIN_EVENTS_FLOOR, math.ceil(round(MIN_EXPECTED_FAILURES / error, 6)))
        conditions.append(BurnCondition(window, factor, error, kpi_threshold, min_events))
    return tuple(conditions)


def _hours(duration: str) -> float:
    return duration_seconds(duration) / 3600


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(duration: str) -> int:
    """Seconds in a one-unit Prometheus duration such as ``5m`` or ``3d``."""
    number, unit = duration[:-1], duration[-1]
    if unit not in _UNITS or not number.isdigit():
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return int(number) * _UNITS[unit]


def format_duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds`` (whole seconds), largest units first: ``1h12m``."""
    total = round(seconds)
    if total < 1:
        raise ValueError(f"duration {seconds} s is shorter than one second")
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts)
