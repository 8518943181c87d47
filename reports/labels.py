"""Words and number formats of the reports, in Chinese (default) and English.

Names the data does not know (a new queue, factor or work-order kind) are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hotline_kpi.metrics.catalogue import (
    BLOCKED_BY_REASON,
    CATALOGUE,
    KPIS,
    LEFT_BY_REASON,
    MISSION,
    QUEUE_ORDER,
    Scope,
    Unit,
)
from hotline_kpi.metrics.export import clean_text
from hotline_kpi.metrics.states import STATES

LANGS = ("zh", "en")

# KPI key -> (zh, en), from the catalogue. Order is the report's order.
KPI_NAMES: dict[str, tuple[str, str]] = {entry.key: (entry.zh, entry.en) for entry in CATALOGUE}

# Which KPIs each part of the report shows, in its order: layout only, since what each KPI is
# (names, unit, direction, target) is the catalogue's.
SUMMARY_CARDS: tuple[str, ...] = MISSION
# The KPI headquarters lists first: compared with last month per queue, counted out per day.
HEADLINE: str = MISSION[0]
# The per-queue table: satisfaction as its mean score (the rate is in the XLSX), and the
# blocked rate beside the abandon rate (both are lost calls, 呼损).
QUEUE_KPIS: tuple[str, ...] = tuple(
    key
    for queue_key in QUEUE_ORDER
    if queue_key != "satisfaction_rate"
    for key in ((queue_key, "blocked_rate") if queue_key == "abandon_rate" else (queue_key,))
)
# The KPIs of a call scope (a queue, a period of a queue), in the catalogue's order: the columns
# of the workbook's per-queue and per-period tables. The others (caller keys, agent state time)
# are overall (and per agent) only, and have columns of their own.
CALL_KPIS: tuple[str, ...] = tuple(entry.key for entry in CATALOGUE if Scope.QUEUE in entry.scopes)
# The daily trend's small multiples (three rows of two): the ratios worth a day-by-day look.
TREND_KPIS: tuple[str, ...] = (
    "manual_connection_rate",
    "drop_rate",
    "timeliness",
    "answer_accuracy",
    "service_level",
    "satisfaction_rate",
)
# The two call targets staffing is planned for, drawn side by side per queue and per day.
CALL_TARGETS: tuple[str, ...] = ("manual_connection_rate", "service_level")
# A range report's table of periods (all of them, or the worst by the call targets).
PERIOD_KPIS: tuple[str, ...] = (*CALL_TARGETS, "abandon_rate", "average_speed_of_answer")
# The satisfaction score out of 10, compared across queues.
SCORE_KPI: str = next(entry.key for entry in CATALOGUE if entry.unit is Unit.SCORE)
# The work-order KPI, broken down by ticket kind.
TICKET_KPI: str = next(entry.key for entry in CATALOGUE if Scope.KIND in entry.scopes)
# The agent table's columns (JSON keys of an agent: volumes and KPIs), and the KPIs among them
# whose cells are coloured against the target.
AGENT_FIGURES: tuple[str, ...] = (
    "answered",
    "average_speed_of_answer",
    "average_handle_time",
    "drop_rate",
    "qa_reviews",
    "answer_accuracy",
    "surveys",
    "satisfaction_rate",
    "satisfaction_mean",
)
AGENT_JUDGED: tuple[str, ...] = ("answer_accuracy",)
# The agent state table (SPEC §5 per agent): time logged in, seconds per state, and the three
# state-time KPIs (objects with value, numerator and denominator in the JSON).
AGENT_STATE_KPIS: tuple[str, ...] = tuple(
    entry.key
    for entry in CATALOGUE
    if Scope.AGENT in entry.scopes and Scope.QUEUE not in entry.scopes
)
AGENT_STATES: tuple[str, ...] = STATES
# The volumes of the summary (month and range), in order: calls, then reviews, surveys, tickets.
VOLUME_NAMES: tuple[str, ...] = (
    "offered",
    "contacts",
    "requests",
    "answered",
    "abandoned",
    "short_abandoned",
    "blocked",
    "left",
    "dropped",
    "transferred",
    "qa_reviews",
    "surveys",
    "tickets_due",
)
# The lost-call breakdown (呼损构成): (volume or by-reason table, reason or None), in order.
LOSS_ROWS: tuple[tuple[str, str | None], ...] = (
    ("short_abandoned", None),
    ("abandoned", None),
    *(("blocked_by_reason", reason) for reason in BLOCKED_BY_REASON),
    *(("left_by_reason", reason) for reason in LEFT_BY_REASON),
)

BLOCKED_REASONS: dict[str, tuple[str, str]] = {
    "queue_full": ("队列已满", "queue full"),
    "no_agents": ("无坐席", "no agents"),
    "closed": ("非服务时间", "closed"),
}
LEFT_REASONS: dict[str, tuple[str, str]] = {
    "timeout": ("排队超时", "timed out"),
    "no_agents": ("无坐席", "no agents"),
    "callback_requested": ("预约回拨", "callback requested"),
    "overflow": ("溢出转移", "overflow"),
}
STATE_NAMES: dict[str, tuple[str, str]] = {
    "logged_out": ("签出", "Logged out"),
    "ready": ("就绪", "Ready"),
    "busy": ("通话", "Busy"),
    "wrap_up": ("话后处理", "Wrap-up"),
    "not_ready": ("示忙", "Not ready"),
}
QUEUE_NAMES: dict[str, tuple[str, str]] = {
    "billing": ("账务查询", "Billing"),
    "broadband": ("宽带业务", "Broadband"),
    "fault_repair": ("故障报修", "Fault repair"),
    "mobile": ("移动业务", "Mobile"),
    "vip": ("VIP 专席", "VIP"),
    "unassigned": ("未分配", "Unassigned"),
}
TICKET_KINDS: dict[str, tuple[str, str]] = {
    "complaint": ("投诉", "Complaint"),
    "fault": ("故障", "Fault"),
    "consultation": ("咨询", "Consultation"),
    "callback": ("回访", "Callback"),
    "unknown": ("未知", "Unknown"),
}
FACTOR_NAMES: dict[str, tuple[str, str]] = {
    "attitude": ("服务态度", "Attitude"),
    "expertise": ("业务能力", "Expertise"),
    "ivr_navigation": ("语音导航", "IVR navigation"),
    "resolution": ("问题解决", "Resolution"),
    "waiting_time": ("等待时间", "Waiting time"),
}
QUADRANT_NAMES: dict[str, tuple[str, str]] = {
    "improve": ("急需改进", "Improve urgently"),
    "maintain": ("继续保持", "Keep it up"),
    "low_priority": ("不占优先地位", "Low priority"),
    "irrelevant": ("无关紧要", "Of little concern"),
}
# ISO weekdays 1..7.
WEEKDAY_NAMES: tuple[tuple[str, str], ...] = (
    ("周一", "Mon"),
    ("周二", "Tue"),
    ("周三", "Wed"),
    ("周四", "Thu"),
    ("周五", "Fri"),
    ("周六", "Sat"),
    ("周日", "Sun"),
)

TEXT: dict[str, tuple[str, str]] = {
    "title": ("{year}年{month}月 客服热线 KPI 月报", "Hotline KPI report, {month_name} {year}"),
    "subtitle": (
        "统计时区 {timezone} · 数据截至 {as_of} · 数据版本 {revision}",
        "Time zone {timezone} · data as of {as_of} · revision {revision}",
    ),
    "revision": ("数据版本", "Revision"),
    "revision_hint": (
        "数据版本由本月全部数据计算得出：两份版本相同的报表数字相同；迟到事件改变本月数字时版本随之改变。",
        "The revision is computed from the month's figures: two copies with the same revision "
        "show the same figures; a late event that changes the month changes it.",
    ),
    "no_data": (
        "本月没有任何数据：没有来电、工单、质检或满意度调查归属于该月。",
        "No data for this month: no call, work order, review or survey is attributed to it.",
    ),
    "summary": ("KPI 总览", "KPI summary"),
    "kpi": ("指标", "KPI"),
    "value": ("本月", "This month"),
    "target": ("目标", "Target"),
    "status": ("达标情况", "Status"),
    "numerator": ("分子", "Numerator"),
    "denominator": ("分母", "Denominator"),
    "previous": ("上月", "Last month"),
    "change": ("环比变化", "Change"),
    "met": ("达标", "met"),
    "missed": ("未达标", "missed"),
    "none": ("无数据", "no data"),
    "queues": ("技能队列", "Queues"),
    "queue": ("队列", "Queue"),
    "overall": ("全部", "All"),
    "agents": ("坐席", "Agents"),
    "agent": ("坐席工号", "Agent"),
    "rank": ("排名", "Rank"),
    "bottom": ("末位", "Bottom"),
    "unranked": ("样本不足", "Too few surveys"),
    "note": ("备注", "Note"),
    "daily": ("每日趋势", "Daily trend"),
    "date": ("日期", "Date"),
    "tickets": ("工单及时率", "Work-order timeliness"),
    "overdue": ("超时工单", "Overdue work orders"),
    "kind": ("工单类型", "Kind"),
    "ticket_id": ("工单号", "Work order"),
    "opened_at": ("创建时间", "Opened"),
    "due": ("处理时限", "Due"),
    "closed_at": ("关闭时间", "Closed"),
    "overdue_hours": ("超时(小时)", "Overdue (h)"),
    "open": ("未关闭", "still open"),
    "closed_late": ("超时关闭", "closed late"),
    "satisfaction": ("满意度", "Satisfaction"),
    "waits_satisfaction": ("等待与满意度", "Waiting and satisfaction"),
    "state": ("状态", "State"),
    "score": ("评分", "Score"),
    "surveys": ("调查数", "Surveys"),
    "share": ("占比", "Share"),
    "factor": ("评价因素", "Factor"),
    "responses": ("回答数", "Responses"),
    "factor_mean": ("平均满意度", "Mean satisfaction"),
    "importance": ("重要性(相关系数)", "Importance (correlation)"),
    "quadrant": ("象限", "Quadrant"),
    "requests": ("人工请求量", "Requests"),
    "offered": ("呼入量", "Offered"),
    "contacts": ("来电次数", "Contacts"),
    "answered": ("接通量", "Answered"),
    "abandoned": ("放弃量", "Abandoned"),
    "short_abandoned": ("短时放弃", "Short abandons"),
    "blocked": ("无法进队", "Blocked"),
    "left": ("离队未接", "Left the queue"),
    "transferred": ("转接量", "Transferred"),
    "dropped": ("中断量", "Dropped"),
    "qa_reviews": ("质检数", "QA reviews"),
    "tickets_due": ("到期工单", "Work orders due"),
    "blocked_by_reason": ("无法进队", "Blocked"),
    "left_by_reason": ("离队未接", "Left"),
    "abandoned_all": ("放弃(含短时)", "Abandoned (short included)"),
    "losses": ("呼损构成", "Lost calls by reason"),
    "loss": ("呼损类别", "Lost calls"),
    "share_of_requests": ("占人工请求", "Share of requests"),
    "loss_hint": (
        "放弃量含短时放弃（等待不足 S 秒）；无法进队与离队未接按原因列出；占比的分母为人工请求量。",
        "Abandons include the short ones (wait under S s); blocked and left calls are listed by "
        "reason; shares are of all agent requests.",
    ),
    "agent_states": ("坐席状态时间", "Agent state time"),
    "logged_in_seconds": ("登录时长", "Logged in"),
    "not_ready_reasons": ("示忙原因", "Not-ready reasons"),
    "states_hint": (
        "时长为 时:分:秒；占用率 = (通话 + 话后处理) ÷ (就绪 + 通话 + 话后处理)，利用率 = "
        "(通话 + 话后处理) ÷ 登录时长，示忙占比 = 示忙 ÷ 登录时长。",
        "Times in h:mm:ss; occupancy = (busy + wrap-up) ÷ (ready + busy + wrap-up), utilisation "
        "= (busy + wrap-up) ÷ logged in, not-ready share = not ready ÷ logged in.",
    ),
    "daily_more": ("每日客户与坐席", "Daily contacts and agents"),
    "on_time": ("按时完成", "On time"),
    "handled": ("已结束通话", "Ended calls"),
    "wait": ("等待时长", "Wait"),
    "calls": ("通话数", "Calls"),
    "notes": ("说明", "Notes"),
    "volumes": ("业务量", "Volumes"),
    "charts_trend": ("每日 KPI 趋势（虚线为目标）", "Daily KPIs against their targets (dashed)"),
    "charts_queues": ("各队列对比", "Queues compared"),
    "charts_wait": ("等待时长分布", "Wait-time distribution"),
    "charts_scores": ("满意度评分分布", "Satisfaction score distribution"),
    "charts_quadrant": ("满意度因素四象限分析", "Importance–satisfaction quadrants"),
    "quadrant_hint": (
        "重要性为各因素评分与总体评分的相关系数；分界线为各因素重要性和满意度的平均值。",
        "Importance is the correlation of a factor's score with the overall score; the lines "
        "are the factors' mean importance and mean satisfaction.",
    ),
    "bottom_hint": (
        "按满意度均分排名（调查数不少于 {min} 份），末位为排名最后的 10%（至少 1 人）。",
        "Ranked by mean satisfaction (at least {min} surveys); the bottom are the last 10% "
        "(at least one).",
    ),
    "agents_shown": (
        "本表列出排名最前的 {best} 名和最后的 {worst} 名坐席；全部 {total} 名坐席"
        "（其中 {unranked} 名调查数不足未排名）见 XLSX、CSV 和 JSON。",
        "This table shows the best {best} and the worst {worst} ranked agents; all {total} "
        "agents ({unranked} with too few surveys to be ranked) are in the XLSX, CSV and JSON.",
    ),
    "agents_ranked_shown": (
        "本表列出全部 {ranked} 名已排名坐席；全部 {total} 名坐席"
        "（其中 {unranked} 名调查数不足未排名）见 XLSX、CSV 和 JSON。",
        "This table shows all {ranked} ranked agents; all {total} agents ({unranked} with too "
        "few surveys to be ranked) are in the XLSX, CSV and JSON.",
    ),
    "agents_gap": (
        "…… 第 {first}–{last} 名（{n} 名坐席）见 XLSX ……",
        "… ranks {first}–{last} ({n} agents): see the XLSX …",
    ),
    "overdue_more": (
        "另有 {n} 张超时工单，见 XLSX。",
        "{n} more overdue work orders: see the XLSX.",
    ),
    "no_overdue": ("本月没有超时工单。", "No overdue work orders this month."),
    "no_factors": ("本月没有带评价因素的调查。", "No survey with factor scores this month."),
    "mom_hint": (
        "环比：比率为百分点差，时长为秒差。",
        "Change: percentage points for rates, seconds for durations.",
    ),
    "staffing": ("人力缺口", "Staffing shortfall"),
    "weekday": ("星期", "Weekday"),
    "hour": ("时段(时)", "Hour of day"),
    "shortfall": ("缺口(坐席数)", "Shortfall (agents)"),
    "staffing_hint": (
        "缺口 = 达到人工接通率和服务水平目标所需的坐席数（Erlang A 模型，考虑客户放弃）"
        "− 该时段实际接听的坐席数（本月同一星期几的平均）；红色为不足，蓝色为富余，空白为无来电。"
        "实际接听坐席数是在岗坐席的下限（空闲坐席不留记录），缺口因此可能偏高。",
        "Shortfall = agents needed to meet the manual connection rate and service level targets "
        "(Erlang A, callers hang up) − agents who answered calls in that hour (mean over the "
        "month's days of that weekday); red is short, blue is spare, blank had no calls. Agents "
        "answering are a lower bound of the agents on duty (idle agents leave no trace), so the "
        "shortfall may be overstated.",
    ),
    "backtest": ("模型回测", "Model backtest"),
    "backtest_hint": (
        "以每个时段实际接听的坐席数，模型预测的放弃率与服务水平对比实际："
        "平均绝对误差（MAE）与平均偏差（预测 − 实际），单位为百分点。",
        "With the agents who answered in each interval, the model's predicted abandon rate and "
        "service level against what happened: mean absolute error (MAE) and mean bias "
        "(predicted − actual), in percentage points.",
    ),
    "intervals": ("时段数", "Intervals"),
    "mae_abandon_rate": ("放弃率 MAE", "MAE abandon rate"),
    "mae_service_level": ("服务水平 MAE", "MAE service level"),
    "bias_abandon_rate": ("放弃率偏差", "Bias abandon rate"),
    "bias_service_level": ("服务水平偏差", "Bias service level"),
    "no_staffing": (
        "本月没有可用于人力分析的排队来电。",
        "No queued calls this month to analyse staffing from.",
    ),
    "answered_calls": ("接通", "answered"),
    "abandoned_calls": ("放弃", "abandoned"),
    "page": ("第 {page} 页", "Page {page}"),
    # A printed sheet's footer, in Excel's header-and-footer codes: &P the page, &N the pages.
    "page_of": ("第 &P 页，共 &N 页", "Page &P of &N"),
    "generated": ("由 hotline-kpi 生成", "Generated by hotline-kpi"),
    "footer": (
        "{title} · 数据截至 {as_of} · 数据版本 {revision} · 由 hotline-kpi 生成",
        "{title} · data as of {as_of} · revision {revision} · generated by hotline-kpi",
    ),
    "empty": ("（无）", "(none)"),
    # Range reports (export --from --to --by): the title, how the range is cut, the tables.
    "range_title": (
        "{first} 至 {last} 客服热线 KPI 报表",
        "Hotline KPI report, {first} to {last}",
    ),
    "day_title": ("{first} 客服热线 KPI 日报", "Hotline KPI report, {first}"),
    "by_day": ("按日", "by day"),
    "by_hour": ("按小时", "by hour"),
    "by_interval": ("按 {minutes} 分钟时段", "by {minutes}-minute interval"),
    "queue_only": ("仅 {queue} 队列", "{queue} queue only"),
    "period": ("时段", "Period"),
    "periods": ("时段数", "Periods"),
    "range_value": ("本区间", "This range"),
    "start": ("开始", "Start"),
    "utc_offset": ("UTC 偏移", "UTC offset"),
    "periods_sheet": ("{scope}·{by}", "{scope} {by}"),
    "range_trend": (
        "各时段 KPI 趋势（虚线为目标）",
        "KPIs per period against their targets (dashed)",
    ),
    "range_queue_trend": ("各队列{kpis}（虚线为目标）", "{kpis} per queue (dashed: targets)"),
    "periods_table": ("各时段 KPI", "KPIs per period"),
    "calls_short": ("低于目标来电数", "Calls short of target"),
    "worst_periods": ("最差时段", "Worst periods"),
    "worst_hint": (
        "共 {total} 个时段，其中 {missed} 个未达{kpis}目标；本表列出最差的 {shown} 个"
        "（按低于目标的来电数排序）。全部时段见 XLSX、CSV 和 JSON。",
        "{missed} of the {total} periods missed the {kpis} target; this table shows the "
        "{shown} worst (by calls short of the target). Every period is in the XLSX, CSV and "
        "JSON.",
    ),
    "no_missed_periods": (
        "共 {total} 个时段，没有时段未达{kpis}目标。",
        "None of the {total} periods missed the {kpis} target.",
    ),
    "range_agents_hint": (
        "全部 {total} 名坐席的区间数字见 XLSX、CSV 和 JSON。",
        "The range's figures of all {total} agents are in the XLSX, CSV and JSON.",
    ),
    "range_no_data": (
        "该区间没有任何数据：没有来电、工单、质检或满意度调查归属于该区间。",
        "No data in this range: no call, work order, review or survey is attributed to it.",
    ),
}

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class Words:
    """The report's words in one language: ``words("title", year=2026)``, ``words.kpi(key)``."""

    def __init__(self, lang: str) -> None:
        if lang not in LANGS:
            raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
        self.lang = lang
        self._index = LANGS.index(lang)

    def __call__(self, key: str, **values: Any) -> str:
        """The text ``key`` in this language, with ``{placeholders}`` filled in."""
        return TEXT[key][self._index].format(**values)

    def _pick(self, table: dict[str, tuple[str, str]], name: str | None) -> str:
        if name is None:
            return self("empty")
        # A name the tables do not know is shown as it is, but never with control characters.
        return table[name][self._index] if name in table else clean_text(name)

    def kpi(self, key: str) -> str:
        """A KPI's name."""
        return self._pick(KPI_NAMES, key)

    def figure(self, key: str) -> str:
        """A column head: a KPI's name, or the word for a volume (``answered``)."""
        return self.kpi(key) if key in KPIS else self(key)

    def queue(self, name: str | None) -> str:
        """A queue's display name."""
        return self._pick(QUEUE_NAMES, name)

    def kind(self, name: str | None) -> str:
        """A work-order kind's display name."""
        return self._pick(TICKET_KINDS, name)

    def state(self, name: str) -> str:
        """An agent state's display name (SPEC §2 ``agent.state``)."""
        return self._pick(STATE_NAMES, name)

    def reason(self, table: str, name: str) -> str:
        """A blocked (``blocked_by_reason``) or left (``left_by_reason``) reason's name."""
        return self._pick(BLOCKED_REASONS if table == "blocked_by_reason" else LEFT_REASONS, name)

    def loss(self, volume: str, reason: str | None) -> str:
        """A row of the lost-call breakdown: a volume, or a blocked or left reason."""
        if reason is None:
            return self("abandoned_all" if volume == "abandoned" else volume)
        return f"{self(volume)} · {self.reason(volume, reason)}"

    def factor(self, name: str) -> str:
        """A survey factor's display name."""
        return self._pick(FACTOR_NAMES, name)

    def quadrant(self, name: str | None) -> str:
        """A quadrant's display name."""
        return self._pick(QUADRANT_NAMES, name)

    def weekday(self, iso: int) -> str:
        """An ISO weekday's (1 = Monday) short name."""
        return WEEKDAY_NAMES[iso - 1][self._index]

    def title(self, month: str) -> str:
        """The report title for ``YYYY-MM``."""
        year, number = (int(part) for part in month.split("-"))
        return self("title", year=year, month=number, month_name=MONTH_NAMES[number - 1])


def range_title(words: Words, report: Mapping[str, Any]) -> str:
    """The title of a range report: its days (or month), how it is cut, and its queue."""
    if report.get("month"):
        title = words.title(report["month"])
    elif report["from"] == report["to"]:
        title = words("day_title", first=report["from"])
    else:
        title = words("range_title", first=report["from"], last=report["to"])
    by = by_words(words, report)
    separator = "（" if words.lang == "zh" else " ("
    closing = "）" if words.lang == "zh" else ")"
    parts = [by]
    if report.get("queue"):
        parts.append(words("queue_only", queue=words.queue(report["queue"])))
    return title + separator + ("，" if words.lang == "zh" else ", ").join(parts) + closing


def kpi_list(words: Words, keys: tuple[str, ...]) -> str:
    """KPI names joined as a phrase: "人工接通率或服务水平", "manual connection rate or …"."""
    names = [words.kpi(key) for key in keys]
    if words.lang == "zh":
        return "或".join(names)
    return " or ".join(name[0].lower() + name[1:] for name in names)


def by_words(words: Words, report: Mapping[str, Any]) -> str:
    """How a range report's periods are cut: by day, by hour, by N-minute interval."""
    return words(f"by_{report['by']}", minutes=report.get("interval_minutes"))


def format_value(value: float | None, kind: str, lang: str = "zh") -> str:
    """A KPI value as shown in the HTML report: 91.69%, 04:27, 8.49; None as "no data"."""
    if value is None:
        return Words(lang)("none")
    if kind == "seconds":
        return format_duration(value)
    if kind == "score":
        return f"{value:.2f}"
    return f"{value * 100:.2f}%"


def format_as_of(as_of: str | None) -> str:
    """The report's ``as_of`` time as ``2026-11-01 00:05`` (local, minutes); "–" without data."""
    return "–" if as_of is None else as_of[:16].replace("T", " ")


def subtitle(words: Words, report: Mapping[str, Any]) -> str:
    """The line under every title: time zone, data time and the figures' revision."""
    return words(
        "subtitle",
        timezone=report["timezone"],
        as_of=format_as_of(report["as_of"]),
        revision=report.get("revision") or "–",
    )


def format_duration(seconds: float) -> str:
    """Seconds as mm:ss (h:mm:ss from an hour), rounded to the second."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_change(change: float | None, kind: str) -> str:
    """A month-over-month difference: percentage points, seconds or score points, signed."""
    if change is None:
        return "–"
    if kind == "seconds":
        return f"{change:+.1f} s"
    if kind == "score":
        return f"{change:+.2f}"
    return f"{change * 100:+.2f} pp"


def kpi_kind(key: str) -> str:
    """``ratio``, ``seconds`` or ``score``: the catalogue's unit of KPI ``key``."""
    return str(KPIS[key].unit) if key in KPIS else str(Unit.RATIO)


def figure_kind(key: str) -> str:
    """How a figure is shown: its KPI's unit (``ratio``, ``seconds``, ``score``), else ``int``."""
    return kpi_kind(key) if key in KPIS else "int"


def present(keys: tuple[str, ...], *scopes: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``keys`` that one of ``scopes`` (KPI dicts of the JSON) has, in the order of ``keys``:
    a scope lists only the KPIs reported in it (SPEC §5: the caller-key KPIs are overall only)."""
    return tuple(key for key in keys if any(key in scope for scope in scopes))


def loss_count(volumes: Mapping[str, Any], volume: str, reason: str | None) -> int:
    """One row's count of the lost-call breakdown (see :data:`LOSS_ROWS`); 0 when absent."""
    if reason is None:
        return int(volumes.get(volume, 0))
    return int(volumes.get(volume, {}).get(reason, 0))


def loss_src(volume: str, reason: str | None) -> str:
    """The JSON path, under a volumes dict, of a row of the lost-call breakdown."""
    return volume if reason is None else f"{volume}/{reason}"
