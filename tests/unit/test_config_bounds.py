"""Configuration values outside their sane bounds stop the program with one line (SPEC §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_kpi.config import ConfigError, load_settings


def test_max_clock_skew_defaults_to_five_minutes_and_can_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().max_clock_skew_seconds == 300
    (tmp_path / "c.yaml").write_text("max_clock_skew_seconds: 0\n")
    assert load_settings(tmp_path / "c.yaml").max_clock_skew_seconds == 0


@pytest.mark.parametrize("value", ["-1", ".inf", ".nan", "1.5", "soon", "100000000000"])
def test_a_bad_max_clock_skew_names_the_key(value: str, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(f"max_clock_skew_seconds: {value}\n")
    with pytest.raises(ConfigError, match="max_clock_skew_seconds") as caught:
        load_settings(tmp_path / "c.yaml")
    assert "\n" not in str(caught.value)


def test_max_clock_skew_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_KPI_MAX_CLOCK_SKEW_SECONDS", "60")
    assert load_settings().max_clock_skew_seconds == 60
