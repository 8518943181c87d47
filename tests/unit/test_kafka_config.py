"""Kafka message keys and connection settings (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_kpi.config import ConfigError, KafkaSettings
from hotline_kpi.ingest.kafka import client_config, message_key


def test_ticket_events_are_keyed_by_ticket_even_when_they_name_a_call() -> None:
    opened = b'{"type":"ticket.opened","ticket_id":"t9","call_id":"c1","due":"x","kind":"fault"}'
    assert message_key(opened) == b"t9"
    assert message_key(b'{"type":"ticket.closed","ticket_id":"t9"}') == b"t9"
    assert message_key(b'{"type":"survey.answered","call_id":"c1","score":9}') == b"c1"
    assert message_key(b"not json") is None
    assert message_key(b"[1]") is None


def test_sasl_password_comes_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="kpi"
    )
    monkeypatch.delenv("HOTLINE_KPI_KAFKA_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="HOTLINE_KPI_KAFKA_PASSWORD"):
        client_config(kafka)
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    config = client_config(kafka.model_copy(update={"sasl_password_file": secret}))
    assert config["sasl_plain_password"] == "from-file"
    monkeypatch.setenv("HOTLINE_KPI_KAFKA_PASSWORD", "from-env")
    assert client_config(kafka)["sasl_plain_password"] == "from-env"
    assert client_config(kafka)["sasl_mechanism"] == "SCRAM-SHA-256"
    assert "sasl_plain_password" not in client_config(KafkaSettings())
