"""Configuration: a YAML file plus ``HOTLINE_KPI_*`` environment variables (SPEC §6).

Only the composition root (``hotline_kpi.cli``) calls :func:`load_settings` and resolves the
secrets (:func:`kafka_credentials`, :func:`metrics_basic_auth`, :func:`grafana_token`); every
other module receives the typed values it needs as arguments, and no other module reads the
environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from hotline_kpi.errors import UsageError

DEFAULT_CONFIG_FILE = "hotline-kpi.yaml"
ENV_PREFIX = "HOTLINE_KPI_"

Ratio = float


class ConfigError(Exception):
    """A configuration value is invalid; the message is one line naming the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """Thresholds of SPEC §3."""

    # Finite and at most a day: the fold turns them into integer microseconds.
    short_abandon_seconds: float = Field(
        5, ge=0, le=86_400, allow_inf_nan=False, description="S: abandons with wait < S are short"
    )
    service_level_seconds: float = Field(
        20, ge=0, le=86_400, allow_inf_nan=False, description="T: answered with wait <= T"
    )
    satisfied_score: int = Field(8, ge=1, le=10, description="survey scores >= this are satisfied")
    # W and the repeat-complaint window: finite, and bounded so that "offered + W" and
    # "now - 366 d" stay far inside what a datetime and integer microseconds can hold.
    repeat_window_hours: float = Field(
        24, gt=0, le=720, allow_inf_nan=False, description="W: repeat contact window"
    )
    repeat_complaint_days: float = Field(
        30, gt=0, le=366, allow_inf_nan=False, description="repeat complaint window (x 24 h)"
    )


class Definitions(_Strict):
    """Choices in the KPI definitions of SPEC §3."""

    # False: blocked legs stay agent requests (and in blocked_rate) but leave counted requests.
    blocked_are_requests: bool = True


class Privacy(_Strict):
    """Caller keys (SPEC §7). The secret itself is never a config value: only the file's path;
    :func:`caller_key_secret` reads it, or ``HOTLINE_KPI_CALLER_KEY``."""

    caller_key_secret_file: Path | None = None
    # Keys older than this (in event time) are erased; the flags settled from them stay. At most
    # a century, so that "now - retention" is always a datetime.
    caller_key_retention_days: int = Field(90, ge=1, le=36_600)


class Alerts(_Strict):
    """Alert thresholds that are not KPI targets (SPEC §6, ``alerts.*``)."""

    # Page when more than this share of agent requests are blocked.
    blocked_share: Ratio = Field(0.05, ge=0, le=1)
    # Ticket when the repeat contact rate over 1 h exceeds this factor times its 7-day baseline;
    # a factor of 1 or less would fire on an ordinary hour.
    repeat_contact_rise: float = Field(1.5, gt=1, allow_inf_nan=False)


class Targets(_Strict):
    """Targets; the direction of each is fixed (SPEC §6)."""

    manual_connection_rate: Ratio = Field(0.90, ge=0, le=1)
    drop_rate: Ratio = Field(0.005, ge=0, le=1)
    timeliness: Ratio = Field(1.00, ge=0, le=1)
    answer_accuracy: Ratio = Field(0.98, ge=0, le=1)
    service_level: Ratio = Field(0.80, ge=0, le=1)


class MetricsEndpoint(_Strict):
    """Where ``/metrics`` is served, with optional TLS and basic auth (SPEC §7)."""

    address: str = "127.0.0.1"
    port: int = Field(9769, ge=0, le=65535)
    certfile: Path | None = None
    keyfile: Path | None = None
    basic_auth_user: str | None = None
    basic_auth_password_file: Path | None = None


# A host name (letters, digits, '.', '-', '_'), an IPv4 address, or an IPv6 address in brackets.
_HOST_PORT = re.compile(r"(?:\[(?P<ipv6>[^\[\]]+)\]|(?P<host>[A-Za-z0-9._-]+)):(?P<port>[0-9]+)")


def check_bootstrap_servers(value: str) -> str:
    """``value`` as a comma-separated list of ``host:port`` (an IPv6 host in brackets, ports
    1-65535), spaces around entries removed; a ValueError naming the first bad entry, since
    kafka-python would otherwise fail with a traceback or connect to a port it guessed."""
    entries = [entry.strip() for entry in value.split(",")]
    for entry in entries:
        match = _HOST_PORT.fullmatch(entry)
        ipv6 = match["ipv6"] if match else None
        if (
            match is None
            or not 1 <= int(match["port"]) <= 65535
            or (ipv6 is not None and not _is_ipv6(ipv6))
        ):
            shown = repr(entry) if entry else "an empty entry"
            raise ValueError(
                f"{shown} is not host:port with a port from 1 to 65535: give a comma-separated "
                "list such as kafka1:9092,10.0.0.2:9092,[::1]:9092"
            )
    return ",".join(entries)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


class KafkaSettings(_Strict):
    """The Kafka connection. Secrets are never config values, only file paths or env vars."""

    bootstrap_servers: str = "127.0.0.1:9092"
    # The library ``run`` consumes with; both keep the offsets in the store (issue 17).
    client: Literal["kafka-python", "confluent-kafka"] = "kafka-python"
    topic: str = "hotline-events"
    group: str = "hotline-kpi"
    connect_timeout_seconds: int = Field(30, ge=1, le=600)
    # A consumer killed without leaving holds its partitions this long (broker minimum 6 s).
    session_timeout_ms: int = Field(10_000, ge=6_000, le=300_000)
    dead_letter_topic: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    # The password comes from HOTLINE_KPI_KAFKA_PASSWORD or from this file, never from argv.
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        return check_bootstrap_servers(value)


# SPEC §6: intervals tile an hour, so hours, days and the hour x weekday view are whole intervals.
INTERVALS_DIVIDING_AN_HOUR = tuple(m for m in range(1, 61) if 60 % m == 0)


class AsteriskSettings(_Strict):
    """The Asterisk queue_log source (SPEC §9)."""

    # An interface or login number -> the member name CONNECT writes (beyond the default
    # ``N`` <-> ``Agent/N``), so that an agent's pauses and calls are one agent.
    agents: dict[str, str] = Field(default_factory=dict)


class Settings(BaseSettings):
    """Every setting of the service, validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    timezone: str = "Asia/Shanghai"
    interval_minutes: int = 15
    thresholds: Thresholds = Thresholds()
    definitions: Definitions = Definitions()
    privacy: Privacy = Privacy()
    asterisk: AsteriskSettings = AsteriskSettings()
    alerts: Alerts = Alerts()
    targets: Targets = Targets()
    queues: list[str] = []
    max_queues: int = Field(50, ge=1, le=10_000)
    store: str = "hotline-kpi.db"
    metrics: MetricsEndpoint = MetricsEndpoint()
    kafka: KafkaSettings = KafkaSettings()
    # Events further ahead of the wall clock than this are rejected as future_timestamp. The
    # upper bound (a year) keeps "now + skew" representable as a datetime.
    max_clock_skew_seconds: int = Field(300, ge=0, le=366 * 86_400)
    # Seconds without events during business hours before the health alert fires.
    no_events_alert_seconds: int = Field(600, ge=60)
    business_hours: tuple[int, int] = (8, 22)
    dashboard_url: str = "http://grafana.local/d"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("interval_minutes")
    @classmethod
    def _divides_an_hour(cls, value: int) -> int:
        if value not in INTERVALS_DIVIDING_AN_HOUR:
            allowed = ", ".join(str(m) for m in INTERVALS_DIVIDING_AN_HOUR)
            raise ValueError(f"must divide an hour ({allowed} minutes), got {value}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The hotline's time zone."""
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Command-line options (init) beat environment variables, which beat the YAML file.
        yaml_file = _YAML_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


# pydantic-settings reads its YAML path from the class; load_settings sets it for one call.
_YAML_FILE: dict[str, Path | None] = {"path": None}


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(root)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    more = len(error.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return f"{key}: {message}{suffix}"


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, the YAML file, the environment and ``overrides``.

    ``config_file`` defaults to ``hotline-kpi.yaml`` in the working directory when present.
    Raises :class:`ConfigError` with one line naming the offending key.
    """
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
    else:
        default = Path(DEFAULT_CONFIG_FILE)
        path = default if default.is_file() else None
    if path is not None:
        _check_yaml(path)
    clean = {key: value for key, value in overrides.items() if value is not None}
    _YAML_FILE["path"] = path
    try:
        return Settings(**clean)
    except ValidationError as exc:
        source = f"config {path}" if path else "config"
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    except SettingsError as exc:
        raise ConfigError(_describe_settings_error(exc, path)) from None
    finally:
        _YAML_FILE["path"] = None


# What a structured setting given as one environment variable looks like: pydantic-settings
# parses the whole value as JSON.
_JSON_EXAMPLES = {
    "queues": '["broadband", "mobile"]',
    "business_hours": "[8, 22]",
    "thresholds": '{"service_level_seconds": 20}',
    "definitions": '{"blocked_are_requests": false}',
    "privacy": '{"caller_key_retention_days": 90}',
    "alerts": '{"blocked_share": 0.05}',
    "targets": '{"drop_rate": 0.004}',
    "metrics": '{"port": 9769}',
    "kafka": '{"topic": "hotline-events"}',
}


def _describe_settings_error(exc: SettingsError, path: Path | None) -> str:
    """One line for a value pydantic-settings could not parse before validation: a structured
    setting (a list or a section) whose environment variable is not JSON."""
    found = re.search(r'field "([^"]+)" from source "([^"]+)"', str(exc))
    if found is None:
        return f"config: {str(exc).splitlines()[0]}"
    key, source = found.groups()
    if source != "EnvSettingsSource":
        return f"config {path}: {key}: cannot be read" if path else f"config: {key}: cannot be read"
    expected = f"{ENV_PREFIX}{key.upper()}"
    variable = next((name for name in os.environ if name.upper() == expected), expected)
    example = _JSON_EXAMPLES.get(key, "...")
    what = "a JSON list" if example.startswith("[") else "a JSON object"
    nested = ""
    if example.startswith("{"):
        name, value = next(iter(json.loads(example).items()))
        shown = value if isinstance(value, str) else json.dumps(value)
        nested = f", or set one key with {expected}__{name.upper()}={shown}"
    return (
        f"environment variable {variable} is not valid JSON: give {what}, e.g. "
        f"{expected}='{example}'{nested}"
    )


def _check_yaml(path: Path) -> None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config {path}: cannot read YAML: {reason}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping of keys")


# Secrets (SPEC §7) come from these environment variables or from files the settings name, never
# from the command line; only the composition root resolves them, and passes the values in.
KAFKA_PASSWORD_ENV = "HOTLINE_KPI_KAFKA_PASSWORD"
KAFKA_SSL_PASSWORD_ENV = "HOTLINE_KPI_KAFKA_SSL_PASSWORD"
METRICS_PASSWORD_ENV = "HOTLINE_KPI_METRICS_PASSWORD"
GRAFANA_TOKEN_ENV = "HOTLINE_KPI_GRAFANA_TOKEN"
GRAFANA_TOKEN_FILE_ENV = "HOTLINE_KPI_GRAFANA_TOKEN_FILE"
CALLER_KEY_ENV = "HOTLINE_KPI_CALLER_KEY"


def secret_from_env_or_file(
    env_name: str, file: Path | None, environ: Mapping[str, str] = os.environ
) -> str | None:
    """A secret from the environment variable ``env_name`` or else from ``file``; never argv."""
    value = environ.get(env_name)
    if value:
        return value
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read secret file {file}: {exc.strerror}") from None
    return None


@dataclass(frozen=True, slots=True)
class KafkaCredentials:
    """The Kafka secrets a client needs: the SASL password and the TLS key's password."""

    sasl_password: str | None = field(default=None, repr=False)
    ssl_password: str | None = field(default=None, repr=False)


def kafka_credentials(
    kafka: KafkaSettings, environ: Mapping[str, str] = os.environ
) -> KafkaCredentials:
    """The Kafka secrets the settings call for; a :class:`ConfigError` when SASL is configured
    without a password."""
    password = None
    if kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        password = secret_from_env_or_file(KAFKA_PASSWORD_ENV, kafka.sasl_password_file, environ)
        if password is None:
            raise ConfigError(
                f"the Kafka SASL password must be given in {KAFKA_PASSWORD_ENV} or in the file "
                "named by kafka.sasl_password_file"
            )
    ssl_password = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        ssl_password = secret_from_env_or_file(KAFKA_SSL_PASSWORD_ENV, None, environ) or None
    return KafkaCredentials(password, ssl_password)


def metrics_basic_auth(
    endpoint: MetricsEndpoint, environ: Mapping[str, str] = os.environ
) -> tuple[str, str] | None:
    """``/metrics``' basic-auth user and password, or None when it is not configured."""
    if endpoint.basic_auth_user is None:
        return None
    password = secret_from_env_or_file(
        METRICS_PASSWORD_ENV, endpoint.basic_auth_password_file, environ
    )
    if password is None:
        raise ConfigError(
            "metrics.basic_auth_user is set but no password is given in "
            f"{METRICS_PASSWORD_ENV} or metrics.basic_auth_password_file"
        )
    return endpoint.basic_auth_user, password


def caller_key_secret(settings: Settings, environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The caller-key secret (SPEC §7): ``HOTLINE_KPI_CALLER_KEY`` when it is set (its UTF-8
    bytes), else the bytes of ``privacy.caller_key_secret_file`` with one trailing newline
    (``\n`` or ``\r\n``) removed, else None (the caller-key KPIs are then "no data").

    A :class:`ConfigError` naming the source when the file cannot be read or the secret is
    empty; the message never holds the secret.
    """
    value = environ.get(CALLER_KEY_ENV)
    if value is not None:
        # Set but empty is a mistake (a secret store that gave nothing), not "no secret": falling
        # back to the file, or to no keys, would silently change every caller key.
        source = f"environment variable {CALLER_KEY_ENV}"
        # surrogateescape gives back the bytes of a variable that is not valid UTF-8.
        secret = value.encode("utf-8", "surrogateescape")
    else:
        file = settings.privacy.caller_key_secret_file
        if file is None:
            return None
        source = f"privacy.caller_key_secret_file {file}"
        try:
            secret = file.read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(
                f"privacy.caller_key_secret_file: cannot read {file}: {reason}"
            ) from None
        # Only one newline: an editor adds one, but further bytes may be part of the key.
        secret = (
            secret.removesuffix(b"\r\n") if secret.endswith(b"\r\n") else secret.removesuffix(b"\n")
        )
    if not secret:
        raise ConfigError(f"{source}: caller key secret is empty; give a non-empty key")
    return secret


def grafana_token(environ: Mapping[str, str] = os.environ) -> str:
    """The Grafana token from ``HOTLINE_KPI_GRAFANA_TOKEN`` or the file ``…_TOKEN_FILE`` names;
    a :class:`UsageError` when neither gives one."""
    token = environ.get(GRAFANA_TOKEN_ENV, "").strip()
    file = environ.get(GRAFANA_TOKEN_FILE_ENV)
    if not token and file:
        try:
            token = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"cannot read {GRAFANA_TOKEN_FILE_ENV} file {file}: {exc.strerror}"
            ) from None
    if not token:
        raise UsageError(
            f"no Grafana token: set {GRAFANA_TOKEN_ENV}, or {GRAFANA_TOKEN_FILE_ENV} to a file "
            "holding it"
        )
    return token


# libpq ends a URL's user information at the first '@' or '/', and takes a password from the
# query string too (?password=...).
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:)(?P<password>[^@/]*)@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&#]*)", re.IGNORECASE)


def store_passwords(location: str) -> list[str]:
    """The passwords a ``postgresql://`` store URL holds (as written, and percent-decoded)."""
    from urllib.parse import unquote

    found = [match["password"] for match in _QUERY_PASSWORD.finditer(location)]
    userinfo = _URL_PASSWORD.match(location)
    if userinfo is not None:
        found.append(userinfo["password"])
    return [form for text in found if text for form in {text, unquote(text)}]


def redacted_store(location: str) -> str:
    """``location`` fit for logs and messages: a URL's password replaced by ``***``
    (``postgresql://user:***@host/db``); a SQLite path unchanged. SPEC §7."""
    shown = _URL_PASSWORD.sub(r"\g<head>***@", location)
    return _QUERY_PASSWORD.sub(r"\g<head>***", shown)
