"""The model of the rules: which KPIs Prometheus computes, and how fast each may burn its budget.

This is the "model" step of spec → model → output (STYLE.md), pure values with no PromQL text:
:mod:`hotline_kpi.alerts.generate` turns it into rules. The KPI definitions are SPEC §3 as far
as the counters of SPEC §4 carry them; the burn-rate policy is the SRE workbook's
multi-window, multi-burn-rate alerting, with the factors derived from the hotline's monthly
error budget (see :func:`burn_conditions` and docs/alerts.md for the numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from hotline_kpi.config import Settings
from hotline_kpi.errors import HotlineError

Direction = Literal["at_least", "below"]
Severity = Literal["page", "ticket"]


class RulesError(HotlineError):
    """The targets cannot be turned into sound alerts (no error budget, or an unreachable one)."""


@dataclass(frozen=True)
class RatioKpi:
    """A KPI that is a ratio of two counters (SPEC §3), as Prometheus computes it.

    ``numerator`` counts the events in the KPI's numerator (answered calls for the manual
    connection rate, dropped calls for the drop rate); ``*_minus`` counters are subtracted
    from it (short abandons, SPEC §3). ``group`` is the label the per-group rule keeps.
    """

    key: str
    zh: str
    en: str
    numerator: str
    denominator: str
    numerator_minus: str | None = None
    denominator_minus: str | None = None
    group: Literal["queue", "kind"] = "queue"
    direction: Direction = "at_least"


@dataclass(frozen=True)
class AverageKpi:
    """A KPI that is a mean of a histogram's observations (``_sum`` / ``_count``)."""

    key: str
    zh: str
    en: str
    histogram: str


_REQUESTS = "hotline_agent_requests_total"
_SHORT = "hotline_calls_short_abandoned_total"

# SPEC §3, in the order of conventions.RATIO_KPIS.
RATIO_KPIS: tuple[RatioKpi, ...] = (
    RatioKpi(
        "manual_connection_rate",
        "人工接通率",
        "manual connection rate",
        "hotline_agent_answered_total",
        _REQUESTS,
        denominator_minus=_SHORT,
    ),
    RatioKpi(
        "drop_rate",
        "电话中断率",
        "call drop rate",
        "hotline_calls_dropped_total",
        "hotline_agent_answered_total",
        direction="below",
    ),
    RatioKpi(
        "service_level",
        "服务水平",
        "service level",
        "hotline_answered_within_threshold_total",
        _REQUESTS,
        denominator_minus=_SHORT,
    ),
    RatioKpi(
        "abandon_rate",
        "放弃率",
        "abandon rate",
        "hotline_calls_abandoned_total",
        _REQUESTS,
        numerator_minus=_SHORT,
        denominator_minus=_SHORT,
        direction="below",
    ),
    RatioKpi(
        "answer_accuracy",
        "咨询处理准确率",
        "answer accuracy",
        "hotline_qa_accurate_total",
        "hotline_qa_reviews_total",
    ),
    RatioKpi(
        "timeliness",
        "工单及时率",
        "timeliness",
        "hotline_tickets_on_time_total",
        "hotline_tickets_due_total",
        group="kind",
    ),
    RatioKpi(
        "satisfaction_rate",
        "满意率",
        "satisfaction rate",
        "hotline_survey_satisfied_total",
        "hotline_survey_responses_total",
    ),
)
AVERAGE_KPIS: tuple[AverageKpi, ...] = (
    AverageKpi(
        "average_speed_of_answer",
        "平均应答时长",
        "average speed of answer",
        "hotline_answer_wait_seconds",
    ),
    AverageKpi(
        "average_handle_time", "平均处理时长", "average handle time", "hotline_handle_seconds"
    ),
)


def ratio_kpi(key: str) -> RatioKpi:
    """The ratio KPI with SPEC §5 key ``key``."""
    for kpi in RATIO_KPIS:
        if kpi.key == key:
            return kpi
    raise KeyError(key)


def target_of(settings: Settings, key: str) -> float | None:
    """The configured target of ``key``, or None for a KPI without one (SPEC §6)."""
    value = getattr(settings.targets, key, None)
    return None if value is None else float(value)


def error_budget(kpi: RatioKpi, target: float) -> float:
    """The share of events the target lets fail: ``1 - target`` (at least) or ``target`` (below)."""
    return round(1.0 - target if kpi.direction == "at_least" else target, 9)


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
# Answer accuracy is sampled by quality inspectors, a few reviews an hour: tickets only, long
# windows, and short windows long enough to hold reviews at night.
SAMPLED_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow("ticket", "1d", "6h", 0.10),
    BurnWindow("ticket", "3d", "1d", 0.10),
)
BURN_WINDOWS: dict[str, tuple[BurnWindow, ...]] = {
    "manual_connection_rate": CALL_WINDOWS,
    "drop_rate": CALL_WINDOWS,
    "service_level": CALL_WINDOWS,
    "answer_accuracy": SAMPLED_WINDOWS,
}


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


def burn_conditions(kpi: RatioKpi, target: float) -> tuple[BurnCondition, ...]:
    """The window pairs of ``kpi``'s burn-rate alerts with their factors and traffic guards."""
    windows = BURN_WINDOWS[kpi.key]
    budget = error_budget(kpi, target)
    conditions = []
    for window, factor in zip(windows, burn_factors(windows, budget), strict=True):
        error = round(factor * budget, 6)
        if error >= 1:  # burn_factors keeps it at most MAX_ALERT_ERROR_RATIO; never unreachable
            raise RulesError(f"{kpi.key}: burn factor {factor} × budget {budget} is unreachable")
        kpi_threshold = round(1 - error, 6) if kpi.direction == "at_least" else error
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
