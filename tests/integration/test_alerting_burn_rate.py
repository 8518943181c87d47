"""KPI burn-rate alerts under Prometheus's own evaluator (``promtool test rules``).

For each KPI alert of the committed rules file: simulated counters for a real breach that
recovers, a short blip and a quiet queue, and an *oracle* in plain Python that says, minute by
minute, whether the alert must be firing. The oracle uses the burn-rate model's numbers
(:mod:`hotline_kpi.alerts.slo`: thresholds, traffic guards), never the PromQL, so a wrong
expression in the rules file disagrees with it. Minutes where the oracle is within a small margin
of a threshold, or changes its mind nearby, are not checked (Prometheus extrapolates
``increase`` at the edges of the data).

No server is involved, but the cases take about half a minute in all, so they live here rather
than with the unit tests. Annotations are stripped (promtool compares rendered text); the unit
test ``tests/unit/test_rules_promtool.py`` checks rendered annotations.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotline_kpi.alerts.conventions import burn_alert_name
from hotline_kpi.alerts.generate import DEFAULT_JOB, RULES_FILE
from hotline_kpi.alerts.slo import (
    BURN_WINDOWS,
    BurnCondition,
    burn_conditions,
    duration_seconds,
    error_budget,
    ratio_kpi,
    target_of,
)
from hotline_kpi.alerts.testing import (
    only_for_alerts,
    run_rule_tests,
    series_values,
    strip_annotations,
)
from hotline_kpi.config import Settings
from hotline_kpi.metrics.catalogue import Direction, Kpi

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool")

JOB = DEFAULT_JOB
# Minutes between checks of the oracle against promtool.
CHECK_EVERY = 5
# A check is made only where the oracle is sure for this many minutes either side.
STABLE = 3
RATIO_MARGIN = 0.002
GUARD_MARGIN = 0.1


@pytest.fixture(scope="module")
def bare_rules() -> dict[str, Any]:
    """The committed rules, annotations removed."""
    return strip_annotations(yaml.safe_load(RULES_FILE.read_text(encoding="utf-8")))


# --- KPI traffic and the oracle ------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """``minutes`` of traffic at ``per_minute`` events, of which ``error`` fail the KPI."""

    minutes: int
    per_minute: float
    error: float


@dataclass
class Traffic:
    """Cumulative per-minute counts of one queue: denominator events and failing events."""

    total: list[float]
    failed: list[float]

    @classmethod
    def of(cls, segments: list[Segment]) -> Traffic:
        total, failed = [0.0], [0.0]
        for segment in segments:
            for _ in range(segment.minutes):
                total.append(total[-1] + segment.per_minute)
                failed.append(failed[-1] + segment.per_minute * segment.error)
        return cls(total, failed)

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            [a + b for a, b in zip(self.total, other.total, strict=True)],
            [a + b for a, b in zip(self.failed, other.failed, strict=True)],
        )


def counters(
    kpi: Kpi, queue: str, traffic: Traffic, *, short_abandons: bool, step: int
) -> list[dict[str, str]]:
    """promtool input series for ``kpi``'s counters of ``queue`` carrying ``traffic``.

    ``short_abandons`` adds short abandons on top of the denominator (they must be subtracted,
    SPEC §3); otherwise the short-abandon counter is absent, as it is before the first one.
    """
    labels = f'{{job="{JOB}", instance="exporter:9769", {kpi.group}="{queue}"}}'
    total, failed = traffic.total[::step], traffic.failed[::step]  # one scrape every step
    if kpi.direction is Direction.AT_LEAST:
        numerator = [t - f for t, f in zip(total, failed, strict=True)]
    else:
        numerator = list(failed)
    denominator = list(total)
    out = []
    counters = kpi.counters
    if counters.denominator_minus and short_abandons:
        short = [t / 10 for t in total]
        denominator = [d + s for d, s in zip(denominator, short, strict=True)]
        out.append({"series": counters.denominator_minus + labels, "values": series_values(short)})
    out.append({"series": counters.denominator + labels, "values": series_values(denominator)})
    out.append({"series": counters.numerator + labels, "values": series_values(numerator)})
    return out


def _compare(value: float, threshold: float, *, above: bool, margin: float) -> bool | None:
    """``value > threshold`` (or ``<``), or None when within ``margin`` of it."""
    if abs(value - threshold) <= margin:
        return None
    return value > threshold if above else value < threshold


def _all(values: list[bool | None]) -> bool | None:
    if any(v is False for v in values):
        return False
    return True if all(v is True for v in values) else None


def _any(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return False if all(v is False for v in values) else None


def oracle(
    kpi: Kpi, conditions: tuple[BurnCondition, ...], traffic: Traffic, minute: int
) -> bool | None:
    """Must the burn-rate alert over ``conditions`` fire at ``minute``? None: too close to say."""

    def window(duration: str) -> tuple[float, float]:
        start = max(0, minute - duration_seconds(duration) // 60)
        return (
            traffic.total[minute] - traffic.total[start],
            traffic.failed[minute] - traffic.failed[start],
        )

    branches = []
    for c in conditions:
        parts: list[bool | None] = []
        for duration in (c.window.long, c.window.short):
            total, failed = window(duration)
            if total <= 0:
                parts.append(False)  # no data: the ratio rule has no sample
                continue
            parts.append(
                _compare(failed / total, c.error_threshold, above=True, margin=RATIO_MARGIN)
            )
        total, _ = window(c.window.long)
        parts.append(_compare(total, c.min_events, above=True, margin=GUARD_MARGIN * c.min_events))
        branches.append(_all(parts))
    return _any(branches)


@dataclass(frozen=True)
class Scenario:
    """Queues with their traffic, for one KPI and one severity, as one promtool test group."""

    kpi: Kpi
    severity: str
    conditions: tuple[BurnCondition, ...]
    queues: dict[str, Traffic]
    short_abandon_queue: str | None
    step: int  # minutes between scrapes and rule evaluations

    @property
    def minutes(self) -> int:
        return len(next(iter(self.queues.values())).total) - 1

    def expected(self, traffic: Traffic) -> list[bool | None]:
        return [oracle(self.kpi, self.conditions, traffic, m) for m in range(self.minutes + 1)]

    def test_group(self) -> tuple[dict[str, Any], dict[str, list[bool | None]]]:
        """The promtool test group and the oracle's verdict per queue (``""``: whole hotline)."""
        series = []
        for queue, traffic in self.queues.items():
            series += counters(
                self.kpi,
                queue,
                traffic,
                step=self.step,
                short_abandons=queue == self.short_abandon_queue,
            )
        verdicts = {queue: self.expected(traffic) for queue, traffic in self.queues.items()}
        total = None
        for traffic in self.queues.values():
            total = traffic if total is None else total + traffic
        assert total is not None
        verdicts[""] = self.expected(total)
        name = burn_alert_name(self.kpi.key, self.severity)
        checks = []
        for minute in range(self.step, self.minutes + 1, max(self.step, CHECK_EVERY)):
            # Rule groups are evaluated in no fixed order, so the alert may see the recording
            # rules one evaluation late: the verdict must hold a step further back.
            around = range(
                max(0, minute - self.step - STABLE), min(self.minutes, minute + STABLE) + 1
            )
            if any(
                len({verdict[m] for m in around}) != 1 or verdict[minute] is None
                for verdict in verdicts.values()
            ):
                continue
            alerts = []
            for queue, verdict in verdicts.items():
                if not verdict[minute]:
                    continue
                labels = {"severity": self.severity, "kpi": self.kpi.key, "component": "kpi"}
                if queue:
                    group = str(self.kpi.group)
                    labels |= {"scope": group, group: queue}
                else:
                    labels["scope"] = "hotline"
                alerts.append({"exp_labels": labels})
            checks.append({"eval_time": f"{minute}m", "alertname": name, "exp_alerts": alerts})
        group = {
            "name": f"{name} {'/'.join(self.queues)}",
            "interval": f"{self.step}m",
            "input_series": series,
            "alert_rule_test": checks,
        }
        return group, verdicts


def scenarios(settings: Settings) -> Iterator[Scenario]:
    """For every KPI burn-rate alert: a breach that recovers, a short blip, and a quiet queue.

    Breach and blip share one group (the blip queue carries a tenth of the traffic, so the
    whole-hotline alert follows the breach); the quiet queue has a group of its own, where the
    whole hotline is as quiet as it is.
    """
    for key in BURN_WINDOWS:
        kpi = ratio_kpi(key)
        target = target_of(settings, key)
        assert target is not None
        budget = error_budget(kpi, target)
        for severity in ("page", "ticket"):
            conditions = tuple(
                c for c in burn_conditions(kpi, target) if c.window.severity == severity
            )
            if not conditions:
                continue
            longest_short = max(duration_seconds(c.window.short) // 60 for c in conditions)
            # Page windows are hours, ticket windows days: the baseline before the breach and
            # the blip are scaled to match.
            # Ticket windows are a day or more: one scrape every 5 minutes keeps promtool quick.
            baseline, breach, blip_minutes, step = (
                (120, 120, 5, 1) if severity == "page" else (720, 360, 30, 5)
            )
            recovery = longest_short + 60
            blip_start = baseline // 2
            guard_rate = max(
                c.min_events / min(duration_seconds(c.window.long) // 60, blip_start)
                for c in conditions
            )
            quiet_rate = 0.5 * min(
                c.min_events / min(duration_seconds(c.window.long) // 60, baseline + breach)
                for c in conditions
            )
            blip_rate = max(2.0, math.ceil(1.5 * guard_rate))
            rate = 10 * blip_rate
            good = 0.25 * budget
            bad = min(1.0, 2.5 * max(c.error_threshold for c in conditions))
            # The blip may not lift any long window over half its threshold.
            blip_error = min(
                1.0,
                *(
                    (0.5 * c.error_threshold - good)
                    * min(duration_seconds(c.window.long) // 60, blip_start + blip_minutes)
                    / blip_minutes
                    for c in conditions
                ),
            )
            total = baseline + breach + recovery
            breach_queue = Traffic.of(
                [
                    Segment(baseline, rate, good),
                    Segment(breach, rate, bad),
                    Segment(recovery, rate, good),
                ]
            )
            blip_queue = Traffic.of(
                [
                    Segment(blip_start, blip_rate, good),
                    Segment(blip_minutes, blip_rate, blip_error),
                    Segment(total - blip_start - blip_minutes, blip_rate, good),
                ]
            )
            quiet_queue = Traffic.of([Segment(total, quiet_rate, 1.0)])
            yield Scenario(
                kpi,
                severity,
                conditions,
                {"breach": breach_queue, "blip": blip_queue},
                "breach",
                step,
            )
            yield Scenario(kpi, severity, conditions, {"quiet": quiet_queue}, None, step)


SETTINGS = Settings()
SCENARIOS = list(scenarios(SETTINGS))


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario", SCENARIOS, ids=[f"{s.kpi.key}-{s.severity}-{'+'.join(s.queues)}" for s in SCENARIOS]
)
def test_burn_rate_alert_fires_on_breach_only_with_traffic_and_resolves(
    scenario: Scenario, bare_rules: dict[str, Any], tmp_path: Path
) -> None:
    group, verdicts = scenario.test_group()
    checked = {e["eval_time"] for e in group["alert_rule_test"]}
    assert len(checked) > scenario.minutes // CHECK_EVERY // 2, (
        "too few minutes the oracle is sure of"
    )
    if "breach" in scenario.queues:
        breach = verdicts["breach"]
        # The scenario itself must show each behaviour: quiet before, firing, resolved at the end.
        assert breach[scenario.minutes] is False and breach[60] is False
        assert any(breach), "the breach never crosses the thresholds"
        assert any(verdicts[""]), "the whole-hotline alert never fires"
        assert not any(verdicts["blip"]), "the blip must not fire"
    else:
        assert not any(verdicts["quiet"]), "the quiet queue must stay under the traffic guard"
    name = burn_alert_name(scenario.kpi.key, scenario.severity)
    result = run_rule_tests(
        only_for_alerts(bare_rules, {name}), [group], tmp_path, interval=f"{scenario.step}m"
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
