"""The v2 simulated stream: the same seed makes the same bytes, every line of a type the
committed schema knows validates against it, and the legs, contacts and agents' states tell one
consistent story (an agent answers only while logged in; one call.offered per contact).

The schema is checked with a small validator of the keywords it uses (no jsonschema here); every
type, the v2 ones included, is in the committed schema now.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from hotline_kpi.cli import main
from hotline_kpi.config import load_settings
from hotline_kpi.simulate import local_midnight_ms
from hotline_kpi.simulation.clock import DAY_MS
from hotline_kpi.simulation.simulator import Simulator
from hotline_kpi.simulation.traffic import Scenario

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "ingest" / "schema" / "events.schema.json").read_text()
)
V2_ONLY = {"call.blocked", "call.left", "call.wrapped", "agent.state"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def simulate(
    scenario: str = "normal", seed: int = 3, days: float = 1.5, **options: Any
) -> tuple[list[bytes], dict[str, Any]]:
    """Lines and ground truth of ``days`` from 31 Oct 2026 (a month boundary inside)."""
    settings = load_settings(None)
    simulator = Simulator(settings, Scenario.named(scenario, 600), seed, **options)
    start = local_midnight_ms(date(2026, 10, 31), settings.zone)
    lines = [line for _, line in simulator.stream(start, start + round(days * DAY_MS))]
    return lines, simulator.truth.to_json()


@pytest.fixture(scope="module")
def spike() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines, truth = simulate("repeat-spike", days=2)
    return [json.loads(line) for line in lines], truth


def test_the_same_seed_gives_the_same_bytes_and_truth_and_another_seed_does_not() -> None:
    first = simulate(duplicates=0.02, shuffle=True, bad=0.003)
    again = simulate(duplicates=0.02, shuffle=True, bad=0.003)
    assert first[0] == again[0]
    assert json.dumps(first[1], sort_keys=True) == json.dumps(again[1], sort_keys=True)
    other = simulate(seed=4, duplicates=0.02, shuffle=True, bad=0.003)
    assert other[0] != first[0]


def test_v1_traffic_has_only_the_types_of_before_and_v2_has_them_all(
    spike: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    v1_lines, v1_truth = simulate(event_model="v1")
    v1_types = {json.loads(line)["type"] for line in v1_lines}
    assert not v1_types & V2_ONLY
    assert "event_model" not in v1_truth
    v2_types = {event["type"] for event in spike[0]}
    assert v2_types >= V2_ONLY | v1_types


def _valid(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """What is wrong with ``value`` under ``schema`` (the keywords the committed schema uses)."""
    if "$ref" in schema:
        return _valid(value, SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]], where)
    if "anyOf" in schema:
        found = [_valid(value, option, where) for option in schema["anyOf"]]
        return [] if any(not errors for errors in found) else [f"{where}: no anyOf matches"]
    errors: list[str] = []
    kinds = {"string": str, "object": dict, "boolean": bool, "null": type(None)}
    kind = schema.get("type")
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = kind is None or isinstance(value, kinds[kind])
    if not ok:
        return [f"{where}: {value!r} is not {kind}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 1 << 30):
            errors.append(f"{where}: length {len(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time" and not RFC3339.match(value):
            errors.append(f"{where}: {value!r} is not RFC 3339")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        errors += [
            f"{where}: {key} missing" for key in schema.get("required", ()) if key not in value
        ]
        for key, item in value.items():
            if key in schema.get("properties", {}):
                errors += _valid(item, schema["properties"][key], f"{where}.{key}")
            for pattern, sub in schema.get("patternProperties", {}).items():
                if re.search(pattern, key):
                    errors += _valid(item, sub, f"{where}.{key}")
            if "propertyNames" in schema:
                errors += _valid(key, schema["propertyNames"], f"{where} key")
    return errors


def test_every_line_of_a_type_the_schema_knows_validates_against_it(
    spike: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    mapping = SCHEMA["discriminator"]["mapping"]
    left_out: Counter[str] = Counter()
    errors: list[str] = []
    for event in spike[0]:
        if event["type"] not in mapping:
            left_out[event["type"]] += 1
            continue
        errors += _valid(event, {"$ref": mapping[event["type"]]}, event["type"])
    assert errors[:5] == []
    assert left_out == Counter()  # the committed schema knows every type the simulator writes


def test_legs_contacts_and_agent_states_tell_one_story(
    spike: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    events, truth = spike
    offered: Counter[str] = Counter()
    legs: dict[str, set[str]] = defaultdict(set)
    states: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event in events:
        if event["type"] == "agent.state":
            states[event["agent_id"]].append((event["ts"], event["state"]))
        elif event["type"].startswith("call.") and "contact_id" in event:
            legs[event["contact_id"]].add(event["call_id"])
            offered[event["contact_id"]] += event["type"] == "call.offered"
    assert max(len(calls) for calls in legs.values()) > 1  # transfers and overflows
    assert set(offered.values()) == {1}  # call.offered once per contact, on its first leg
    # An agent answers at the instant it turns busy, having logged in before.
    for timeline in states.values():
        timeline.sort(key=lambda change: _instant(change[0]))
    for event in events:
        if event["type"] != "call.answered":
            continue
        timeline = states[event["agent_id"]]
        at = _instant(event["ts"])
        before = [state for ts, state in timeline if _instant(ts) <= at]
        assert before and before[-1] == "busy", (event, before[-3:])
    callers = {event.get("caller") for event in events if event["type"] == "call.offered"}
    assert any(c and c.startswith("+86 ") for c in callers)
    assert any(c and c.startswith("0086") for c in callers)
    assert any(c and c.startswith("(0") for c in callers)
    assert {"anonymous", ""} <= callers
    holds = [e["hold_seconds"] for e in events if "hold_seconds" in e]
    assert 0 in holds and any(isinstance(h, float) and h * 2 == int(h * 2) for h in holds)
    # The spike: repeat and blocked calls far above what the normal hotline sees.
    normal = simulate("normal", days=2)[1]
    for name, expected in (("repeat_contact_rate", 0.25), ("blocked_rate", 0.02)):
        spiked = _ratio(truth, name)
        assert spiked > expected and spiked > 1.5 * _ratio(normal, name), name


def test_the_truth_counts_the_outcomes_the_stream_carries(
    spike: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    events, truth = spike
    volumes = [month["volumes"]["overall"] for month in truth["months"].values()]
    by_type = Counter(event["type"] for event in events)
    assert sum(v["blocked"] for v in volumes) == by_type["call.blocked"]
    assert sum(v["left"] for v in volumes) == by_type["call.left"]
    assert sum(v["answered"] for v in volumes) == by_type["call.answered"]
    assert sum(v["offered"] for v in volumes) == by_type["call.offered"]
    reasons = Counter(e["reason"] for e in events if e["type"] == "call.left")
    merged: Counter[str] = Counter()
    for v in volumes:
        merged.update(v["left_by_reason"])
    assert +merged == reasons
    assert truth["accepted_events"] == len(events)


def _instant(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _ratio(truth: dict[str, Any], name: str) -> float:
    numerator = sum(month["overall"][name][0] for month in truth["months"].values())
    denominator = sum(month["overall"][name][1] for month in truth["months"].values())
    return numerator / denominator


def test_blocked_legs_leave_the_counted_requests_when_configured_so() -> None:
    counted = simulate("repeat-spike", days=1)[1]
    not_counted = simulate("repeat-spike", days=1, blocked_are_requests=False)[1]
    assert not_counted["definitions"]["blocked_are_requests"] is False
    for name, month in counted["months"].items():
        other = not_counted["months"][name]
        blocked = month["volumes"]["overall"]["blocked"]
        for kpi in ("manual_connection_rate", "service_level", "abandon_rate"):
            assert other["overall"][kpi][1] == month["overall"][kpi][1] - blocked
        assert other["overall"]["blocked_rate"] == month["overall"]["blocked_rate"]


def test_the_command_simulates_the_spike_in_v2_with_its_truth(tmp_path: Path) -> None:
    events, truth = tmp_path / "e.jsonl", tmp_path / "t.json"
    window = ("--start", "2026-10-01", "--days", "0.2", "--calls-per-day", "2000")
    args = ("simulate", *window, "--scenario", "repeat-spike")
    assert main([*args, "--output", str(events), "--truth", str(truth)]) == 0
    written = json.loads(truth.read_text())
    assert written["event_model"] == "v2"
    assert any(b'"type":"call.blocked"' in line for line in events.read_bytes().splitlines())
