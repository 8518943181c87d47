"""``hotline-kpi demo``: the embedded default, end to end on one machine.

A simulated hotline (the same simulator as ``simulate``) runs from local midnight of today,
fast-forwarded by ``--speed`` but never ahead of the wall clock, through the full pipeline into the
SQLite store; ``/metrics`` is served; a live terminal view shows today's KPIs against their
targets, per queue. Ctrl-C stops it cleanly after the batch in hand is committed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hotline_kpi.config import Settings
from hotline_kpi.errors import HotlineError
from hotline_kpi.metrics.export import Report, Tallies
from hotline_kpi.metrics.exposition import HotlineMetrics, MetricsServer, QueueLabels
from hotline_kpi.metrics.fold import US
from hotline_kpi.metrics.store import open_store
from hotline_kpi.pipeline import Pipeline, Tally, max_clock_skew_of, thresholds_of
from hotline_kpi.simulate import Scenario, Simulator, local_midnight_ms

log = logging.getLogger(__name__)

MS = 1000
# Two-line headers keep the table inside an 80-column terminal.
COLUMNS = (
    ("manual_connection_rate", "接通率\nconn%", "pct"),
    ("service_level", "服务\nSL%", "pct"),
    ("abandon_rate", "放弃\nabnd%", "pct"),
    ("drop_rate", "中断\ndrop%", "pct2"),
    ("average_speed_of_answer", "应答\nASA s", "sec"),
    ("answer_accuracy", "准确\nacc%", "pct"),
    ("satisfaction_rate", "满意\nsat%", "pct"),
    ("timeliness", "及时\nontm%", "pct"),
)


def _cell(entry: dict[str, Any], style: str) -> Text:
    value = entry["value"]
    if value is None:
        return Text("—", style="dim")
    text = {"pct": f"{value * 100:.1f}", "pct2": f"{value * 100:.2f}", "sec": f"{value:.0f}"}[style]
    met = entry.get("met")
    colour = "" if met is None else ("green" if met else "bold red")
    return Text(text, style=colour)


def kpi_table(
    overall: Tallies, queues: dict[str, Tallies], settings: Settings, title: str
) -> Table:
    """Today's KPIs per queue and overall, coloured green/red against their targets."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("队列\nqueue", max_width=12, no_wrap=True, overflow="ellipsis")
    table.add_column("排队\ncalls", justify="right", no_wrap=True)
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right", no_wrap=True, min_width=5)
    targets = settings.targets
    for name, tally in [*queues.items(), ("全部 all", overall)]:
        kpis = tally.kpis(targets)
        table.add_row(
            Text(name, style="bold" if tally is overall else ""),
            str(tally.queued),
            *(_cell(kpis[key], style) for key, _, style in COLUMNS),
        )
    return table


def _paced(
    simulator: Simulator, start_ms: int, speed: float, stop: list[bool]
) -> Iterator[list[bytes]]:
    """Batches of event lines whose simulated arrival has come, never ahead of the wall."""
    stream = simulator.stream(start_ms, None)
    wall0 = time.time()
    pending: tuple[int, bytes] | None = None
    while not stop[0]:
        wall = time.time()
        sim_now = min(start_ms + (wall - wall0) * speed * MS, wall * MS)
        batch: list[bytes] = []
        while len(batch) < 5000:
            if pending is None:
                pending = next(stream)
            if pending[0] > sim_now:
                break
            batch.append(pending[1])
            pending = None
        yield batch
        if len(batch) < 5000:
            time.sleep(0.2)


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C (or ``--duration`` seconds)."""
    if args.speed <= 0:
        raise HotlineError("--speed must be positive")
    zone = settings.zone
    store = open_store(settings.store)
    registry = CollectorRegistry()
    metrics = HotlineMetrics(registry, QueueLabels(settings.queues, settings.max_queues))
    port = settings.metrics.port
    try:
        server = MetricsServer(registry, settings.metrics.address, port)
    except OSError as exc:
        store.close()
        raise HotlineError(
            f"cannot serve /metrics on {settings.metrics.address}:{port}: {exc.strerror}"
        ) from None
    pipeline = Pipeline(
        store, thresholds_of(settings), metrics, max_clock_skew_us=max_clock_skew_of(settings)
    )
    today = datetime.now(zone).date()
    start_ms = local_midnight_ms(today, zone)
    if pipeline.watermark is not None:
        # Continue the simulated day after what the store already holds.
        start_ms = max(start_ms, pipeline.watermark // MS + 1)
    seed = args.seed * 1_000_003 + start_ms // 1000
    simulator = Simulator(settings, Scenario.named(args.scenario, args.calls_per_day), seed)
    report = Report(store, settings)
    stop = [False]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop[0] = True

    previous = signal.signal(signal.SIGTERM, on_signal)
    tally = Tally()
    url = f"http://{settings.metrics.address}:{server.port}/metrics"
    console = Console(stderr=True)
    started = time.monotonic()
    live = None if args.headless else Live(console=console, refresh_per_second=2)
    log.info("demo: store %s, metrics on %s", settings.store, url)
    try:
        if live is not None:
            live.start()
        last_view = 0.0
        for lines in _paced(simulator, start_ms, args.speed, stop):
            if lines:
                records = [(line, 0, 0) for line in lines]
                pipeline.process(records, "demo", {}, tally)
            now = time.monotonic()
            if now - last_view >= 1.0:
                last_view = now
                _show(live, report, pipeline, tally, settings, url, today.isoformat())
            if args.duration is not None and now - started >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
        signal.signal(signal.SIGTERM, previous)
        server.close()
        store.close()
    console.print(f"demo stopped: accepted {tally.accepted}, rejected {tally.total_rejected}")
    return 0


def _show(
    live: Live | None,
    report: Report,
    pipeline: Pipeline,
    tally: Tally,
    settings: Settings,
    url: str,
    day: str,
) -> None:
    watermark = pipeline.watermark
    clock = "—"
    lo = hi = 0
    if watermark is not None:
        moment = datetime.fromtimestamp(watermark / US, tz=settings.zone)
        clock = moment.strftime("%Y-%m-%d %H:%M:%S")
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        lo = int(midnight.timestamp()) * US
        hi = lo + 24 * 3600 * US
    overall, queues = report.scopes(lo, hi)
    title = (
        f"10000 热线 KPI — {day} — clock {clock}\n"
        f"accepted {tally.accepted}, rejected {tally.total_rejected} — {url}"
    )
    if live is None:
        kpis = overall.kpis(settings.targets)
        value = kpis["manual_connection_rate"]["value"]
        log.info(
            "%s: queued %d, manual connection rate %s, accepted %d",
            clock,
            overall.queued,
            "—" if value is None else f"{value:.1%}",
            tally.accepted,
        )
        return
    live.update(
        Group(kpi_table(overall, queues, settings, title), Text("Ctrl-C to stop", style="dim"))
    )
