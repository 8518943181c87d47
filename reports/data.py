"""The figures a manager's report needs beyond the SPEC §5 KPI dict, added to that same dict.

:func:`extend_report` adds, for the month of the report:

- ``has_data``: whether anything at all was attributed to the month;
- ``previous``: the previous month's overall and per-queue KPIs (month-over-month column);
- ``wait_distribution``: answered and abandoned calls by wait bucket (``queued_at`` month);
- ``score_distribution``: surveys per overall score 1–10 (survey ``ts`` month);
- ``factors``: each survey factor's mean score and importance — the Pearson correlation of the
  factor score with the overall score over the surveys that rated it — and its quadrant, split
  at the mean importance and the mean satisfaction of the factors;
- ``overdue_tickets``: settled work orders not closed by ``due`` (SPEC §3 timeliness), without
  call ids or any personal data;
- ``agent_ranking``: agents ranked by mean satisfaction, the bottom performers named;
- ``staffing``: per queue, the staffing shortfall by weekday and hour of day (issue 10, the
  Erlang A analysis of ``metrics/staffing.py`` over the month's interval sums, read from the
  rollups when they fit) and the model's backtest.

The JSON export carries these keys, so that XLSX, HTML and PDF stay drawn from one source.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from hotline_kpi.config import Settings
from hotline_kpi.metrics.catalogue import AGENT_RANKING
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.fold import TICKET_DUE, TICKET_ON_TIME, US, ticket_facts
from hotline_kpi.metrics.months import local_time, month_bounds, month_period, previous_month
from hotline_kpi.metrics.records import FactorSums, QueuedCall, SlotSums, factor_sums
from hotline_kpi.metrics.rollups import WAIT_EDGES
from hotline_kpi.metrics.staffing import AgentStates, analyse_staffing, staffing_settings
from hotline_kpi.metrics.store import StoreReader

# An agent needs this many surveys in the month to be ranked (smaller samples say little).
MIN_SURVEYS = 20
# The bottom performers: the worst tenth of the ranked agents, at least one.
BOTTOM_SHARE = 0.10
# A factor needs this many responses before a correlation means anything.
MIN_FACTOR_RESPONSES = 10

QUADRANTS = ("improve", "maintain", "low_priority", "irrelevant")


def extend_report(
    report: dict[str, Any], store: StoreReader, settings: Settings, month: str
) -> dict[str, Any]:
    """Add the report-only figures of the module docstring to ``report`` and return it."""
    lo, hi = month_bounds(month, settings.zone)
    volumes = report["volumes"]["overall"]
    report["has_data"] = any_volume(volumes) or bool(report["agents"])
    before = previous_month(month)
    earlier = KpiFigures(store, settings).month(before)
    report["previous"] = {
        "month": before,
        "overall": earlier["overall"],
        "queues": earlier["queues"],
        "volumes": earlier["volumes"]["overall"],
    }
    report["wait_distribution"] = wait_distribution(store, lo, hi)
    report["score_distribution"] = score_distribution(store, lo, hi)
    report["factors"] = factor_importance(store.factor_sums(lo, hi))
    report["overdue_tickets"] = overdue_tickets(store, lo, hi, settings.zone)
    report["agent_ranking"] = agent_ranking(report["agents"])
    first, last = month_period(month)
    states = AgentStates.of_store(store, first, last, settings)
    sums = store.slot_sums(lo, hi, settings.timezone, settings.interval_minutes)
    report["staffing"] = staffing_shortfall(sums, settings, month, states)
    return report


def any_volume(volumes: Mapping[str, Any]) -> bool:
    """Whether a volumes dict (SPEC §5) counts anything: a count, or a count by reason."""
    return any(
        any(value.values()) if isinstance(value, Mapping) else bool(value)
        for value in volumes.values()
    )


def staffing_shortfall(
    calls: SlotSums | Sequence[QueuedCall],
    settings: Settings,
    month: str,
    states: AgentStates | None = None,
) -> dict[str, Any]:
    """The month's staffing shortfall per queue as heat-map cells, and the model's backtest.

    ``queues`` maps each queue to ``[weekday, hour, shortfall]`` cells (ISO weekday 1–7, local
    hour 0–23, agents needed for the stricter of the manual connection rate and service level
    targets minus the distinct agents observed; None when the model cannot be fitted), only for
    hours with calls. ``backtest`` is one summary per queue (mean absolute errors of the
    predicted abandon rate and service level). ``message`` says why there is nothing to show.
    """
    # With agent states, the agents observed are those staffed (SPEC §3 state time, shared among
    # queues by answered legs), as in the staffing command; without, those answering.
    analysis = analyse_staffing(
        calls, staffing_settings(settings), period=month_period(month), states=states
    )
    queues: dict[str, list[list[Any]]] = {}
    for row in analysis.hour_weekday:
        queues.setdefault(row.queue, []).append([row.weekday, int(row.start[:2]), row.shortfall])
    message = analysis.message
    if message is None and not queues:
        message = (
            f"interval_minutes {settings.interval_minutes} does not divide an hour:"
            " no hour-of-day view"
        )
    return {
        "message": message,
        "queues": queues,
        "backtest": analysis.to_rows("backtest"),
    }


def wait_distribution(store: StoreReader, lo: int, hi: int) -> list[dict[str, Any]]:
    """Answered and abandoned calls queued in [lo, hi) by wait bucket (``to`` None = open)."""
    counts = {
        bucket.index: (bucket.answered, bucket.abandoned)
        for bucket in store.wait_buckets(lo, hi, [edge * US for edge in WAIT_EDGES])
    }
    buckets = []
    for index, edge in enumerate(WAIT_EDGES):
        upper = WAIT_EDGES[index + 1] if index + 1 < len(WAIT_EDGES) else None
        answered, abandoned = counts.get(index, (0, 0))
        buckets.append({"from": edge, "to": upper, "answered": answered, "abandoned": abandoned})
    return buckets


def score_distribution(store: StoreReader, lo: int, hi: int) -> dict[str, int]:
    """Surveys answered in [lo, hi) per overall score, every score 1–10 present."""
    counts = store.score_counts(lo, hi)
    return {str(score): counts.get(score, 0) for score in range(1, 11)}


def _pearson(sums: FactorSums) -> float | None:
    """The correlation of a factor's score with the overall score, from exact integer sums."""
    n = sums.n
    if n < 2:
        return None
    sxx = n * sums.xx - sums.x * sums.x
    syy = n * sums.yy - sums.y * sums.y
    if sxx == 0 or syy == 0:
        return None
    return (n * sums.xy - sums.x * sums.y) / math.sqrt(sxx * syy)


def factor_analysis(
    surveys: Iterable[tuple[int, Mapping[str, int]]], min_responses: int = MIN_FACTOR_RESPONSES
) -> dict[str, Any]:
    """:func:`factor_importance` of (overall score, factor scores) pairs."""
    return factor_importance(factor_sums(surveys), min_responses)


def factor_importance(
    factors: Mapping[str, FactorSums], min_responses: int = MIN_FACTOR_RESPONSES
) -> dict[str, Any]:
    """Importance–satisfaction analysis of survey factors from their sums.

    Importance is the correlation of a factor's score with the overall score; a factor with
    fewer than ``min_responses`` responses, or without variance, has importance None and no
    quadrant. The quadrants split at the mean importance and the mean satisfaction of the
    factors that have an importance: ``improve`` (急需改进: important, below-mean satisfaction),
    ``maintain`` (继续保持), ``low_priority`` (不占优先地位), ``irrelevant`` (无关紧要).
    """
    means = {name: sums.x / sums.n for name, sums in factors.items()}
    importance = {
        name: _pearson(sums) if sums.n >= min_responses else None for name, sums in factors.items()
    }
    placed = {name: value for name, value in importance.items() if value is not None}
    mean_importance = sum(placed.values()) / len(placed) if placed else None
    mean_satisfaction = sum(means[name] for name in placed) / len(placed) if placed else None
    quadrant: dict[str, str] = {}
    if mean_importance is not None and mean_satisfaction is not None:
        for name, strength in placed.items():
            satisfied = means[name] >= mean_satisfaction
            if strength >= mean_importance:
                quadrant[name] = "maintain" if satisfied else "improve"
            else:
                quadrant[name] = "irrelevant" if satisfied else "low_priority"
    items = [
        {
            "factor": name,
            "responses": factors[name].n,
            "score_sum": factors[name].x,
            "mean": means[name],
            "importance": importance[name],
            "quadrant": quadrant.get(name),
        }
        for name in sorted(factors)
    ]
    return {
        "mean_importance": mean_importance,
        "mean_satisfaction": mean_satisfaction,
        "items": items,
    }


def _local(moment_us: int | None, zone: ZoneInfo) -> str | None:
    return None if moment_us is None else local_time(moment_us, zone, timespec="seconds")


def overdue_tickets(store: StoreReader, lo: int, hi: int, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Settled work orders due in [lo, hi) not closed by ``due``, most overdue first.

    Only the work order's own fields: no call id, no caller. ``overdue_hours`` runs to the
    closing time, or to the watermark for a ticket still open.
    """
    watermark = store.watermark()
    late: list[dict[str, Any]] = []
    for ticket in store.tickets_due_in(lo, hi):
        facts = ticket_facts(ticket, watermark)
        if not facts & TICKET_DUE or facts & TICKET_ON_TIME or ticket.due is None:
            continue
        until = ticket.closed_at if ticket.closed_at is not None else (watermark or ticket.due)
        late.append(
            {
                "ticket_id": ticket.ticket_id,
                "kind": ticket.kind,
                "queue": ticket.queue,
                "opened_at": _local(ticket.opened_at, zone),
                "due": _local(ticket.due, zone),
                "closed_at": _local(ticket.closed_at, zone),
                "status": "open" if ticket.closed_at is None else "closed_late",
                "overdue_hours": (until - ticket.due) / US / 3600,
            }
        )
    late.sort(key=lambda t: (-float(t["overdue_hours"]), str(t["ticket_id"])))
    return late


def agent_ranking(agents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Agents ranked best first by mean satisfaction (then accuracy, then volume).

    Agents with fewer than :data:`MIN_SURVEYS` surveys are listed as ``unranked``; the bottom
    performers are the worst :data:`BOTTOM_SHARE` of the ranked ones, at least one.
    """

    metric, tie_break = AGENT_RANKING

    def key(agent: Mapping[str, Any]) -> tuple[float, float, int, str]:
        second = agent[tie_break]
        return (
            -agent[metric],
            -(second if second is not None else -1.0),
            -agent["answered"],
            agent["agent_id"],
        )

    ranked = sorted((a for a in agents if a["surveys"] >= MIN_SURVEYS), key=key)
    unranked = sorted(a["agent_id"] for a in agents if a["surveys"] < MIN_SURVEYS)
    bottom_count = max(1, math.ceil(len(ranked) * BOTTOM_SHARE)) if ranked else 0
    order = [a["agent_id"] for a in ranked]
    return {
        "metric": metric,
        "min_surveys": MIN_SURVEYS,
        "order": order,
        "unranked": unranked,
        "bottom": order[len(order) - bottom_count :] if bottom_count else [],
    }
