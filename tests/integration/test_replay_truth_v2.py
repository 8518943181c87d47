"""End to end on the embedded store, v2 traffic (issue 14): a simulated month replayed by the CLI
equals the simulator's ground truth, with blocked legs left out of the counted requests
(``definitions.blocked_are_requests: false``): a month in Asia/Shanghai and in America/New_York,
and two days in America/New_York around the month's end, where agents' shifts cross it.

The same configuration file is given to ``simulate`` (whose ground truth reads the switch and the
zone from it) and to ``replay`` and ``export``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.cli import run_cli
from tests.support.truth import assert_matches_truth

pytestmark = pytest.mark.integration

# SPEC §7: callers are keyed with this secret, so the repeat and resolution figures exist.
ENV = {
    **{key: value for key, value in os.environ.items() if not key.startswith("HOTLINE_KPI_")},
    "HOTLINE_KPI_CALLER_KEY": "replay-truth v2 secret",
}


def cli(*args: str, cwd: Path) -> str:
    result = run_cli(*args, cwd=cwd, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def replay(work: Path, timezone: str, *window: str) -> dict[str, Any]:
    """Simulate ``window`` of v2 traffic in ``timezone`` and replay it; the ground truth."""
    (work / "config.yaml").write_text(
        f"timezone: {timezone}\ndefinitions: {{blocked_are_requests: false}}\n"
    )
    cli(
        "simulate",
        "--config",
        "config.yaml",
        *window,
        "--calls-per-day",
        "300",
        "--seed",
        "5",
        "--duplicates",
        "0.03",
        "--shuffle",
        "--output",
        "events.jsonl",
        "--truth",
        "truth.json",
        cwd=work,
    )
    cli("replay", "--config", "config.yaml", "events.jsonl", cwd=work)
    truth: dict[str, Any] = json.loads((work / "truth.json").read_text())
    return truth


def export(month: str, work: Path) -> dict[str, Any]:
    out = cli("export", "--config", "config.yaml", "--month", month, "--format", "json", cwd=work)
    report: dict[str, Any] = json.loads(out)
    return report


def logged_in_at(events: Path, moment: datetime) -> set[str]:
    """Agents whose state at ``moment`` (SPEC §3: latest change by ts, then event id) is any
    but ``logged_out``, read from the simulated events themselves."""
    changes: dict[str, dict[str, Any]] = {}
    for text in events.read_text().splitlines():
        event = json.loads(text)
        if event["type"] == "agent.state":
            changes[event["event_id"]] = event  # duplicates share their event id
    latest: dict[str, tuple[datetime, str, str]] = {}
    for event in changes.values():
        at = datetime.fromisoformat(event["ts"])
        if at <= moment:
            key = (at, event["event_id"], event["state"])
            latest[event["agent_id"]] = max(latest.get(event["agent_id"], key), key)
    return {agent for agent, (_, _, state) in latest.items() if state != "logged_out"}


@pytest.mark.parametrize(
    ("timezone", "window"),
    [
        ("Asia/Shanghai", ("--month", "2026-10")),
        ("America/New_York", ("--month", "2026-10")),
        # Agents on duty through local midnight: shifts cross the month boundary.
        ("America/New_York", ("--start", "2026-10-31", "--days", "2")),
    ],
    ids=["shanghai-month", "new-york-month", "new-york-across-the-boundary"],
)
def test_v2_traffic_without_blocked_requests_equals_the_ground_truth(
    timezone: str, window: tuple[str, ...], tmp_path: Path
) -> None:
    truth = replay(tmp_path, timezone, *window)
    assert truth["timezone"] == timezone
    assert {"2026-10", "2026-11"} <= set(truth["months"])
    for month, expected in truth["months"].items():
        report = export(month, tmp_path)
        assert report["month"] == month and report["timezone"] == timezone
        assert_matches_truth(report, expected)
    october = export("2026-10", tmp_path)
    overall = october["overall"]
    # The switch is in effect: blocked legs are requests (and in the blocked rate) but not
    # counted requests.
    blocked = october["volumes"]["overall"]["blocked"]
    assert blocked > 0
    assert overall["blocked_rate"]["numerator"] == blocked
    requests = october["volumes"]["overall"]["requests"]
    assert overall["manual_connection_rate"]["denominator"] <= requests - blocked
    assert overall["repeat_contact_rate"]["denominator"] > 0  # callers were keyed
    if window[0] == "--start":
        boundary = datetime(2026, 11, 1, tzinfo=ZoneInfo(timezone))
        crossing = logged_in_at(tmp_path / "events.jsonl", boundary)
        assert crossing, "no agent is on duty at the month boundary"
        november = export("2026-11", tmp_path)
        for report in (october, november):
            seconds = {a["agent_id"]: a["logged_in_seconds"] for a in report["agents"]}
            assert all(seconds.get(agent, 0) > 0 for agent in crossing), (report["month"], seconds)
