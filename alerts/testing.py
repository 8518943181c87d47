"""Test support for the rules: run promtool on the generated rules with made-up series.

Used by the project's tests and handy at a terminal; nothing here runs in production.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run Debian's ``promtool`` (``FileNotFoundError`` when it is not installed)."""
    binary = shutil.which("promtool")
    if binary is None:
        raise FileNotFoundError("promtool is not installed (Debian package prometheus)")
    return subprocess.run(
        [binary, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def strip_annotations(rules: dict[str, Any]) -> dict[str, Any]:
    """The same rules without annotations: promtool compares their rendered text exactly."""
    return {
        "groups": [
            {
                **group,
                "rules": [
                    {key: value for key, value in rule.items() if key != "annotations"}
                    for rule in group["rules"]
                ],
            }
            for group in rules["groups"]
        ]
    }


def only_for_alerts(rules: dict[str, Any], alert_names: set[str]) -> dict[str, Any]:
    """The rules ``alert_names`` need: those alerts and, recursively, the series they read.

    Every rule is kept as it is, in its group and order; the others are left out only to keep
    promtool fast (it evaluates every rule at every step).
    """
    records = {
        rule["record"]: rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "record" in rule
    }

    def reads(expr: str) -> set[str]:
        return {
            name for name in records if re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr)
        }

    wanted: set[str] = set()
    todo = [
        rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") in alert_names
    ]
    while todo:
        for name in reads(todo.pop()) - wanted:
            wanted.add(name)
            todo.append(records[name])
    groups = []
    for group in rules["groups"]:
        kept = [
            rule
            for rule in group["rules"]
            if rule.get("record") in wanted or rule.get("alert") in alert_names
        ]
        if kept:
            groups.append({**group, "rules": kept})
    return {"groups": groups}


def run_rule_tests(
    rules: dict[str, Any], tests: list[dict[str, Any]], directory: Path, *, interval: str = "1m"
) -> subprocess.CompletedProcess[str]:
    """Write ``rules`` and a promtool test file of ``tests`` into ``directory``; run it."""
    (directory / "rules.yml").write_text(
        yaml.safe_dump(rules, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    test = {"rule_files": ["rules.yml"], "evaluation_interval": interval, "tests": tests}
    test_file = directory / "alerts.test.yml"
    test_file.write_text(
        yaml.safe_dump(test, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return promtool("test", "rules", test_file.name, cwd=directory)


def series_values(values: list[float]) -> str:
    """Values one step apart in promtool's expanding notation (``a+bxn`` runs)."""
    parts: list[str] = []
    index = 0
    while index < len(values):
        end = index
        step = 0.0
        if index + 1 < len(values):
            step = round(values[index + 1] - values[index], 6)
            while end + 1 < len(values) and round(values[end + 1] - values[end], 6) == step:
                end += 1
        if end == index:
            parts.append(_text(values[index]))
        else:
            sign = "+" if step >= 0 else "-"
            parts.append(f"{_text(values[index])}{sign}{_text(abs(step))}x{end - index}")
        index = end + 1
    return " ".join(parts)


def _text(value: float) -> str:
    text = f"{round(value, 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
