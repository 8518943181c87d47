"""The demo's live view: every KPI against its target and the agents now, readable in an
80-column terminal."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from hotline_kpi.config import load_settings
from hotline_kpi.demo import AgentsNow, agents_line, agents_now, live_view
from hotline_kpi.metrics.export import MeasureCounts
from hotline_kpi.metrics.fold import StateChange

GOLDEN = Path(__file__).parent.parent / "golden" / "demo-view.ansi"


def change(
    event_id: str, agent: str, ts: int, state: str, reason: str | None = None
) -> StateChange:
    """One agent state change."""
    return StateChange(event_id, agent, ts, state, reason)


# Each agent's latest changes, as the store gives them: A1 and A2 at the same time (the greater
# event id is the later), A3 logged out (not shown), four agents away for three reasons.
AGENT_STATES = [
    change("e1", "A1", 10, "busy"),
    change("e2", "A1", 10, "wrap_up"),
    change("e4", "A2", 20, "ready"),
    change("e3", "A2", 20, "busy"),
    change("e5", "A3", 30, "logged_out"),
    change("e6", "A4", 40, "busy"),
    change("e7", "A5", 50, "not_ready", "training"),
    change("e8", "A6", 60, "not_ready", "lunch"),
    change("e9", "A7", 70, "not_ready", "lunch"),
    change("e10", "A8", 80, "not_ready", None),
]


def test_agents_are_counted_once_in_their_latest_state_and_logged_out_ones_not_shown() -> None:
    agents = agents_now(AGENT_STATES)
    assert agents.states == {"wrap_up": 1, "ready": 1, "logged_out": 1, "busy": 1, "not_ready": 4}
    assert agents.not_ready_reasons == (("lunch", 2), ("", 1), ("training", 1))
    line = agents_line(agents, 100).plain
    assert line == (
        "坐席 agents  ready 1  busy 1  wrap-up 1  not ready 4 (lunch 2, no reason 1, training 1)"
    )
    assert "logged" not in line


def test_not_ready_reasons_that_do_not_fit_are_summed_as_other_then_left_out() -> None:
    agents = AgentsNow({"not_ready": 9}, (("lunch", 4), ("break", 3), ("training", 2)))
    base = "坐席 agents  ready 0  busy 0  wrap-up 0  not ready 9"
    assert agents_line(agents, 83).plain == f"{base} (lunch 4, break 3, training 2)"
    assert agents_line(agents, 80).plain == f"{base} (lunch 4, break 3, other 2)"
    assert agents_line(agents, 75).plain == f"{base} (lunch 4, other 5)"
    assert agents_line(agents, 60).plain == base


def rendered(console: Console) -> Console:
    """A slipping queue, a fine one and an empty one, and the agents now, printed on
    ``console``."""
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
    agents = agents_now(AGENT_STATES)
    view = live_view(overall, queues, agents, load_settings(None), "10000 热线 KPI", console.width)
    console.print(view)
    return console


def test_the_live_table_fits_80_columns_and_colours_misses_red() -> None:
    console = rendered(Console(width=80, record=True, color_system="truecolor"))
    text = console.export_text(clear=False)
    assert "…" not in text
    assert "80.0" in text and "99.0" in text and "fault_repair" in text
    assert "ready 1  busy 1  wrap-up 1  not ready 4 (lunch 2, other 2)" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    html = console.export_html(inline_styles=True)
    assert "color: #ff0000" in html or "color: #800000" in html  # a missed target is red
    assert "color: #008000" in html  # a met target is green


def test_the_live_view_is_unchanged_byte_for_byte() -> None:
    """Heads, number formats and colours come from the KPI catalogue; the agents line follows
    the table. Re-record deliberately, after checking the change:

        HOTLINE_KPI_RECORD_GOLDEN=1 .venv/bin/pytest tests/unit/test_demo.py
    """
    console = Console(width=80, record=True, color_system="truecolor", force_terminal=True)
    view = rendered(console).export_text(styles=True).encode()
    if os.environ.get("HOTLINE_KPI_RECORD_GOLDEN"):
        GOLDEN.write_bytes(view)
    assert view == GOLDEN.read_bytes()


def test_a_restarted_demo_keys_callers_with_the_same_secret(tmp_path: Path) -> None:
    from hotline_kpi.cli import demo_caller_keys

    store = str(tmp_path / "demo.db")
    first, second = demo_caller_keys(store), demo_caller_keys(store)
    assert first.fingerprint == second.fingerprint
    assert first.key("13800138000") == second.key("+86 138-0013-8000")
    key_file = tmp_path / "demo.db.demo-caller-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert demo_caller_keys(str(tmp_path / "other.db")).fingerprint != first.fingerprint
