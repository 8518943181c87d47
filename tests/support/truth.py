"""Comparing an export with the simulator's ground truth, number by number."""

from __future__ import annotations

from typing import Any


def assert_matches_truth(report: dict[str, Any], truth: dict[str, Any]) -> None:
    """Every numerator and denominator, overall, per queue, per agent and per ticket kind."""

    def pairs(kpis: dict[str, Any]) -> dict[str, list[float]]:
        return {key: [entry["numerator"], entry["denominator"]] for key, entry in kpis.items()}

    assert pairs(report["overall"]) == truth["overall"]
    assert {queue: pairs(kpis) for queue, kpis in report["queues"].items()} == truth["queues"]
    assert report["volumes"]["overall"]["offered"] == truth["offered"]
    kinds = {kind: [e["numerator"], e["denominator"]] for kind, e in report["ticket_kinds"].items()}
    assert kinds == truth["ticket_kinds"]
    fields = (
        "answered",
        "handled",
        "handle_seconds",
        "dropped",
        "qa_reviews",
        "qa_accurate",
        "surveys",
        "score_sum",
    )
    agents = {a["agent_id"]: {f: a[f] for f in fields} for a in report["agents"]}
    assert agents == truth["agents"]
