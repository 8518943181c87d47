"""The staffing analysis from the interval rollups (issue 17).

- On a simulated, shuffled fortnight that crosses a month boundary, replayed in small batches,
  the staffing sums and the analysis read from the rollups equal those read from the facts.
- The agents' side is the work done in the period: an answer just after the month's first
  midnight, of a leg queued before it, counts in the new month, by both readers.
- With the rollups built, the staffing of a month needs no row of the calls table.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from hotline_kpi.cli import main
from hotline_kpi.config import Settings
from hotline_kpi.metrics.months import month_bounds, month_period
from hotline_kpi.metrics.records import SlotSums
from hotline_kpi.metrics.rolled import RollupReader, reader_for
from hotline_kpi.metrics.staffing import AgentStates, analyse_staffing, staffing_settings
from hotline_kpi.metrics.store import SqliteStore, StoreReader
from tests.conftest import make_event
from tests.unit.test_rollups import _replay, _settings, _simulated, _stamp

MONTHS = ("2026-10", "2026-11")


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """A store of 14 simulated days from 25 October, replayed shuffled in batches of 500."""
    folder = tmp_path_factory.mktemp("fortnight")
    settings = _settings(folder)
    events = [json.loads(text) for text in _simulated(folder).read_text().splitlines()]
    store = _replay([event for event in events if "event_id" in event], range(0, 10**6, 500),
                    settings)  # fmt: skip
    store.close()
    return Path(settings.store), settings


def _sums(reader: StoreReader, settings: Settings, month: str) -> SlotSums:
    lo, hi = month_bounds(month, settings.zone)
    return reader.slot_sums(lo, hi, settings.timezone, settings.interval_minutes)


def test_the_staffing_read_from_the_rollups_equals_the_staffing_read_from_the_facts(
    fortnight: tuple[Path, Settings],
) -> None:
    path, settings = fortnight
    store = SqliteStore(path)
    try:
        rolled = reader_for(store, settings)
        assert isinstance(rolled, RollupReader)
        analysis = staffing_settings(settings)
        for month in MONTHS:
            from_rollups, from_facts = _sums(rolled, settings, month), _sums(store, settings, month)
            assert from_rollups == from_facts, month
            assert from_rollups.loads and from_rollups.work
            lo, hi = month_bounds(month, settings.zone)
            states = AgentStates(store.state_changes(lo, hi), store.watermark())
            assert states.changes  # v2 traffic: staffed agents, shared by answered legs
            for given, queue in ((states, None), (None, None), (states, "vip")):
                rolled_report = analyse_staffing(from_rollups, analysis, period=month_period(month),
                                                 states=given, queue=queue)  # fmt: skip
                facts_report = analyse_staffing(from_facts, analysis, period=month_period(month),
                                                states=given, queue=queue)  # fmt: skip
                assert rolled_report == facts_report, (month, given is None, queue)
                assert rolled_report.backtest_intervals
    finally:
        store.close()


def test_an_answer_after_midnight_of_a_leg_queued_the_month_before_counts_in_the_new_month(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    events = [  # queued 23:59:50 on 31 October (Shanghai), answered 00:00:10, ended 00:05:10
        make_event("call.queued", _stamp(-10), call_id="c", queue="tech"),
        make_event("call.answered", _stamp(10), call_id="c", queue="tech", agent_id="A1"),
        make_event("call.ended", _stamp(310), call_id="c", cause="agent_hangup"),
        # A November caller gives up after 30 s (a month without a queued call has no report).
        make_event("call.queued", _stamp(100), call_id="d", queue="tech"),
        make_event("call.abandoned", _stamp(130), call_id="d", queue="tech"),
    ]
    store = _replay(events, [1], settings)
    try:
        analysis = staffing_settings(settings)
        for reader in (reader_for(store, settings), store):
            october, november = (_sums(reader, settings, month) for month in MONTHS)
            assert [(load.requests, load.answered) for load in october.loads] == [(1, 1)]
            assert october.work == ()
            assert [(load.requests, load.abandoned) for load in november.loads] == [(1, 1)]
            assert [(w.agent, w.answers, w.busy_us) for w in november.work] == [
                ("A1", 1, 300_000_000)
            ]
            report = analyse_staffing(november, analysis, period=month_period("2026-11"))
            (row,) = report.intervals
            assert (row.start, row.arrivals) == ("00:00", 1)
            assert row.agents_observed == pytest.approx(1 / 30, abs=1e-3)
            assert row.agents_busy == pytest.approx(300 / 900 / 30, abs=1e-3)
            # October has the arrival and none of the agent's work.
            report = analyse_staffing(october, analysis, period=month_period("2026-10"))
            assert [(r.start, r.arrivals, r.agents_busy) for r in report.intervals] == [
                ("23:45", 1, 0.0)
            ]
    finally:
        store.close()


def _staffing_json(
    path: Path, month: str, *options: str, capsys: pytest.CaptureFixture[str]
) -> str:
    capsys.readouterr()
    assert main(["staffing", "--month", month, "--store", str(path), "--format", "json",
                 *options]) == 0  # fmt: skip
    return capsys.readouterr().out


def test_the_staffing_of_a_month_reads_no_call_when_the_rollups_are_built(
    fortnight: tuple[Path, Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, settings = fortnight
    path = tmp_path / "copy.db"
    with sqlite3.connect(source) as original, sqlite3.connect(path) as copy:
        original.backup(copy)
    views = (("--view", "intervals"), ("--view", "hour_weekday"), ("--backtest",))
    before = {(m, v): _staffing_json(path, m, *v, capsys=capsys) for m in MONTHS for v in views}
    assert all(json.loads(text)["rows"] for text in before.values())
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE calls RENAME TO calls_hidden")
    after = {(m, v): _staffing_json(path, m, *v, capsys=capsys) for m in MONTHS for v in views}
    assert after == before
    # Opening the store made a new, empty calls table: the facts have no call left to read.
    store = SqliteStore(path)
    try:
        lo, hi = month_bounds("2026-11", settings.zone)
        assert store.queued_calls(lo, hi) == []
        assert _sums(store, settings, "2026-11").loads == ()
    finally:
        store.close()


def test_sums_of_another_grid_are_refused_with_both_grids_named(
    fortnight: tuple[Path, Settings],
) -> None:
    path, settings = fortnight
    store = SqliteStore(path)
    try:
        sums = _sums(reader_for(store, settings), settings, "2026-11")
    finally:
        store.close()
    hourly = staffing_settings(settings.model_copy(update={"interval_minutes": 20}))
    with pytest.raises(ValueError, match="15-minute intervals in Asia/Shanghai"):
        analyse_staffing(sums, hourly)
