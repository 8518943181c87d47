"""The demo's live view: every KPI against its target, readable in an 80-column terminal."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from hotline_kpi.config import load_settings
from hotline_kpi.demo import kpi_table
from hotline_kpi.metrics.export import MeasureCounts

GOLDEN = Path(__file__).parent.parent / "golden" / "demo-view.ansi"


def rendered(console: Console) -> Console:
    """A slipping queue, a fine one and an empty one, printed on ``console``."""
    slipping = MeasureCounts(
        requests=100,
        answered=80,
        within_threshold=70,
        abandoned=20,
        handled=80,
        wait_us=80 * 30_000_000,
        dropped=1,
        qa_reviews=10,
        qa_accurate=9,
        surveys=5,
        satisfied=4,
        tickets_settled=3,
        tickets_on_time=3,
    )
    fine = MeasureCounts(requests=100, answered=99, within_threshold=95, abandoned=1, handled=99)
    overall = MeasureCounts()
    overall.add(slipping)
    overall.add(fine)
    queues = {"fault_repair": slipping, "billing": fine, "empty": MeasureCounts()}
    console.print(kpi_table(overall, queues, load_settings(None), "10000 热线 KPI"))
    return console


def test_the_live_table_fits_80_columns_and_colours_misses_red() -> None:
    console = rendered(Console(width=80, record=True, color_system="truecolor"))
    text = console.export_text(clear=False)
    assert "…" not in text
    assert "80.0" in text and "99.0" in text and "fault_repair" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    html = console.export_html(inline_styles=True)
    assert "color: #ff0000" in html or "color: #800000" in html  # a missed target is red
    assert "color: #008000" in html  # a met target is green


def test_the_live_view_is_unchanged_byte_for_byte() -> None:
    """Heads, number formats and colours come from the KPI catalogue now: the same bytes as
    when they were written out in demo.py. Re-record deliberately, after checking the change:

        HOTLINE_KPI_RECORD_GOLDEN=1 .venv/bin/pytest tests/unit/test_demo.py
    """
    console = Console(width=80, record=True, color_system="truecolor", force_terminal=True)
    view = rendered(console).export_text(styles=True).encode()
    if os.environ.get("HOTLINE_KPI_RECORD_GOLDEN"):
        GOLDEN.write_bytes(view)
    assert view == GOLDEN.read_bytes()
