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
