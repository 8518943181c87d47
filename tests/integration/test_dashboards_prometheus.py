"""Every panel query of every dashboard runs on a real Prometheus and returns data (issue 5).

The stack, all on 127.0.0.1 with free ports and temporary directories:

- the exporter: ``hotline-kpi demo --headless`` (simulated traffic → pipeline → ``/metrics``);
- Debian's Prometheus 2.42 scraping it every second, with the generated recording rules and a
  test-only alert that always fires (so that the firing-alerts panel has a row to show).

Each query is sent as Grafana would send it, its variables substituted: ``$queue`` by the
busiest real queue, ``$__rate_interval`` and friends by concrete durations. Instant targets go to
``/api/v1/query``, range targets to ``/api/v1/query_range``. A query must not error, and must
return at least one finite value; the test polls until all do or a deadline passes.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from hotline_kpi.config import Settings
from hotline_kpi.dashboards.generate import build_dashboards
from hotline_kpi.dashboards.model import SCRAPE_JOB

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "alerts" / "rules" / "hotline-kpi.rules.yml"
# Grafana's $__rate_interval is at least four scrape intervals; with a 1 s scrape, 10 s is safe.
SUBSTITUTIONS = {
    "$__rate_interval": "10s",
    "$__interval": "1s",
    "$__range": "10m",
}
QUERY_RANGE_SECONDS = 60
DEADLINE_SECONDS = 180.0
# The demo has no Kafka, so it cannot report consumer lag: queries of these metrics are only
# checked for errors, and only when the exporter does not serve the metric.
NEEDS_KAFKA = {"hotline_consumer_lag_messages"}
RAW_METRIC = re.compile(r"(?<![:\w])(hotline_[a-z_]+?)(?:_bucket|_sum|_count)?(?![\w:])")

T = TypeVar("T")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool

    def describe(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}: {self.expr}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _poll(what: str, probe: Callable[[], T | None], timeout: float, process: Any = None) -> T:
    """Call ``probe`` until it returns a value; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited with {process.returncode}", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
        time.sleep(0.2)


def _get(url: str, params: dict[str, str] | None = None) -> Any:
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        # Prometheus answers 400/422 with a JSON body naming the error: keep it.
        return json.load(exc)


def _text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
            return text
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _recording_rules(settings: Settings) -> str:
    """The generated rules: the committed file, or the generator's output if it is newer."""
    try:
        from hotline_kpi.alerts.generate import render_rules
    except ImportError:
        render_rules = None
    if render_rules is not None:
        rendered: str = render_rules(settings)
        return rendered
    if RULES_FILE.is_file():
        return RULES_FILE.read_text(encoding="utf-8")
    pytest.fail(
        f"no recording rules: neither {RULES_FILE.relative_to(REPO)} nor"
        " hotline_kpi.alerts.generate.render_rules exists",
        pytrace=False,
    )


def _zone_latest_in_its_day(now: datetime) -> str:
    """The UTC-offset zone where the local time of ``now`` is latest in its day (23:xx).

    The demo simulates from local midnight and never runs ahead of the wall clock, so in this
    zone it has almost a whole simulated day to replay at ``--speed`` before it catches up:
    enough for the events that come hours after a call (QA reviews, overdue work orders),
    whatever time of day the test runs.
    """
    offset = max(range(-12, 15), key=lambda hours: ((now.hour + hours) % 24, hours))
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """``hotline-kpi demo --headless`` serving /metrics; yields (port, first scrape's text)."""
    directory = tmp_path_factory.mktemp("exporter")
    port = _free_port()
    config = directory / "hotline-kpi.yaml"
    zone = _zone_latest_in_its_day(datetime.now(UTC))
    config.write_text(yaml.safe_dump({"timezone": zone}), encoding="utf-8")
    log = (directory / "demo.log").open("wb")
    command = [
        sys.executable, "-m", "hotline_kpi.cli", "demo", "--headless",
        "--config", str(config), "--speed", "3600", "--metrics-port", str(port),
        "--store", str(directory / "demo.db"), "--duration", "600",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def served() -> str | None:
            text = _text(url)
            return text if text and "hotline_agent_requests_total{" in text else None

        try:
            first = _poll("the demo exporter to serve call metrics", served, 60, process)
        except pytest.fail.Exception:
            log.flush()
            tail = (directory / "demo.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"the demo exporter did not start; its log ends:\n{tail}", pytrace=False)
        yield port, first
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="module")
def prometheus(
    exporter: tuple[int, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Debian's Prometheus scraping the exporter each second with the rules loaded; its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("Debian's prometheus is not installed (scripts/install-system.sh)", False)
    directory = tmp_path_factory.mktemp("prometheus")
    rules = directory / "hotline-kpi.rules.yml"
    rules.write_text(_recording_rules(Settings()), encoding="utf-8")
    # A test-only alert that always fires, so that ALERTS{alertstate="firing"} has a series.
    always = directory / "always-firing.yml"
    always.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboards-test",
                        "rules": [
                            {
                                "alert": "DashboardsTestAlwaysFiring",
                                "expr": "vector(1)",
                                "labels": {"severity": "ticket"},
                            }
                        ],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules), str(always)],
                "scrape_configs": [
                    {
                        "job_name": SCRAPE_JOB,
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter[0]}"]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    checked = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    port = _free_port()
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _poll("Prometheus to be ready", lambda: _text(f"{url}/-/ready"), 30, process)
        _poll(
            "the first scrape of the exporter",
            lambda: (
                _get(f"{url}/api/v1/query", {"query": "hotline_events_total"})["data"]["result"]
                or None
            ),
            30,
            process,
        )
        yield url
    finally:
        _stop(process)
        log.close()


def _panel_queries() -> list[PanelQuery]:
    queries = []
    for uid, board in build_dashboards(Settings()).items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                queries.append(
                    PanelQuery(uid, panel["title"], target["refId"], target["expr"],
                               bool(target.get("instant")))
                )  # fmt: skip
    return queries


def _substitute(expr: str, queue: str) -> str:
    for name in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(name, SUBSTITUTIONS[name])
    return expr.replace("$queue", queue)


def _run(url: str, query: PanelQuery, queue: str) -> tuple[str | None, bool]:
    """(error or None, whether the answer holds a finite value)."""
    expr = _substitute(query.expr, queue)
    now = time.time()
    if query.instant:
        answer = _get(f"{url}/api/v1/query", {"query": expr, "time": f"{now:.3f}"})
    else:
        answer = _get(
            f"{url}/api/v1/query_range",
            {
                "query": expr,
                "start": f"{now - QUERY_RANGE_SECONDS:.3f}",
                "end": f"{now:.3f}",
                "step": "2",
            },
        )
    if answer.get("status") != "success":
        return f"{answer.get('errorType')}: {answer.get('error')}", False
    values: list[str] = []
    for series in answer["data"]["result"]:
        if "value" in series:
            values.append(series["value"][1])
        values += [value for _, value in series.get("values", [])]
    return None, any(math.isfinite(float(value)) for value in values)


def _served_metrics(port: int) -> set[str]:
    """Names of the sample lines the exporter serves now (a family without samples is absent)."""
    text = _text(f"http://127.0.0.1:{port}/metrics") or ""
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _unserved(query: PanelQuery, served: set[str]) -> set[str]:
    return {
        name
        for name in RAW_METRIC.findall(query.expr)
        if not any(sample == name or sample.startswith(name + "_") for sample in served)
    }


def test_every_panel_query_runs_on_prometheus_and_returns_data(
    prometheus: str, exporter: tuple[int, str]
) -> None:
    busiest = _poll(
        "a queue with traffic",
        lambda: (
            _get(
                f"{prometheus}/api/v1/query",
                {"query": "topk(1, sum by (queue) (hotline_agent_requests_total))"},
            )["data"]["result"]
            or None
        ),
        30,
    )
    queue = busiest[0]["metric"]["queue"]
    queries = _panel_queries()
    assert len(queries) > 50

    def excused(query: PanelQuery, served: set[str]) -> bool:
        # A query of a metric the demo cannot serve (lag, without Kafka) cannot return data;
        # that it ran without error is all that can be checked here.
        missing = _unserved(query, served)
        return bool(missing) and missing <= NEEDS_KAFKA

    pending = list(queries)
    started = time.monotonic()
    while True:
        still: list[PanelQuery] = []
        for query in pending:
            error, has_data = _run(prometheus, query, queue)
            assert error is None, f"{query.describe()}\n  -> {error}"
            if not has_data:
                still.append(query)
        pending = still
        served = _served_metrics(exporter[0])
        if all(excused(query, served) for query in pending):
            break
        if time.monotonic() - started > DEADLINE_SECONDS:
            break
        time.sleep(1.0)

    print(f"{len(queries) - len(pending)} of {len(queries)} panel queries returned data after"
          f" {time.monotonic() - started:.0f} s (queue {queue!r})")  # fmt: skip
    for query in pending:
        if excused(query, served):
            print(f"no data, as expected without Kafka: {query.describe()}")
    failing = [query for query in pending if not excused(query, served)]
    assert not failing, (
        f"{len(failing)} of {len(queries)} panel queries returned no finite value after"
        f" {DEADLINE_SECONDS:.0f} s (queue {queue!r}):\n"
        + "\n".join(
            f"{query.describe()}  [unserved: {sorted(_unserved(query, served))}]"
            for query in failing
        )
    )
