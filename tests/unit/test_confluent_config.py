"""``kafka.client`` and the confluent-kafka consumer's settings (no broker needed)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from hotline_kpi.config import ConfigError, KafkaCredentials, KafkaSettings, load_settings
from hotline_kpi.errors import SourceError
from hotline_kpi.ingest.confluent import ConfluentKafkaSource, consumer_config
from hotline_kpi.ingest.kafka import client_config
from tests.support.cli import run_cli

CLEAN = {key: value for key, value in os.environ.items() if not key.startswith("HOTLINE_KPI_")}


def test_kafka_python_stays_the_default_client_and_confluent_kafka_is_chosen_by_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("HOTLINE_KPI_")]:
        monkeypatch.delenv(key)
    assert load_settings().kafka.client == "kafka-python"
    (tmp_path / "c.yaml").write_text("kafka:\n  client: confluent-kafka\n")
    assert load_settings(tmp_path / "c.yaml").kafka.client == "confluent-kafka"
    monkeypatch.setenv("HOTLINE_KPI_KAFKA__CLIENT", "confluent-kafka")
    assert load_settings().kafka.client == "confluent-kafka"


def test_an_unknown_client_is_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("kafka:\n  client: librdkafka\n")
    with pytest.raises(ConfigError, match=r"kafka\.client") as caught:
        load_settings(tmp_path / "c.yaml")
    assert "\n" not in str(caught.value)


def test_the_plaintext_consumer_is_given_the_servers_only() -> None:
    config = consumer_config(KafkaSettings(bootstrap_servers="a:9092,b:9093"), KafkaCredentials())
    assert config["bootstrap.servers"] == "a:9092,b:9093"
    assert config["security.protocol"] == "plaintext"
    assert not any(key.startswith(("sasl.", "ssl.")) for key in config)


def test_sasl_and_tls_settings_map_to_librdkafka_names_as_to_kafka_python_ones() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="kpi",
        ssl_cafile=Path("/etc/ca.pem"),
        ssl_certfile=Path("/etc/cert.pem"),
        ssl_keyfile=Path("/etc/key.pem"),
    )
    credentials = KafkaCredentials(sasl_password="pw", ssl_password="kp")
    ours = consumer_config(kafka, credentials)
    theirs = client_config(kafka, credentials)
    assert ours["security.protocol"] == "sasl_ssl" == theirs["security_protocol"].lower()
    pairs = {
        "sasl.mechanism": "sasl_mechanism",
        "sasl.username": "sasl_plain_username",
        "sasl.password": "sasl_plain_password",
        "ssl.ca.location": "ssl_cafile",
        "ssl.certificate.location": "ssl_certfile",
        "ssl.key.location": "ssl_keyfile",
        "ssl.key.password": "ssl_password",
    }
    assert {name: ours[name] for name in pairs} == {
        name: theirs[key] for name, key in pairs.items()
    }
    assert "pw" not in repr(credentials)


def test_sasl_without_mechanism_or_user_is_the_same_config_error_for_both_clients() -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="kpi")
    with pytest.raises(ConfigError, match="sasl_mechanism") as ours:
        consumer_config(kafka, KafkaCredentials(sasl_password="pw"))
    with pytest.raises(ConfigError) as theirs:
        client_config(kafka, KafkaCredentials(sasl_password="pw"))
    assert str(ours.value) == str(theirs.value)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_broker_is_the_one_line_error_of_kafka_python_within_the_timeout() -> None:
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{_closed_port()}", connect_timeout_seconds=1
    )
    started = time.monotonic()
    with pytest.raises(SourceError, match="could not connect or authenticate") as caught:
        ConfluentKafkaSource(kafka, consumer_config(kafka, KafkaCredentials()), lambda _: {})
    assert time.monotonic() - started < 10
    assert "\n" not in str(caught.value) and kafka.bootstrap_servers in str(caught.value)


def test_run_with_confluent_kafka_and_no_broker_exits_with_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "run",
        *("--bootstrap-servers", f"127.0.0.1:{_closed_port()}", "--metrics-port", "0"),
        *("--store", str(tmp_path / "k.db")),
        cwd=tmp_path,
        env=CLEAN
        | {
            "HOTLINE_KPI_KAFKA__CLIENT": "confluent-kafka",
            "HOTLINE_KPI_KAFKA__CONNECT_TIMEOUT_SECONDS": "1",
            "HOTLINE_KPI_CALLER_KEY": "test secret",
            "PYTHONWARNINGS": "ignore",
        },
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not connect or authenticate" in lines[0], result.stderr
