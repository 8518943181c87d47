"""The report's charts as PNG bytes, drawn with matplotlib's Agg canvas from the report dict.

Figures are built without pyplot (no global figure registry) and inside an ``rc_context``
with WenQuanYi Zen Hei, which renders Chinese (see ENVIRONMENT.md, Reports).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from hotline_kpi.metrics.catalogue import kpi, met
from hotline_kpi.reports.data import any_volume
from hotline_kpi.reports.labels import CALL_TARGETS, SCORE_KPI, TREND_KPIS, Words

FONT = "WenQuanYi Zen Hei"
BLUE = "#1f5f99"
LIGHT_BLUE = "#8fb8de"
ORANGE = "#e08a2c"
GREEN = "#2e8b57"
RED = "#c0392b"
GREY = "#7f8c8d"
DPI = 150

# WenQuanYi Zen Hei has one weight (500); matplotlib warns on every normal or bold lookup.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

_RC: dict[str, Any] = {
    "font.family": [FONT, "DejaVu Sans"],
    "axes.unicode_minus": False,
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.edgecolor": "#9aa4ad",
    "xtick.color": "#4a5560",
    "ytick.color": "#4a5560",
    "legend.frameon": False,
}


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    # The typed rcParams keys are a Literal union: a plain dict of settings does not match it.
    with matplotlib.rc_context(cast(Any, _RC)):
        yield Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()


def _percent_axis(axes: Axes, decimals: int | None = 0) -> None:
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def daily_trend(report: Mapping[str, Any], words: Words) -> bytes:
    """Small multiples: each target KPI per local day, the target as a dashed line."""
    daily: Mapping[str, Mapping[str, Any]] = report.get("daily", {})
    days = list(daily)
    with _figure(7.2, 5.6) as figure:
        grid = figure.subplots(3, 2, sharex=True)
        for axes, key in zip(grid.flat, TREND_KPIS, strict=True):
            values = [daily[day][key]["value"] for day in days]
            xs = [int(day[-2:]) for day in days]
            points = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
            target = report["overall"][key].get("target")
            if points:
                axes.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    color=BLUE,
                    marker="o",
                    markersize=2.5,
                    linewidth=1.4,
                )
                if target is not None:
                    missed = [p for p in points if not met(kpi(key), p[1], target)]
                    axes.scatter(
                        [p[0] for p in missed], [p[1] for p in missed], color=RED, s=9, zorder=3
                    )
            if target is not None:
                axes.axhline(target, color=RED, linestyle="--", linewidth=1)
            axes.set_title(words.kpi(key), loc="left")
            _percent_axis(axes, None)
            if xs:
                axes.set_xlim(0.5, max(xs) + 0.5)
            _pad_limits(axes, [p[1] for p in points], target)
        for axes in grid[-1]:
            axes.set_xlabel(words("date") + (" (日)" if words.lang == "zh" else " (day)"))
        return _png(figure)


def _pad_limits(axes: Axes, values: list[float], target: float | None) -> None:
    pool = values + ([target] if target is not None else [])
    if not pool:
        axes.set_ylim(0, 1)
        return
    low, high = min(pool), max(pool)
    span = max(high - low, 0.01 if high <= 0.05 else 0.04)
    axes.set_ylim(max(0.0, low - span * 0.25), min(1.0, high + span * 0.25) or 0.01)


def queue_comparison(report: Mapping[str, Any], words: Words) -> bytes:
    """Per queue: connection rate and service level against targets, and mean satisfaction."""
    queues = list(report["queues"])
    labels = [words.queue(q) for q in queues]
    with _figure(7.2, 2.8) as figure:
        left, right = figure.subplots(1, 2, width_ratios=(3, 2))
        height = 0.38
        ys = list(range(len(queues)))
        for offset, key, colour in zip(
            (-height / 2, height / 2), CALL_TARGETS, (BLUE, LIGHT_BLUE), strict=True
        ):
            values = [report["queues"][q][key]["value"] or 0.0 for q in queues]
            left.barh([y + offset for y in ys], values, height, color=colour, label=words.kpi(key))
            target = report["overall"][key].get("target")
            if target is not None:
                left.vlines(
                    target,
                    -0.6,
                    len(queues) - 0.4,
                    colors=colour if colour != LIGHT_BLUE else "#4f8fcf",
                    linestyles="--",
                    linewidth=1,
                )
        left.set_yticks(ys, labels)
        left.invert_yaxis()
        left.set_xlim(0.5, 1.0)
        left.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        left.legend(loc="lower left", fontsize=7.5, bbox_to_anchor=(0, 1.0), ncols=2)
        means = [report["queues"][q][SCORE_KPI]["value"] for q in queues]
        known = [m for m in means if m is not None]
        low = math.floor(min(known) - 0.5) if known else 0
        for y, m in zip(ys, means, strict=True):
            if m is not None:
                right.hlines(y, low, m, color=GREEN, linewidth=2)
                right.scatter(m, y, color=GREEN, s=40, zorder=3)
                right.text(m + 0.08, y, f"{m:.2f}", va="center", fontsize=7.5)
        right.set_yticks(ys, [""] * len(ys))
        right.invert_yaxis()
        right.set_xlim(low, 10)
        right.set_title(words.kpi(SCORE_KPI), loc="left")
        return _png(figure)


def wait_distribution(report: Mapping[str, Any], words: Words) -> bytes:
    """Answered and abandoned calls per wait bucket, the service-level threshold marked."""
    buckets = report["wait_distribution"]
    labels = [
        f"{b['from']}–{b['to']}s" if b["to"] is not None else f"≥{b['from']}s" for b in buckets
    ]
    threshold = report["thresholds"]["service_level_seconds"]
    with _figure(3.6, 2.6) as figure:
        axes = figure.subplots()
        xs = list(range(len(buckets)))
        axes.bar(
            [x - 0.2 for x in xs],
            [b["answered"] for b in buckets],
            0.4,
            color=BLUE,
            label=words("answered_calls"),
        )
        axes.bar(
            [x + 0.2 for x in xs],
            [b["abandoned"] for b in buckets],
            0.4,
            color=ORANGE,
            label=words("abandoned_calls"),
        )
        cut = next(
            (i for i, b in enumerate(buckets) if b["to"] is not None and b["to"] > threshold),
            len(buckets),
        )
        axes.axvline(cut - 0.5, color=RED, linestyle="--", linewidth=1)
        axes.text(cut - 0.45, axes.get_ylim()[1] * 0.92, f"T={threshold}s", color=RED, fontsize=7)
        axes.set_xticks(xs, labels, rotation=35, ha="right", fontsize=7)
        axes.set_yscale("symlog", linthresh=10)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        axes.set_ylabel(words("calls"))
        axes.legend(fontsize=7.5)
        return _png(figure)


def score_distribution(report: Mapping[str, Any], words: Words) -> bytes:
    """Surveys per overall score 1–10; satisfied scores in green."""
    counts = report["score_distribution"]
    satisfied = report["thresholds"]["satisfied_score"]
    with _figure(3.6, 2.6) as figure:
        axes = figure.subplots()
        scores = [int(s) for s in counts]
        values = [counts[s] for s in counts]
        colours = [GREEN if s >= satisfied else (ORANGE if s >= 6 else RED) for s in scores]
        axes.bar(scores, values, 0.7, color=colours)
        total = sum(values)
        for s, v in zip(scores, values, strict=True):
            if v and total:
                axes.text(s, v, f"{v / total:.0%}", ha="center", va="bottom", fontsize=6.5)
        axes.set_xticks(scores)
        axes.set_xlabel(words("score"))
        axes.set_ylabel(words("surveys"))
        axes.margins(y=0.12)
        return _png(figure)


_QUADRANT_COLOURS = {"improve": RED, "maintain": GREEN, "low_priority": ORANGE, "irrelevant": GREY}


def quadrant(report: Mapping[str, Any], words: Words) -> bytes:
    """Factors by mean satisfaction (x) and importance (y), split at the factors' means."""
    analysis = report["factors"]
    placed = [i for i in analysis["items"] if i["importance"] is not None]
    with _figure(6.4, 4.2) as figure:
        axes = figure.subplots()
        axes.grid(False)
        if not placed:
            axes.text(0.5, 0.5, words("no_factors"), ha="center", va="center")
            axes.set_axis_off()
            return _png(figure)
        xs = [i["mean"] for i in placed]
        ys = [i["importance"] for i in placed]
        mx, my = analysis["mean_satisfaction"], analysis["mean_importance"]
        pad_x = max(max(abs(x - mx) for x in xs) * 1.35, 0.15)
        pad_y = max(max(abs(y - my) for y in ys) * 1.35, 0.03)
        x0, x1, y0, y1 = mx - pad_x, mx + pad_x, my - pad_y, my + pad_y
        axes.set_xlim(x0, x1)
        axes.set_ylim(y0, y1)
        shades = (
            ("improve", x0, mx, my, y1),
            ("maintain", mx, x1, my, y1),
            ("low_priority", x0, mx, y0, my),
            ("irrelevant", mx, x1, y0, my),
        )
        for name, left, right, bottom, top in shades:
            colour = _QUADRANT_COLOURS[name]
            axes.fill_between([left, right], bottom, top, color=colour, alpha=0.07, linewidth=0)
            ha = "left" if left == x0 else "right"
            va = "top" if top == y1 else "bottom"
            inset_x = (x1 - x0) * 0.015
            inset_y = (y1 - y0) * 0.03
            axes.text(
                left + inset_x if ha == "left" else right - inset_x,
                top - inset_y if va == "top" else bottom + inset_y,
                words.quadrant(name),
                ha=ha,
                va=va,
                fontsize=11,
                fontweight="bold",
                color=colour,
                alpha=0.85,
            )
        axes.axvline(mx, color=GREY, linewidth=1)
        axes.axhline(my, color=GREY, linewidth=1)
        for item in placed:
            colour = _QUADRANT_COLOURS[item["quadrant"]]
            axes.scatter(item["mean"], item["importance"], s=60, color=colour, zorder=3)
            axes.annotate(
                f"{words.factor(item['factor'])}\n{item['mean']:.2f} / {item['importance']:.2f}",
                (item["mean"], item["importance"]),
                xytext=(6, 4),
                textcoords="offset points",
                fontsize=8,
            )
        axes.set_xlabel(words("factor_mean") + " (1–10)")
        axes.set_ylabel(words("importance"))
        return _png(figure)


def staffing_heatmap(report: Mapping[str, Any], words: Words, queue: str) -> bytes:
    """One queue's staffing shortfall, weekday (rows) × local hour (columns), red when short.

    The colours diverge at zero (white): red needs agents, blue has agents to spare; an hour
    without calls stays blank. Each cell is labelled with its shortfall, one decimal.
    """
    grid = [[math.nan] * 24 for _ in range(7)]
    for weekday, hour, shortfall in report["staffing"]["queues"][queue]:
        if shortfall is not None:
            grid[weekday - 1][hour] = shortfall
    known = [v for row in grid for v in row if not math.isnan(v)]
    reach = max([1.0, *(abs(v) for v in known)])
    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#f4f6f7")
    with _figure(7.2, 2.1) as figure:
        axes = figure.subplots()
        axes.grid(False)
        image = axes.imshow(
            grid,
            cmap=colours,
            norm=TwoSlopeNorm(0.0, -reach, reach),
            aspect="auto",
            interpolation="nearest",
        )
        for row, values in enumerate(grid):
            for hour, value in enumerate(values):
                if not math.isnan(value):
                    axes.text(
                        hour,
                        row,
                        f"{value:.1f}",
                        ha="center",
                        va="center",
                        fontsize=5.5,
                        color="white" if abs(value) > reach * 0.6 else "#22313f",
                        in_layout=False,  # inside the cells: the layout need not measure them
                    )
        axes.set_xticks(range(24), [f"{hour:02d}" for hour in range(24)], fontsize=7)
        axes.set_yticks(range(7), [words.weekday(day) for day in range(1, 8)], fontsize=7.5)
        axes.set_xlabel(words("hour"))
        axes.set_title(words.queue(queue), loc="left")
        for side in ("left", "bottom"):
            axes.spines[side].set_visible(False)
        axes.tick_params(length=0)
        bar = figure.colorbar(image, ax=axes, shrink=0.9, pad=0.01)
        bar.set_label(words("shortfall"), fontsize=7)
        bar.ax.tick_params(labelsize=6.5)
        return _png(figure)


def all_charts(report: Mapping[str, Any], words: Words) -> dict[str, bytes]:
    """Every chart of the report by name; an empty month gets none."""
    if not report.get("has_data"):
        return {}
    charts = {
        "trend": daily_trend(report, words),
        "wait": wait_distribution(report, words),
        "scores": score_distribution(report, words),
        "quadrant": quadrant(report, words),
    }
    if report["queues"]:
        charts["queues"] = queue_comparison(report, words)
    for queue in report["staffing"]["queues"]:
        charts[f"staffing/{queue}"] = staffing_heatmap(report, words, queue)
    return charts


# Range reports (``export --from --to --by``): the KPIs per period against their targets.
# A period without data is a gap in its line; a month by the quarter hour is 2,976 points a
# line, drawn with small markers (the usual size up to MARKED_PERIODS points).
MARKED_PERIODS = 62


def _period_starts(report: Mapping[str, Any]) -> list[float]:
    # From aware datetimes: a repeated daylight-saving hour is two distinct points on the axis.
    starts = [datetime.fromisoformat(period["start"]) for period in report["periods"]]
    return [float(day) for day in date2num(starts)]  # type: ignore[no-untyped-call]


def _time_axis(axes: Axes, zone: ZoneInfo) -> None:
    # Ticks in the report's zone (the points are UTC day numbers); matplotlib leaves both
    # constructors unannotated.
    locator = AutoDateLocator(tz=zone, maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator, tz=zone)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)


def _period_line(
    axes: Axes,
    starts: list[float],
    values: list[float | None],
    key: str,
    target: float | None,
    colour: str,
    label: str | None = None,
) -> list[float]:
    """One KPI's line over the periods, its missed periods as red dots; the values drawn."""
    ys = [math.nan if value is None else value for value in values]
    # A period between two without data has no line to either side: its marker shows it.
    size = 2.5 if len(starts) <= MARKED_PERIODS else 1.0
    axes.plot(starts, ys, color=colour, marker="o", markersize=size, linewidth=1.1, label=label)
    if target is not None:
        missed = [
            (start, value)
            for start, value in zip(starts, values, strict=True)
            if value is not None and not met(kpi(key), value, target)
        ]
        axes.scatter(
            [start for start, _ in missed], [value for _, value in missed], color=RED, s=6, zorder=3
        )
    return [value for value in values if value is not None]


def range_trend(report: Mapping[str, Any], words: Words) -> bytes:
    """Small multiples: each of the trend KPIs per period, its target as a dashed line."""
    starts = _period_starts(report)
    zone = ZoneInfo(report["timezone"])
    with _figure(7.2, 5.6) as figure:
        grid = figure.subplots(3, 2, sharex=True)
        for axes, key in zip(grid.flat, TREND_KPIS, strict=True):
            values = [period["overall"][key]["value"] for period in report["periods"]]
            target = report["overall"][key].get("target")
            drawn = _period_line(axes, starts, values, key, target, BLUE)
            if target is not None:
                axes.axhline(target, color=RED, linestyle="--", linewidth=1)
            axes.set_title(words.kpi(key), loc="left")
            _percent_axis(axes, None)
            _pad_limits(axes, drawn, target)
            _time_axis(axes, zone)
        return _png(figure)


def range_queue_trend(report: Mapping[str, Any], words: Words) -> bytes:
    """One panel per queue: the call targets per period, each target as a dashed line."""
    starts = _period_starts(report)
    zone = ZoneInfo(report["timezone"])
    queues = list(report["queues"])
    with _figure(7.2, 0.4 + 1.45 * len(queues)) as figure:
        panels = figure.subplots(len(queues), 1, sharex=True, squeeze=False)[:, 0]
        for axes, queue in zip(panels, queues, strict=True):
            drawn: list[float] = []
            targets: list[float] = []
            for key, colour in zip(CALL_TARGETS, (BLUE, ORANGE), strict=True):
                values = [period["queues"][queue][key]["value"] for period in report["periods"]]
                target = report["overall"][key].get("target")
                drawn += _period_line(axes, starts, values, key, target, colour, words.kpi(key))
                if target is not None:
                    axes.axhline(target, color=colour, linestyle="--", linewidth=0.9)
                    targets.append(target)
            axes.set_title(words.queue(queue), loc="left")
            _percent_axis(axes, None)
            _pad_limits(axes, drawn + targets[1:], targets[0] if targets else None)
            _time_axis(axes, zone)
        panels[0].legend(loc="lower left", ncols=len(CALL_TARGETS), fontsize=7)
        return _png(figure)


def all_range_charts(report: Mapping[str, Any], words: Words) -> dict[str, bytes]:
    """Every chart of a range report by name; a range without data gets none."""
    if not any_volume(report["volumes"]["overall"]):
        return {}
    charts = {"range_trend": range_trend(report, words)}
    if report["queues"] and not report.get("queue"):
        charts["range_queues"] = range_queue_trend(report, words)
    return charts
