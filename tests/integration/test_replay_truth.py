"""End to end on the embedded store: simulated traffic → replay → export equals ground truth.

The simulator computes its ground truth from the calls it simulated, independently of the fold
and the store; every numerator and denominator of the export must equal it, with duplicates,
shuffled events, malformed lines, month boundaries and a DST change in the data.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hotline_kpi.ingest.callers import CallerKeys
from tests.support.truth import assert_matches_truth

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "hotline_kpi.cli"]


# SPEC §7: callers are keyed with this secret, so the repeat and resolution figures exist.
SECRET = "replay-truth secret"
ENV = {**os.environ, "HOTLINE_KPI_CALLER_KEY": SECRET}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False, env=ENV
    )
    assert result.returncode == 0, result.stderr
    return result


def export(month: str, cwd: Path, *extra: str) -> dict[str, Any]:
    result = cli("export", "--month", month, "--format", "json", *extra, cwd=cwd)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def replayed_month(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A simulated October with duplicates, shuffled calls and bad lines, replayed once."""
    work = tmp_path_factory.mktemp("month")
    cli(
        "simulate",
        "--month",
        "2026-10",
        "--calls-per-day",
        "400",
        "--seed",
        "11",
        "--duplicates",
        "0.03",
        "--shuffle",
        "--bad",
        "0.004",
        "--output",
        "events.jsonl",
        "--truth",
        "truth.json",
        cwd=work,
    )
    replay = cli("replay", "events.jsonl", cwd=work)
    truth = json.loads((work / "truth.json").read_text())
    return {"work": work, "truth": truth, "replay": replay}


def test_every_month_of_the_export_equals_the_ground_truth(replayed_month: dict[str, Any]) -> None:
    truth = replayed_month["truth"]
    assert set(truth["months"]) == {"2026-10", "2026-11"}  # reviews and tickets spill over
    for month, expected in truth["months"].items():
        report = export(month, replayed_month["work"])
        assert report["month"] == month
        assert report["timezone"] == "Asia/Shanghai"
        assert_matches_truth(report, expected)
    october = export("2026-10", replayed_month["work"])
    assert october["overall"]["manual_connection_rate"]["denominator"] > 5000
    assert datetime.fromisoformat(october["as_of"]) == datetime.fromisoformat(truth["watermark"])


def test_replay_prints_accepted_and_rejections_by_reason(replayed_month: dict[str, Any]) -> None:
    truth = replayed_month["truth"]
    out = replayed_month["replay"].stdout
    assert f"accepted {truth['accepted_events']} events" in out
    printed = {reason: int(count) for reason, count in re.findall(r"(\w+) (\d+)[,)]", out)}
    assert printed == truth["rejections"]
    assert set(truth["rejections"]) >= {"duplicate", "invalid_json", "not_an_object"}


def test_replaying_the_same_file_again_changes_nothing(replayed_month: dict[str, Any]) -> None:
    work = replayed_month["work"]
    before = {month: export(month, work) for month in ("2026-10", "2026-11")}
    resumed = cli("replay", "events.jsonl", cwd=work)
    assert resumed.stdout.startswith("accepted 0 events, rejected 0")  # resumes at the end
    again = cli("replay", "events.jsonl", "--from-start", cwd=work)
    assert "accepted 0 events" in again.stdout
    truth = replayed_month["truth"]
    # Read from the start, every valid line is now a duplicate; bad lines keep their reasons.
    duplicates = truth["accepted_events"] + truth["rejections"]["duplicate"]
    assert f"duplicate {duplicates}," in again.stdout
    after = {month: export(month, work) for month in ("2026-10", "2026-11")}
    assert after == before


def test_a_month_without_data_reports_no_data_not_zero(replayed_month: dict[str, Any]) -> None:
    report = export("2026-08", replayed_month["work"])
    assert report["agents"] == [] and report["queues"] == {}
    for entry in report["overall"].values():
        assert entry["value"] is None and entry["denominator"] == 0
        if "target" in entry:
            assert entry["met"] is None


def test_no_caller_number_in_clear_in_store_logs_or_exports(
    replayed_month: dict[str, Any],
) -> None:
    work = replayed_month["work"]
    events = (work / "events.jsonl").read_text()
    # Numbers long enough that their bytes cannot turn up by chance (a 4-digit "caller" can).
    callers = set(re.findall(r'"caller":"(\d{7,})"', events)) | {"13912345678"}
    assert len(callers) > 1000
    csv_out = cli("export", "--month", "2026-10", "--format", "csv", cwd=work).stdout
    json_out = json.dumps(export("2026-10", work))
    con = sqlite3.connect(work / "hotline-kpi.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    stored = b"".join(p.read_bytes() for p in work.glob("hotline-kpi.db*"))
    texts = [replayed_month["replay"].stderr, csv_out, json_out]
    for caller in callers:
        assert caller.encode() not in stored
        assert all(caller not in text for text in texts)
    # Nor their keys (HMACs, recomputed here): they never leave the store (SPEC §7).
    keys = CallerKeys(SECRET.encode())
    spelled = set(re.findall(r'"caller":"([^"]*)"', events))
    hashes = {key for key in map(keys.key, spelled) if key is not None}
    assert len(hashes) > 500
    assert all(key not in text for key in hashes for text in texts)
    assert "rejected invalid_json" in replayed_month["replay"].stderr  # rejections are logged


def test_csv_carries_the_same_numbers_as_json(replayed_month: dict[str, Any]) -> None:
    import csv
    import io

    work = replayed_month["work"]
    report = export("2026-10", work)
    rows = list(
        csv.DictReader(
            io.StringIO(cli("export", "--month", "2026-10", "--format", "csv", cwd=work).stdout)
        )
    )
    overall = {r["kpi"]: r for r in rows if r["scope"] == "overall"}
    for key, entry in report["overall"].items():
        assert float(overall[key]["numerator"]) == entry["numerator"]
        assert float(overall[key]["denominator"]) == entry["denominator"]  # seconds: floats
    billing = {r["kpi"]: r for r in rows if r["scope"] == "queue" and r["name"] == "billing"}
    assert (
        float(billing["service_level"]["value"])
        == report["queues"]["billing"]["service_level"]["value"]
    )


def test_month_boundaries_follow_the_configured_zone_across_dst(tmp_path: Path) -> None:
    (tmp_path / "ny.yaml").write_text("timezone: America/New_York\n")
    cli(
        "simulate",
        "--config",
        "ny.yaml",
        "--start",
        "2026-10-31",
        "--days",
        "2",
        "--calls-per-day",
        "1500",
        "--seed",
        "5",
        "--duplicates",
        "0.02",
        "--shuffle",
        "--output",
        "ny.jsonl",
        "--truth",
        "ny-truth.json",
        cwd=tmp_path,
    )
    cli("replay", "--config", "ny.yaml", "ny.jsonl", "--store", "ny.db", cwd=tmp_path)
    truth = json.loads((tmp_path / "ny-truth.json").read_text())
    assert truth["timezone"] == "America/New_York"
    assert {"2026-10", "2026-11"} <= set(truth["months"])
    for month, expected in truth["months"].items():
        report = export(month, tmp_path, "--config", "ny.yaml", "--store", "ny.db")
        assert report["timezone"] == "America/New_York"
        assert_matches_truth(report, expected)


def test_staffing_advice_and_backtest_come_from_the_same_store(
    replayed_month: dict[str, Any],
) -> None:
    work = replayed_month["work"]
    advice = json.loads(cli("staffing", "--month", "2026-10", "--format", "json", cwd=work).stdout)
    queues = {row["queue"] for row in advice["rows"]}
    assert queues == set(replayed_month["truth"]["months"]["2026-10"]["queues"])
    # One row per queue and 15-minute interval of the day that saw calls (nights may not).
    assert len(queues) * 72 < len(advice["rows"]) <= len(queues) * 96
    assert {row["minutes"] for row in advice["rows"]} == {15}
    backtest = json.loads(
        cli("staffing", "--month", "2026-10", "--backtest", "--format", "json", cwd=work).stdout
    )
    assert {row["queue"] for row in backtest["rows"]} == queues
    assert all(0 <= row["mae_service_level"] <= 1 for row in backtest["rows"])
    empty = cli("staffing", "--month", "2026-07", cwd=work).stdout
    assert empty.startswith("no calls for any queue in 2026-07")
