"""One export in a report format: the month's KPI dict, extended, then laid out.

The JSON export is :func:`build_report`'s dict itself (the single source); ``csv`` is
:func:`~hotline_kpi.metrics.export.to_csv` of the month's figures, and ``xlsx``, ``html`` and
``pdf`` are drawn from the JSON dict and nothing else. :func:`run_export` is the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from hotline_kpi.config import Settings
from hotline_kpi.errors import UsageError
from hotline_kpi.metrics.export import (
    KpiFigures,
    RangeRequest,
    parse_month,
    range_request,
    to_csv,
    to_range_csv,
    write_output,
)
from hotline_kpi.metrics.months import today_in
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


def _wall_clock_us() -> int:
    return time.time_ns() // 1000


def run_export(
    settings: Settings, args: argparse.Namespace, now_us: Callable[[], int] = _wall_clock_us
) -> int:
    """``hotline-kpi export``: the monthly report, or a range's (``--from``/``--to``, ``--by``,
    ``--queue``), in the requested format. ``now_us`` is the wall clock ``today`` and
    ``yesterday`` are read from, in the configured zone (tests pass a fixed one)."""
    month = getattr(args, "month", None)
    if month is not None:
        parse_month(month)
    request = range_request(
        month,
        getattr(args, "start", None),
        getattr(args, "end", None),
        getattr(args, "by", None),
        getattr(args, "queue", None),
        today_in(settings.zone, now_us()),
    )
    if args.format in ("xlsx", "pdf") and args.output == "-" and sys.stdout.isatty():
        raise UsageError(f"--format {args.format} is binary: give --output FILE")
    if request is not None:
        return _run_range_export(settings, args, request)
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


def _run_range_export(settings: Settings, args: argparse.Namespace, request: RangeRequest) -> int:
    """A range's report (:meth:`KpiFigures.range_report`) in any format: JSON and CSV here, the
    XLSX, HTML and PDF laid out from that JSON as the month's are."""
    store = open_existing_store(settings.store)
    try:
        figures = KpiFigures(store, settings)
        report = figures.range_report(
            request.first, request.last, request.by, request.queue, month=request.month
        )
    finally:
        store.close()
    data: str | bytes
    if args.format == "csv":
        data = to_range_csv(report)
    elif args.format == "json":
        data = json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    elif args.format == "xlsx":
        from hotline_kpi.reports.xlsx import write_range_xlsx

        data = write_range_xlsx(report, args.lang)
    else:  # html, pdf
        from hotline_kpi.reports.html import render_range_html

        data = render_range_html(report, args.lang)
        if args.format == "pdf":
            from hotline_kpi.reports.pdf import render_pdf

            data = render_pdf(data)
    write_output(data, args.output)
    return 0
