"""End to end: exporter → real Prometheus (generated rules) → real Alertmanager → webhook.

Debian's ``prometheus`` and ``prometheus-alertmanager`` run on 127.0.0.1 with free ports and
temporary storage; the webhook receiver is a small HTTP server in the test. The Alertmanager
configuration is the committed example with its webhook URLs pointed at that server and its
waits shortened, so routing by severity and inhibition are the real ones.

The rules are generated with ``time_scale=1/60`` (a test-only knob: ``ratio_rate1h`` spans one
minute) so that a burn-rate alert fires within seconds of a breach.

Two exporters feed it:

- ``hotline-kpi demo --headless --scenario understaffed`` (the product, SPEC §5), whose manual
  connection rate breaches its 90% target;
- a tiny prometheus_client exporter in the test serving breached SPEC §4 counters, which pins
  the exact alert that must arrive (fast burn, page, queue label).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from hotline_kpi.alerts.generate import DEFAULT_JOB, render_rules
from hotline_kpi.config import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
        reason="needs Debian's prometheus and prometheus-alertmanager",
    ),
]

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "alerts" / "alertmanager" / "alertmanager.example.yml"
)
TIME_SCALE = 1 / 60
DEADLINE = 120.0
# The demo replays "today" from local midnight faster than real time, so its newest event is
# hours behind the wall clock; in business hours the no-events page would fire and (by the
# example's inhibition) hold back every KPI alert. A day-long quiet period keeps it out of the
# way here; tests/unit/test_rules_promtool.py covers that alert.
SETTINGS = Settings(no_events_alert_seconds=86_400)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``probe`` until true (never a fixed sleep: see ENVIRONMENT.md)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except OSError:  # not listening yet (URLError is an OSError)
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Webhook:
    """Notifications Alertmanager posted, as (path, payload)."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return [(path, alert) for path, payload in self.received for alert in payload["alerts"]]


@pytest.fixture
def webhook() -> Iterator[tuple[Webhook, str]]:
    sink = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with sink.lock:
                sink.received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def alerting_stack(
    tmp_path: Path, webhook: tuple[Webhook, str]
) -> Iterator[Callable[[int], tuple[Webhook, str]]]:
    """Start Alertmanager and Prometheus for an exporter on a given port; stop them after."""
    sink, base = webhook
    processes: list[subprocess.Popen[bytes]] = []

    def launch(exporter_port: int) -> tuple[Webhook, str]:
        config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
        for route in [config["route"], *config["route"]["routes"]]:
            route.update({"group_wait": "1s", "group_interval": "1s"})
        for receiver in config["receivers"]:
            for hook in receiver["webhook_configs"]:
                hook["url"] = base + "/" + hook["url"].rsplit("/", 1)[1]
        (tmp_path / "am.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        am_port = free_port()
        processes.append(
            start(
                [
                    "prometheus-alertmanager",
                    f"--config.file={tmp_path / 'am.yml'}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp_path / "alertmanager.log",
            )
        )

        (tmp_path / "rules.yml").write_text(
            render_rules(SETTINGS, time_scale=TIME_SCALE), encoding="utf-8"
        )
        prometheus_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
            },
            "scrape_configs": [
                {
                    "job_name": DEFAULT_JOB,
                    "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(
            yaml.safe_dump(prometheus_config), encoding="utf-8"
        )
        prom_port = free_port()
        processes.append(
            start(
                [
                    "prometheus",
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--rules.alert.resend-delay=1s",
                ],
                tmp_path / "prometheus.log",
            )
        )
        prom = f"http://127.0.0.1:{prom_port}"
        wait_for("Alertmanager", lambda: ready(f"http://127.0.0.1:{am_port}/-/ready"))
        wait_for("Prometheus", lambda: ready(f"{prom}/-/ready"))
        wait_for(
            "Prometheus rules", lambda: len(get_json(f"{prom}/api/v1/rules")["data"]["groups"]) > 0
        )
        return sink, prom

    try:
        yield launch
    finally:
        for process in reversed(processes):
            stop(process)
        for log in sorted(tmp_path.glob("*.log")):
            sys.stderr.write(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-1500:]}")


def wait_for_alert(
    sink: Webhook, prom: str, match: Callable[[dict[str, str]], bool]
) -> tuple[str, dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for path, alert in sink.alerts():
            if alert["status"] == "firing" and match(alert["labels"]):
                return path, alert
        time.sleep(0.5)
    firing = get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
    raise AssertionError(
        f"no matching notification in {DEADLINE:.0f} s; webhook got "
        f"{[a['labels'] for _, a in sink.alerts()]}; Prometheus has "
        f"{[(a['labels'], a['state']) for a in firing]}"
    )


def test_breached_counters_page_through_alertmanager_to_the_webhook(
    alerting_stack: Callable[[int], tuple[Webhook, str]],
) -> None:
    """A small exporter with the SPEC §4 names: 20% manual connection rate in queue "mobile"."""
    registry = CollectorRegistry()
    requests = Counter("hotline_agent_requests", "", ["queue"], registry=registry)
    answered = Counter("hotline_agent_answered", "", ["queue"], registry=registry)
    last_event = Gauge("hotline_last_event_timestamp_seconds", "", registry=registry)
    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    done = threading.Event()

    def traffic() -> None:
        while not done.is_set():
            requests.labels("mobile").inc(10)
            answered.labels("mobile").inc(2)
            last_event.set(time.time())
            done.wait(0.5)

    feeder = threading.Thread(target=traffic, daemon=True)
    feeder.start()
    try:
        sink, prom = alerting_stack(port)
        path, alert = wait_for_alert(
            sink,
            prom,
            lambda labels: (
                labels.get("alertname") == "HotlineManualConnectionRateFastBurn"
                and labels.get("scope") == "queue"
            ),
        )
    finally:
        done.set()
        server.shutdown()
    assert path == "/page"
    labels = alert["labels"]
    assert labels["severity"] == "page"
    assert labels["kpi"] == "manual_connection_rate"
    assert labels["queue"] == "mobile"
    assert labels["component"] == "kpi"
    notes = alert["annotations"]
    assert "20%" in notes["description"] and "≥ 90%" in notes["description"]
    assert notes["dashboard"].endswith("/hotline-kpi-overview?var-queue=mobile")


@pytest.mark.skipif(
    importlib.util.find_spec("hotline_kpi.demo") is None, reason="hotline-kpi demo not built yet"
)
def test_understaffed_demo_breach_reaches_the_webhook_with_kpi_labels(
    alerting_stack: Callable[[int], tuple[Webhook, str]], tmp_path: Path
) -> None:
    """The product itself: simulated understaffed traffic → /metrics → alert → webhook."""
    port = free_port()
    demo = start(
        [
            sys.executable,
            "-m",
            "hotline_kpi.cli",
            "demo",
            "--headless",
            "--scenario",
            "understaffed",
            "--speed",
            "600",
            "--metrics-port",
            str(port),
            "--store",
            str(tmp_path / "demo.db"),
            "--duration",
            str(DEADLINE + 30),
        ],
        tmp_path / "demo.log",
    )
    try:
        wait_for("the demo's /metrics", lambda: ready(f"http://127.0.0.1:{port}/metrics"))
        sink, prom = alerting_stack(port)
        path, alert = wait_for_alert(
            sink, prom, lambda labels: labels.get("kpi") == "manual_connection_rate"
        )
    finally:
        stop(demo)
    labels = alert["labels"]
    assert labels["alertname"].startswith("HotlineManualConnectionRate")
    assert labels["severity"] in ("page", "ticket")
    assert path == f"/{labels['severity']}"
    assert labels["component"] == "kpi"
    assert labels["scope"] in ("queue", "hotline")
    assert (labels["scope"] == "queue") == ("queue" in labels)
    assert "≥ 90%" in alert["annotations"]["description"]
