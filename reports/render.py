"""One export in a report format: the month's KPI dict, extended, then laid out.

The JSON export is :func:`build_report`'s dict itself (the single source); ``csv`` is
:func:`~hotline_kpi.metrics.export.to_csv` of the month's figures, and ``xlsx``, ``html`` and
``pdf`` are drawn from the JSON dict and nothing else. :func:`run_export` is the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hotline_kpi.config import Settings
from hotline_kpi.errors import UsageError
from hotline_kpi.metrics.export import KpiFigures, parse_month, to_csv, write_output
from hotline_kpi.metrics.store import open_existing_store
from hotline_kpi.reports.data import extend_report
from hotline_kpi.reports.labels import LANGS
from hotline_kpi.reports.progress import ExportProgress

FORMATS = ("xlsx", "html", "pdf")


def build_report(figures: KpiFigures, month: str) -> dict[str, Any]:
    """The month's SPEC §5 dict with the daily figures, the revision and the report extras."""
    return extend_report(figures.export(month), figures.store, figures.settings, month)


def export_document(
    figures: KpiFigures, month: str, fmt: str, lang: str = "zh", progress: bool | None = None
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
        data = build_report(figures, month)
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


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """``hotline-kpi export``: the monthly report in the requested format."""
    parse_month(args.month)
    if args.format in ("xlsx", "pdf") and args.output == "-" and sys.stdout.isatty():
        raise UsageError(f"--format {args.format} is binary: give --output FILE")
    store = open_existing_store(settings.store)
    try:
        figures = KpiFigures(store, settings)
        if args.format == "csv":
            data: str | bytes = to_csv(figures.export(args.month))
        elif args.format == "json":
            data = (
                json.dumps(build_report(figures, args.month), ensure_ascii=False, indent=2) + "\n"
            )
        else:
            data = export_document(figures, args.month, args.format, args.lang)
    finally:
        store.close()
    write_output(data, args.output)
    return 0
