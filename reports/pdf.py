"""The printable report as PDF: WeasyPrint lays out the HTML report (fonts embedded)."""

from __future__ import annotations

import logging


def render_pdf(html: str) -> bytes:
    """The PDF bytes of a report page from :func:`hotline_kpi.reports.html.render_html`."""
    # WeasyPrint logs its steps at INFO, some while it is imported (its default stylesheets),
    # and fontTools each subsetting step: quieten both before the import, keep errors.
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from weasyprint import HTML

    document: bytes = HTML(string=html).write_pdf()
    return document
