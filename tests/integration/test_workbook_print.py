"""The monthly workbook prints (issue 16): LibreOffice Calc lays it out as a person prints it.

A simulated month is exported as XLSX and converted to PDF by headless Calc (Debian's
``libreoffice-calc-nogui``, installed by ``scripts/install-system.sh``), which applies each
sheet's page set-up. The PDF's text (``pdftotext -raw``) then shows, page by page, that every
sheet is at most one page wide — each page has its sheet's first and last column heads, since
the header row repeats and nothing is cut off to the right — that each page's footer names the
report, the sheet and the page, and that every figure of the summary sheet is printed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from hotline_kpi.cli import main
from hotline_kpi.metrics.catalogue import KPI_KEYS, kpi
from hotline_kpi.reports.labels import Words, format_duration, kpi_kind
from hotline_kpi.reports.xlsx import HEADER_ROW

pytestmark = pytest.mark.integration

MONTH = "2026-10"
SIMULATE = ["simulate", "--month", MONTH, "--calls-per-day", "150", "--seed", "7"]


def _convert(book: Path, out: Path) -> Path:
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail("soffice not found: run scripts/install-system.sh", pytrace=False)
    # A profile of its own: a Calc someone else runs would otherwise take the conversion over.
    profile = (out / "lo-profile").as_uri()
    command = [soffice, f"-env:UserInstallation={profile}", "--headless"]
    command += ["--convert-to", "pdf", "--outdir", str(out), str(book)]
    subprocess.run(command, capture_output=True, check=True, timeout=180)
    pdf = out / (book.stem + ".pdf")
    assert pdf.exists(), f"LibreOffice wrote no {pdf.name}"
    return pdf


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("workbook-print")
    events, store = work / "month.jsonl", work / "store.db"
    assert main([*SIMULATE, "--output", str(events)]) == 0
    assert main(["replay", str(events), "--store", str(store)]) == 0
    for fmt in ("xlsx", "json"):
        output = work / f"october.{fmt}"
        assert main(["export", "--month", MONTH, "--format", fmt, "--store", str(store),
                     "--output", str(output)]) == 0  # fmt: skip
    pdf = _convert(work / "october.xlsx", work)
    text = subprocess.run(
        ["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = [page for page in text.split("\f") if page.strip()]
    return {
        "book": load_workbook(work / "october.xlsx"),
        "report": json.loads((work / "october.json").read_text(encoding="utf-8")),
        "pages": pages,
    }


def _squeezed(text: str) -> str:
    # A wrapped head is printed on several lines: compare without any white space.
    return re.sub(r"\s+", "", text)


def _heads(sheet: Any) -> tuple[str, str]:
    """The first and last column heads of a sheet's header row (a blank head: the cell below)."""
    row = [cell for cell in sheet[HEADER_ROW] if cell.value is not None]
    last = row[-1]
    if not str(last.value).strip():
        last = sheet.cell(HEADER_ROW + 1, last.column)
    return str(row[0].value), str(last.value)


def _footers(printed: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Each page's (sheet, page, pages) as its footer prints them."""
    title = Words("zh").title(MONTH)
    page_of = r"第 (?P<page>\d+) 页，共 (?P<of>\d+) 页"
    footer = re.compile(rf"^{re.escape(title)} (?P<sheet>.+) {page_of}$")
    found = []
    for number, page in enumerate(printed["pages"], 1):
        matches = [footer.match(line.strip()) for line in page.splitlines()]
        lines = [m for m in matches if m]
        assert len(lines) == 1, f"page {number} has no footer: {page[:300]!r}"
        found.append((lines[0]["sheet"], int(lines[0]["page"]), int(lines[0]["of"])))
    return found


def test_every_page_has_a_footer_with_the_report_its_sheet_and_page_of_pages(
    printed: dict[str, Any],
) -> None:
    footers = _footers(printed)
    total = len(printed["pages"])
    assert [(page, of) for _, page, of in footers] == [(n, total) for n in range(1, total + 1)]
    # Every sheet prints, in the workbook's order.
    sheets = list(dict.fromkeys(sheet for sheet, _, _ in footers))
    assert sheets == printed["book"].sheetnames
    # Nine sheets of a small month: a page or two each, not the 25 pages of sheets cut in strips.
    assert total <= 2 * len(sheets), total


def test_every_sheet_is_one_page_wide_with_its_heads_on_every_page(
    printed: dict[str, Any],
) -> None:
    book = printed["book"]
    for (sheet, page, _), text in zip(_footers(printed), printed["pages"], strict=True):
        first, last = _heads(book[sheet])
        assert _squeezed(first) in _squeezed(text), (sheet, page, first)
        assert _squeezed(last) in _squeezed(text), (sheet, page, last)


def _shown(value: float, key: str) -> str:
    """A summary figure as the workbook's number format prints it."""
    kind = kpi_kind(key)
    if kind == "seconds":
        return format_duration(value)
    if kind == "score":
        return f"{value:.2f}"
    return f"{value * 100:.2f}%"


def test_every_figure_of_the_summary_sheet_is_printed(printed: dict[str, Any]) -> None:
    report = printed["report"]
    summary_name = printed["book"].sheetnames[0]
    text = "\n".join(
        page
        for (sheet, _, _), page in zip(_footers(printed), printed["pages"], strict=True)
        if sheet == summary_name
    )
    words = text.split()
    for key in KPI_KEYS:
        entry = report["overall"][key]
        # Seconds (waits, agent state time) are printed to a tenth, counts as integers.
        seconds = (kpi(key).scale != 1, kpi(key).denominator_scale != 1)
        numerator, denominator = entry["numerator"], entry["denominator"]
        expected = [f"{denominator:,.1f}" if seconds[1] else f"{denominator:,}"]
        if entry["value"] is not None:  # no data is an empty cell
            expected.append(_shown(entry["value"], key))
        expected.append(f"{numerator:,.1f}" if seconds[0] else f"{numerator:,}")
        if entry.get("target") is not None:
            expected.append(_shown(entry["target"], key))
        for figure in expected:
            assert figure in words, (key, figure)
        assert Words("zh").kpi(key) in text
    for name, count in report["volumes"]["overall"].items():
        counts = count.values() if isinstance(count, dict) else [count]  # by reason
        for each in counts:
            assert f"{each:,}" in words, name
