"""Settings a user can get wrong stop the program with one line naming them, and the store's
password never reaches a log or an error (SPEC §5, §6, §7)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotline_kpi import cli, live
from hotline_kpi.cli import main
from hotline_kpi.config import ConfigError, load_settings, redacted_store
from hotline_kpi.metrics.store import SqliteStore
from tests.support.cli import run_cli

ENV = {
    key: value for key, value in os.environ.items() if not key.upper().startswith("HOTLINE_KPI_")
} | {"PYTHONWARNINGS": "ignore", "HOTLINE_KPI_CALLER_KEY": "test secret"}


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=ENV | env)


def one_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.returncode == status, result.stderr
    return lines[0]


# -- kafka.bootstrap_servers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "servers",
    [
        "localhost:notaport",
        "[::1",
        "[::1]",
        "localhost",
        "a:9092,",
        "h:0",
        "h:65536",
        "::1:9092",
        "[not-v6]:9092",
        "h:9092/x",
    ],
)
def test_a_malformed_bootstrap_server_names_the_key_and_the_entry(servers: str) -> None:
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap_servers") as caught:
        load_settings(None, kafka={"bootstrap_servers": servers})
    message = str(caught.value)
    assert "\n" not in message
    bad = servers.rsplit(",", maxsplit=1)[-1]
    assert (repr(bad) if bad else "an empty entry") in message


@pytest.mark.parametrize(
    ("servers", "kept"),
    [
        ("127.0.0.1:9092", "127.0.0.1:9092"),
        ("kafka-1.example:9093, kafka_2:1", "kafka-1.example:9093,kafka_2:1"),
        ("[::1]:9092,[fe80::1]:65535", "[::1]:9092,[fe80::1]:65535"),
    ],
)
def test_bootstrap_servers_are_host_port_lists(servers: str, kept: str) -> None:
    assert load_settings(None, kafka={"bootstrap_servers": servers}).kafka.bootstrap_servers == kept


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--bootstrap-servers", "localhost:notaport", "--store", "k.db"),
        ("run", "--bootstrap-servers", "[::1", "--store", "k.db"),
        ("simulate", "--start", "2026-10-01", "--to", "kafka", "--bootstrap-servers", "[::1"),
    ],
)
def test_a_malformed_bootstrap_server_on_the_command_line_is_a_usage_error(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    line = one_line(run(*args, cwd=tmp_path), 2)
    servers = args[args.index("--bootstrap-servers") + 1]
    assert "kafka.bootstrap_servers" in line and repr(servers) in line
    assert not (tmp_path / "k.db").exists()


def test_an_unreachable_broker_is_one_line_without_the_client_library_retries(
    tmp_path: Path,
) -> None:
    (tmp_path / "c.yaml").write_text("kafka: {connect_timeout_seconds: 2}\n")
    common = ("--config", "c.yaml", "--bootstrap-servers", "127.0.0.1:1", "--topic", "t")
    for args in (
        ("run", *common, "--store", "k.db", "--metrics-port", "0"),
        ("simulate", *common, "--start", "2026-10-01", "--days", "0.01", "--to", "kafka"),
    ):
        line = one_line(run(*args, cwd=tmp_path), 1)
        assert "could not connect or authenticate to Kafka at 127.0.0.1:1" in line


def test_the_client_library_logs_each_kafka_error_once_a_minute_without_verbose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    repeats = cli._KafkaRepeats()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(repeats)
    logger = logging.getLogger("kafka.net.manager")
    logger.addHandler(handler)
    try:
        for attempt in range(30):
            logger.error("Connection failed to node %d after %.2f s", attempt, attempt / 7)
    finally:
        logger.removeHandler(handler)
    assert len(capsys.readouterr().err.splitlines()) == 1
    ours = logging.LogRecord("hotline_kpi", logging.WARNING, "", 0, "same", None, None)
    assert repeats.filter(ours) and repeats.filter(ours)


# -- structured settings from the environment ----------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "shape"),
    [
        ("HOTLINE_KPI_QUEUES", "a,b", "JSON list"),
        ("HOTLINE_KPI_TARGETS", "{", "JSON object"),
        ("HOTLINE_KPI_THRESHOLDS", "x", "JSON object"),
        ("HOTLINE_KPI_BUSINESS_HOURS", "8-22", "JSON list"),
    ],
)
def test_a_structured_environment_variable_that_is_not_json_names_it(
    variable: str, value: str, shape: str, tmp_path: Path
) -> None:
    line = one_line(run("rules", cwd=tmp_path, **{variable: value}), 2)
    assert variable in line and shape in line and f"{variable}='" in line
    assert value not in line.split(variable)[0]


# -- interval_minutes ----------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60])
def test_an_interval_that_divides_an_hour_is_accepted(minutes: int, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(f"interval_minutes: {minutes}\n")
    assert load_settings(tmp_path / "c.yaml").interval_minutes == minutes


@pytest.mark.parametrize("minutes", [0, -15, 7, 45, 90, 120, 1440])
def test_an_interval_that_does_not_divide_an_hour_names_the_key(
    minutes: int, tmp_path: Path
) -> None:
    (tmp_path / "c.yaml").write_text(f"interval_minutes: {minutes}\n")
    with pytest.raises(ConfigError, match="interval_minutes: must divide an hour") as caught:
        load_settings(tmp_path / "c.yaml")
    assert f"got {minutes}" in str(caught.value) and "\n" not in str(caught.value)


# -- the store's password ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("postgresql://kpi:s3cret@db.local:5432/kpi", "postgresql://kpi:***@db.local:5432/kpi"),
        (
            "postgres://kpi:p%40ss@db/kpi?sslmode=require",
            "postgres://kpi:***@db/kpi?sslmode=require",
        ),
        (
            "postgresql://db/kpi?user=kpi&password=s3cret",
            "postgresql://db/kpi?user=kpi&password=***",
        ),
        ("postgresql://kpi@db/kpi", "postgresql://kpi@db/kpi"),
        ("hotline-kpi.db", "hotline-kpi.db"),
    ],
)
def test_a_store_url_is_shown_without_its_password(location: str, shown: str) -> None:
    assert redacted_store(location) == shown


def test_the_demo_logs_its_store_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # No PostgreSQL here: the store is a SQLite file whatever the URL says.
    monkeypatch.setattr(live, "open_store", lambda location: SqliteStore(tmp_path / "s.db"))
    monkeypatch.chdir(tmp_path)
    url = "postgresql://kpi:s3cret@db.local/kpi"
    argv = ["demo", "--headless", "--duration", "0.2", "--metrics-port", "0", "--store", url]
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    assert "s3cret" not in caplog.text
    assert "postgresql://kpi:***@db.local/kpi" in caplog.text


@pytest.mark.parametrize(
    "url", ["postgresql://kpi:s3cr%zzet@127.0.0.1:1/kpi", "postgresql://kpi:s3cret@[::1/kpi"]
)
def test_a_store_url_the_driver_quotes_in_its_error_has_the_password_masked(
    url: str, tmp_path: Path
) -> None:
    (tmp_path / "e.jsonl").write_text("")
    line = one_line(run("replay", "e.jsonl", "--store", url, cwd=tmp_path), 1)
    assert "s3cr" not in line and "not a valid connection string" in line


@pytest.mark.parametrize(
    "url", ["postgresql://u:s3cr%zzet@127.0.0.1/db", "postgresql://u:s3cret@[::1/db"]
)
def test_an_unreadable_store_url_is_refused_without_repeating_its_password(url: str) -> None:
    from hotline_kpi.errors import StoreError
    from hotline_kpi.metrics.postgres import PostgresStore

    with pytest.raises(StoreError) as refused:
        PostgresStore(url)
    assert "s3cr" not in str(refused.value)
    assert "not a valid connection string" in str(refused.value)
