"""The demo's live view: every KPI against its target, readable in an 80-column terminal."""

from __future__ import annotations

from rich.console import Console

from hotline_kpi.config import load_settings
from hotline_kpi.demo import kpi_table
from hotline_kpi.metrics.export import Tallies


def test_the_live_table_fits_80_columns_and_colours_misses_red() -> None:
    settings = load_settings(None)
    slipping = Tallies(
        queued=100,
        answered=80,
        within_threshold=70,
        abandoned=20,
        short_abandoned=0,
        handled=80,
        wait_us=80 * 30_000_000,
    )
    fine = Tallies(queued=100, answered=99, within_threshold=95, abandoned=1, handled=99)
    overall = Tallies()
    overall.add(slipping)
    overall.add(fine)
    console = Console(width=80, record=True, color_system="truecolor")
    console.print(kpi_table(overall, {"fault_repair": slipping, "billing": fine}, settings, "t"))
    text = console.export_text(clear=False)
    assert "…" not in text
    assert "80.0" in text and "99.0" in text and "fault_repair" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    html = console.export_html(inline_styles=True)
    assert "color: #ff0000" in html or "color: #800000" in html  # a missed target is red
    assert "color: #008000" in html  # a met target is green
