"""Panel constructors on Grafana's typed SDK, shared by the four dashboards.

Each function turns the model (:mod:`hotline_kpi.dashboards.model`) into one SDK panel builder;
the layout of each dashboard lives in :mod:`hotline_kpi.dashboards.boards`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, common, heatmap, prometheus, stat, table
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models import prometheus as prom_models

from hotline_kpi.dashboards.model import (
    DATASOURCE_VARIABLE,
    MET,
    MISSED,
    NEUTRAL,
    GrafanaUnit,
    Shown,
)
from hotline_kpi.metrics.catalogue import Direction

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and how its series are named in the legend."""

    expr: str
    legend: str = ""


def _targets(
    queries: Sequence[Query],
    *,
    instant: bool = False,
    fmt: prom_models.PromQueryFormat = prom_models.PromQueryFormat.TIME_SERIES,
) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    """SDK targets with their ``refId`` set (A, B, …): Grafana needs it to tell queries apart."""
    targets: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
    for index, query in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .expr(query.expr)
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
            .format(fmt)
        )
        if query.legend:
            target = target.legend_format(query.legend)
        target = target.instant() if instant else target.range()
        targets.append(target)
    return targets


def thresholds(kpi: Shown) -> dash.ThresholdsConfig:
    """Colours against the target: green when met, red when not (SPEC §6 directions).

    Grafana colours a value with the highest step it reaches, so "at least" is red → green at
    the target, and "below" (drop rate) is green → red at the target: a drop rate equal to its
    target is missed, as the SPEC says.
    """
    if kpi.target is None:
        steps = [models.Threshold(value=None, color=NEUTRAL)]
    elif kpi.entry.direction is Direction.AT_LEAST:
        steps = [
            models.Threshold(value=None, color=MISSED),
            models.Threshold(value=kpi.target, color=MET),
        ]
    else:
        steps = [
            models.Threshold(value=None, color=MET),
            models.Threshold(value=kpi.target, color=MISSED),
        ]
    return dash.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)


def fixed_thresholds(steps: Sequence[tuple[float | None, str]]) -> dash.ThresholdsConfig:
    """Absolute thresholds from ``(value, colour)`` pairs, the first value being None (base)."""
    return (
        dash.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=colour) for value, colour in steps])
    )


def kpi_stat(kpi: Shown, query: Query, *, width: int = 6, height: int = 5) -> stat.Panel:
    """A big number coloured against the KPI's target, with its trend as a sparkline."""
    target = "" if kpi.target is None else f"目标 target {_target_text(kpi)}. "
    return (
        stat.Panel()
        .title(kpi.entry.title)
        .description(f"{target}最近 {kpi.entry.window} 滚动值 / rolling {kpi.entry.window} value.")
        .datasource(DATASOURCE)
        .targets(_targets([query]))
        .unit(kpi.unit)
        .decimals(2 if kpi.unit == "percentunit" else 0)
        .thresholds(thresholds(kpi))
        .color_scheme(dash.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .text_mode(common_models.BigValueTextMode.VALUE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("无数据 No data")
        .span(width)
        .height(height)
    )


def value_stat(
    title: str,
    description: str,
    query: Query,
    unit: str,
    steps: Sequence[tuple[float | None, str]],
    *,
    width: int = 6,
    height: int = 5,
    text_mode: common_models.BigValueTextMode = common_models.BigValueTextMode.VALUE,
) -> stat.Panel:
    """A big number (or one per series) coloured by fixed thresholds."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets([query]))
        .unit(unit)
        .thresholds(fixed_thresholds(steps))
        .color_scheme(dash.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .text_mode(text_mode)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("无数据 No data")
        .span(width)
        .height(height)
    )


def bars(
    title: str,
    description: str,
    query: Query | Sequence[Query],
    unit: str,
    steps: Sequence[tuple[float | None, str]],
    *,
    width: int = 12,
    height: int = 8,
    decimals: int | None = None,
    no_value: str = "0",
) -> bargauge.Panel:
    """One horizontal bar per series (per queue, per kind), coloured by fixed thresholds; with
    several queries, the series of each in turn (a breakdown of unlike counters).

    ``no_value`` is shown when there is no series: 0 for counts, "no data" for estimates.
    """
    queries = [query] if isinstance(query, Query) else list(query)
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries, instant=True))
        .unit(unit)
        .thresholds(fixed_thresholds(steps))
        .color_scheme(dash.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.BASIC)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value(no_value)
        .span(width)
        .height(height)
    )
    return panel if decimals is None else panel.decimals(decimals)


def series(
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    *,
    target_of: Shown | None = None,
    line_at: float | None = None,
    width: int = 12,
    height: int = 8,
) -> ts.Panel:
    """A time series; the target of ``target_of`` (or ``line_at``) drawn as a dashed line."""
    panel = (
        ts.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .line_width(2)
        .fill_opacity(10)
        .span_nulls(True)
        .color_scheme(dash.FieldColor().mode(models.FieldColorModeId.PALETTE_CLASSIC))
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.RIGHT)
            .calcs(["lastNotNull"])
        )
        .tooltip(common.VizTooltipOptions().mode(common_models.TooltipDisplayMode.MULTI))
        .span(width)
        .height(height)
    )
    if unit == "percentunit":
        panel = panel.min(0)
    if target_of is not None and target_of.target is not None:
        panel = panel.thresholds(thresholds(target_of))
    elif line_at is not None:
        panel = panel.thresholds(fixed_thresholds([(None, "transparent"), (line_at, MISSED)]))
    if (target_of is not None and target_of.target is not None) or line_at is not None:
        panel = panel.thresholds_style(
            common.GraphThresholdsStyleConfig().mode(common_models.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def wait_heatmap(title: str, description: str, expr: str, *, width: int = 12) -> heatmap.Panel:
    """The wait-time distribution from a histogram's buckets, one heatmap row per bucket."""
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets([Query(expr, "{{le}}")], fmt=prom_models.PromQueryFormat.HEATMAP))
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_models.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .exponent(0.5)
            .steps(64)
        )
        .cell_gap(1)
        .show_legend()
        .span(width)
        .height(8)
    )


@dataclass(frozen=True)
class Column:
    """One column of a KPI table: the query and how its cells are shown."""

    name: str
    query: Query
    unit: GrafanaUnit
    kpi: Shown | None = None


def kpi_table(
    title: str,
    description: str,
    key_label: str,
    key_title: str,
    columns: Sequence[Column],
    *,
    sort_by: int = 0,
    ascending: bool = True,
    link: str | None = None,
    width: int = 24,
    height: int = 9,
) -> table.Panel:
    """One row per ``key_label`` value (titled ``key_title``), one column per KPI.

    Cells of KPIs with a target are coloured against it.

    The instant queries are merged on ``key_label``, sorted worst first on column ``sort_by``,
    then renamed: transformations run before field overrides, so overrides match new names.
    """
    names = {f"Value #{chr(ord('A') + i)}": column.name for i, column in enumerate(columns)}
    names[key_label] = key_title
    sort_field = f"Value #{chr(ord('A') + sort_by)}"
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(
            _targets(
                [column.query for column in columns],
                instant=True,
                fmt=prom_models.PromQueryFormat.TABLE,
            )
        )
        .with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            models.DataTransformerConfig(
                id_val="sortBy",
                options={"sort": [{"field": sort_field, "desc": not ascending}]},
            )
        )
        .with_transformation(
            models.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": {key_label: 0},
                    "renameByName": names,
                },
            )
        )
        .align(common_models.FieldTextAlignment.AUTO)
        .cell_height(common_models.TableCellHeight.MD)
        .no_value("—")
        .span(width)
        .height(height)
    )
    for column in columns:
        properties = [
            models.DynamicConfigValue(id_val="unit", value=column.unit),
            models.DynamicConfigValue(
                id_val="decimals", value=1 if column.unit == "percentunit" else 0
            ),
        ]
        if column.kpi is not None and column.kpi.target is not None:
            properties += [
                models.DynamicConfigValue(
                    id_val="thresholds", value=thresholds(column.kpi).build()
                ),
                models.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
            ]
        panel = panel.override_by_name(column.name, properties)
    if link is not None:
        panel = panel.override_by_name(
            key_title,
            [
                models.DynamicConfigValue(
                    id_val="links",
                    value=[{"title": "下钻 Drill down", "url": link}],
                )
            ],
        )
    return panel


def alerts_table(title: str, description: str, expr: str, *, width: int = 24) -> table.Panel:
    """The firing alerts, one row each, with their labels as columns."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets([Query(expr)], instant=True, fmt=prom_models.PromQueryFormat.TABLE))
        .with_transformation(
            models.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "Value": True, "__name__": True},
                    "renameByName": {
                        "alertname": "告警 Alert",
                        "severity": "级别 Severity",
                        "queue": "队列 Queue",
                    },
                },
            )
        )
        .align(common_models.FieldTextAlignment.AUTO)
        .cell_height(common_models.TableCellHeight.MD)
        .no_value("无告警 No firing alerts")
        .span(width)
        .height(6)
    )


def _target_text(kpi: Shown) -> str:
    sign = kpi.entry.direction.sign
    return f"{sign} {kpi.target:.1%}" if kpi.unit == "percentunit" else f"{sign} {kpi.target}"


def target_text(kpi: Shown) -> str:
    """The target as a supervisor reads it (``≥ 90.0%``, ``< 0.5%``), or empty when none."""
    return "" if kpi.target is None else _target_text(kpi)
