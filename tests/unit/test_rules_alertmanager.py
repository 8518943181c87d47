"""The example Alertmanager configuration: valid for amtool, routing by severity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hotline_kpi.alerts.conventions import SEVERITIES
from hotline_kpi.alerts.generate import RULES_FILE

AMTOOL = shutil.which("amtool")
EXAMPLE = (
    Path(__file__).resolve().parents[2] / "alerts" / "alertmanager" / "alertmanager.example.yml"
)
pytestmark = pytest.mark.skipif(AMTOOL is None, reason="no amtool (prometheus-alertmanager)")


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert AMTOOL is not None
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def test_example_config_passes_amtool_check_config() -> None:
    result = amtool("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=page", "component=kpi", "kpi=drop_rate"], "hotline-pager"),
        (["severity=page", "component=monitor"], "hotline-pager"),
        (["severity=ticket", "component=kpi", "kpi=timeliness"], "hotline-ticket"),
    ],
)
def test_alerts_are_routed_by_severity(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={EXAMPLE}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_every_severity_the_rules_use_has_a_route() -> None:
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    used = {
        rule["labels"]["severity"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert used == set(SEVERITIES)
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    routed = {m.split('"')[1] for route in config["route"]["routes"] for m in route["matchers"]}
    assert used <= routed
