"""The monthly report end to end through the command line: JSON, XLSX, HTML and a real PDF.

The PDF is turned into PNG pages with poppler's ``pdftoppm`` (each checked non-blank), its
fonts listed with ``pdffonts`` (WenQuanYi Zen Hei embedded, so Chinese renders as glyphs) and
its text read back with ``pdftotext`` (the printed KPI values are the JSON's).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image

from hotline_kpi.metrics.export import KPI_KEYS
from hotline_kpi.reports.labels import Words, format_value, kpi_kind
from hotline_kpi.reports.xlsx import HEADER_ROW
from tests.support.reports import assert_html_shows_the_json, build_store

pytestmark = pytest.mark.integration

MONTH = "2026-10"


def export(store: Path, out: Path, month: str, fmt: str, *extra: str) -> float:
    """Run ``hotline-kpi export`` as a user would; returns the seconds it took."""
    started = time.monotonic()
    command = [sys.executable, "-m", "hotline_kpi.cli", "export", "--month", month]
    command += ["--format", fmt, "--store", str(store), "--output", str(out), *extra]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no log noise from matplotlib or WeasyPrint
    return time.monotonic() - started


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("report-pdf")
    store = build_store(work)
    timings = {}
    for fmt in ("json", "xlsx", "html", "pdf"):
        timings[fmt] = export(store, work / f"october.{fmt}", MONTH, fmt)
    export(store, work / "october-en.pdf", MONTH, "pdf", "--lang", "en")
    export(store, work / "june.pdf", "2026-06", "pdf")
    print("export seconds:", {k: round(v, 2) for k, v in timings.items()})
    report = json.loads((work / "october.json").read_text(encoding="utf-8"))
    return {"work": work, "report": report, "timings": timings}


def pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_pdf_pages_render_and_none_is_blank(exported: dict[str, Any]) -> None:
    work: Path = exported["work"]
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", str(work / "october.pdf"), str(work / "page")],
        check=True,
        timeout=120,
    )
    pages = sorted(work.glob("page-*.png"))
    assert len(pages) >= 4
    for page in pages:
        image = Image.open(page).convert("L")
        dark = sum(image.histogram()[:200])  # pixels clearly darker than the white paper
        assert dark / (image.width * image.height) > 0.01, page.name


def test_chinese_text_is_set_in_an_embedded_cjk_font(exported: dict[str, Any]) -> None:
    fonts = subprocess.run(
        ["pdffonts", str(exported["work"] / "october.pdf")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cjk = [line for line in fonts.splitlines() if "WenQuanYi" in line]
    assert cjk, fonts
    # columns: name type encoding emb sub uni — every CJK font embedded, with a Unicode map
    assert all(line.split()[-5:-2] == ["yes", "yes", "yes"] for line in cjk), fonts
    text = pdf_text(exported["work"] / "october.pdf")
    assert "2026年10月 客服热线 KPI 月报" in text
    assert "人工接通率" in text and "急需改进" in text


def test_pdf_prints_the_json_numbers(exported: dict[str, Any]) -> None:
    report = exported["report"]
    text = pdf_text(exported["work"] / "october.pdf")
    for key in KPI_KEYS:
        value = report["overall"][key]["value"]
        assert format_value(value, kpi_kind(key)) in text, key
        assert f"{report['overall'][key]['denominator']:,}" in text
    for agent in report["agents"]:
        assert agent["agent_id"] in text
    english = pdf_text(exported["work"] / "october-en.pdf")
    assert "Hotline KPI report, October 2026" in english and "Improve urgently" in english


def test_every_pdf_page_says_which_revision_of_the_figures_it_shows(
    exported: dict[str, Any],
) -> None:
    revision = exported["report"]["revision"]
    pages = pdf_text(exported["work"] / "october.pdf").split("\f")
    pages = [page for page in pages if page.strip()]
    assert len(pages) >= 4
    assert all(f"数据版本 {revision}" in page for page in pages)  # the footer of every page
    assert f"revision {revision}" in pdf_text(exported["work"] / "october-en.pdf")


def test_pdf_has_the_staffing_heat_maps_and_backtest_of_the_json(exported: dict[str, Any]) -> None:
    report = exported["report"]
    staffing = report["staffing"]
    assert staffing["queues"] and staffing["backtest"]
    html = (exported["work"] / "october.html").read_text(encoding="utf-8")
    # One heat map per queue, drawn only from the JSON's cells.
    assert html.count('<figure class="heatmap">') == len(staffing["queues"])
    words = Words("zh")
    text = pdf_text(exported["work"] / "october.pdf")
    assert words("staffing") in text and words("backtest") in text
    for summary in staffing["backtest"]:
        assert words.queue(summary["queue"]) in text
        for key in ("mae_abandon_rate", "mae_service_level"):
            assert f"{summary[key] * 100:.2f} pp" in text, key
    english = pdf_text(exported["work"] / "october-en.pdf")
    assert "Staffing shortfall" in english and "Model backtest" in english


def test_html_and_xlsx_from_the_command_equal_its_json(exported: dict[str, Any]) -> None:
    report = exported["report"]
    html = (exported["work"] / "october.html").read_text(encoding="utf-8")
    assert assert_html_shows_the_json(report, html) > 200
    book = load_workbook(io.BytesIO((exported["work"] / "october.xlsx").read_bytes()))
    summary = book.worksheets[0]
    for index, key in enumerate(KPI_KEYS):
        row = HEADER_ROW + 1 + index
        entry = report["overall"][key]
        assert summary.cell(row, 5).value == pytest.approx(entry["numerator"])
        assert summary.cell(row, 6).value == entry["denominator"]
        if kpi_kind(key) != "seconds":
            assert summary.cell(row, 2).value == pytest.approx(entry["value"], abs=1e-12)


def test_a_month_without_data_is_a_short_valid_pdf_that_says_so(exported: dict[str, Any]) -> None:
    path = exported["work"] / "june.pdf"
    text = pdf_text(path)
    assert Words("zh")("no_data") in text
    assert "2026年6月" in text
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    assert re.search(r"^Pages:\s+1$", info.stdout, re.M), info.stdout


def test_exports_take_seconds_not_minutes(exported: dict[str, Any]) -> None:
    timings = exported["timings"]
    assert timings["json"] < 10 and timings["xlsx"] < 15 and timings["pdf"] < 60, timings
