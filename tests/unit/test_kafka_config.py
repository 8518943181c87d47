"""Kafka message keys and connection settings (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_kpi.config import ConfigError, KafkaCredentials, KafkaSettings, kafka_credentials
from hotline_kpi.ingest.kafka import client_config
from hotline_kpi.ingest.producer import message_key


def test_ticket_events_are_keyed_by_ticket_even_when_they_name_a_call() -> None:
    opened = b'{"type":"ticket.opened","ticket_id":"t9","call_id":"c1","due":"x","kind":"fault"}'
    assert message_key(opened) == b"t9"
    assert message_key(b'{"type":"ticket.closed","ticket_id":"t9"}') == b"t9"
    assert message_key(b'{"type":"survey.answered","call_id":"c1","score":9}') == b"c1"
    # An agent's state changes keep their order on one partition (SPEC §2).
    assert message_key(b'{"type":"agent.state","agent_id":"A7","state":"ready"}') == b"A7"
    assert message_key(b'{"type":"call.wrapped","call_id":"c2","agent_id":"A7"}') == b"c2"
    assert message_key(b'{"type":7,"call_id":"c3"}') == b"c3"
    assert message_key(b"not json") is None
    assert message_key(b"[1]") is None


def test_sasl_password_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="kpi"
    )
    with pytest.raises(ConfigError, match="HOTLINE_KPI_KAFKA_PASSWORD"):
        kafka_credentials(kafka, environ={})
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    from_file = kafka_credentials(kafka.model_copy(update={"sasl_password_file": secret}), {})
    assert from_file.sasl_password == "from-file"
    from_env = kafka_credentials(kafka, {"HOTLINE_KPI_KAFKA_PASSWORD": "from-env"})
    assert from_env.sasl_password == "from-env"
    assert "from-env" not in repr(from_env), "a secret never shows in a log line"
    config = client_config(kafka, from_env)
    assert config["sasl_plain_password"] == "from-env"
    assert config["sasl_mechanism"] == "SCRAM-SHA-256"
    plain = KafkaSettings()
    assert kafka_credentials(plain, {"HOTLINE_KPI_KAFKA_PASSWORD": "x"}) == KafkaCredentials()
    assert "sasl_plain_password" not in client_config(plain, KafkaCredentials())


def test_sasl_without_mechanism_or_user_is_a_config_error() -> None:
    kafka = KafkaSettings(security_protocol="SASL_SSL")
    with pytest.raises(ConfigError, match="sasl_mechanism"):
        client_config(kafka, KafkaCredentials(sasl_password="pw"))
