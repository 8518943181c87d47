"""The printable monthly report as one self-contained HTML page (charts inlined as PNG).

Laid out from the extended report dict only. Every number in a table cell carries
``data-src`` (its path in the JSON export, ``/``-separated; agents by id) and ``data-kind``
(how it is formatted), so that a test can check each printed figure against the JSON.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from html import escape
from importlib import resources
from string import Template
from typing import Any

from hotline_kpi.metrics.catalogue import KPI_KEYS, KPIS, Direction
from hotline_kpi.metrics.export import clean_text
from hotline_kpi.reports.charts import all_charts, all_range_charts
from hotline_kpi.reports.data import any_volume
from hotline_kpi.reports.labels import (
    AGENT_FIGURES,
    AGENT_STATE_KPIS,
    AGENT_STATES,
    CALL_TARGETS,
    LOSS_ROWS,
    PERIOD_KPIS,
    QUEUE_KPIS,
    SUMMARY_CARDS,
    TICKET_KPI,
    VOLUME_NAMES,
    Words,
    figure_kind,
    format_as_of,
    format_change,
    format_duration,
    format_value,
    kpi_kind,
    kpi_list,
    loss_count,
    loss_src,
    present,
    range_title,
)
from hotline_kpi.reports.labels import subtitle as report_subtitle

OVERDUE_SHOWN = 20
# The printed agent table: every agent up to AGENT_ROWS; beyond, the best BEST_SHOWN and the
# worst WORST_SHOWN ranked agents (the full list is in the XLSX, CSV and JSON).
AGENT_ROWS = 40
BEST_SHOWN = 10
WORST_SHOWN = 20


def _template(name: str) -> str:
    return resources.files("hotline_kpi.reports").joinpath("templates", name).read_text("utf-8")


def _format(value: float | int | None, kind: str, words: Words) -> str:
    if value is None:
        return words("none")
    if kind == "int":
        return f"{int(value):,}"
    if kind == "hours":
        return f"{value:,.1f}"
    if kind == "corr":
        return f"{value:.3f}"
    if kind == "pp":
        return f"{value * 100:.2f} pp"
    if kind.startswith("change-"):
        return format_change(value, kind.removeprefix("change-"))
    if kind == "seconds":
        return format_duration(value)
    return format_value(value, kind, words.lang)


def _num(value: float | int | None, kind: str, src: str, words: Words, extra: str = "") -> str:
    classes = "num none" if value is None else f"num {extra}".strip()
    return (
        f'<td class="{classes}" data-src="{escape(clean_text(src))}" data-kind="{kind}">'
        f"{escape(_format(value, kind, words))}</td>"
    )


def _text(value: str, cls: str = "name") -> str:
    # Names come from the data: no control characters in the page (nor in the PDF).
    return f'<td class="{cls}">{escape(clean_text(value))}</td>'


def _head(*names: str) -> str:
    return "<thead><tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr></thead>"


def _section(title: str, body: str, *, page: bool = False) -> str:
    """A titled part of the report; ``page`` starts it on a new printed page."""
    opening = '<section class="page">' if page else "<section>"
    return f"{opening}<h2>{escape(title)}</h2>{body}</section>"


def _hint(text: str) -> str:
    """A note in small print under a table or chart."""
    return f'<p class="hint">{escape(text)}</p>'


def _table(head: str, rows: list[str]) -> str:
    """A table of ``rows`` (``<tr>`` markup) under the header ``head`` (from :func:`_head`)."""
    return f"<table>{head}<tbody>{''.join(rows)}</tbody></table>"


def _status_cell(entry: Mapping[str, Any], words: Words) -> str:
    met = entry.get("met")
    if "target" not in entry:
        return '<td class="none"></td>'
    if met is None:
        return f'<td class="none">{escape(words("none"))}</td>'
    word = "met" if met else "missed"
    mark = "✔" if met else "✘"
    return f'<td class="{word}">{mark} {escape(words(word))}</td>'


def _trend_class(key: str, change: float | None) -> str:
    entry = KPIS[key]
    if change is None or change == 0 or entry.neutral:
        return ""
    return "down" if (change > 0) == entry.worse_when_up else "up"


def _img(charts: Mapping[str, bytes], name: str, caption: str, cls: str = "") -> str:
    if name not in charts:
        return ""
    data = base64.b64encode(charts[name]).decode("ascii")
    below = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure class="{cls}"><img alt="{escape(caption or name)}" '
        f'src="data:image/png;base64,{data}">{below}</figure>'
    )


def _cards(report: Mapping[str, Any], words: Words) -> str:
    """The summary cards (month and range): each headline KPI against its target."""
    cards = []
    for key in SUMMARY_CARDS:
        entry = report["overall"][key]
        state = {True: "met", False: "missed"}.get(entry["met"], "")
        kind = kpi_kind(key)
        target = format_value(entry["target"], kind, words.lang)
        relation = KPIS[key].direction.sign
        cards.append(
            f'<div class="card {state}"><div class="name">{escape(words.kpi(key))}</div>'
            f'<div class="big" data-src="overall/{key}/value" data-kind="{kind}">'
            f"{escape(format_value(entry['value'], kind, words.lang))}</div>"
            f'<div class="meta">{escape(words("target"))} {relation} {escape(target)} · '
            f"{escape(words(state) if state else words('none'))}</div></div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _overall_cells(report: Mapping[str, Any], key: str, words: Words) -> str:
    """The summary table's cells of one KPI (month and range): name, value, target, status,
    numerator and denominator; the month adds the previous month and the change."""
    entry = report["overall"][key]
    kind = kpi_kind(key)
    return (
        _text(words.kpi(key))
        + _num(entry["value"], kind, f"overall/{key}/value", words)
        + (
            _num(entry["target"], kind, f"overall/{key}/target", words)
            if "target" in entry
            else "<td></td>"
        )
        + _status_cell(entry, words)
        + _num(
            entry["numerator"],
            "hours" if kind == "seconds" else "int",
            f"overall/{key}/numerator",
            words,
        )
        + _num(entry["denominator"], "int", f"overall/{key}/denominator", words)
    )


def _volume_table(
    report: Mapping[str, Any], words: Words, extra: tuple[str, str] | None = None
) -> str:
    """The overall volumes (month and range) beside the lost-call breakdown (呼损构成): one
    row per volume, with last month's for a month; ``extra`` is one more row, (name, cell)."""
    volumes = report["volumes"]["overall"]
    earlier = report.get("previous", {}).get("volumes")
    value = words("value") if earlier is not None else words("range_value")

    def row(name: str, path: str, count: Any, before: Any) -> str:
        cells = _text(name) + _num(count, "int", f"volumes/overall/{path}", words)
        if earlier is not None:
            cells += _num(before, "int", f"previous/volumes/{path}", words)
        return f"<tr>{cells}</tr>"

    heads = [words("volumes"), value] + ([words("previous")] if earlier is not None else [])
    rows = [
        row(words(name), name, volumes.get(name, 0), (earlier or {}).get(name, 0))
        for name in VOLUME_NAMES
    ]
    if extra is not None:
        rows.append(f"<tr>{_text(extra[0])}{extra[1]}</tr>")
    losses = [
        row(
            words.loss(volume, reason),
            loss_src(volume, reason),
            loss_count(volumes, volume, reason),
            loss_count(earlier or {}, volume, reason),
        )
        for volume, reason in LOSS_ROWS
    ]
    loss_heads = [words("losses"), *heads[1:]]
    return (
        '<div class="pair tables">'
        + f"<div>{_table(_head(*heads), rows)}</div>"
        + f"<div>{_table(_head(*loss_heads), losses)}{_hint(words('loss_hint'))}</div>"
        + "</div>"
    )


def _page(
    report: Mapping[str, Any], words: Words, title: str, subtitle: str, parts: list[str]
) -> str:
    """The whole page (month and range) around its sections ``parts``."""
    footer = words(
        "footer",
        title=title,
        as_of=format_as_of(report["as_of"]),
        revision=report.get("revision") or "–",
    ).replace('"', "'")
    return Template(_template("report.html")).substitute(
        lang="zh-CN" if words.lang == "zh" else "en",
        title=escape(title),
        subtitle=escape(subtitle),
        css=_template("report.css"),
        footer=footer.replace("\\", ""),
        body="\n".join(parts),
    )


def _summary(report: Mapping[str, Any], words: Words) -> str:
    rows = []
    previous = report["previous"]["overall"]
    for key in present(KPI_KEYS, report["overall"]):
        entry = report["overall"][key]
        kind = kpi_kind(key)
        before = previous.get(key, {}).get("value")
        change = entry["value"] - before if None not in (entry["value"], before) else None
        rows.append(
            "<tr>"
            + _overall_cells(report, key, words)
            + _num(before, kind, f"previous/overall/{key}/value", words)
            + _num(change, f"change-{kind}", f"change/{key}", words, _trend_class(key, change))
            + "</tr>"
        )
    table = _table(
        _head(
            words("kpi"),
            words("value"),
            words("target"),
            words("status"),
            words("numerator"),
            words("denominator"),
            words("previous") + f" ({report['previous']['month']})",
            words("change"),
        ),
        rows,
    )
    volumes = ""
    # A table of zeros says nothing the "no data" line above it does not: it is left out when
    # neither this month nor the one before counted anything.
    if any_volume(report["volumes"]["overall"]) or any_volume(report["previous"]["volumes"]):
        volumes = f"<h3>{escape(words('volumes'))}</h3>{_volume_table(report, words)}"
    return _section(
        words("summary"), f"{_cards(report, words)}{table}{_hint(words('mom_hint'))}{volumes}"
    )


def _queues(report: Mapping[str, Any], words: Words) -> str:
    rows = []
    scopes = [(q, words.queue(q), f"queues/{q}", kpis) for q, kpis in report["queues"].items()]
    scopes.append(("", words("overall"), "overall", report["overall"]))
    keys = present(QUEUE_KPIS, *(kpis for *_, kpis in scopes))
    for queue, name, prefix, kpis in scopes:
        volumes = report["volumes"]["queues"][queue] if queue else report["volumes"]["overall"]
        volume_src = f"volumes/queues/{queue}/requests" if queue else "volumes/overall/requests"
        cells = [_text(name), _num(volumes["requests"], "int", volume_src, words)]
        for key in keys:
            if key not in kpis:
                cells.append("<td></td>")
                continue
            entry = kpis[key]
            state = {True: "met", False: "missed"}.get(entry.get("met"), "")
            cells.append(_num(entry["value"], kpi_kind(key), f"{prefix}/{key}/value", words, state))
        rows.append(f'<tr class="{"total" if not queue else ""}">' + "".join(cells) + "</tr>")
    table = _table(_head(words("queue"), words("requests"), *(words.kpi(k) for k in keys)), rows)
    return _section(words("queues"), table)


def _trend(words: Words, charts: Mapping[str, bytes]) -> str:
    return _section(
        words("daily"),
        _img(charts, "trend", words("charts_trend"))
        + f"<h3>{escape(words('charts_queues'))}</h3>"
        + _img(charts, "queues", ""),
        page=True,
    )


BACKTEST_FIGURES = (
    # (JSON key, how it is shown, label key)
    ("intervals", "int", "intervals"),
    ("calls", "int", "requests"),
    ("mae_abandon_rate", "pp", "mae_abandon_rate"),
    ("bias_abandon_rate", "change-ratio", "bias_abandon_rate"),
    ("mae_service_level", "pp", "mae_service_level"),
    ("bias_service_level", "change-ratio", "bias_service_level"),
)


def _staffing(report: Mapping[str, Any], words: Words, charts: Mapping[str, bytes]) -> str:
    staffing = report["staffing"]
    figures = "".join(
        _img(charts, f"staffing/{queue}", "", "heatmap") for queue in staffing["queues"]
    )
    if not staffing["queues"]:
        figures = _hint(words("no_staffing"))
    rows = []
    for index, summary in enumerate(staffing["backtest"]):
        rows.append(
            "<tr>"
            + _text(words.queue(summary["queue"]))
            + "".join(
                _num(summary[key], kind, f"staffing/backtest/{index}/{key}", words)
                for key, kind, _ in BACKTEST_FIGURES
            )
            + "</tr>"
        )
    backtest = (
        f"<h3>{escape(words('backtest'))}</h3>"
        + _table(_head(words("queue"), *(words(label) for _, _, label in BACKTEST_FIGURES)), rows)
        + _hint(words("backtest_hint"))
        if rows
        else ""
    )
    return _section(
        words("staffing"), _hint(words("staffing_hint")) + figures + backtest, page=True
    )


def _satisfaction(report: Mapping[str, Any], words: Words, charts: Mapping[str, bytes]) -> str:
    analysis = report["factors"]
    rows = []
    for index, item in enumerate(analysis["items"]):
        quadrant = item["quadrant"]
        pill = (
            f'<span class="pill {quadrant}">{escape(words.quadrant(quadrant))}</span>'
            if quadrant
            else escape(words("none"))
        )
        rows.append(
            "<tr>"
            + _text(words.factor(item["factor"]))
            + _num(item["responses"], "int", f"factors/items/{index}/responses", words)
            + _num(item["mean"], "score", f"factors/items/{index}/mean", words)
            + _num(item["importance"], "corr", f"factors/items/{index}/importance", words)
            + f"<td>{pill}</td></tr>"
        )
    if analysis["mean_importance"] is not None:
        rows.append(
            '<tr class="total">'
            + _text(words("overall"))
            + "<td></td>"
            + _num(analysis["mean_satisfaction"], "score", "factors/mean_satisfaction", words)
            + _num(analysis["mean_importance"], "corr", "factors/mean_importance", words)
            + "<td></td></tr>"
        )
    names = ("factor", "responses", "factor_mean", "importance", "quadrant")
    table = _table(_head(*map(words, names)), rows) if rows else _hint(words("no_factors"))
    return _section(
        words("waits_satisfaction"),
        '<div class="pair">'
        + _img(charts, "wait", words("charts_wait"))
        + _img(charts, "scores", words("charts_scores"))
        + "</div>"
        + f"<h3>{escape(words('charts_quadrant'))}</h3>"
        + _img(charts, "quadrant", "", "quadrant")
        + table
        + _hint(words("quadrant_hint")),
        page=True,
    )


def _shown_agents(ranking: Mapping[str, Any], total: int) -> list[tuple[int | None, str]]:
    """The agents the printed table lists, as (rank or None, agent id), in table order.

    All of them when there are at most :data:`AGENT_ROWS`; else the best :data:`BEST_SHOWN`
    and the worst :data:`WORST_SHOWN` ranked agents (the bottom performers are the worst), so
    that the page count and the rendering time do not grow with the number of agents. The full
    list is in the XLSX, CSV and JSON.
    """
    ranked = list(ranking["order"])
    if total <= AGENT_ROWS:
        shown: list[tuple[int | None, str]] = [(i + 1, a) for i, a in enumerate(ranked)]
        return shown + [(None, agent) for agent in ranking["unranked"]]
    if len(ranked) <= BEST_SHOWN + WORST_SHOWN:
        return [(index + 1, agent) for index, agent in enumerate(ranked)]
    worst = len(ranked) - WORST_SHOWN
    best = [(index + 1, agent) for index, agent in enumerate(ranked[:BEST_SHOWN])]
    return best + [(worst + index + 1, agent) for index, agent in enumerate(ranked[worst:])]


def _agents(report: Mapping[str, Any], words: Words) -> str:
    ranking = report["agent_ranking"]
    agents = report["agents"]
    shown = _shown_agents(ranking, len(agents))
    wanted = {agent_id for _, agent_id in shown}
    by_id = {agent["agent_id"]: agent for agent in agents if agent["agent_id"] in wanted}
    bottom = set(ranking["bottom"])
    rows = []
    previous_rank = 0
    for rank, agent_id in shown:
        if rank is not None and rank > previous_rank + 1:
            gap = words(
                "agents_gap", first=previous_rank + 1, last=rank - 1, n=rank - 1 - previous_rank
            )
            rows.append(
                f'<tr class="gap"><td colspan="{len(AGENT_FIGURES) + 3}">{escape(gap)}</td></tr>'
            )
        previous_rank = rank or previous_rank
        agent = by_id[agent_id]
        note = words("bottom") if agent_id in bottom else ("" if rank else words("unranked"))
        cells = [f'<td class="num">{rank or "–"}</td>', _text(agent_id)]
        cells += [
            _num(agent[key], figure_kind(key), f"agents/{agent_id}/{key}", words)
            for key in AGENT_FIGURES
        ]
        cells.append(_text(note))
        rows.append(
            f'<tr class="{"bottom" if agent_id in bottom else ""}">' + "".join(cells) + "</tr>"
        )
    labels = [words.figure(key) for key in AGENT_FIGURES]
    table = _table(_head(words("rank"), words("agent"), *labels, words("note")), rows)
    more = ""
    if len(shown) < len(agents):
        ranked = len(ranking["order"])
        counts = {"total": f"{len(agents):,}", "unranked": f"{len(ranking['unranked']):,}"}
        if ranked > BEST_SHOWN + WORST_SHOWN:
            more = words("agents_shown", best=BEST_SHOWN, worst=WORST_SHOWN, **counts)
        else:
            more = words("agents_ranked_shown", ranked=ranked, **counts)
        more = _hint(more)
    if not rows:
        table = ""  # nobody to rank: the line above says where the agents are
    hint = _hint(words("bottom_hint", min=ranking["min_surveys"]))
    states = _agent_states([by_id[agent_id] for _, agent_id in shown], words)
    return _section(words("agents"), hint + more + table, page=True) + states


def _agent_states(agents: list[Mapping[str, Any]], words: Words) -> str:
    """The state-time table of ``agents`` (month and range; those the agent table lists):
    time logged in, each state's time, occupancy, utilisation, not-ready share, and the
    not-ready time by reason."""
    if not agents:
        return ""
    rows = []
    for agent in agents:
        agent_id = agent["agent_id"]
        src = f"agents/{agent_id}"
        states = agent.get("state_seconds", {})
        cells = [_text(agent_id)]
        cells.append(
            _num(agent.get("logged_in_seconds"), "seconds", f"{src}/logged_in_seconds", words)
        )
        cells += [
            _num(states.get(state), "seconds", f"{src}/state_seconds/{state}", words)
            for state in AGENT_STATES
        ]
        cells += [
            _num((agent.get(key) or {}).get("value"), "ratio", f"{src}/{key}/value", words)
            for key in AGENT_STATE_KPIS
        ]
        reasons = sorted(agent.get("not_ready_reasons", {}).items(), key=lambda r: (-r[1], r[0]))
        text = "; ".join(f"{reason or '–'} {format_duration(sec)}" for reason, sec in reasons)
        cells.append(f'<td class="reasons">{escape(clean_text(text))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = _head(
        words("agent"),
        words("logged_in_seconds"),
        *(words.state(state) for state in AGENT_STATES),
        *(words.kpi(key) for key in AGENT_STATE_KPIS),
        words("not_ready_reasons"),
    )
    # Not a page of its own: it follows the agent table, which is often short.
    return _section(words("agent_states"), _table(head, rows) + _hint(words("states_hint")))


def _ticket_kinds(report: Mapping[str, Any], words: Words, value: str) -> str:
    """Work-order timeliness by kind and overall (month and range); ``value`` is the word
    heading the value column."""
    rows = []
    kinds = [(k, words.kind(k), f"ticket_kinds/{k}", e) for k, e in report["ticket_kinds"].items()]
    overall = report["overall"][TICKET_KPI]
    kinds.append(("", words("overall"), f"overall/{TICKET_KPI}", overall))
    for kind, name, src, entry in kinds:
        state = {True: "met", False: "missed"}.get(entry.get("met"), "")
        rows.append(
            f'<tr class="{"" if kind else "total"}">'
            + _text(name)
            + _num(entry["denominator"], "int", f"{src}/denominator", words)
            + _num(entry["numerator"], "int", f"{src}/numerator", words)
            + _num(entry["value"], kpi_kind(TICKET_KPI), f"{src}/value", words, state)
            + _status_cell(entry, words)
            + "</tr>"
        )
    names = ("kind", "tickets_due", "on_time", value, "status")
    return _table(_head(*map(words, names)), rows)


def _tickets(report: Mapping[str, Any], words: Words) -> str:
    kinds_table = _ticket_kinds(report, words, "value")
    overdue = report["overdue_tickets"]
    shown = overdue[:OVERDUE_SHOWN]
    lines = []
    for index, ticket in enumerate(shown):
        lines.append(
            "<tr>"
            + _text(ticket["ticket_id"])
            + _text(words.kind(ticket["kind"]))
            + _text(words.queue(ticket["queue"]))
            + _text((ticket["due"] or "")[:16].replace("T", " "))
            + _text((ticket["closed_at"] or "–")[:16].replace("T", " "))
            + _text(words(ticket["status"]), "missed" if ticket["status"] == "open" else "")
            + _num(
                ticket["overdue_hours"], "hours", f"overdue_tickets/{index}/overdue_hours", words
            )
            + "</tr>"
        )
    columns = ("ticket_id", "kind", "queue", "due", "closed_at", "state", "overdue_hours")
    overdue_table = (
        _table(_head(*map(words, columns)), lines) if lines else _hint(words("no_overdue"))
    )
    more = (
        _hint(words("overdue_more", n=len(overdue) - len(shown)))
        if len(overdue) > len(shown)
        else ""
    )
    return _section(
        words("tickets"),
        f"{kinds_table}<h3>{escape(words('overdue'))} ({len(overdue)})</h3>{overdue_table}{more}",
    )


def render_html(
    report: Mapping[str, Any], lang: str = "zh", charts: Mapping[str, bytes] | None = None
) -> str:
    """The report page for the extended report dict; ``charts`` are drawn when not given."""
    words = Words(lang)
    if charts is None:
        charts = all_charts(report, words)
    title = words.title(report["month"])
    subtitle = report_subtitle(words, report)
    parts = []
    if not report.get("has_data"):
        parts.append(f'<p class="no-data">{escape(words("no_data"))}</p>')
    parts.append(_summary(report, words))
    if report.get("has_data"):
        parts.append(_queues(report, words))
        parts.append(_trend(words, charts))
        parts.append(_satisfaction(report, words, charts))
        parts.append(_staffing(report, words, charts))
        parts.append(_agents(report, words))
        parts.append(_tickets(report, words))
    return _page(report, words, title, subtitle, parts)


# Range reports (``export --from --to --by``). A range has as many periods as it likes (a month
# by the quarter hour is 2,976): the charts draw them all, the table lists every period only up
# to PERIOD_ROWS, else the WORST_PERIODS worst by the call targets. The full list is in the
# XLSX, CSV and JSON.
PERIOD_ROWS = 31
WORST_PERIODS = 20


def calls_short(kpis: Mapping[str, Any]) -> float:
    """How many calls a scope's period is short of its call targets (the worst of them).

    For a KPI that must stay at or above its target, target × denominator − numerator; for one
    that must stay below, numerator − target × denominator; 0 when every target is met or a
    KPI has no data.
    """
    short = 0.0
    for key in CALL_TARGETS:
        entry = kpis[key]
        if entry.get("target") is None or entry["value"] is None or entry.get("met") is not False:
            continue
        gap = entry["target"] * entry["denominator"] - entry["numerator"]
        short = max(short, -gap if KPIS[key].direction is Direction.BELOW else gap)
    return short


def worst_periods(report: Mapping[str, Any], count: int = WORST_PERIODS) -> list[int]:
    """The indexes of the ``count`` periods furthest below the call targets, worst first.

    Ranked by :func:`calls_short` (a quarter hour of one unanswered call is not the worst of a
    month), then by time; periods that met their targets are never listed.
    """
    shortfalls = [
        (calls_short(period["overall"]), index) for index, period in enumerate(report["periods"])
    ]
    ranked = sorted((item for item in shortfalls if item[0] > 0), key=lambda s: (-s[0], s[1]))
    return [index for _, index in ranked[:count]]


def _period_label(period: Mapping[str, Any], by: str, offsets: bool) -> str:
    start, end = period["start"], period["end"]
    label = start[:10] if by == "day" else f"{start[:10]} {start[11:16]}–{end[11:16]}"
    return f"{label} ({start[19:]})" if offsets else label


def _range_summary(report: Mapping[str, Any], words: Words) -> str:
    keys = present(KPI_KEYS, report["overall"])
    rows = ["<tr>" + _overall_cells(report, key, words) + "</tr>" for key in keys]
    names = ("kpi", "range_value", "target", "status", "numerator", "denominator")
    table = _table(_head(*map(words, names)), rows)
    periods = (words("periods"), f'<td class="num">{len(report["periods"]):,}</td>')
    return _section(
        words("summary"),
        f"{_cards(report, words)}{table}"
        f"<h3>{escape(words('volumes'))}</h3>{_volume_table(report, words, periods)}",
    )


def _range_trend(report: Mapping[str, Any], words: Words, charts: Mapping[str, bytes]) -> str:
    queues = kpi_list(words, CALL_TARGETS)
    return _section(
        words("range_trend"),
        _img(charts, "range_trend", "")
        + (
            f"<h3>{escape(words('range_queue_trend', kpis=queues))}</h3>"
            + _img(charts, "range_queues", "")
            if "range_queues" in charts
            else ""
        ),
        page=True,
    )


def _periods(report: Mapping[str, Any], words: Words) -> str:
    """Every period when there are few; else the worst, and where the others are."""
    periods = report["periods"]
    everything = len(periods) <= PERIOD_ROWS
    shown = list(range(len(periods))) if everything else worst_periods(report)
    offsets = len({period["start"][19:] for period in periods}) > 1
    rows = []
    for index in shown:
        period = periods[index]
        kpis = period["overall"]
        volumes = period["volumes"]["overall"]
        cells = [_text(_period_label(period, report["by"], offsets))]
        cells.append(
            _num(volumes["requests"], "int", f"periods/{index}/volumes/overall/requests", words)
        )
        for key in PERIOD_KPIS:
            entry = kpis[key]
            state = {True: "met", False: "missed"}.get(entry.get("met"), "")
            src = f"periods/{index}/overall/{key}/value"
            cells.append(_num(entry["value"], kpi_kind(key), src, words, state))
        cells.append(f'<td class="num">{calls_short(kpis):,.1f}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = _head(
        words("period"),
        words("requests"),
        *(words.kpi(key) for key in PERIOD_KPIS),
        words("calls_short"),
    )
    kpis = kpi_list(words, CALL_TARGETS)
    if everything:
        return _section(words("periods_table"), _table(head, rows))
    missed = sum(1 for period in periods if calls_short(period["overall"]) > 0)
    if not rows:
        return _section(
            words("worst_periods"),
            _hint(words("no_missed_periods", total=f"{len(periods):,}", kpis=kpis)),
        )
    hint = words(
        "worst_hint", total=f"{len(periods):,}", missed=f"{missed:,}", shown=len(rows), kpis=kpis
    )
    return _section(words("worst_periods"), _hint(hint) + _table(head, rows))


def _range_tickets(report: Mapping[str, Any], words: Words) -> str:
    return _section(words("tickets"), _ticket_kinds(report, words, "range_value"))


def _range_agents(report: Mapping[str, Any], words: Words) -> str:
    agents = report["agents"]
    if len(agents) > AGENT_ROWS:
        return _section(
            words("agents"), _hint(words("range_agents_hint", total=f"{len(agents):,}"))
        )
    rows = []
    for agent in sorted(agents, key=lambda a: str(a["agent_id"])):
        cells = [_text(agent["agent_id"])]
        cells += [
            _num(agent[key], figure_kind(key), f"agents/{agent['agent_id']}/{key}", words)
            for key in AGENT_FIGURES
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    labels = [words.figure(key) for key in AGENT_FIGURES]
    states = _agent_states(sorted(agents, key=lambda a: str(a["agent_id"])), words)
    return _section(words("agents"), _table(_head(words("agent"), *labels), rows)) + states


def render_range_html(
    report: Mapping[str, Any], lang: str = "zh", charts: Mapping[str, bytes] | None = None
) -> str:
    """The report page of a range (``export --from --to [--by] [--queue]``), from its JSON
    (:meth:`~hotline_kpi.metrics.export.KpiFigures.range_report`); ``charts`` are drawn when
    not given (:func:`~hotline_kpi.reports.charts.all_range_charts`). Its size is bounded
    whatever the number of periods: see :data:`PERIOD_ROWS` and :data:`WORST_PERIODS`."""
    words = Words(lang)
    if charts is None:
        charts = all_range_charts(report, words)
    title = range_title(words, report)
    has_data = any_volume(report["volumes"]["overall"])
    parts = []
    if not has_data:
        parts.append(f'<p class="no-data">{escape(words("range_no_data"))}</p>')
    parts.append(_range_summary(report, words))
    if has_data:
        parts.append(_queues(report, words))
        parts.append(_range_trend(report, words, charts))
        parts.append(_periods(report, words))
        parts.append(_range_tickets(report, words))
        parts.append(_range_agents(report, words))
    return _page(report, words, title, report_subtitle(words, report), parts)
