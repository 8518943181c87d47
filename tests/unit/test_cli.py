"""A user's mistake gets one line and a non-zero exit, never a traceback (SPEC §5, §6)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hotline_kpi.config import ConfigError, load_settings
from hotline_kpi.ingest.events import SCHEMA_PATH, render_schema
from tests.support.cli import run_cli as run


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), ["command"]),
        (("bogus",), ["invalid choice"]),
        (("export",), ["--month"]),
        (("export", "--month", "2026-13"), ["2026-13", "YYYY-MM"]),
        (("export", "--month", "Oct 2026"), ["YYYY-MM"]),
        (("export", "--month", "2026-10", "--format", "docx"), ["docx"]),
        (("export", "--month", "2026-10", "--store", "missing.db"), ["missing.db"]),
        (("replay", "no-such-file.jsonl"), ["no-such-file.jsonl"]),
        (("replay",), ["FILE"]),
        (("simulate", "--days", "1"), ["--month", "--start"]),
        (("simulate", "--start", "30/10/2026"), ["--start"]),
        (("export", "--month", "2026-10", "--config", "nope.yaml"), ["nope.yaml"]),
        (("demo", "--speed", "fast"), ["--speed"]),
        (("staffing", "--month", "2026-10-01"), ["YYYY-MM"]),
        (("staffing", "--month", "2026-10", "--format", "xml"), ["xml"]),
    ],
)
def test_bad_usage_is_one_line_and_non_zero(
    args: tuple[str, ...], words: list[str], tmp_path: Path
) -> None:
    assert_one_line_error(run(*args, cwd=tmp_path), *words)


@pytest.mark.parametrize(
    ("yaml", "words"),
    [
        ("targets: {drop_rate: 1.5}\n", ["targets.drop_rate", "less than or equal to 1"]),
        ("timezone: Mars/Olympus\n", ["timezone", "Mars/Olympus"]),
        ("colour: blue\n", ["colour", "unknown key"]),
        ("thresholds: {service_level_seconds: -1}\n", ["thresholds.service_level_seconds"]),
        ("interval_minutes: often\n", ["interval_minutes"]),
        ("[1, 2\n", ["cannot read YAML"]),
        ("- a\n- b\n", ["mapping"]),
    ],
)
def test_a_bad_config_value_names_the_key(yaml: str, words: list[str], tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(yaml)
    result = run("export", "--month", "2026-10", "--config", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, "bad.yaml", *words)


def test_an_environment_variable_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "c.yaml").write_text("timezone: Europe/Paris\ntargets: {drop_rate: 0.01}\n")
    monkeypatch.setenv("HOTLINE_KPI_TARGETS__DROP_RATE", "0.002")
    settings = load_settings(tmp_path / "c.yaml")
    assert settings.timezone == "Europe/Paris"
    assert settings.targets.drop_rate == 0.002
    assert settings.targets.manual_connection_rate == 0.90  # untouched defaults stay
    monkeypatch.setenv("HOTLINE_KPI_TIMEZONE", "Nowhere/City")
    with pytest.raises(ConfigError, match="timezone"):
        load_settings(tmp_path / "c.yaml")


def test_the_default_config_file_is_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().timezone == "Asia/Shanghai"
    (tmp_path / "hotline-kpi.yaml").write_text("timezone: UTC\nqueues: [billing]\n")
    settings = load_settings()
    assert (settings.timezone, settings.queues) == ("UTC", ["billing"])


def test_the_committed_event_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        "regenerate with `make generate`"
    )


def test_command_line_options_override_one_nested_key_and_keep_the_rest(tmp_path: Path) -> None:
    from hotline_kpi.cli import _settings_for, build_parser

    config = tmp_path / "c.yaml"
    config.write_text(
        "kafka: {sasl_username: kpi, topic: from-file}\nmetrics: {address: 127.0.0.2}\n"
    )
    args = build_parser().parse_args(
        ["run", "--config", str(config), "--topic", "t1", "--metrics-port", "0"]
    )
    settings = _settings_for(args)
    assert (settings.kafka.topic, settings.kafka.sasl_username) == ("t1", "kpi")
    assert (settings.metrics.port, settings.metrics.address) == (0, "127.0.0.2")
    plain = _settings_for(build_parser().parse_args(["run", "--config", str(config)]))
    assert (plain.kafka.topic, plain.metrics.port) == ("from-file", 9769)
