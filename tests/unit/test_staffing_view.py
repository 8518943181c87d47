"""The ``staffing`` table a supervisor reads (issue 16): whole in 80 columns, shortfall marked.

Rendered at 80 columns on a simulated month (``simulate --month 2026-10 --calls-per-day 400
--seed 3`` replayed into a store): no header word or cell is cut, every row keeps its cells in
order, a short interval carries ▲ as well as its colour, and ``--format csv|json`` still print
the analysis' machine rows unchanged.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hotline_kpi import staffing as staffing_command
from hotline_kpi.cli import main
from hotline_kpi.config import Settings, load_settings
from hotline_kpi.metrics.staffing import (
    SlotRow,
    StaffingReport,
    StaffingSettings,
    View,
    analyse_staffing,
)
from hotline_kpi.staffing import (
    month_calls,
    month_period,
    print_staffing,
    run_staffing,
    staffing_settings,
    staffing_tables,
)
from tests.support.cli import run_cli

MONTH = "2026-10"
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
VIEWS: tuple[View, ...] = ("intervals", "hour_weekday", "backtest")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the simulated October 2026 of 400 calls a day (seed 3)."""
    where = tmp_path_factory.mktemp("staffing-view")
    for args in (
        (
            (
                "simulate",
                "--month",
                MONTH,
                "--calls-per-day",
                "400",
                "--seed",
                "3",
                "--event-model",
                "v1",
            ),
            ("--output", "x.jsonl"),
        ),
        (("replay", "x.jsonl", "--store", "s.db"), ()),
    ):
        result = run_cli(*args[0], *args[1], cwd=where, env=ENV, timeout=300)
        assert result.returncode == 0, result.stderr
    return where / "s.db"


@pytest.fixture(scope="module")
def month(store: Path) -> tuple[StaffingReport, StaffingSettings, Settings]:
    """The month's analysis, as the command computes it."""
    settings = load_settings(None, store=str(store))
    analysis = staffing_settings(settings)
    calls = month_calls(str(store), settings, MONTH, None)
    return analyse_staffing(calls, analysis, period=month_period(MONTH)), analysis, settings


def render(
    report: StaffingReport, view: View, settings: StaffingSettings, *, wide: bool = False
) -> str:
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    print_staffing(console, report, view, settings, month=MONTH, wide=wide)
    return console.export_text()


def cells(table: Table) -> Iterator[list[str]]:
    """The plain text of each body row's cells."""
    columns = [
        [str(Text.from_markup(c) if isinstance(c, str) else c) for c in column.cells]
        for column in table.columns
    ]
    yield from (list(row) for row in zip(*columns, strict=True))


def assert_whole(text: str, tables: list[Table]) -> None:
    """No cut header word or cell: no ellipsis, every header word and row present in order."""
    assert "…" not in text
    lines = iter(text.splitlines())
    words = set(re.findall(r"\S+", text))
    for table in tables:
        for column in table.columns:
            for word in str(column.header).split():
                assert word in words, f"header word {word!r} cut or missing"
        for row in cells(table):
            wanted = [re.escape(cell) for cell in row if cell]
            pattern = re.compile(r"(^|\s)" + r"\s+".join(wanted) + r"(\s|$)")
            # Rows are printed in order: each is looked for after the previous one.
            assert any(pattern.search(line) for line in lines), f"row {row} cut or missing"


@pytest.mark.parametrize("view", VIEWS)
def test_the_table_fits_80_columns_with_no_header_or_value_cut(
    month: tuple[StaffingReport, StaffingSettings, Settings], view: View
) -> None:
    report, settings, _ = month
    text = render(report, view, settings)
    assert max(cell_len(line) for line in text.splitlines()) <= 80
    assert_whole(text, staffing_tables(report, view, settings, month=MONTH))


@pytest.mark.parametrize("view", VIEWS)
def test_wide_shows_every_column_whole_even_in_an_80_column_console(
    month: tuple[StaffingReport, StaffingSettings, Settings], view: View
) -> None:
    report, settings, _ = month
    text = render(report, view, settings, wide=True)
    tables = staffing_tables(report, view, settings, month=MONTH, wide=True)
    assert_whole(text, tables)
    narrow = staffing_tables(report, view, settings, month=MONTH)
    assert len(tables[0].columns) > len(narrow[0].columns)


def test_the_day_profile_reads_as_a_supervisor_says_it(
    month: tuple[StaffingReport, StaffingSettings, Settings],
) -> None:
    report, settings, _ = month
    text = render(report, "intervals", settings)
    queues = sorted({row.queue for row in report.intervals})
    for queue in queues:
        assert re.search(rf"^\s*{queue} · {MONTH} · Asia/Shanghai", text, re.M)
    for header in ("Interval", "Calls", "Handle", "time", "Needed", "MCR 90%", "SL 80%/20s"):
        assert header in text
    assert re.search(r"^ 08:00–08:15 ", text, re.M)
    assert re.search(r"^ 23:45–00:00 ", text, re.M)
    assert not re.search(r"\d\.\d{2,}", text), "raw rates or long decimals left in the table"


def test_short_intervals_carry_a_mark_besides_the_colour(
    month: tuple[StaffingReport, StaffingSettings, Settings],
) -> None:
    report, settings, _ = month
    text = render(report, "intervals", settings)
    body = [line for line in text.splitlines() if re.match(r"^ \d\d:\d\d–\d\d:\d\d ", line)]
    short = [row for row in report.intervals if row.shortfall and round(row.shortfall, 1) > 0]
    assert short, "the simulated month should have short intervals"
    assert sum("▲" in line for line in body) == len(short)
    table = staffing_tables(report, "intervals", settings, month=MONTH)[0]
    marked = [cell for cell in table.columns[-1].cells if isinstance(cell, Text)]
    assert {cell.style for cell in marked if "▲" in cell.plain} == {"bold red"}
    assert all(cell.style != "bold red" for cell in marked if "▲" not in cell.plain)


def slot(**changes: object) -> SlotRow:
    base = SlotRow(
        queue="billing",
        weekday=None,
        start="08:00",
        minutes=15,
        days=31,
        arrivals=310,
        arrival_rate_per_hour=40.0,
        mean_handle_seconds=207.4,
        mean_patience_seconds=59.6,
        abandons=12,
        offered_load_erlangs=2.304,
        agents_observed=2.5,
        agents_busy=1.9,
        agents_needed_manual_connection_rate=4,
        agents_needed_service_level=5,
        agents_needed_service_level_erlang_c=6,
        shortfall=2.5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def report_of(*rows: SlotRow) -> StaffingReport:
    return StaffingReport("Asia/Shanghai", 15, None, rows, rows, (), ())


def test_handle_time_in_minutes_and_seconds_and_calls_per_interval() -> None:
    rows = (
        slot(),
        slot(start="08:15", mean_handle_seconds=59.6, arrivals=1, shortfall=-0.44),
        slot(start="23:45", mean_handle_seconds=None, arrivals=0, shortfall=None),
    )
    text = render(report_of(*rows), "intervals", StaffingSettings())
    assert re.search(r"08:00–08:15\s+10\.0\s+3:27\s+4\s+5\s+2\.5\s+▲ \+2\.5", text)
    assert re.search(r"08:15–08:30\s+<0\.1\s+1:00\s+4\s+5\s+2\.5\s+−0\.4", text)
    assert re.search(r"23:45–00:00\s+0\s+—\s+4\s+5\s+2\.5\s+—", text)
    assert "short in 1 of 3 intervals; worst 08:00–08:15 (+2.5)" in " ".join(text.split())


def test_hour_by_weekday_rows_name_the_weekday_and_the_hour() -> None:
    text = render(
        report_of(slot(weekday=3, start="17:00", minutes=60)), "hour_weekday", StaffingSettings()
    )
    assert "Wed 17:00–18:00" in text


def run(store: Path, report: StaffingReport, monkeypatch: pytest.MonkeyPatch, *options: str) -> str:
    """What ``run_staffing`` prints for ``options`` (``key=value`` or a flag), analysis given."""
    monkeypatch.setattr(staffing_command, "month_sums", lambda *_: None)
    monkeypatch.setattr(staffing_command, "analyse_staffing", lambda *_, **__: report)
    args = argparse.Namespace(
        month=MONTH, queue=None, format="table", view="intervals", backtest=False, wide=False
    )
    for option in options:
        key, _, value = option.partition("=")
        setattr(args, key, value or True)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert run_staffing(load_settings(None, store=str(store)), args) == 0
    return out.getvalue()


@pytest.mark.parametrize("backtest", [False, True])
@pytest.mark.parametrize("view", ["intervals", "hour_weekday"])
def test_csv_and_json_keep_every_machine_column(
    store: Path,
    month: tuple[StaffingReport, StaffingSettings, Settings],
    monkeypatch: pytest.MonkeyPatch,
    view: View,
    backtest: bool,
) -> None:
    report, _, _ = month
    shown: View = "backtest" if backtest else view
    rows = report.to_rows(shown)
    options = (f"view={view}", *(("backtest",) if backtest else ()))
    printed_json = run(store, report, monkeypatch, "format=json", *options)
    assert (
        printed_json
        == json.dumps({"month": MONTH, "view": shown, "rows": rows}, ensure_ascii=False, indent=1)
        + "\n"
    )
    printed = list(csv.reader(io.StringIO(run(store, report, monkeypatch, "format=csv", *options))))
    assert printed[0] == list(rows[0])
    assert len(printed) == len(rows) + 1
    if not backtest:
        assert printed[0] == [f.name for f in fields(SlotRow)]
    assert printed[1] == ["" if v is None else str(v) for v in rows[0].values()]


def test_the_command_prints_the_wide_table_whole_in_80_columns(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    argv = ["staffing", "--month", MONTH, "--store", str(store), "--queue", "vip", "--wide"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert "Erlang C" in out and "Patience" in out and "Shortfall" in out


@pytest.mark.parametrize("output", ["table", "csv"])
def test_a_view_without_rows_says_why_instead_of_failing(
    store: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    ninety = StaffingReport("Asia/Shanghai", 90, None, (slot(minutes=90),), (), (), ())
    printed = run(store, ninety, monkeypatch, f"format={output}", "view=hour_weekday")
    assert printed.splitlines() == [
        "nothing to show in the hour_weekday view of 2026-10: the hour x weekday view needs an "
        "interval_minutes that divides an hour, got 90: use --view intervals"
    ]
