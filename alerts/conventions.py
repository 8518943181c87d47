"""Names of every recording rule, in one place (Prometheus ``level:metric:operations``).

The rules generator (``alerts/generate.py``) defines these series and the dashboards generator
queries them; both import the names from here so that they cannot drift apart.
"""

from __future__ import annotations

from hotline_kpi.metrics import catalogue
from hotline_kpi.metrics.catalogue import CATALOGUE, Counters, Histogram, Kpi, Scope, kpi

# The rules file records the ratio KPIs in this order (layout only: what each KPI is comes from
# the catalogue). A ratio KPI the catalogue adds and this does not list is recorded after these.
_RECORDING_ORDER = tuple(
    entry.key
    for entry in (
        catalogue.MANUAL_CONNECTION_RATE,
        catalogue.DROP_RATE,
        catalogue.SERVICE_LEVEL,
        catalogue.ABANDON_RATE,
        catalogue.ANSWER_ACCURACY,
        catalogue.TIMELINESS,
        catalogue.SATISFACTION_RATE,
        catalogue.BLOCKED_RATE,
        catalogue.TRANSFER_RATE,
        catalogue.REPEAT_CONTACT_RATE,
    )
)


def _recorded(source: type[Counters] | type[Histogram]) -> tuple[str, ...]:
    keys = [entry.key for entry in CATALOGUE if isinstance(entry.prometheus, source)]
    last = len(_RECORDING_ORDER)
    return tuple(
        sorted(keys, key=lambda k: _RECORDING_ORDER.index(k) if k in _RECORDING_ORDER else last)
    )


# KPI keys of SPEC §5 that Prometheus computes from the counters of SPEC §4: ratios of counters
# and means of histograms (the catalogue's ``prometheus`` source of each).
RATIO_KPIS: tuple[str, ...] = _recorded(Counters)
AVERAGE_KPIS: tuple[str, ...] = _recorded(Histogram)

# Windows the alerts (multi-window burn rates) and dashboards need.
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def _recorded_kpi(key: str, window: str, known: tuple[str, ...], what: str) -> Kpi:
    if key not in known:
        raise ValueError(f"{what} KPI {key!r}")
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}")
    return kpi(key)


def ratio_rule(key: str, window: str, *, per_queue: bool) -> str:
    """The recording rule holding KPI ``key`` over ``window``, per group or for the whole hotline.

    ``queue:hotline_manual_connection_rate:ratio_rate5m`` is by ``queue``;
    ``job:hotline_manual_connection_rate:ratio_rate5m`` is summed over every queue.
    A KPI grouped by another label keeps that one (the catalogue's ``group``): timeliness is by
    ticket ``kind`` (SPEC §4), so its per-group rule is ``kind:hotline_timeliness:ratio_rate1h``.
    A KPI of the whole hotline only (``group`` overall: repeat contacts have no queue) has the
    ``job:`` rule alone, whichever is asked for.
    """
    entry = _recorded_kpi(key, window, RATIO_KPIS + AVERAGE_KPIS, "unknown")
    level = _level(entry, per_queue=per_queue)
    operation = "mean_rate" if key in AVERAGE_KPIS else "ratio_rate"
    return f"{level}:hotline_{key}:{operation}{window}"


def denominator_rule(key: str, window: str, *, per_queue: bool) -> str:
    """The recording rule counting the denominator events of KPI ``key`` over ``window``.

    ``queue:hotline_manual_connection_rate_denominator:increase1h`` is the number of queued calls
    minus short abandons in the last hour, per queue. The alerts' minimum-traffic guards and the
    dashboards' volume panels read it; the ratio rule divides by it.
    """
    entry = _recorded_kpi(key, window, RATIO_KPIS, "no denominator rule for")
    level = _level(entry, per_queue=per_queue)
    return f"{level}:hotline_{key}_denominator:increase{window}"


def _level(entry: Kpi, *, per_queue: bool) -> str:
    return str(entry.group) if per_queue and entry.group is not Scope.OVERALL else "job"


# The repeat contact alert compares the last hour with this baseline (SPEC §6
# alerts.repeat_contact_rise); recorded for the whole hotline only, like the KPI itself.
REPEAT_BASELINE_WINDOW = "7d"
REPEAT_CONTACT_BASELINE_RULE = (
    f"job:hotline_{catalogue.REPEAT_CONTACT_RATE.key}:ratio_rate{REPEAT_BASELINE_WINDOW}"
)
REPEAT_CONTACT_BASELINE_DENOMINATOR_RULE = (
    f"job:hotline_{catalogue.REPEAT_CONTACT_RATE.key}_denominator:increase{REPEAT_BASELINE_WINDOW}"
)


# Work orders settled late so far, per ticket kind: due minus on time (SPEC §3 timeliness).
OVERDUE_TICKETS_RULE = "kind:hotline_tickets_overdue:count"
# 1 while the configured business hours are running in the hotline's time zone, else 0.
BUSINESS_HOURS_RULE = "hotline:business_hours:active"
# Consumer lag summed over partitions, per topic.
CONSUMER_LAG_RULE = "topic:hotline_consumer_lag_messages:sum"
# Share of events rejected (SPEC §2) over the last 15 minutes, for the whole service.
REJECTED_RATIO_RULE = "job:hotline_events_rejected:ratio_rate15m"
# Offered load per queue in Erlangs (issue 10): arrival rate × mean handle time over 15 minutes,
# the busy agents the traffic needs on average (docs/staffing.md).
OFFERED_LOAD_RULE = "queue:hotline_offered_load:erlangs15m"
OFFERED_LOAD_WINDOW = "15m"

# Label values the alerts carry, for Alertmanager routing and inhibition.
SEVERITIES: tuple[str, ...] = ("page", "ticket")
COMPONENT_KPI = "kpi"
COMPONENT_MONITOR = "monitor"

# Grafana dashboard uids the alert annotations link to (``<dashboard_url>/<uid>``).
OVERVIEW_DASHBOARD_UID = "hotline-kpi-overview"
HEALTH_DASHBOARD_UID = "hotline-kpi-health"


BLOCKED_SHARE_ALERT = "HotlineCallsBlocked"
REPEAT_CONTACT_RISE_ALERT = "HotlineRepeatContactsRising"


def burn_alert_name(key: str, severity: str) -> str:
    """``HotlineManualConnectionRateFastBurn`` (page) or ``…SlowBurn`` (ticket) for KPI ``key``."""
    if key not in RATIO_KPIS:
        raise ValueError(f"unknown KPI {key!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    camel = "".join(part.capitalize() for part in key.split("_"))
    speed = "Fast" if severity == "page" else "Slow"
    return f"Hotline{camel}{speed}Burn"
