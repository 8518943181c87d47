"""Names of every recording rule, in one place (Prometheus ``level:metric:operations``).

The rules generator (``alerts/generate.py``) defines these series and the dashboards generator
queries them; both import the names from here so that they cannot drift apart.
"""

from __future__ import annotations

# KPI keys of SPEC §5 that Prometheus can compute from the counters of SPEC §4.
RATIO_KPIS: tuple[str, ...] = (
    "manual_connection_rate",
    "drop_rate",
    "service_level",
    "abandon_rate",
    "answer_accuracy",
    "timeliness",
    "satisfaction_rate",
)
AVERAGE_KPIS: tuple[str, ...] = ("average_speed_of_answer", "average_handle_time")

# Windows the alerts (multi-window burn rates) and dashboards need.
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def ratio_rule(kpi: str, window: str, *, per_queue: bool) -> str:
    """The recording rule holding ``kpi`` over ``window``, per queue or for the whole hotline.

    ``queue:hotline_manual_connection_rate:ratio_rate5m`` is by ``queue``;
    ``job:hotline_manual_connection_rate:ratio_rate5m`` is summed over every queue.
    Timeliness is by ticket ``kind`` instead of ``queue`` (SPEC §4), so its per-group rule is
    ``kind:hotline_timeliness:ratio_rate<window>``.
    """
    if kpi not in RATIO_KPIS and kpi not in AVERAGE_KPIS:
        raise ValueError(f"unknown KPI {kpi!r}")
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}")
    level = "job"
    if per_queue:
        level = "kind" if kpi == "timeliness" else "queue"
    operation = "mean_rate" if kpi in AVERAGE_KPIS else "ratio_rate"
    return f"{level}:hotline_{kpi}:{operation}{window}"


def denominator_rule(kpi: str, window: str, *, per_queue: bool) -> str:
    """The recording rule counting the denominator events of ``kpi`` over ``window``.

    ``queue:hotline_manual_connection_rate_denominator:increase1h`` is the number of queued calls
    minus short abandons in the last hour, per queue. The alerts' minimum-traffic guards and the
    dashboards' volume panels read it; the ratio rule divides by it.
    """
    if kpi not in RATIO_KPIS:
        raise ValueError(f"no denominator rule for KPI {kpi!r}")
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}")
    level = "job"
    if per_queue:
        level = "kind" if kpi == "timeliness" else "queue"
    return f"{level}:hotline_{kpi}_denominator:increase{window}"


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


def burn_alert_name(kpi: str, severity: str) -> str:
    """``HotlineManualConnectionRateFastBurn`` (page) or ``…SlowBurn`` (ticket) for ``kpi``."""
    if kpi not in RATIO_KPIS:
        raise ValueError(f"unknown KPI {kpi!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    camel = "".join(part.capitalize() for part in kpi.split("_"))
    speed = "Fast" if severity == "page" else "Slow"
    return f"Hotline{camel}{speed}Burn"
