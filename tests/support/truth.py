"""Comparing an export with the simulator's ground truth, number by number."""

from __future__ import annotations

from typing import Any

import pytest

# The v1 agent fields the ground truth has always listed.
_V1_AGENT_FIELDS = (
    "answered",
    "handled",
    "handle_seconds",
    "dropped",
    "qa_reviews",
    "qa_accurate",
    "surveys",
    "score_sum",
)
# Reported per queue by the ground truth, overall only by the export (SPEC §5).
_OVERALL_ONLY = frozenset({"repeat_contact_rate", "first_contact_resolution"})


def _pairs(kpis: dict[str, Any]) -> dict[str, list[float]]:
    return {key: [entry["numerator"], entry["denominator"]] for key, entry in kpis.items()}


def _assert_close(got: Any, expected: Any, where: object) -> None:
    """Equal, numbers to 10^-6: seconds are floats on both sides (ms / 1000, µs / 10^6)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) >= set(expected), (where, got, expected)
        for key, value in expected.items():
            _assert_close(got[key], value, (where, key))
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected), (where, got, expected)
        for index, value in enumerate(expected):
            _assert_close(got[index], value, (where, index))
    elif expected is None or isinstance(expected, str | bool):
        assert got == expected, (where, got, expected)
    else:
        assert got == pytest.approx(expected, rel=0, abs=1e-6), (where, got, expected)


def assert_matches_truth(report: dict[str, Any], truth: dict[str, Any]) -> None:
    """Every numerator and denominator, overall, per queue, per agent and per ticket kind; for
    v2 traffic also every volume (by reason too) and each agent's state time."""
    overall = _pairs(report["overall"])
    queues = {queue: _pairs(kpis) for queue, kpis in report["queues"].items()}
    assert report["volumes"]["overall"]["offered"] == truth["offered"]
    kinds = {kind: [e["numerator"], e["denominator"]] for kind, e in report["ticket_kinds"].items()}
    assert kinds == truth["ticket_kinds"]
    if "volumes" not in truth:  # v1 traffic
        assert overall == truth["overall"]
        assert queues == truth["queues"]
        agents = {a["agent_id"]: {f: a[f] for f in _V1_AGENT_FIELDS} for a in report["agents"]}
        assert agents == truth["agents"]
        return
    _assert_close(overall, truth["overall"], "overall")
    assert set(queues) == set(truth["queues"])
    for queue, expected in truth["queues"].items():
        wanted = {key: value for key, value in expected.items() if key not in _OVERALL_ONLY}
        _assert_close(queues[queue], wanted, queue)
    assert report["volumes"]["overall"] == {
        **report["volumes"]["overall"],
        **truth["volumes"]["overall"],
    }
    for queue, expected in truth["volumes"]["queues"].items():
        got = report["volumes"]["queues"][queue]
        _assert_close(got, expected, ("volumes", queue))
    agents = {agent["agent_id"]: agent for agent in report["agents"]}
    assert set(agents) == set(truth["agents"])
    for agent_id, expected in truth["agents"].items():
        got = agents[agent_id]
        for key, value in expected.items():
            if key != "kpis":
                _assert_close(got[key], value, (agent_id, key))
                continue
            for name, (numerator, denominator) in value.items():
                entry = got[name]
                if isinstance(entry, dict):  # occupancy, utilisation, not-ready share
                    pair = [entry["numerator"], entry["denominator"]]
                    _assert_close(pair, [numerator, denominator], (agent_id, name))
                else:  # a bare value
                    want = numerator / denominator if denominator else None
                    _assert_close(entry, want, (agent_id, name))
