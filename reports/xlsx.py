"""The monthly report as an XLSX workbook (openpyxl), laid out from the extended report dict.

Sheets: summary (every KPI against its target, met/missed, last month and the change), queues,
agents (ranked, bottom performers highlighted), daily trend, work-order timeliness by kind,
overdue work orders, satisfaction (score distribution and factor quadrants), staffing shortfall
(weekday × hour per queue, and the model's backtest), notes. Every sheet
has its title in row 1, a subtitle in row 2 and its header in :data:`HEADER_ROW`, frozen.
Values are the JSON numbers themselves: ratios with a percent format, durations as Excel times
(seconds / 86400) shown as mm:ss, scores with two decimals. Derived shares are formulas.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import copy
from datetime import datetime
from functools import partial
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.chart import LineChart, Reference
from openpyxl.formatting.rule import ColorScaleRule, FormulaRule
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.properties import PageSetupProperties

from hotline_kpi.metrics.catalogue import KPI_KEYS, Direction, kpi
from hotline_kpi.metrics.export import clean_text, looks_like_formula
from hotline_kpi.reports.data import any_volume
from hotline_kpi.reports.labels import (
    AGENT_FIGURES,
    AGENT_JUDGED,
    AGENT_STATE_KPIS,
    AGENT_STATES,
    CALL_KPIS,
    CALL_TARGETS,
    HEADLINE,
    LOSS_ROWS,
    TICKET_KPI,
    VOLUME_NAMES,
    Words,
    by_words,
    figure_kind,
    format_duration,
    kpi_kind,
    loss_count,
    present,
    range_title,
)
from hotline_kpi.reports.labels import subtitle as report_subtitle

HEADER_ROW = 4
SECONDS_PER_DAY = 86400

PERCENT = "0.00%"
DURATION = "[mm]:ss"
HOURS = "[h]:mm:ss"  # an agent's time in a state over a month runs to hundreds of hours
SCORE = "0.00"
INTEGER = "#,##0"
DECIMAL = "#,##0.0"
DATETIME = "yyyy-mm-dd hh:mm"
CHANGE = {"ratio": '+0.00" pp";-0.00" pp";0.00" pp"', "seconds": '+0.0" s";-0.0" s";0.0" s"'}
CHANGE["score"] = "+0.00;-0.00;0.00"

NAVY = "1F4E79"
HEADER_FILL = PatternFill("solid", fgColor=NAVY)
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=14, color=NAVY)
SUBTITLE_FONT = Font(italic=True, size=9, color="5D6D7E")
GREEN_FILL = PatternFill("solid", fgColor="D5F5E3")
RED_FILL = PatternFill("solid", fgColor="FADBD8")
GREY_FILL = PatternFill("solid", fgColor="EAECEE")
BOTTOM_FILL = PatternFill("solid", fgColor="F5B7B1")
TOTAL_FONT = Font(bold=True)
THIN = Side(style="thin", color="D5D8DC")
ROW_BORDER = Border(bottom=THIN)

# Print set-up. A4 (paper size 9), margins in inches. A sheet wider than what fits a portrait
# page at 100% is printed landscape; every sheet is scaled to one page wide (and as many pages
# tall as it takes), with its header row repeated on each page.
A4 = "9"
PORTRAIT_WIDTH = 95.0  # column-width units (digits of the default font) across a portrait A4
DEFAULT_WIDTH = 8.43  # Excel's width of a column nobody sized
MARGINS = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.7, header=0.2, footer=0.3)
FOOTER_SIZE = 8
# Heights in points: a line of the 11-pt default font, and of the 9-pt notes under the tables.
LINE_HEIGHT = 15.0
NOTE_LINE_HEIGHT = 12.0


_FORMATS = {"int": INTEGER, "seconds": DURATION, "score": SCORE, "ratio": PERCENT}


def _number_format(key: str) -> str:
    """The cell format of figure ``key``: a KPI's by its unit, a volume's as an integer."""
    return _FORMATS[figure_kind(key)]


def _cell_value(key: str, value: float | None) -> float | None:
    """A KPI value as stored in the sheet: durations become Excel times."""
    if value is None:
        return None
    return value / SECONDS_PER_DAY if kpi_kind(key) == "seconds" else value


def _change(key: str, now: float | None, before: float | None) -> float | None:
    if now is None or before is None:
        return None
    change = now - before
    # Percentage points are shown as plain numbers with a "pp" suffix.
    return change * 100 if kpi_kind(key) == "ratio" else change


def text_width(text: str, size: float = 11) -> float:
    """About how wide ``text`` is in column-width units (a digit of the 11-pt default font).

    Chinese characters are about two digits wide; Latin letters and digits are counted a bit
    wider than a digit, so that bold headers are not underestimated.
    """
    units = sum(2.0 if unicodedata.east_asian_width(ch) in "WF" else 1.1 for ch in text)
    return units * size / 11


# What a wrapped cell breaks between: each Chinese character, or a run of other characters
# with the spaces after it.
_WRAP_TOKENS = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff]+\s*|\s+")


def wrapped_lines(text: str, width: float, size: float = 11) -> int:
    """The lines ``text`` takes wrapped in a column (or merged cells) ``width`` units wide."""
    room = max(width - 1.0, 1.0)  # the cell's padding
    lines = 0
    for paragraph in text.split("\n"):
        lines += 1
        used = 0.0
        for token in _WRAP_TOKENS.findall(paragraph):
            wide = text_width(token.rstrip(), size)
            if used and used + wide > room:
                lines += 1
                used = 0.0
            if wide > room:  # a word longer than the line is broken inside
                lines += math.ceil(wide / room) - 1
                used = wide % room
            else:
                used += text_width(token, size)
    return lines


# A column sized to its longest text is never wider than this: longer text wraps.
MAX_WIDTH = 40.0


def _fitting(width: float, texts: Iterable[str]) -> float:
    """``width``, or wider if one of ``texts`` needs it (up to :data:`MAX_WIDTH`)."""
    widest = max((text_width(text) for text in texts), default=0.0)
    return min(max(width, widest + 1.5), MAX_WIDTH)


def _footer_text(text: str) -> str:
    # "&" starts a code in Excel's header and footer language: a literal one is doubled.
    return text.replace("&", "&&")


class _Sheet:
    """One sheet of a write-only workbook: cells collected per row, streamed out in row order.

    The workbook is written in openpyxl's write-only mode, so that a month of 100,000 agents is
    streamed row by row instead of held as a million cell objects. A sheet keeps its rows until
    :meth:`flush` (or :meth:`close`) writes them; column widths, frozen panes and row heights
    must be set before the first row is written. Text goes through :func:`_text_cell`.

    Every sheet prints: one page wide (landscape when wider than a portrait page), the header
    row in :data:`HEADER_ROW` repeated on each page, and a footer with the report's title, the
    sheet's name and "page P of N". Header rows are as tall as their wrapped text.
    """

    def __init__(
        self, book: Workbook, title: str, heading: str, subtitle: str, page_of: str = ""
    ) -> None:
        self.ws: Any = book.create_sheet(title)
        self.pending: dict[int, dict[int, WriteOnlyCell]] = {}
        self.styles: dict[tuple[str | None, bool], Any] = {}
        self.widths: dict[int, float] = {}
        self.written = 0  # rows already streamed out
        self.put(1, 1, heading, border=False).font = TITLE_FONT
        self.put(2, 1, subtitle, border=False).font = SUBTITLE_FONT
        self.row = HEADER_ROW
        self._print_setup(heading, page_of)

    def _print_setup(self, heading: str, page_of: str) -> None:
        ws = self.ws
        # Part of the sheet's properties, which open the sheet's XML: set before any row.
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        ws.page_setup.paperSize = A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0  # as many pages tall as it takes
        ws.page_margins = copy(MARGINS)
        ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
        for part, text in (
            (ws.oddFooter.left, _footer_text(heading)),
            (ws.oddFooter.center, "&A"),  # the sheet's name
            (ws.oddFooter.right, page_of),
        ):
            part.text = text
            part.size = FOOTER_SIZE

    def header(self, names: Sequence[str], widths: Sequence[float], column: int = 1) -> None:
        """The column heads ``names`` in :attr:`row` from ``column`` on, and the columns' widths.

        The row is made as tall as the most wrapped head (never lower than two lines).
        """
        lines = 2
        for offset, (name, width) in enumerate(zip(names, widths, strict=True)):
            cell = self.put(self.row, column + offset, name, border=False)
            cell.fill = HEADER_FILL
            cell.font = HEADER_FONT
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            letter = get_column_letter(column + offset)
            self.ws.column_dimensions[letter].width = width
            self.widths[column + offset] = width
            lines = max(lines, wrapped_lines(name, width))
        self.ws.row_dimensions[self.row].height = lines * LINE_HEIGHT

    def note(self, row: int, column: int, text: str) -> WriteOnlyCell:
        """A note in small print under (or over) a table: merged from ``column`` to the sheet's
        last sized column and wrapped there, so that it prints within the page's width."""
        cell = self.put(row, column, text, border=False)
        cell.font = SUBTITLE_FONT
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        last = max(self.widths, default=column)
        if last > column:
            self.ws.merged_cells.add(
                f"{get_column_letter(column)}{row}:{get_column_letter(last)}{row}"
            )
        width = sum(self.widths.get(c, DEFAULT_WIDTH) for c in range(column, last + 1))
        lines = wrapped_lines(text, width, size=SUBTITLE_FONT.size or 9)
        if lines > 1:
            self.ws.row_dimensions[row].height = lines * NOTE_LINE_HEIGHT + 2
        return cell

    def width(self) -> float:
        """The sheet's width in column-width units, over the columns that hold cells."""
        used = max(self.widths, default=1)
        return sum(self.widths.get(c, DEFAULT_WIDTH) for c in range(1, used + 1))

    def put(
        self,
        row: int,
        column: int,
        value: Any,
        number_format: str | None = None,
        *,
        border: bool = True,
    ) -> WriteOnlyCell:
        """A cell with ``value``: numbers as numbers, every string as text (never a formula)."""
        if isinstance(value, str):
            cell = _text_cell(self.ws, value)
        else:
            cell = WriteOnlyCell(self.ws, value=value)
        # Assigning a style looks it up by hashing the style objects, about a third of the time
        # of a 100,000-agent workbook: each (format, border) pair is looked up once per sheet.
        key = (number_format, border)
        style = self.styles.get(key)
        if style is None:
            if number_format:
                cell.number_format = number_format
            if border:
                cell.border = ROW_BORDER
            self.styles[key] = copy(cell._style)
        else:
            cell._style = copy(style)
        return self._cell(row, column, cell)

    def formula(self, row: int, column: int, formula: str, number_format: str) -> WriteOnlyCell:
        """A cell holding one of the workbook's own formulas (never text from the data)."""
        cell = WriteOnlyCell(self.ws, value=formula)
        cell.number_format = number_format
        cell.border = ROW_BORDER
        return self._cell(row, column, cell)

    def _cell(self, row: int, column: int, cell: WriteOnlyCell) -> WriteOnlyCell:
        if row <= self.written:
            raise ValueError(f"sheet {self.ws.title!r}: row {row} was already written")
        self.pending.setdefault(row, {})[column] = cell
        return cell

    def at(self, row: int, column: int) -> WriteOnlyCell | None:
        """The cell put at (row, column) and not yet written, if any."""
        return self.pending.get(row, {}).get(column)

    def cells(self, row: int) -> list[WriteOnlyCell]:
        """The cells put in ``row`` and not yet written."""
        return list(self.pending.get(row, {}).values())

    def freeze(self, cell: str) -> None:
        if self.written:
            raise ValueError(f"sheet {self.ws.title!r}: freeze panes before writing rows")
        self.ws.freeze_panes = cell

    def flush(self, through: int) -> None:
        """Write every row up to and including ``through``; later puts must be below it."""
        for number in range(self.written + 1, through + 1):
            cells = self.pending.pop(number, {})
            width = max(cells, default=0)
            self.ws.append([cells.get(column) for column in range(1, width + 1)])
        self.written = max(self.written, through)

    def close(self) -> None:
        """Write the remaining rows; a sheet wider than a portrait page prints landscape."""
        self.flush(max(self.pending, default=self.written))
        wide = self.width() > PORTRAIT_WIDTH
        self.ws.page_setup.orientation = "landscape" if wide else "portrait"


def _text_cell(ws: Any, value: str) -> WriteOnlyCell:
    """A text cell: unprintable characters replaced, and typed as a string explicitly.

    openpyxl would store a string starting with ``=`` as a formula (and ``#N/A`` as an error):
    a queue or agent named ``=HYPERLINK(…)`` would become a live link in the manager's
    spreadsheet. Such text is also marked with Excel's quote prefix, so that editing the cell
    keeps it text.
    """
    text = clean_text(value)
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"
    if looks_like_formula(text) or text in ERROR_CODES:
        cell.quotePrefix = True
    return cell


def _target_rules(ws: Any, column: int, first: int, last: int, key: str, target: float) -> None:
    """Green when a target KPI is met, red when missed; blank (no data) stays plain."""
    if last < first:
        return
    letter = get_column_letter(column)
    span = f"{letter}{first}:{letter}{last}"
    cell = f"{letter}{first}"
    below = kpi(key).direction is Direction.BELOW
    missed = f"{cell}>={target}" if below else f"{cell}<{target}"
    met_formula = f"{cell}<{target}" if below else f"{cell}>={target}"
    ws.conditional_formatting.add(
        span, FormulaRule(formula=[f"AND(ISNUMBER({cell}),{missed})"], fill=RED_FILL)
    )
    ws.conditional_formatting.add(
        span, FormulaRule(formula=[f"AND(ISNUMBER({cell}),{met_formula})"], fill=GREEN_FILL)
    )


def _colour_scale(
    ws: Any, span: str, low: str, mid: str, high: str, *, middle: tuple[str, float]
) -> None:
    """A three-colour scale over ``span``: ``low`` at the minimum, ``high`` at the maximum and
    ``mid`` at ``middle`` (``("percentile", 50)`` or ``("num", 0)``)."""
    ws.conditional_formatting.add(
        span,
        ColorScaleRule(
            start_type="min",
            start_color=low,
            mid_type=middle[0],
            mid_value=middle[1],
            mid_color=mid,
            end_type="max",
            end_color=high,
        ),
    )


def _status(words: Words, met: bool | None) -> tuple[str, PatternFill]:
    if met is None:
        return words("none"), GREY_FILL
    return ("✔ " + words("met"), GREEN_FILL) if met else ("✘ " + words("missed"), RED_FILL)


def write_xlsx(report: Mapping[str, Any], lang: str = "zh") -> bytes:
    """The workbook's bytes for the extended report dict (see :mod:`hotline_kpi.reports.data`)."""
    words = Words(lang)
    book = Workbook(write_only=True)
    heading = words.title(report["month"])
    subtitle = report_subtitle(words, report)
    sheets = [(words(title), fill, frozen) for title, fill, frozen in _SHEETS]
    return _workbook(book, sheets, heading, subtitle, report, words)


_Fill = Callable[[_Sheet, Mapping[str, Any], Words], None]


def _workbook(
    book: Workbook,
    sheets: Iterable[tuple[str, _Fill, str]],
    heading: str,
    subtitle: str,
    report: Mapping[str, Any],
    words: Words,
) -> bytes:
    """The bytes of ``book`` with ``sheets`` (month and range): (sheet name, what fills it,
    first column not frozen: the header row always is)."""
    for title, fill, frozen in sheets:
        sheet = _Sheet(book, title, heading, subtitle, words("page_of"))
        if frozen:
            # Before the first row: a sheet may stream its rows out as it fills them.
            sheet.freeze(f"{frozen}{HEADER_ROW + 1}")
        fill(sheet, report, words)
        sheet.close()
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# The volumes of the summary sheets (month and range), in order.
VOLUMES = VOLUME_NAMES


def _overall_row(
    sheet: _Sheet,
    row: int,
    key: str,
    entry: Mapping[str, Any],
    words: Words,
    *,
    colour_value: bool = False,
) -> None:
    """Columns 1-6 of the summary sheet's row of KPI ``key`` (month and range): name, value,
    target, status, numerator, denominator. ``colour_value``: the value is green or red as
    its status is (the month's sheet)."""
    fmt = _number_format(key)
    sheet.put(row, 1, words.kpi(key)).font = TOTAL_FONT
    sheet.put(row, 2, _cell_value(key, entry["value"]), fmt)
    if "target" in entry:
        sheet.put(row, 3, _cell_value(key, entry["target"]), fmt)
        text, fill = _status(words, entry["met"])
        sheet.put(row, 4, text).fill = fill
        value_cell = sheet.at(row, 2)
        if colour_value and value_cell is not None and entry["met"] is not None:
            value_cell.fill = fill
    else:
        sheet.put(row, 3, None)
        sheet.put(row, 4, None)
    # Seconds (of waits, of agent state time) to a tenth; counts as integers.
    entry_kpi = kpi(key)
    sheet.put(row, 5, entry["numerator"], DECIMAL if entry_kpi.scale != 1 else INTEGER)
    sheet.put(
        row, 6, entry["denominator"], DECIMAL if entry_kpi.denominator_scale != 1 else INTEGER
    )


def _summary(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    if not report.get("has_data"):
        sheet.put(3, 1, words("no_data"), border=False).font = Font(bold=True, color="C0392B")
    names = ("kpi", "value", "target", "status", "numerator", "denominator", "previous", "change")
    sheet.header([words(n) for n in names], (24, 13, 11, 13, 15, 13, 13, 13))
    previous = report["previous"]["overall"]
    row = HEADER_ROW
    for key in present(KPI_KEYS, report["overall"]):
        row += 1
        entry = report["overall"][key]
        _overall_row(sheet, row, key, entry, words, colour_value=True)
        before = previous.get(key, {}).get("value")
        sheet.put(row, 7, _cell_value(key, before), _number_format(key))
        sheet.put(row, 8, _change(key, entry["value"], before), CHANGE[kpi_kind(key)])
    # Volumes: this month and last month.
    row += 2
    volumes, earlier = report["volumes"]["overall"], report["previous"]["volumes"]
    sheet.row = row
    sheet.header([words("volumes"), words("value"), words("previous")], (24, 13, 11))
    for name in VOLUMES:
        row += 1
        sheet.put(row, 1, words(name))
        sheet.put(row, 2, volumes.get(name, 0), INTEGER)
        sheet.put(row, 3, earlier.get(name, 0), INTEGER)
    row = _losses(sheet, row + 2, volumes, earlier, words)
    sheet.note(row + 2, 1, words("mom_hint"))


def _losses(
    sheet: _Sheet,
    row: int,
    volumes: Mapping[str, Any],
    earlier: Mapping[str, Any] | None,
    words: Words,
    value: str = "value",
) -> int:
    """The lost-call breakdown (呼损构成) from ``row`` on (month and range): short abandons,
    abandons, blocked and left calls by reason, each with its share of the agent requests (a
    formula over the request count beside it) and, for a month, last month's count. Returns
    the table's last row."""
    sheet.row = row
    heads = [words("losses"), words(value), words("share_of_requests")]
    widths: list[float] = [24, 13, 11]
    if earlier is not None:
        heads.append(words("previous"))
        widths.append(13)
    sheet.header(heads, widths)
    row += 1
    sheet.put(row, 1, words("requests")).font = TOTAL_FONT
    sheet.put(row, 2, volumes.get("requests", 0), INTEGER)
    sheet.put(row, 3, None)
    if earlier is not None:
        sheet.put(row, 4, earlier.get("requests", 0), INTEGER)
    requests = f"B${row}"
    for volume, reason in LOSS_ROWS:
        row += 1
        sheet.put(row, 1, words.loss(volume, reason))
        sheet.put(row, 2, loss_count(volumes, volume, reason), INTEGER)
        sheet.formula(row, 3, f'=IF({requests}=0,"",B{row}/{requests})', "0.00%")
        if earlier is not None:
            sheet.put(row, 4, loss_count(earlier, volume, reason), INTEGER)
    sheet.note(row + 1, 1, words("loss_hint"))
    return row + 1


def _queue_keys(report: Mapping[str, Any]) -> tuple[str, ...]:
    """The KPI columns of the queues sheet: those the queues have (a range limited to one
    queue, or a month without calls, still gets the call KPIs of the overall row)."""
    return present(CALL_KPIS, *report["queues"].values(), report["overall"])


def _queues(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    keys = _queue_keys(report)
    names = [words("queue"), words("requests"), words("answered")]
    names += [words.kpi(k) for k in keys]
    names += [words("previous") + " " + words.kpi(HEADLINE), words("change")]
    sheet.header(names, (16, 10, 10, *([12] * len(keys)), 14, 11))
    rows: list[tuple[str, Mapping[str, Any], Mapping[str, Any], Mapping[str, Any] | None]] = [
        (
            words.queue(queue),
            kpis,
            report["volumes"]["queues"][queue],
            report["previous"]["queues"].get(queue),
        )
        for queue, kpis in report["queues"].items()
    ]
    rows.append(
        (
            words("overall"),
            report["overall"],
            report["volumes"]["overall"],
            report["previous"]["overall"],
        )
    )
    row = HEADER_ROW
    for name, kpis, volumes, before in rows:
        row += 1
        _queue_row(sheet, row, name, kpis, volumes, keys)
        column = 4 + len(keys)
        earlier = before[HEADLINE]["value"] if before else None
        sheet.put(row, column, _cell_value(HEADLINE, earlier), _number_format(HEADLINE))
        now = kpis[HEADLINE]["value"]
        sheet.put(row, column + 1, _change(HEADLINE, now, earlier), CHANGE[kpi_kind(HEADLINE)])
    for cell in sheet.cells(row):
        cell.font = TOTAL_FONT
    _kpi_target_rules(sheet, report, 4, row, keys)


def _queue_row(
    sheet: _Sheet,
    row: int,
    name: str,
    kpis: Mapping[str, Any],
    volumes: Mapping[str, Any],
    keys: Sequence[str],
) -> None:
    """Columns 1 to 3 + len(keys) of a queue's row on the queues sheet (month and range): its
    name, agent requests and answered calls, the KPIs ``keys`` (blank where it has none)."""
    sheet.put(row, 1, name)
    sheet.put(row, 2, volumes.get("requests", 0), INTEGER)
    sheet.put(row, 3, volumes.get("answered", 0), INTEGER)
    for offset, key in enumerate(keys):
        value = kpis[key]["value"] if key in kpis else None
        sheet.put(row, 4 + offset, _cell_value(key, value), _number_format(key))


def _kpi_target_rules(
    sheet: _Sheet, report: Mapping[str, Any], first: int, last: int, keys: Sequence[str]
) -> None:
    """Every KPI's target rules on its column (``keys`` in order from ``first``), down to row
    ``last``."""
    for offset, key in enumerate(keys):
        target = report["overall"].get(key, {}).get("target")
        if target is not None:
            _target_rules(sheet.ws, first + offset, HEADER_ROW + 1, last, key, target)


def _agents(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    ranking = report["agent_ranking"]
    labels = [words.figure(key) for key in AGENT_FIGURES]
    ids = (str(agent["agent_id"]) for agent in report["agents"])
    sheet.header(
        [words("rank"), words("agent"), *labels, words("note")],
        (7, _fitting(12, ids), 10, 12, 12, 10, 9, 12, 9, 10, 12, 12),
    )
    sheet.note(3, 1, words("bottom_hint", min=ranking["min_surveys"]))
    by_id = {agent["agent_id"]: agent for agent in report["agents"]}
    bottom = set(ranking["bottom"])
    order: list[tuple[int | None, str]] = [
        (index + 1, agent) for index, agent in enumerate(ranking["order"])
    ]
    order += [(None, agent) for agent in ranking["unranked"]]
    row = HEADER_ROW
    for rank, agent_id in order:
        row += 1
        agent = by_id[agent_id]
        sheet.put(row, 1, rank, INTEGER)
        sheet.put(row, 2, agent_id)
        for offset, key in enumerate(AGENT_FIGURES):
            sheet.put(row, 3 + offset, _cell_value(key, agent[key]), _number_format(key))
        note_column = 3 + len(AGENT_FIGURES)
        if agent_id in bottom:
            sheet.put(row, note_column, words("bottom"))
            for cell in sheet.cells(row):
                cell.fill = BOTTOM_FILL
                cell.font = TOTAL_FONT
        elif rank is None:
            sheet.put(row, note_column, words("unranked")).font = SUBTITLE_FONT
        sheet.flush(row)
    if row > HEADER_ROW:
        mean_letter = get_column_letter(2 + len(AGENT_FIGURES))
        # Red to green through yellow at the median: the bottom stands out.
        _colour_scale(
            sheet.ws,
            f"{mean_letter}{HEADER_ROW + 1}:{mean_letter}{row}",
            "F8696B",
            "FFEB84",
            "63BE7B",
            middle=("percentile", 50),
        )
        for key in AGENT_JUDGED:
            column = 3 + AGENT_FIGURES.index(key)
            target = report["overall"][key]["target"]
            _target_rules(sheet.ws, column, HEADER_ROW + 1, row, key, target)


def _daily_keys(report: Mapping[str, Any], calls: bool) -> tuple[str, ...]:
    """The daily KPIs of one of the two daily sheets: the call KPIs (``calls``), or the others
    (caller keys, agent state time), as the days have them."""
    days = report.get("daily", {}).values()
    keys = present(KPI_KEYS, report["overall"], *days)
    return tuple(key for key in keys if (key in CALL_KPIS) == calls)


def _daily(sheet: _Sheet, report: Mapping[str, Any], words: Words, calls: bool = True) -> None:
    """One row per local day: the call KPIs with the headline's counts and the chart of the
    call targets (``calls``), or the contact and agent KPIs (a sheet of their own, so that
    each prints readably one page wide)."""
    keys = _daily_keys(report, calls)
    headline = words.kpi(HEADLINE)
    names = [words("date")]
    widths: list[float] = [12]
    if calls:
        names += [f"{headline} {words('denominator')}", f"{headline} {words('numerator')}"]
        widths += [12, 12]
    first = len(names) + 1
    names += [words.kpi(k) for k in keys]
    sheet.header(names, (*widths, *([12] * len(keys))))
    row = HEADER_ROW
    for day, kpis in report.get("daily", {}).items():
        row += 1
        sheet.put(row, 1, datetime.strptime(day, "%Y-%m-%d").date(), "yyyy-mm-dd")  # noqa: DTZ007
        if calls:
            sheet.put(row, 2, kpis[HEADLINE]["denominator"], INTEGER)
            sheet.put(row, 3, kpis[HEADLINE]["numerator"], INTEGER)
        for offset, key in enumerate(keys):
            value = kpis[key]["value"] if key in kpis else None
            sheet.put(row, first + offset, _cell_value(key, value), _number_format(key))
    _kpi_target_rules(sheet, report, first, row, keys)
    if calls and row > HEADER_ROW and report.get("has_data"):
        chart = LineChart()
        chart.title = " / ".join(words.kpi(key) for key in CALL_TARGETS)
        chart.height, chart.width = 7.5, 22
        chart.y_axis.number_format = "0%"
        chart.y_axis.scaling.min = 0.5
        chart.y_axis.scaling.max = 1.0
        for column in (first + keys.index(key) for key in CALL_TARGETS):
            data = Reference(sheet.ws, min_col=column, min_row=HEADER_ROW, max_row=row)
            chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(sheet.ws, min_col=1, min_row=HEADER_ROW + 1, max_row=row))
        # The chart prints on a page of its own rather than cut by the end of the table's page.
        sheet.ws.row_breaks.append(Break(id=row + 1))
        sheet.ws.add_chart(chart, f"B{row + 3}")


def _tickets(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    names = ("kind", "tickets_due", "on_time", "value", "target", "status")
    sheet.header([words(n) for n in names], (14, 12, 12, 12, 10, 12))
    rows = [(words.kind(kind), entry) for kind, entry in report["ticket_kinds"].items()]
    rows.append((words("overall"), report["overall"][TICKET_KPI]))
    row = HEADER_ROW
    for name, entry in rows:
        row += 1
        sheet.put(row, 1, name)
        sheet.put(row, 2, entry["denominator"], INTEGER)
        sheet.put(row, 3, entry["numerator"], INTEGER)
        sheet.put(row, 4, entry["value"], PERCENT)
        sheet.put(row, 5, entry["target"], PERCENT)
        text, fill = _status(words, entry["met"])
        sheet.put(row, 6, text).fill = fill
    for cell in sheet.cells(row):
        cell.font = TOTAL_FONT


def _excel_time(value: str | None) -> datetime | None:
    # Excel has no time zones: local wall-clock time, as the subtitle's zone says.
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=None)


def _overdue(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    names = ("ticket_id", "kind", "queue", "opened_at", "due", "closed_at", "state")
    tickets = report["overdue_tickets"]
    sheet.header(
        [*(words(n) for n in names), words("overdue_hours")],
        (
            _fitting(16, (str(ticket["ticket_id"]) for ticket in tickets)),
            _fitting(10, (words.kind(ticket["kind"]) for ticket in tickets)),
            _fitting(12, (words.queue(ticket["queue"]) for ticket in tickets)),
            17,
            17,
            17,
            _fitting(11, (words(ticket["status"]) for ticket in tickets)),
            11,
        ),
    )
    row = HEADER_ROW
    for ticket in tickets:
        row += 1
        sheet.put(row, 1, ticket["ticket_id"])
        sheet.put(row, 2, words.kind(ticket["kind"]))
        sheet.put(row, 3, words.queue(ticket["queue"]))
        for offset, key in enumerate(("opened_at", "due", "closed_at")):
            sheet.put(row, 4 + offset, _excel_time(ticket[key]), DATETIME)
        status = sheet.put(row, 7, words(ticket["status"]))
        status.fill = RED_FILL if ticket["status"] == "open" else PatternFill()
        sheet.put(row, 8, ticket["overdue_hours"], DECIMAL)
    if row == HEADER_ROW:
        sheet.put(row + 1, 1, words("no_overdue"))
    else:
        sheet.ws.auto_filter.ref = f"A{HEADER_ROW}:H{row}"


def _satisfaction(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    sheet.header([words("score"), words("surveys"), words("share")], (9, 10, 10))
    counts = report["score_distribution"]
    first = HEADER_ROW + 1
    last = HEADER_ROW + len(counts)
    satisfied = report["thresholds"]["satisfied_score"]
    for index, (score, count) in enumerate(counts.items()):
        row = first + index
        sheet.put(row, 1, int(score), INTEGER).fill = (
            GREEN_FILL if int(score) >= satisfied else PatternFill()
        )
        sheet.put(row, 2, count, INTEGER)
        share = f'=IF(SUM(B${first}:B${last})=0,"",B{row}/SUM(B${first}:B${last}))'
        sheet.formula(row, 3, share, "0.0%")
    sheet.ws.column_dimensions["D"].width = 3
    names = ("factor", "responses", "factor_mean", "importance", "quadrant")
    sheet.header([words(n) for n in names], (14, 10, 13, 16, 15), column=5)
    analysis = report["factors"]
    colours = {"improve": RED_FILL, "maintain": GREEN_FILL}
    row = HEADER_ROW
    for item in analysis["items"]:
        row += 1
        sheet.put(row, 5, words.factor(item["factor"]))
        sheet.put(row, 6, item["responses"], INTEGER)
        sheet.put(row, 7, item["mean"], SCORE)
        sheet.put(row, 8, item["importance"], "0.000")
        quadrant = sheet.put(row, 9, words.quadrant(item["quadrant"]))
        quadrant.fill = colours.get(item["quadrant"] or "", PatternFill())
    if analysis["mean_importance"] is not None:
        row += 1
        sheet.put(row, 5, words("overall")).font = TOTAL_FONT
        sheet.put(row, 7, analysis["mean_satisfaction"], SCORE).font = TOTAL_FONT
        sheet.put(row, 8, analysis["mean_importance"], "0.000").font = TOTAL_FONT
    sheet.note(max(row, last) + 2, 5, words("quadrant_hint"))


HOUR_WIDTH = 7.5
BACKTEST_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (JSON key, label key, number format); errors in percentage points, as the hint says, so
    # that they fit the narrow hour columns above them
    ("intervals", "intervals", INTEGER),
    ("calls", "requests", INTEGER),
    ("mae_abandon_rate", "mae_abandon_rate", SCORE),
    ("bias_abandon_rate", "bias_abandon_rate", CHANGE["score"]),
    ("mae_service_level", "mae_service_level", SCORE),
    ("bias_service_level", "bias_service_level", CHANGE["score"]),
)


def _staffing(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    """Shortfall per queue and weekday (rows) by local hour (columns); the backtest below."""
    staffing = report["staffing"]
    sheet.header(
        [words("queue"), words("weekday"), *(f"{hour:02d}:00" for hour in range(24))],
        (14, 8, *([HOUR_WIDTH] * 24)),
    )
    row = HEADER_ROW
    for queue, cells in staffing["queues"].items():
        shortfall = {(weekday, hour): value for weekday, hour, value in cells}
        for weekday in range(1, 8):
            row += 1
            sheet.put(row, 1, words.queue(queue))
            sheet.put(row, 2, words.weekday(weekday))
            for hour in range(24):
                sheet.put(row, 3 + hour, shortfall.get((weekday, hour)), "0.00")
    if row == HEADER_ROW:
        sheet.put(row + 1, 1, words("no_staffing"))
        row += 1
    else:
        # Blue (spare agents) to red (short), white at zero.
        _colour_scale(
            sheet.ws,
            f"C{HEADER_ROW + 1}:{get_column_letter(26)}{row}",
            "5B9BD5",
            "FFFFFF",
            "F8696B",
            middle=("num", 0),
        )
    sheet.note(row + 1, 1, words("staffing_hint"))
    sheet.row = row + 3
    sheet.header(
        [words("queue"), *(words(label) for _, label, _ in BACKTEST_COLUMNS)],
        (14, 8, *([HOUR_WIDTH] * (len(BACKTEST_COLUMNS) - 1))),
    )
    for summary in staffing["backtest"]:
        sheet.row += 1
        sheet.put(sheet.row, 1, words.queue(summary["queue"]))
        for offset, (key, _, fmt) in enumerate(BACKTEST_COLUMNS):
            value = summary[key]
            sheet.put(sheet.row, 2 + offset, value * 100 if fmt != INTEGER else value, fmt)
    sheet.note(sheet.row + 1, 1, words("backtest_hint"))


def _notes(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    thresholds = report["thresholds"]
    zh = words.lang == "zh"
    lines = [
        (
            "短时放弃阈值 S" if zh else "Short abandon threshold S",
            f"{thresholds['short_abandon_seconds']} s",
        ),
        (
            "服务水平阈值 T" if zh else "Service level threshold T",
            f"{thresholds['service_level_seconds']} s",
        ),
        ("满意评分" if zh else "Satisfied score", f"≥ {thresholds['satisfied_score']} / 10"),
        ("时区" if zh else "Time zone", report["timezone"]),
        ("数据截至" if zh else "Data as of", report["as_of"] or "–"),
        (words("revision"), f"{report.get('revision') or '–'} · {words('revision_hint')}"),
        (words("rank"), words("bottom_hint", min=report["agent_ranking"]["min_surveys"])),
        (words("quadrant"), words("quadrant_hint")),
        (words("change"), words("mom_hint")),
        (words("losses"), words("loss_hint")),
        (words("agent_states"), words("states_hint")),
        (words("staffing"), words("staffing_hint")),
        (words("backtest"), words("backtest_hint")),
    ]
    sheet.header([words("notes"), ""], (26, 90))
    top = Alignment(vertical="top")
    for index, (name, text) in enumerate(lines):
        row = HEADER_ROW + 1 + index
        label = sheet.put(row, 1, name)
        label.font, label.alignment = TOTAL_FONT, top
        sheet.put(row, 2, text).alignment = Alignment(wrap_text=True, vertical="top")
        # Calc keeps a row's stored height: without one, wrapped lines overlap the next row.
        sheet.ws.row_dimensions[row].height = wrapped_lines(text, 90) * LINE_HEIGHT


def _agent_states(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    """Every agent's state time (month and range), by agent id: time logged in, each state's
    time, occupancy, utilisation and not-ready share, and the not-ready time by reason."""
    agents = sorted(report["agents"], key=lambda agent: str(agent["agent_id"]))
    ids = (str(agent["agent_id"]) for agent in agents)
    reasons = [_reasons_text(agent.get("not_ready_reasons", {})) for agent in agents]
    names = [words("agent"), words("logged_in_seconds")]
    names += [words.state(state) for state in AGENT_STATES]
    names += [words.kpi(key) for key in AGENT_STATE_KPIS]
    names.append(words("not_ready_reasons"))
    widths = [_fitting(12, ids), 11, *([11] * len(AGENT_STATES)), *([10] * len(AGENT_STATE_KPIS))]
    widths.append(min(_fitting(16, reasons[:1000]), 30.0))
    sheet.header(names, widths)
    sheet.note(3, 1, words("states_hint"))
    row = HEADER_ROW
    wrap = Alignment(wrap_text=True)  # bottom-aligned like the figures of its row
    for agent, reasons_text in zip(agents, reasons, strict=True):
        row += 1
        sheet.put(row, 1, agent["agent_id"])
        sheet.put(row, 2, _day_fraction(agent.get("logged_in_seconds")), HOURS)
        states = agent.get("state_seconds", {})
        for offset, state in enumerate(AGENT_STATES):
            sheet.put(row, 3 + offset, _day_fraction(states.get(state)), HOURS)
        column = 3 + len(AGENT_STATES)
        for offset, key in enumerate(AGENT_STATE_KPIS):
            figures = agent.get(key) or {}
            sheet.put(row, column + offset, figures.get("value"), PERCENT)
        sheet.put(row, column + len(AGENT_STATE_KPIS), reasons_text).alignment = wrap
        lines = wrapped_lines(reasons_text, widths[-1])
        if lines > 1:  # Calc keeps a row's stored height: wrapped lines would overlap the next
            sheet.ws.row_dimensions[row].height = lines * LINE_HEIGHT
        sheet.flush(row)
    if row == HEADER_ROW:
        sheet.put(row + 1, 1, words("empty"))


def _day_fraction(seconds: float | None) -> float | None:
    """Seconds as an Excel time (a fraction of a day)."""
    return None if seconds is None else seconds / SECONDS_PER_DAY


def _reasons_text(reasons: Mapping[str, float]) -> str:
    """An agent's not-ready time by reason, longest first: ``lunch 1:00:00; break 0:30:00``."""
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return "; ".join(f"{reason or '–'} {format_duration(seconds)}" for reason, seconds in ordered)


_SHEETS: tuple[tuple[str, _Fill, str], ...] = (
    # (title key, what fills the sheet, first column not frozen: the header row always is)
    ("summary", _summary, "B"),
    ("queues", _queues, "B"),
    ("agents", _agents, "C"),
    ("agent_states", _agent_states, "B"),
    ("daily", _daily, "B"),
    ("daily_more", partial(_daily, calls=False), "B"),
    ("tickets", _tickets, "A"),
    ("overdue", _overdue, "B"),
    ("satisfaction", _satisfaction, "A"),
    ("staffing", _staffing, "C"),
    ("notes", _notes, ""),
)


# Range reports (``export --from --to --by``): the range's KPIs, its queues, one sheet of
# periods × KPIs for all queues together and one per queue, the agents and the work orders.
# Drawn from the range's JSON (:meth:`~hotline_kpi.metrics.export.KpiFigures.range_report`).

# Characters a sheet's name cannot hold, and its longest length (Excel's rules).
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
SHEET_NAME_LENGTH = 31


def sheet_name(name: str, taken: set[str]) -> str:
    """``name`` made a valid sheet name not in ``taken`` (which it is added to)."""
    base = _SHEET_NAME_FORBIDDEN.sub("_", clean_text(name)).strip("'") or "_"
    base = base[:SHEET_NAME_LENGTH]
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        suffix = f" ({number})"
        candidate = base[: SHEET_NAME_LENGTH - len(suffix)] + suffix
    taken.add(candidate.lower())
    return candidate


def write_range_xlsx(report: Mapping[str, Any], lang: str = "zh") -> bytes:
    """The workbook's bytes for a range report (``export --from --to [--by] [--queue]``).

    Sheets: the range's KPIs against their targets and its volumes; the queues; the periods of
    all queues together (one row per period, a column per KPI, missed targets red); the same for
    each queue (none when the range is limited to one queue: its periods are the first); the
    agents; work-order timeliness by kind. Periods are the JSON's, in time order: a repeated
    daylight-saving hour is two rows, told apart by a UTC offset column (shown only when the
    offset changes in the range).
    """
    words = Words(lang)
    book = Workbook(write_only=True)
    heading = range_title(words, report)
    subtitle = report_subtitle(words, report)
    by = by_words(words, report)
    taken: set[str] = set()
    # (sheet title, what fills it, first column not frozen)
    fills: list[tuple[str, _Fill, str]] = [
        (words("summary"), _range_summary, "B"),
        (words("queues"), _range_queues, "B"),
        (words("periods_sheet", scope=words("overall"), by=by), _periods, "B"),
    ]
    if not report.get("queue"):
        fills += [
            (words("periods_sheet", scope=words.queue(q), by=by), partial(_periods, queue=q), "B")
            for q in report["queues"]
        ]
    fills.append((words("agents"), _range_agents, "B"))
    fills.append((words("agent_states"), _agent_states, "B"))
    fills.append((words("tickets"), _tickets, "A"))
    sheets = [(sheet_name(title, taken), fill, frozen) for title, fill, frozen in fills]
    return _workbook(book, sheets, heading, subtitle, report, words)


def _range_summary(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    volumes = report["volumes"]["overall"]
    if not any_volume(volumes):
        sheet.put(3, 1, words("range_no_data"), border=False).font = Font(bold=True, color="C0392B")
    names = ("kpi", "range_value", "target", "status", "numerator", "denominator")
    sheet.header([words(n) for n in names], (24, 13, 11, 13, 15, 13))
    row = HEADER_ROW
    for key in present(KPI_KEYS, report["overall"]):
        row += 1
        _overall_row(sheet, row, key, report["overall"][key], words)
    row += 2
    sheet.row = row
    sheet.header([words("volumes"), words("range_value")], (24, 13))
    for name in VOLUMES:
        row += 1
        sheet.put(row, 1, words(name))
        sheet.put(row, 2, volumes.get(name, 0), INTEGER)
    row = _losses(sheet, row + 2, volumes, None, words, "range_value") + 2
    sheet.put(row, 1, words("periods")).font = TOTAL_FONT
    sheet.put(row, 2, len(report["periods"]), INTEGER)
    sheet.put(row, 3, by_words(words, report))


def _range_queues(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    keys = _queue_keys(report)
    names = [words("queue"), words("requests"), words("answered")]
    names += [words.kpi(k) for k in keys]
    sheet.header(names, (16, 10, 10, *([12] * len(keys))))
    scopes = [
        (words.queue(queue), kpis, report["volumes"]["queues"][queue])
        for queue, kpis in report["queues"].items()
    ]
    scopes.append((words("overall"), report["overall"], report["volumes"]["overall"]))
    row = HEADER_ROW
    for name, kpis, volumes in scopes:
        row += 1
        _queue_row(sheet, row, name, kpis, volumes, keys)
    for cell in sheet.cells(row):
        cell.font = TOTAL_FONT
    _kpi_target_rules(sheet, report, 4, row, keys)


def _local_start(start: str) -> datetime:
    # Excel has no time zones: the period's local wall time (its offset, when it changes in the
    # range, is in a column of its own).
    return datetime.fromisoformat(start).replace(tzinfo=None)


def _periods(
    sheet: _Sheet, report: Mapping[str, Any], words: Words, queue: str | None = None
) -> None:
    """One row per period of ``queue`` (None: all queues together): its local start, agent
    requests and answered calls, the call KPIs (the contact and agent KPIs of each period are
    in the JSON and CSV)."""
    periods = report["periods"]
    scopes = [period["queues"][queue] if queue else period["overall"] for period in periods]
    keys = present(CALL_KPIS, *scopes[:1], *(report["queues"].values() if queue else ()))
    offsets = len({period["start"][19:] for period in periods}) > 1
    by_day = report["by"] == "day"
    names = [words("date") if by_day else words("start")]
    widths: list[float] = [12 if by_day else 17]
    if offsets:
        names.append(words("utc_offset"))
        widths.append(9)
    first_kpi = len(names) + 3
    names += [words("requests"), words("answered")]
    widths += [10, 10]
    names += [words.kpi(k) for k in keys]
    widths += [12] * len(keys)
    sheet.header(names, widths)
    row = HEADER_ROW
    date_format = "yyyy-mm-dd" if by_day else DATETIME
    for period in periods:
        row += 1
        kpis = period["queues"][queue] if queue else period["overall"]
        volumes = (
            period["volumes"]["queues"].get(queue, {}) if queue else period["volumes"]["overall"]
        )
        start = _local_start(period["start"])
        sheet.put(row, 1, start.date() if by_day else start, date_format)
        column = 2
        if offsets:
            sheet.put(row, column, period["start"][19:])
            column += 1
        sheet.put(row, column, volumes.get("requests", 0), INTEGER)
        sheet.put(row, column + 1, volumes.get("answered", 0), INTEGER)
        for offset, key in enumerate(keys):
            value = _cell_value(key, kpis[key]["value"] if key in kpis else None)
            sheet.put(row, first_kpi + offset, value, _number_format(key))
        sheet.flush(row)
    if row > HEADER_ROW:
        _kpi_target_rules(sheet, report, first_kpi, row, keys)
        sheet.ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(len(names))}{row}"


def _range_agents(sheet: _Sheet, report: Mapping[str, Any], words: Words) -> None:
    agents = sorted(report["agents"], key=lambda agent: str(agent["agent_id"]))
    labels = [words.figure(key) for key in AGENT_FIGURES]
    ids = (str(agent["agent_id"]) for agent in agents)
    sheet.header([words("agent"), *labels], (_fitting(12, ids), 10, 12, 12, 10, 9, 12, 9, 10, 12))
    row = HEADER_ROW
    for agent in agents:
        row += 1
        sheet.put(row, 1, agent["agent_id"])
        for offset, key in enumerate(AGENT_FIGURES):
            sheet.put(row, 2 + offset, _cell_value(key, agent[key]), _number_format(key))
        sheet.flush(row)
    for key in AGENT_JUDGED:
        target = report["overall"][key].get("target")
        if target is not None and row > HEADER_ROW:
            _target_rules(sheet.ws, 2 + AGENT_FIGURES.index(key), HEADER_ROW + 1, row, key, target)
