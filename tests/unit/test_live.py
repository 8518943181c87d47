"""The one live wiring of run, demo and replay: secrets passed in, /metrics as configured."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hotline_kpi.cli import build_parser
from hotline_kpi.config import ConfigError, load_settings, metrics_basic_auth
from hotline_kpi.live import open_live


def test_every_live_pipeline_serves_metrics_behind_the_configured_basic_auth(
    tmp_path: Path,
) -> None:
    # The demo used to build its own server and drop basic auth and TLS.
    settings = load_settings(
        None,
        store=str(tmp_path / "s.db"),
        metrics={"port": 0, "basic_auth_user": "prom"},
    )
    with pytest.raises(ConfigError, match="HOTLINE_KPI_METRICS_PASSWORD"):
        metrics_basic_auth(settings.metrics, environ={})
    auth = metrics_basic_auth(settings.metrics, {"HOTLINE_KPI_METRICS_PASSWORD": "s3cret"})
    live = open_live(settings, basic_auth=auth)
    try:
        assert live.url is not None and live.url.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(live.url, timeout=5)
        assert denied.value.code == 401
        request = urllib.request.Request(
            live.url, headers={"Authorization": "Basic cHJvbTpzM2NyZXQ="}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert b"hotline_events_total" in response.read()
    finally:
        live.close()


def test_replay_builds_the_same_pipeline_without_serving_metrics(tmp_path: Path) -> None:
    settings = load_settings(None, store=str(tmp_path / "s.db"))
    live = open_live(settings, serve_metrics=False)
    try:
        assert live.server is None and live.metrics is None and live.url is None
        assert live.pipeline.store is live.store
    finally:
        live.close()


def test_help_speaks_to_users_not_to_maintainers() -> None:
    text = build_parser().format_help()
    assert "Exact KPIs of a customer-service hotline" in text
    assert "SPEC" not in text and "composition root" not in text
