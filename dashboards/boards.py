"""The four dashboards (issue 5): overview wallboard, queue drill-down, quality, monitor health.

Each function lays out one dashboard from the model; the panel shapes live in
:mod:`hotline_kpi.dashboards.panels`. KPI ratios are read from the recording rules named in
:mod:`hotline_kpi.alerts.conventions`; only raw gauges, histograms and event counters are
queried directly (SPEC §4).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as models

from hotline_kpi.alerts.conventions import (
    HEALTH_DASHBOARD_UID,
    OFFERED_LOAD_RULE,
    OFFERED_LOAD_WINDOW,
    OVERVIEW_DASHBOARD_UID,
    REPEAT_BASELINE_WINDOW,
    REPEAT_CONTACT_BASELINE_RULE,
)
from hotline_kpi.config import Settings
from hotline_kpi.dashboards.model import (
    DATASOURCE_UID,
    DATASOURCE_VARIABLE,
    MET,
    MISSED,
    NEUTRAL,
    PER_QUEUE,
    PERCENT,
    SCRAPE_JOB,
    SECONDS,
    TAG,
    WARNING,
    Shown,
    budget_burn,
    kpis,
)
from hotline_kpi.dashboards.panels import (
    Column,
    Query,
    alerts_table,
    bars,
    kpi_stat,
    kpi_table,
    series,
    target_text,
    value_stat,
    wait_heatmap,
)
from hotline_kpi.metrics.catalogue import (
    ANSWER_ACCURACY,
    BLOCKED_RATE,
    MISSION,
    REPEAT_CONTACT_RATE,
    SATISFACTION_RATE,
    TIMELINESS,
    Scope,
)

# The alerts' annotations link to the overview and health dashboards: their uids are shared.
OVERVIEW_UID = OVERVIEW_DASHBOARD_UID
QUEUE_UID = "hotline-kpi-queue"
QUALITY_UID = "hotline-kpi-quality"
HEALTH_UID = HEALTH_DASHBOARD_UID

QUEUE_VARIABLE = "queue"
QUEUE = f'{{queue="${QUEUE_VARIABLE}"}}'
# Windows of the error-budget burn panels: a fast one to see a burst, a slow one for the trend.
BURN_WINDOWS = ("1h", "1d")


def _dashboard(uid: str, title: str, description: str, settings: Settings) -> dash.Dashboard:
    """A dashboard with the settings every hotline dashboard shares."""
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .timezone(settings.timezone)
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("1m")
        .link(
            dash.DashboardLink("热线看板 Hotline dashboards")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
        .with_variable(
            dash.DatasourceVariable(DATASOURCE_VARIABLE)
            .label("数据源 Data source")
            .type("prometheus")
            .current(models.VariableOption(text=DATASOURCE_UID, value=DATASOURCE_UID))
        )
    )


def _row(title: str) -> dash.Row:
    # Rows are added empty and open; panels follow at the top level (Grafana's expanded layout).
    return dash.Row(title).collapsed(False)


def overview(settings: Settings) -> dash.Dashboard:
    """The wall screen: each target now, which queue slips, who waits and for how long."""
    catalogue = kpis(settings)
    wait_threshold = settings.thresholds.service_level_seconds
    board = _dashboard(
        OVERVIEW_UID,
        "热线 10000 总览 Hotline overview",
        "墙屏总览:四大考核指标对照目标,排队情况,各队列指标(最差在前),告警。"
        " Wallboard: the four mission KPIs against their targets, callers waiting, every KPI"
        " per queue (worst first), firing alerts.",
        settings,
    ).refresh("30s")

    board = board.with_row(_row("考核指标 Mission KPIs"))
    for key in MISSION:
        kpi = catalogue[key]
        board = board.with_panel(kpi_stat(kpi, Query(kpi.rule(per_group=False))))

    board = board.with_row(_row("服务 Service"))
    # The hour's other KPIs that are good or bad news (handle time is neither).
    service = [
        kpi
        for kpi in catalogue.values()
        if kpi.entry.key not in MISSION and kpi.entry.window == "1h" and not kpi.entry.neutral
    ]
    for kpi in service:
        board = board.with_panel(
            kpi_stat(kpi, Query(kpi.rule(per_group=False)), width=24 // len(service))
        )

    board = board.with_row(_row("排队 Waiting now"))
    board = board.with_panel(
        bars(
            "排队中 Calls waiting",
            "每个队列当前等待人工的来电数。 Callers waiting for an agent now, per queue.",
            Query("sum by (queue) (hotline_calls_waiting)", "{{queue}}"),
            "none",
            [(None, NEUTRAL)],
            width=8,
        )
    )
    board = board.with_panel(
        bars(
            "话务负荷 Offered load (Erlang)",
            f"每个队列最近 {OFFERED_LOAD_WINDOW} 的话务量 = 来电率 × 平均处理时长,即平均需要同时"
            "忙碌的坐席数;在岗坐席须多于此数,否则排队只会越来越长;"
            f"最近 {OFFERED_LOAD_WINDOW} 内没有通话结束时无数据。"
            f" Offered load over {OFFERED_LOAD_WINDOW} per queue = arrival rate × mean handle"
            " time: the agents the traffic keeps busy on average. Staff more than this or the"
            " queue only grows; no data while no call ended in the window.",
            Query(OFFERED_LOAD_RULE, "{{queue}}"),
            "none",
            [(None, NEUTRAL)],
            width=8,
            decimals=1,
            no_value="无数据 No data",
        )
    )
    board = board.with_panel(
        bars(
            "最长等待 Oldest wait",
            f"每个队列等待最久的来电已等待时长;超过 {wait_threshold:g} 秒即不计入服务水平。"
            f" The longest current wait per queue; past {wait_threshold:g} s it misses the"
            " service level.",
            Query("max by (queue) (hotline_oldest_wait_seconds)", "{{queue}}"),
            SECONDS,
            [(None, MET), (wait_threshold, WARNING)],
            width=8,
        )
    )

    board = board.with_row(_row("坐席与呼损 Agents and lost calls"))
    board = board.with_panel(_agent_states())
    board = board.with_panel(_lost_calls())

    board = board.with_row(_row("各队列 Per queue"))
    board = board.with_panel(
        kpi_table(
            "各队列指标(最差在前) Every KPI per queue, worst first",
            "按人工接通率从低到高排序;点击队列名进入下钻。"
            " Sorted by manual connection rate, lowest first; click a queue to drill down.",
            "queue",
            "队列 Queue",
            [_queue_column(catalogue[key]) for key in PER_QUEUE],
            sort_by=0,
            ascending=True,
            link=f"/d/{QUEUE_UID}/?var-{QUEUE_VARIABLE}=${{__value.raw}}&${{__url_time_range}}",
        )
    )

    board = board.with_row(_row("告警 Alerts"))
    return board.with_panel(
        alerts_table(
            "正在触发的告警 Firing alerts",
            "Prometheus 正在触发的告警。 Alerts firing in Prometheus now.",
            'sum by (alertname, severity, queue) (ALERTS{alertstate="firing"})',
        )
    )


# Agent states the wallboard shows (SPEC §2 agent.state); logged-out agents are not on shift.
SHIFT_STATES = ("ready", "busy", "wrap_up", "not_ready")


def _agent_states() -> bargauge.Panel:
    """Agents in each state now (SPEC §4 ``hotline_agents``), not-ready split by its reason."""
    states = "|".join(SHIFT_STATES)
    return bars(
        "坐席状态 Agents by state",
        "当前处于各状态的坐席数:空闲、通话、话后处理、示忙(按原因)。"
        " Agents in each state now: ready, busy, wrap-up, not ready (by reason).",
        Query(
            f'sum by (state, reason) (hotline_agents{{state=~"{states}"}})',
            "{{state}} {{reason}}",
        ),
        "none",
        [(None, NEUTRAL)],
    )


def _lost_calls() -> bargauge.Panel:
    """呼损: the agent requests lost in the hour, by how (SPEC §3, §4): short abandons, other
    abandons, blocked and left legs by their reason."""
    window = BLOCKED_RATE.window
    short = f"sum(increase(hotline_calls_short_abandoned_total[{window}]))"
    abandoned = f"sum(increase(hotline_calls_abandoned_total[{window}]))"
    return bars(
        f"呼损构成({window}) Lost calls ({window})",
        f"最近 {window} 未接通的人工请求:短时放弃(等待不足 S 秒)、放弃、无法进队(按原因)、"
        f"离队(按原因)。 Agent requests lost in the last {window}: short abandons (under S"
        " seconds), abandons, blocked (could not enter the queue) and left, by reason.",
        [
            Query(short, "短时放弃 short abandons"),
            Query(f"{abandoned} - ({short} or vector(0))", "放弃 abandons"),
            Query(
                f"sum by (reason) (increase(hotline_calls_blocked_total[{window}]))",
                "无法进队 blocked: {{reason}}",
            ),
            Query(
                f"sum by (reason) (increase(hotline_calls_left_total[{window}]))",
                "离队 left: {{reason}}",
            ),
        ],
        "none",
        [(None, WARNING)],
        decimals=0,
    )


def _queue_column(kpi: Shown) -> Column:
    return Column(kpi.entry.title, Query(kpi.rule(per_group=True), "{{queue}}"), kpi.unit, kpi)


def queue_drilldown(settings: Settings) -> dash.Dashboard:
    """One queue: every KPI over time against its target, wait distribution, budget burn."""
    catalogue = kpis(settings)
    wait_threshold = settings.thresholds.service_level_seconds
    board = _dashboard(
        QUEUE_UID,
        "队列下钻 Queue drill-down",
        "单个技能队列:各指标随时间变化(虚线为目标)、等待时长分布、错误预算消耗。"
        " One skill queue: every KPI over time (dashed line: target), wait-time distribution,"
        " error-budget burn.",
        settings,
    ).with_variable(
        dash.QueryVariable(QUEUE_VARIABLE)
        .label("队列 Queue")
        .datasource(models.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}"))
        .query(f"label_values(hotline_agent_requests_total, {QUEUE_VARIABLE})")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )

    board = board.with_row(_row("当前 Now: $queue"))
    # The queue's call ratios that move within the hour.
    for kpi in catalogue.values():
        if kpi.entry.window == "1h" and kpi.unit == PERCENT:
            board = board.with_panel(
                kpi_stat(kpi, Query(kpi.rule(per_group=True) + QUEUE), width=4)
            )
    board = board.with_panel(
        value_stat(
            "排队中 Calls waiting",
            "当前等待人工的来电数。 Callers waiting for an agent now.",
            Query(f"sum(hotline_calls_waiting{QUEUE})"),
            "none",
            [(None, NEUTRAL)],
            width=4,
        )
    )
    board = board.with_panel(
        value_stat(
            "最长等待 Oldest wait",
            f"等待最久的来电已等待时长(阈值 {wait_threshold:g} 秒)。"
            f" The longest current wait (threshold {wait_threshold:g} s).",
            Query(f"max(hotline_oldest_wait_seconds{QUEUE})"),
            SECONDS,
            [(None, MET), (wait_threshold, WARNING)],
            width=4,
        )
    )

    board = board.with_row(_row("指标趋势 KPIs over time"))
    for key in PER_QUEUE:
        kpi = catalogue[key]
        goal = target_text(kpi)
        board = board.with_panel(
            series(
                kpi.entry.title,
                f"{kpi.entry.window} 滚动值"
                + (f",目标 {goal}(虚线)" if goal else "")
                + f"。 Rolling {kpi.entry.window} value"
                + (f", target {goal} (dashed line)." if goal else "."),
                [Query(kpi.rule(per_group=True) + QUEUE, f"{{{{queue}}}} {kpi.entry.window}")],
                kpi.unit,
                target_of=kpi,
            )
        )

    board = board.with_row(_row("等待时长 Wait time"))
    buckets = f"hotline_answer_wait_seconds_bucket{QUEUE}"
    board = board.with_panel(
        wait_heatmap(
            "应答等待分布 Answer wait distribution",
            "已应答来电的排队等待时长分布(直方图桶)。"
            " How long answered callers waited in the queue (histogram buckets).",
            f"sum by (le) (increase({buckets}[$__rate_interval]))",
        )
    )
    board = board.with_panel(
        series(
            "应答等待分位数 Answer wait quantiles",
            f"等待时长的 50/90/99 分位;虚线为服务水平阈值 {wait_threshold:g} 秒。"
            f" Wait quantiles; dashed line: the service-level threshold {wait_threshold:g} s.",
            [
                Query(
                    f"histogram_quantile({q}, sum by (le) (rate({buckets}[$__rate_interval])))",
                    f"p{round(q * 100)}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            SECONDS,
            line_at=wait_threshold,
        )
    )

    board = board.with_row(_row("错误预算 Error budget"))
    budgeted = [kpi for kpi in catalogue.values() if kpi.error_budget is not None]
    for window in BURN_WINDOWS:
        board = board.with_panel(
            series(
                f"错误预算消耗速率({window}) Error-budget burn rate ({window})",
                "1 表示恰好按预算消耗;大于 1 表示若持续将超出目标。"
                " 1 = spending the budget exactly as the target allows; above 1 the target is"
                " missed if it lasts. (Timeliness has a 100% target and no budget.)",
                [Query(budget_burn(kpi, window, QUEUE), kpi.entry.zh) for kpi in budgeted],
                "none",
                line_at=1,
            )
        )
    return board


def _in_range(kpi: Shown, counter: str) -> str:
    """PromQL: the increase of ``kpi``'s ``counter`` over the time range, per queue or kind."""
    return f"sum by ({kpi.entry.group}) (increase({counter}[$__range]))"


def _kpi_row(board: dash.Dashboard, row: str, kpi: Shown, description: str) -> dash.Dashboard:
    """A row opening with ``kpi`` now, then per queue (or per ticket kind) over time."""
    group = kpi.entry.group
    where = "各队列 per queue" if group is Scope.QUEUE else "按类型 by kind"
    return (
        board.with_row(_row(row))
        .with_panel(kpi_stat(kpi, Query(kpi.rule(per_group=False)), width=6))
        .with_panel(
            series(
                f"{kpi.entry.title} — {where}",
                description,
                [Query(kpi.rule(per_group=True), f"{{{{{group}}}}}")],
                kpi.unit,
                target_of=kpi,
                width=18,
            )
        )
    )


def quality(settings: Settings) -> dash.Dashboard:
    """Answer accuracy from QA reviews, satisfaction surveys, repeat contacts, work-order
    timeliness."""
    shown = kpis(settings)
    accuracy = shown[ANSWER_ACCURACY.key]
    satisfaction = shown[SATISFACTION_RATE.key]
    timeliness = shown[TIMELINESS.key]
    satisfied = settings.thresholds.satisfied_score
    board = _dashboard(
        QUALITY_UID,
        "质量、满意度与工单 Quality, satisfaction and work orders",
        "质检准确率、满意度调查与工单及时率。"
        " Answer accuracy from QA reviews, satisfaction surveys and work-order timeliness.",
        settings,
    ).time("now-7d", "now")

    board = _kpi_row(
        board,
        "质检 QA reviews",
        accuracy,
        f"{accuracy.entry.window} 滚动值,目标 {target_text(accuracy)}(虚线)。"
        f" Rolling {accuracy.entry.window}, target {target_text(accuracy)} (dashed line).",
    )
    reviews = _in_range(accuracy, accuracy.entry.counters.denominator)
    accurate = _in_range(accuracy, accuracy.entry.counters.numerator)
    board = board.with_panel(
        bars(
            "质检量 QA reviews",
            "所选时间范围内各队列的质检条数。 QA reviews per queue in the selected range.",
            Query(reviews, "{{queue}}"),
            "none",
            [(None, NEUTRAL)],
        )
    )
    board = board.with_panel(
        bars(
            "判为不准确 Inaccurate answers",
            "所选时间范围内各队列被质检判为不准确的解答数。"
            " Answers judged inaccurate per queue in the selected range.",
            Query(f"{reviews} - {accurate}", "{{queue}}"),
            "none",
            [(None, MET), (1, MISSED)],
        )
    )

    board = _kpi_row(
        board,
        "满意度 Satisfaction",
        satisfaction,
        f"评分 ≥ {satisfied} 分(10 分制)为满意,{satisfaction.entry.window} 滚动值。"
        f" Scores ≥ {satisfied} of 10 are satisfied; rolling {satisfaction.entry.window}.",
    )
    board = board.with_panel(
        bars(
            "调查回复 Survey responses",
            "所选时间范围内各队列的满意度调查回复数。"
            " Survey responses per queue in the selected range.",
            Query(_in_range(satisfaction, satisfaction.entry.counters.denominator), "{{queue}}"),
            "none",
            [(None, NEUTRAL)],
            width=24,
        )
    )

    board = _kpi_row(
        board,
        "工单 Work orders",
        timeliness,
        f"按期办结的工单占已到期工单的比例,目标 {target_text(timeliness)}(虚线)。"
        f" Work orders closed by their deadline among those due; target"
        f" {target_text(timeliness)} (dashed line).",
    )
    board = _hotline_rows(board, shown, settings)
    due = _in_range(timeliness, timeliness.entry.counters.denominator)
    on_time = _in_range(timeliness, timeliness.entry.counters.numerator)
    board = board.with_panel(
        bars(
            "超期工单 Overdue work orders",
            "所选时间范围内到期但未按期办结的工单数,按类型。"
            " Work orders due in the selected range and not closed by their deadline, by kind.",
            # A kind with no on-time ticket yet has no on-time series: count it as zero.
            Query(f"{due} - ({on_time} or {due} * 0)", "{{kind}}"),
            "none",
            [(None, MET), (1, MISSED)],
        )
    )
    return board.with_panel(
        bars(
            "到期工单 Work orders due",
            "所选时间范围内到期(或已办结)的工单数,按类型。"
            " Work orders settled (closed or past due) in the selected range, by kind.",
            Query(due, "{{kind}}"),
            "none",
            [(None, NEUTRAL)],
        )
    )


def _hotline_rows(
    board: dash.Dashboard, shown: dict[str, Shown], settings: Settings
) -> dash.Dashboard:
    """A row per KPI Prometheus has for the whole hotline only (repeat contacts have no queue):
    the KPI now, and over time against the baseline its alert compares the last hour with."""
    rise = settings.alerts.repeat_contact_rise
    for kpi in shown.values():
        if kpi.entry.group is not Scope.OVERALL:
            continue
        queries = [Query(kpi.rule("1h", per_group=False), "1h")]
        if kpi.entry.window != "1h":
            queries.append(Query(kpi.rule(per_group=False), kpi.entry.window))
        zh, en = "。", "."
        if kpi.entry.key == REPEAT_CONTACT_RATE.key:
            queries.append(
                Query(
                    f"{rise:g} * {REPEAT_CONTACT_BASELINE_RULE}",
                    f"{rise:g}× {REPEAT_BASELINE_WINDOW} baseline",
                )
            )
            zh = f";超过 {REPEAT_BASELINE_WINDOW} 基线的 {rise:g} 倍时开工单。"
            en = f"; a ticket opens above {rise:g}× its {REPEAT_BASELINE_WINDOW} baseline."
        board = (
            board.with_row(_row(kpi.entry.title))
            .with_panel(kpi_stat(kpi, Query(kpi.rule(per_group=False)), width=6))
            .with_panel(
                series(
                    f"{kpi.entry.title} — 全部 whole hotline",
                    f"{kpi.entry.zh}滚动值{zh} Rolling {kpi.entry.en.lower()}{en}",
                    queries,
                    kpi.unit,
                    width=18,
                )
            )
        )
    return board


def health(settings: Settings) -> dash.Dashboard:
    """The monitor itself: events in, rejections, consumer lag, freshness, store commits."""
    silence = settings.no_events_alert_seconds
    board = _dashboard(
        HEALTH_UID,
        "监控自身健康 Monitor health",
        "监控程序自身:事件与拒收速率、消费延迟、最近事件时间、存储提交耗时。"
        " The monitor itself: events and rejections per second, consumer lag, last event age,"
        " store commit latency.",
        settings,
    )

    board = board.with_row(_row("事件 Events"))
    board = board.with_panel(
        series(
            "事件速率 Events per second",
            "按事件类型统计的已接收事件速率。 Accepted events per second, by type.",
            [Query("sum by (type) (rate(hotline_events_total[$__rate_interval]))", "{{type}}")],
            "ops",
        )
    )
    board = board.with_panel(
        series(
            "拒收速率 Rejections per second",
            "按原因统计的拒收事件速率;拒收事件不会静默丢失。"
            " Rejected events per second, by reason; no event disappears silently.",
            [
                Query(
                    "sum by (reason) (rate(hotline_events_rejected_total[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            "ops",
        )
    )

    board = board.with_row(_row("消费与新鲜度 Consumer and freshness"))
    board = board.with_panel(
        value_stat(
            "采集状态 Exporter up",
            f"Prometheus 能否抓取导出器(抓取任务 {SCRAPE_JOB})。"
            f" Whether Prometheus can scrape the exporter (scrape job {SCRAPE_JOB}).",
            Query(f'min(up{{job="{SCRAPE_JOB}"}})'),
            "none",
            [(None, MISSED), (1, MET)],
        ).mappings(
            [
                models.ValueMap(
                    options={
                        "0": models.ValueMappingResult(text="DOWN 停止", index=0),
                        "1": models.ValueMappingResult(text="UP 正常", index=1),
                    }
                )
            ]
        )
    )
    board = board.with_panel(
        value_stat(
            "最近事件距今 Last event age",
            f"距最近一个已接收事件(事件时间)的秒数;营业时间内超过 {silence} 秒会告警。"
            f" Seconds since the latest accepted event (event time); over {silence} s in"
            " business hours raises an alert.",
            Query("time() - max(hotline_last_event_timestamp_seconds)"),
            SECONDS,
            [(None, MET), (silence / 2, WARNING), (silence, MISSED)],
        )
    )
    board = board.with_panel(
        series(
            "消费延迟 Consumer lag",
            "各 Kafka 分区尚未消费的消息数。 Messages not yet consumed, per Kafka partition.",
            [
                Query(
                    "sum by (topic, partition) (hotline_consumer_lag_messages)",
                    "{{topic}}/{{partition}}",
                )
            ],
            "none",
        )
    )

    board = board.with_row(_row("存储 Store"))
    commit = "hotline_store_commit_seconds_bucket"
    board = board.with_panel(
        series(
            "存储提交耗时 Store commit latency",
            "每批事实与位点一次事务提交的耗时分位数。"
            " Latency quantiles of the store's per-batch transaction (facts and offsets).",
            [
                Query(
                    f"histogram_quantile({q}, sum by (le) (rate({commit}[$__rate_interval])))",
                    f"p{round(q * 100)}",
                )
                for q in (0.5, 0.99)
            ],
            SECONDS,
        )
    )
    return board.with_panel(
        series(
            "存储提交失败 Store commit failures",
            "每秒失败的存储提交次数;应为 0。 Failed store commits per second; should be 0.",
            [
                Query(
                    "sum(rate(hotline_store_commit_failures_total[$__rate_interval]))",
                    "失败 failed",
                )
            ],
            "ops",
        )
    )


def all_dashboards(settings: Settings) -> list[dash.Dashboard]:
    """Every dashboard builder, in the order they are listed to operators."""
    return [overview(settings), queue_drilldown(settings), quality(settings), health(settings)]
