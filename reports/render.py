"""One export in a report format: the month's KPI dict, extended, then laid out.

The JSON export is :func:`build_report`'s dict itself (the single source); ``xlsx``, ``html``
and ``pdf`` are drawn from that dict and nothing else.
"""

from __future__ import annotations

from typing import Any

from hotline_kpi.errors import UsageError
from hotline_kpi.metrics.export import Report
from hotline_kpi.reports.data import extend_report
from hotline_kpi.reports.labels import LANGS
from hotline_kpi.reports.progress import ExportProgress

FORMATS = ("xlsx", "html", "pdf")


def build_report(report: Report, month: str) -> dict[str, Any]:
    """The month's SPEC §5 dict with the daily figures, the revision and the report extras."""
    return extend_report(report.export(month), report.store, report.settings, month)


def export_document(
    report: Report, month: str, fmt: str, lang: str = "zh", progress: bool | None = None
) -> str | bytes:
    """The month's export in ``fmt`` (text for html, bytes for xlsx and pdf).

    ``progress`` None shows a progress bar on a terminal for slow exports; False never does.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if lang not in LANGS:
        raise UsageError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    steps = {"xlsx": 3, "html": 4, "pdf": 5}[fmt]
    with ExportProgress(steps, enabled=progress) as bar:
        bar.step("KPIs")
        data = build_report(report, month)
        if fmt == "xlsx":
            bar.step("XLSX")
            from hotline_kpi.reports.xlsx import write_xlsx

            return write_xlsx(data, lang)
        from hotline_kpi.reports.charts import all_charts
        from hotline_kpi.reports.html import render_html
        from hotline_kpi.reports.labels import Words

        bar.step("charts")
        charts = all_charts(data, Words(lang))
        bar.step("HTML")
        page = render_html(data, lang, charts)
        if fmt == "html":
            return page
        bar.step("PDF")
        from hotline_kpi.reports.pdf import render_pdf

        return render_pdf(page)
