"""Range reports (SPEC §5 ``export --from --to --by --queue``, issue 16): a range's periods add
up to its whole, a whole month's range is the month figure for figure, periods follow the zone's
daylight saving, ``--queue`` limits every scope, and a wrong range is a one-line usage error.

Stores are built as the golden export's is: the simulator's events replayed through the
pipeline (``tests/unit/test_export_golden.py``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hotline_kpi.cli import main
from hotline_kpi.config import load_settings
from hotline_kpi.errors import UsageError
from hotline_kpi.ingest.events import epoch_us
from hotline_kpi.metrics.catalogue import KPI_KEYS, Scope
from hotline_kpi.metrics.export import KpiFigures, range_request
from hotline_kpi.metrics.months import (
    MAX_PERIODS,
    local_time,
    parse_day,
    period_edges,
    today_in,
)
from hotline_kpi.metrics.store import SqliteStore

NEW_YORK = ZoneInfo("America/New_York")
HOUR_US = 3600 * 1_000_000


def _simulate_into(store: Path, *options: str, config: Path | None = None) -> None:
    events = store.with_suffix(f".{len(options)}.{abs(hash(options))}.jsonl")
    configured = ["--config", str(config)] if config else []
    # v1: today's pipeline knows only the v1 event types
    simulate = ["simulate", *options, "--seed", "7", "--event-model", "v1", *configured]
    assert main([*simulate, "--output", str(events)]) == 0
    assert main(["replay", str(events), "--store", str(store), *configured]) == 0


@pytest.fixture(scope="module")
def october(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated October 2026 in Asia/Shanghai, with duplicates and shuffled events."""
    store = tmp_path_factory.mktemp("range") / "store.db"
    _simulate_into(
        store, "--month", "2026-10", "--calls-per-day", "150", "--duplicates", "0.03", "--shuffle"
    )
    return store


@pytest.fixture(scope="module")
def new_york(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The two days of 2026 in America/New_York whose clocks change: 03-08 (23 hours) and
    11-01 (25 hours), simulated in that zone; returns the store and the config file."""
    folder = tmp_path_factory.mktemp("dst")
    config = folder / "hotline-kpi.yaml"
    config.write_text("timezone: America/New_York\n", encoding="utf-8")
    store = folder / "store.db"
    for day in ("2026-03-08", "2026-11-01"):
        _simulate_into(store, "--start", day, "--calls-per-day", "400", config=config)
    return store, config


def _export(store: Path, *options: str, fmt: str = "json", config: Path | None = None) -> Any:
    output = store.parent / f"out-{abs(hash(options))}.{fmt}"
    configured = ["--config", str(config)] if config else []
    assert main(["export", *options, "--format", fmt, "--output", str(output),
                 "--store", str(store), *configured]) == 0  # fmt: skip
    text = output.read_text(encoding="utf-8")
    return json.loads(text) if fmt == "json" else text


def _figures(kpis: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    return {key: (entry["numerator"], entry["denominator"]) for key, entry in kpis.items()}


def test_a_range_over_a_whole_month_is_the_month_figure_for_figure(october: Path) -> None:
    month = _export(october, "--month", "2026-10")
    ranged = _export(october, "--from", "2026-10-01", "--to", "2026-10-31")
    for key in ("timezone", "as_of", "thresholds", "overall", "queues", "agents",
                "ticket_kinds", "volumes"):  # fmt: skip
        assert ranged[key] == month[key], key
    assert month["volumes"]["overall"]["requests"] > 2000
    assert (ranged["from"], ranged["to"], ranged["by"], ranged["queue"]) == (
        "2026-10-01",
        "2026-10-31",
        "day",
        None,
    )
    # --month with --by is the same range, said as a month.
    by_month = _export(october, "--month", "2026-10", "--by", "day")
    assert by_month["month"] == "2026-10"
    assert by_month["periods"] == ranged["periods"]


def test_the_daily_periods_add_up_to_the_month_and_are_its_days(october: Path) -> None:
    month = _export(october, "--month", "2026-10")
    ranged = _export(october, "--from", "2026-10-01", "--to", "2026-10-31", "--by", "day")
    periods = ranged["periods"]
    assert len(periods) == 31
    assert periods[0]["start"] == "2026-10-01T00:00:00+08:00"
    assert periods[-1]["end"] == "2026-11-01T00:00:00+08:00"
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(periods))
    # Each day is the month export's daily figure for that day.
    for period, (day, daily) in zip(periods, month["daily"].items(), strict=True):
        assert period["start"].startswith(day)
        assert period["overall"] == daily
    # Numerators and denominators add up to the month's, overall and per queue.
    scopes = [("overall", None), *(("queues", name) for name in month["queues"])]
    for where, name in scopes:
        whole = month[where] if name is None else month[where][name]
        for key in whole:
            parts = [(p[where] if name is None else p[where][name])[key] for p in periods]
            assert sum(part["numerator"] for part in parts) == pytest.approx(
                whole[key]["numerator"], abs=1e-6
            ), (name, key)
            # Seconds of agent state time are floats: their sum may differ in the last bit.
            assert sum(part["denominator"] for part in parts) == pytest.approx(
                whole[key]["denominator"], abs=1e-6
            ), (name, key)
    for volume, count in month["volumes"]["overall"].items():
        if isinstance(count, dict):  # by reason
            for reason, amount in count.items():
                assert sum(p["volumes"]["overall"][volume][reason] for p in periods) == amount
        else:
            assert sum(p["volumes"]["overall"][volume] for p in periods) == count, volume


def test_hourly_and_interval_periods_add_up_to_the_days(october: Path) -> None:
    days = _export(october, "--from", "2026-10-05", "--to", "2026-10-06")
    hours = _export(october, "--from", "2026-10-05", "--to", "2026-10-06", "--by", "hour")
    intervals = _export(october, "--from", "2026-10-05", "--to", "2026-10-06", "--by", "interval")
    assert (len(hours["periods"]), len(intervals["periods"])) == (48, 192)
    assert hours["overall"] == days["overall"] == intervals["overall"]
    for index, day in enumerate(days["periods"]):
        for parts in (hours["periods"][24 * index : 24 * index + 24],
                      intervals["periods"][96 * index : 96 * index + 96]):  # fmt: skip
            for key in KPI_KEYS:
                assert (
                    sum(p["overall"][key]["denominator"] for p in parts)
                    == (day["overall"][key]["denominator"])
                )


@pytest.mark.parametrize(("day", "hours"), [("2026-03-08", 23), ("2026-11-01", 25)])
def test_a_daylight_saving_day_has_its_hours_with_the_right_figures(
    new_york: tuple[Path, Path], day: str, hours: int
) -> None:
    store, config = new_york
    report = _export(store, "--from", day, "--to", day, "--by", "hour", config=config)
    periods = report["periods"]
    assert len(periods) == hours
    starts = [datetime.fromisoformat(p["start"]) for p in periods]
    ends = [datetime.fromisoformat(p["end"]) for p in periods]
    # Every hourly period is one real hour long, the offsets say which side of the change.
    assert all(
        (end - start).total_seconds() == 3600 for start, end in zip(starts, ends, strict=True)
    )
    walls = [p["start"][11:16] for p in periods]
    if hours == 25:
        assert walls.count("01:00") == 2
        assert [p["start"] for p in periods[1:3]] == [
            f"{day}T01:00:00-04:00",
            f"{day}T01:00:00-05:00",
        ]
    else:
        assert "02:00" not in walls
        assert [p["start"] for p in periods[1:3]] == [
            f"{day}T01:00:00-05:00",
            f"{day}T03:00:00-04:00",
        ]
    # The figures of each hour are those the month export's read gives for that hour.
    settings = load_settings(str(config), store=str(store))
    reader = SqliteStore(store)
    try:
        figures = KpiFigures(reader, settings)
        for period, start, end in zip(periods, starts, ends, strict=True):
            overall, queues = figures.scopes(epoch_us(start), epoch_us(end))
            assert period["overall"] == overall.kpis(settings.targets)
            for name, kpis in period["queues"].items():
                if name in queues:
                    assert kpis == queues[name].kpis(settings.targets, Scope.QUEUE)
        whole, _ = figures.scopes(epoch_us(starts[0]), epoch_us(ends[-1]))
    finally:
        reader.close()
    assert report["overall"] == whole.kpis(settings.targets)
    assert whole.queued > 100
    assert sum(p["volumes"]["overall"]["requests"] for p in periods) == whole.queued


def test_queue_limits_every_scope_to_that_queue(october: Path) -> None:
    whole = _export(october, "--from", "2026-10-01", "--to", "2026-10-31")
    name = sorted(whole["queues"])[0]
    limited = _export(october, "--from", "2026-10-01", "--to", "2026-10-31", "--queue", name)
    assert limited["queue"] == name
    assert list(limited["queues"]) == [name]
    # The limited overall has the overall-only KPIs too (caller keys, agent states: no data).
    assert {key: limited["overall"][key] for key in whole["queues"][name]} == whole["queues"][name]
    assert limited["queues"][name] == whole["queues"][name]
    assert limited["volumes"]["queues"][name] == whole["volumes"]["queues"][name]
    for limited_day, day in zip(limited["periods"], whole["periods"], strict=True):
        queue_day = day["queues"][name]
        assert {key: limited_day["overall"][key] for key in queue_day} == queue_day
    # Its agents' figures are their answers in that queue only.
    answered = sum(agent["answered"] for agent in limited["agents"])
    assert answered == whole["queues"][name]["drop_rate"]["denominator"]
    everywhere = {agent["agent_id"]: agent["answered"] for agent in whole["agents"]}
    assert all(agent["answered"] <= everywhere[agent["agent_id"]] for agent in limited["agents"])
    assert answered < sum(everywhere.values())
    # A queue with nothing in the range gives a report with no data, not an error.
    nothing = _export(october, "--from", "2026-10-01", "--to", "2026-10-01", "--queue", "nope")
    assert nothing["overall"]["manual_connection_rate"]["value"] is None


def test_the_range_csv_has_a_row_per_period_scope_and_kpi(october: Path) -> None:
    report = _export(october, "--from", "2026-10-05", "--to", "2026-10-06", "--by", "hour")
    text = _export(october, "--from", "2026-10-05", "--to", "2026-10-06", "--by", "hour",
                   fmt="csv")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(text)))
    hourly = [row for row in rows if row["period"] == "hour"]
    per_period = len(report["overall"]) + sum(len(kpis) for kpis in report["queues"].values())
    assert len(hourly) == 48 * per_period
    first = report["periods"][0]
    (row,) = [
        r for r in hourly
        if r["start"] == first["start"] and r["scope"] == "overall"
        and r["kpi"] == "manual_connection_rate"
    ]  # fmt: skip
    entry = first["overall"]["manual_connection_rate"]
    assert (row["end"], row["numerator"], row["denominator"]) == (
        first["end"],
        str(entry["numerator"]),
        str(entry["denominator"]),
    )
    assert row["revision"] == report["revision"]
    whole = [row for row in rows if row["period"] == "range"]
    assert {row["scope"] for row in whole} >= {"overall", "queue", "agent"}
    assert whole[0]["start"] == "2026-10-05T00:00:00+08:00"


def test_a_month_by_the_quarter_hour_has_2976_periods(october: Path) -> None:
    report = _export(october, "--month", "2026-10", "--by", "interval")
    assert len(report["periods"]) == 2976
    assert report["interval_minutes"] == 15
    assert (
        sum(p["volumes"]["overall"]["requests"] for p in report["periods"])
        == (report["volumes"]["overall"]["requests"])
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--from", "2026-10-05", "--to", "2026-10-01"], "--to 2026-10-01 is before --from"),
        (["--from", "2026-10-32", "--to", "2026-10-01"], "--from must be a date YYYY-MM-DD"),
        (["--from", "5 Oct", "--to", "2026-10-01"], "--from must be a date YYYY-MM-DD"),
        (["--month", "2026-10", "--from", "2026-10-01", "--to", "2026-10-02"], "give --month"),
        (["--from", "2026-10-01"], "--from needs --to"),
        (["--to", "2026-10-01"], "--to needs --from"),
        ([], "give --month YYYY-MM, or --from"),
        (["--from", "2026-01-01", "--to", "2026-12-31", "--by", "interval"], "35040 periods"),
        (["--from", "2026-10-01", "--to", "2026-10-01", "--queue", ""], "--queue is empty"),
    ],
)
def test_a_wrong_range_is_a_one_line_usage_error(
    october: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    output = tmp_path / "out"
    assert main(["export", *options, "--store", str(october), "--output", str(output)]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert error.count("\n") == 1 and "Traceback" not in error
    assert not output.exists()


def test_today_and_yesterday_are_local_days_of_the_configured_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    # 16:30 UTC on Oct 31 is already Nov 1 in Shanghai.
    now = epoch_us(datetime.fromisoformat("2026-10-31T16:30:00+00:00"))
    today = today_in(shanghai, now)
    assert today == date(2026, 11, 1)
    assert parse_day("yesterday", "--from", today) == date(2026, 10, 31)
    request = range_request(None, "yesterday", "yesterday", None, None, today)
    assert request is not None
    assert (request.first, request.last, request.by) == (date(2026, 10, 31),) * 2 + ("day",)
    assert range_request(None, "today", "today", "hour", None, today).first == today  # type: ignore[union-attr]
    # --month alone stays the month export; with --by or --queue it is the month's range.
    assert range_request("2026-10", None, None, None, None, today) is None
    assert range_request("2026-10", None, None, None, "billing", today) is not None


def test_the_range_cli_reads_today_from_the_injected_clock(october: Path, tmp_path: Path) -> None:
    from argparse import Namespace

    from hotline_kpi.reports.render import run_export

    now = epoch_us(datetime.fromisoformat("2026-10-06T03:00:00+08:00"))
    output = tmp_path / "yesterday.json"
    args = Namespace(month=None, start="yesterday", end="yesterday", by=None, queue=None,
                     format="json", output=str(output), lang="zh")  # fmt: skip
    settings = load_settings(None, store=str(october))
    assert run_export(settings, args, now_us=lambda: now) == 0
    report = json.loads(output.read_text(encoding="utf-8"))
    assert (report["from"], report["to"], len(report["periods"])) == ("2026-10-05",) * 2 + (1,)


def test_period_edges_follow_daylight_saving_and_the_bound() -> None:
    fall = period_edges(date(2026, 11, 1), date(2026, 11, 1), "hour", NEW_YORK, 15)
    assert len(fall) - 1 == 25
    assert all(b - a == HOUR_US for a, b in itertools.pairwise(fall))
    assert [local_time(edge, NEW_YORK) for edge in fall[1:4]] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    spring = period_edges(date(2026, 3, 8), date(2026, 3, 8), "interval", NEW_YORK, 15)
    assert len(spring) - 1 == 23 * 4
    days = period_edges(date(2026, 3, 1), date(2026, 3, 31), "day", NEW_YORK, 15)
    lengths = {b - a for a, b in itertools.pairwise(days)}
    assert lengths == {23 * HOUR_US, 24 * HOUR_US}
    # Lord Howe moves its clocks by half an hour: 02:00 never happens, so the hour from 01:00
    # runs to 03:00, an hour and a half.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    edges = period_edges(date(2026, 10, 4), date(2026, 10, 4), "hour", lord_howe, 15)
    assert len(edges) - 1 == 23
    assert sorted({b - a for a, b in itertools.pairwise(edges)}) == [
        HOUR_US,
        HOUR_US * 3 // 2,
    ]
    # Havana goes back from 01:00 to midnight: midnight's hour happens twice, and the next
    # March its midnight never happens (the day starts at 01:00).
    havana = ZoneInfo("America/Havana")
    back = period_edges(date(2026, 11, 1), date(2026, 11, 1), "hour", havana, 15)
    assert [local_time(edge, havana) for edge in back[:3]] == [
        "2026-11-01T00:00:00-04:00",
        "2026-11-01T00:00:00-05:00",
        "2026-11-01T01:00:00-05:00",
    ]
    assert len(back) - 1 == 25
    assert len(period_edges(date(2026, 11, 1), date(2026, 11, 1), "day", havana, 15)) == 2
    forward = period_edges(date(2026, 3, 8), date(2026, 3, 8), "hour", havana, 15)
    assert local_time(forward[0], havana) == "2026-03-08T01:00:00-04:00"
    assert len(forward) - 1 == 23
    with pytest.raises(UsageError, match=f"at most {MAX_PERIODS}"):
        period_edges(date(2026, 1, 1), date(2026, 12, 31), "interval", NEW_YORK, 15)


def test_the_range_csv_keeps_a_name_with_a_line_separator_on_its_row() -> None:
    from hotline_kpi.metrics.export import to_range_csv

    kpis = {"service_level": {"value": None, "numerator": 0, "denominator": 0}}
    name = "=line\u2028separated"
    report = {
        "as_of": None,
        "revision": "r",
        "by": "day",
        "overall": kpis,
        "queues": {name: kpis},
        "ticket_kinds": {},
        "agents": [],
        "periods": [{"start": "s", "end": "e", "overall": kpis, "queues": {name: kpis}}],
    }
    rows = list(csv.reader(io.StringIO(to_range_csv(report), newline="")))
    assert [row[:5] for row in rows[1:]] == [
        ["range", "s", "e", "overall", ""],
        ["range", "s", "e", "queue", "'" + name],
        ["day", "s", "e", "overall", ""],
        ["day", "s", "e", "queue", "'" + name],
    ]


def test_a_range_is_exported_in_every_format_from_the_command_line(
    october: Path, tmp_path: Path
) -> None:
    # The workbook and the printable page are laid out from the range JSON, as the month's are.
    from openpyxl import load_workbook

    days = ["--from", "2026-10-01", "--to", "2026-10-03"]
    workbook = tmp_path / "range.xlsx"
    assert main(["export", *days, "--format", "xlsx", "--output", str(workbook),
                 "--store", str(october)]) == 0  # fmt: skip
    sheets = load_workbook(workbook, read_only=True).sheetnames
    assert len(sheets) >= 4, sheets
    page = _export(october, *days, "--by", "hour", fmt="html")
    report = _export(october, *days, "--by", "hour")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert report["revision"] in page
