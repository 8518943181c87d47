"""The repeat windows, definitions, privacy and alert settings (SPEC §6), and the caller-key secret,
which never shows in a repr or a message (SPEC §7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hotline_kpi.config import (
    CALLER_KEY_ENV,
    ConfigError,
    Settings,
    caller_key_secret,
    load_settings,
)

SECRET = "caller-key-Zq81x"


@pytest.fixture(autouse=True)
def _no_hotline_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HOTLINE_KPI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings_with_file(file: Path | None) -> Settings:
    return load_settings(None, privacy={"caller_key_secret_file": file})


# -- defaults and overrides ----------------------------------------------------------------------


def test_the_new_keys_have_the_defaults_of_the_spec() -> None:
    settings = load_settings()
    assert settings.thresholds.repeat_window_hours == 24
    assert settings.thresholds.repeat_complaint_days == 30
    assert settings.definitions.blocked_are_requests is True
    assert settings.privacy.caller_key_secret_file is None
    assert settings.privacy.caller_key_retention_days == 90
    assert settings.alerts.blocked_share == 0.05
    assert settings.alerts.repeat_contact_rise == 1.5


def test_the_new_keys_can_be_set_in_the_file(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "thresholds: {repeat_window_hours: 48, repeat_complaint_days: 7.5}\n"
        "definitions: {blocked_are_requests: false}\n"
        "privacy: {caller_key_secret_file: /run/secrets/key, caller_key_retention_days: 30}\n"
        "alerts: {blocked_share: 0.1, repeat_contact_rise: 2}\n"
    )
    settings = load_settings(tmp_path / "c.yaml")
    assert settings.thresholds.repeat_window_hours == 48
    assert settings.thresholds.repeat_complaint_days == 7.5
    assert settings.thresholds.service_level_seconds == 20  # untouched defaults stay
    assert settings.definitions.blocked_are_requests is False
    assert settings.privacy.caller_key_secret_file == Path("/run/secrets/key")
    assert settings.privacy.caller_key_retention_days == 30
    assert settings.alerts.blocked_share == 0.1
    assert settings.alerts.repeat_contact_rise == 2


def test_environment_variables_override_the_new_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "c.yaml").write_text(
        "definitions: {blocked_are_requests: true}\nthresholds: {repeat_window_hours: 48}\n"
    )
    monkeypatch.setenv("HOTLINE_KPI_DEFINITIONS__BLOCKED_ARE_REQUESTS", "false")
    monkeypatch.setenv("HOTLINE_KPI_THRESHOLDS__REPEAT_WINDOW_HOURS", "12")
    monkeypatch.setenv("HOTLINE_KPI_THRESHOLDS__REPEAT_COMPLAINT_DAYS", "60")
    monkeypatch.setenv("HOTLINE_KPI_PRIVACY__CALLER_KEY_SECRET_FILE", "/etc/key")
    monkeypatch.setenv("HOTLINE_KPI_PRIVACY__CALLER_KEY_RETENTION_DAYS", "10")
    monkeypatch.setenv("HOTLINE_KPI_ALERTS__BLOCKED_SHARE", "0.2")
    monkeypatch.setenv("HOTLINE_KPI_ALERTS__REPEAT_CONTACT_RISE", "3")
    settings = load_settings(tmp_path / "c.yaml")
    assert settings.definitions.blocked_are_requests is False
    assert settings.thresholds.repeat_window_hours == 12
    assert settings.thresholds.repeat_complaint_days == 60
    assert settings.privacy.caller_key_secret_file == Path("/etc/key")
    assert settings.privacy.caller_key_retention_days == 10
    assert settings.alerts.blocked_share == 0.2
    assert settings.alerts.repeat_contact_rise == 3


def test_a_section_can_be_set_as_json_in_one_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_KPI_ALERTS", '{"blocked_share": 0.01}')
    assert load_settings().alerts.blocked_share == 0.01


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("HOTLINE_KPI_DEFINITIONS", "HOTLINE_KPI_DEFINITIONS__BLOCKED_ARE_REQUESTS=false"),
        ("HOTLINE_KPI_PRIVACY", "HOTLINE_KPI_PRIVACY__CALLER_KEY_RETENTION_DAYS=90"),
        ("HOTLINE_KPI_ALERTS", "HOTLINE_KPI_ALERTS__BLOCKED_SHARE=0.05"),
    ],
)
def test_a_new_section_that_is_not_json_gets_an_example(
    variable: str, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "x")
    with pytest.raises(ConfigError, match="JSON object") as caught:
        load_settings()
    assert hint in str(caught.value) and "\n" not in str(caught.value)


# -- invalid values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml", "key"),
    [
        ("thresholds: {repeat_window_hours: 0}", "thresholds.repeat_window_hours"),
        ("thresholds: {repeat_window_hours: -1}", "thresholds.repeat_window_hours"),
        ("thresholds: {repeat_window_hours: .inf}", "thresholds.repeat_window_hours"),
        ("thresholds: {repeat_window_hours: .nan}", "thresholds.repeat_window_hours"),
        ("thresholds: {repeat_window_hours: 721}", "thresholds.repeat_window_hours"),
        ("thresholds: {repeat_window_hours: day}", "thresholds.repeat_window_hours"),
        ("thresholds: {repeat_complaint_days: 0}", "thresholds.repeat_complaint_days"),
        ("thresholds: {repeat_complaint_days: 367}", "thresholds.repeat_complaint_days"),
        ("thresholds: {repeat_complaint_days: .inf}", "thresholds.repeat_complaint_days"),
        ("thresholds: {repeat_complaint_days: .nan}", "thresholds.repeat_complaint_days"),
        ("definitions: {blocked_are_requests: maybe}", "definitions.blocked_are_requests"),
        ("definitions: {blocked_are_request: false}", "definitions.blocked_are_request"),
        ("privacy: {caller_key_retention_days: 0}", "privacy.caller_key_retention_days"),
        ("privacy: {caller_key_retention_days: 1.5}", "privacy.caller_key_retention_days"),
        ("privacy: {caller_key_retention_days: 100000}", "privacy.caller_key_retention_days"),
        ("privacy: {caller_key_secret_file: [a]}", "privacy.caller_key_secret_file"),
        ("privacy: {caller_key_secret: abc}", "privacy.caller_key_secret"),
        ("alerts: {blocked_share: 1.5}", "alerts.blocked_share"),
        ("alerts: {blocked_share: -0.1}", "alerts.blocked_share"),
        ("alerts: {blocked_share: .nan}", "alerts.blocked_share"),
        ("alerts: {repeat_contact_rise: 1}", "alerts.repeat_contact_rise"),
        ("alerts: {repeat_contact_rise: 0.5}", "alerts.repeat_contact_rise"),
        ("alerts: {repeat_contact_rise: .inf}", "alerts.repeat_contact_rise"),
        ("alerts: {page: true}", "alerts.page"),
    ],
)
def test_an_invalid_value_gives_one_line_naming_the_key(
    yaml: str, key: str, tmp_path: Path
) -> None:
    (tmp_path / "c.yaml").write_text(yaml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.yaml")
    message = str(caught.value)
    assert f"{key}:" in message and "\n" not in message


def test_an_invalid_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_KPI_ALERTS__REPEAT_CONTACT_RISE", "0.9")
    with pytest.raises(ConfigError, match=r"alerts\.repeat_contact_rise:") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


# -- the caller-key secret -----------------------------------------------------------------------


def test_no_secret_configured_gives_none() -> None:
    assert caller_key_secret(load_settings(), {}) is None


def test_the_secret_from_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"from-the-file\n")
    settings = settings_with_file(tmp_path / "key")
    assert caller_key_secret(settings, {CALLER_KEY_ENV: "密钥-env"}) == "密钥-env".encode()
    assert caller_key_secret(settings, {}) == b"from-the-file"


@pytest.mark.parametrize(
    ("content", "secret"),
    [
        (b"abc\n", b"abc"),
        (b"abc\r\n", b"abc"),
        (b"abc\n\n", b"abc\n"),
        (b"abc\r\n\r\n", b"abc\r\n"),
        (b"abc", b"abc"),
        (b" abc \n", b" abc "),
        (b"abc\r", b"abc\r"),
        (b"\x00\xffbinary\n", b"\x00\xffbinary"),
    ],
)
def test_the_file_loses_exactly_one_trailing_newline(
    content: bytes, secret: bytes, tmp_path: Path
) -> None:
    (tmp_path / "key").write_bytes(content)
    assert caller_key_secret(settings_with_file(tmp_path / "key"), {}) == secret


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_an_empty_file_secret_is_refused(content: bytes, tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(content)
    with pytest.raises(ConfigError, match="caller key secret is empty") as caught:
        caller_key_secret(settings_with_file(tmp_path / "key"), {})
    assert "privacy.caller_key_secret_file" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_empty_environment_secret_is_refused_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"from-the-file\n")
    with pytest.raises(ConfigError, match="caller key secret is empty") as caught:
        caller_key_secret(settings_with_file(tmp_path / "key"), {CALLER_KEY_ENV: ""})
    assert CALLER_KEY_ENV in str(caught.value)


def test_an_unreadable_file_names_it_and_the_reason_without_the_secret(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(ConfigError) as caught:
        caller_key_secret(settings_with_file(missing), {})
    message = str(caught.value)
    assert message.startswith("privacy.caller_key_secret_file: cannot read")
    assert str(missing) in message and "No such file or directory" in message
    assert "\n" not in message
    # A directory: readable as a path, not as a file; the error still shows no content.
    with pytest.raises(ConfigError, match="cannot read") as caught:
        caller_key_secret(settings_with_file(tmp_path), {})
    assert "\n" not in str(caught.value)


def test_the_secret_never_shows_in_the_settings_or_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key").write_bytes(SECRET.encode() + b"\n")
    monkeypatch.setenv(CALLER_KEY_ENV, SECRET)
    monkeypatch.setenv("HOTLINE_KPI_PRIVACY__CALLER_KEY_SECRET_FILE", str(tmp_path / "key"))
    settings = load_settings()
    assert caller_key_secret(settings) == SECRET.encode()
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET not in shown
    # An error in the same settings does not echo the environment's secret either.
    monkeypatch.setenv("HOTLINE_KPI_PRIVACY__CALLER_KEY_RETENTION_DAYS", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert SECRET not in str(caught.value)
