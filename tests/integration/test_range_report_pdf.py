"""The PDF of a range report (issue 16) through WeasyPrint: a month by the quarter hour — 2,976
periods — is charted and tabled by its worst periods in a few pages, in Chinese with the font
embedded, and the worst periods it prints are the HTML's (and so the JSON's).
"""

from __future__ import annotations

import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hotline_kpi.reports.html import WORST_PERIODS, render_range_html, worst_periods
from hotline_kpi.reports.labels import Words
from hotline_kpi.reports.pdf import render_pdf
from tests.support.reports import build_october_store, open_figures

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("range-pdf")
    with open_figures(build_october_store(work)) as figures:
        report = figures.range_report(date(2026, 10, 1), date(2026, 10, 31), "interval")
    pdf = work / "october-by-interval.pdf"
    pdf.write_bytes(render_pdf(render_range_html(report, "zh")))
    return {"report": report, "pdf": pdf}


def _run(*command: str | Path) -> str:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=True
    ).stdout


def test_a_month_by_the_quarter_hour_is_a_few_pages(printed: dict[str, Any]) -> None:
    assert len(printed["report"]["periods"]) == 2976
    pages = int(re.search(r"^Pages:\s+(\d+)$", _run("pdfinfo", printed["pdf"]), re.M)[1])
    assert 2 <= pages <= 6, pages
    fonts = _run("pdffonts", printed["pdf"])
    assert any("WenQuanYi" in line and " yes yes yes " in line for line in fonts.splitlines())


def test_the_pdf_charts_the_periods_and_tables_the_worst(printed: dict[str, Any]) -> None:
    report = printed["report"]
    text = _run("pdftotext", "-layout", printed["pdf"], "-")
    words = Words("zh")
    assert "2026-10-01 至 2026-10-31 客服热线 KPI 报表（按 15 分钟时段）" in text
    assert words("range_trend") in text and words("worst_periods") in text
    shown = worst_periods(report)
    assert len(shown) == WORST_PERIODS
    for index in shown:
        period = report["periods"][index]
        label = f"{period['start'][:10]} {period['start'][11:16]}–{period['end'][11:16]}"
        assert label in text, label
    # Only the worst: no table of every quarter hour.
    assert len(re.findall(r"2026-10-\d\d \d\d:\d\d–", text)) == WORST_PERIODS
