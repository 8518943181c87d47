"""Monthly reports for managers: XLSX workbook, printable HTML and PDF with charts.

Every figure is drawn from one dict: the SPEC §5 JSON export of the month, extended by
:func:`extend_report` with what the charts and lists need (distributions, the survey-factor
quadrant, the overdue work orders, the bottom performers, the previous month). The renderers
(:mod:`.xlsx`, :mod:`.html`, :mod:`.pdf`) only lay that dict out; none of them reads the store.
"""

from hotline_kpi.reports.data import extend_report
from hotline_kpi.reports.render import build_report, export_document, run_export

__all__ = ["build_report", "export_document", "extend_report", "run_export"]
