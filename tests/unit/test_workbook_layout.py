"""The workbook's print set-up, read back with openpyxl (issue 16; the LibreOffice conversion is
tests/integration/test_workbook_print.py): every sheet fits one page wide, wide sheets print
landscape, the header row repeats, the footer names report, sheet and page, and header rows are
as tall as their wrapped heads.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from hotline_kpi.cli import main
from hotline_kpi.config import load_settings
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.store import open_store
from hotline_kpi.reports import build_report
from hotline_kpi.reports.labels import Words
from hotline_kpi.reports.xlsx import (
    HEADER_ROW,
    LINE_HEIGHT,
    PORTRAIT_WIDTH,
    text_width,
    wrapped_lines,
    write_xlsx,
)

MONTH = "2026-10"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("workbook-layout")
    events, store_path = work / "events.jsonl", work / "s.db"
    simulate = ["simulate", "--start", "2026-10-01", "--days", "3", "--calls-per-day", "80"]
    assert main([*simulate, "--seed", "3", "--event-model", "v1", "--output", str(events)]) == 0
    assert main(["replay", str(events), "--store", str(store_path)]) == 0
    store = open_store(str(store_path))
    try:
        yield build_report(KpiFigures(store, load_settings(None, store=str(store_path))), MONTH)
    finally:
        store.close()


def _book(report: dict[str, Any], lang: str) -> Any:
    return load_workbook(io.BytesIO(write_xlsx(report, lang)))


def _width(sheet: Any) -> float:
    return sum(
        sheet.column_dimensions[letter].width or 8.43
        for letter in list(sheet.column_dimensions)
        if sheet.column_dimensions[letter].width
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_sheet_fits_one_page_wide_and_repeats_its_header_row(
    report: dict[str, Any], lang: str
) -> None:
    book = _book(report, lang)
    words = Words(lang)
    for sheet in book.worksheets:
        setup = sheet.page_setup
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert (setup.fitToWidth, setup.fitToHeight) == (1, 0), sheet.title
        assert setup.paperSize == 9, sheet.title  # A4
        expected = "landscape" if _width(sheet) > PORTRAIT_WIDTH else "portrait"
        assert setup.orientation == expected, sheet.title
        assert str(sheet.print_title_rows) == f"${HEADER_ROW}:${HEADER_ROW}", sheet.title
        footer = sheet.oddFooter
        assert footer.left.text == words.title(MONTH)
        assert footer.center.text == "&A"
        assert "&P" in footer.right.text and "&N" in footer.right.text
    assert book["Staffing shortfall" if lang == "en" else "人力缺口"].page_setup.orientation == (
        "landscape"
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_header_rows_are_tall_enough_for_their_wrapped_heads(
    report: dict[str, Any], lang: str
) -> None:
    for sheet in _book(report, lang).worksheets:
        heads = [cell for cell in sheet[HEADER_ROW] if isinstance(cell.value, str)]
        needed = max(
            wrapped_lines(cell.value, sheet.column_dimensions[cell.column_letter].width)
            for cell in heads
        )
        assert sheet.row_dimensions[HEADER_ROW].height >= needed * LINE_HEIGHT, sheet.title


def test_notes_under_tables_are_merged_across_the_table_and_wrapped(
    report: dict[str, Any],
) -> None:
    book = _book(report, "en")
    staffing = book["Staffing shortfall"]
    merged = [str(span) for span in staffing.merged_cells.ranges]
    assert any(span.endswith("Z" + span.split(":")[0][1:]) for span in merged), merged
    for span in merged:
        cell = staffing[span.split(":")[0]]
        assert cell.alignment.wrap_text
        columns = (get_column_letter(c.column) for c in staffing[span][0])
        width = sum(staffing.column_dimensions[letter].width for letter in columns)
        lines = wrapped_lines(cell.value, width, size=9)
        # Merged cells are not made taller by Calc or Excel: the row's height is set for them.
        assert lines == 1 or staffing.row_dimensions[cell.row].height >= lines * 12, span


def test_wrapping_counts_chinese_characters_as_two_digits_and_breaks_between_words() -> None:
    assert text_width("服务水平") == pytest.approx(8.0)
    assert wrapped_lines("Service level", 20) == 1
    assert wrapped_lines("Average speed of answer", 12) == 3  # Average / speed of / answer
    assert wrapped_lines("咨询处理准确率", 12) == 2
    assert wrapped_lines("a\nb", 30) == 2


def test_long_ids_widen_their_column(report: dict[str, Any]) -> None:
    long_id = "t" + "0123456789" * 3
    wide = dict(report, agents=[dict(report["agents"][0], agent_id=long_id)])
    wide["agent_ranking"] = dict(report["agent_ranking"], order=[long_id], unranked=[], bottom=[])
    sheet = _book(wide, "en")["Agents"]
    assert sheet.column_dimensions["B"].width >= text_width(long_id)
