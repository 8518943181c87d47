"""Benchmark 3: event produced → counted on ``/metrics``, at a steady rate, p50/p99.

A producer thread sends simulated events at a fixed rate to a fresh 6-partition topic that a
``hotline-kpi run`` consumes, noting when each ``send`` was called. A scraper polls ``/metrics``
every few milliseconds (directly, no Prometheus in between, so no scrape interval) and notes when
the count of processed events (``hotline_events_total`` plus ``hotline_events_rejected_total``)
first reaches each value. Event *i*'s latency is the moment the count first reached *i* minus
the moment event *i* was sent: exact on one partition, and on six partitions the latency of
the i-th event the consumer finished, which is the same distribution in a steady state.
"""

from __future__ import annotations

import bisect
import re
import signal
import statistics
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from bench.broker import BenchBroker
from bench.kafka_e2e import _group
from bench.machine import load
from bench.process import HOTLINE, Child, free_port

COUNTED = re.compile(rb"^hotline_events(?:_rejected)?_total\{[^}]*\} ([0-9.e+]+)$", re.M)


def processed(port: int) -> int:
    """Events the exporter has counted so far, accepted and rejected."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read()
    return int(sum(float(value) for value in COUNTED.findall(body)))


def latency(
    data: Path,
    broker: BenchBroker,
    source: Path,
    *,
    rate: int = 2000,
    seconds: float = 60.0,
    warmup_s: float = 5.0,
    scrape_every_s: float = 0.02,
) -> dict[str, Any]:
    """Produce ``rate`` events/s for ``seconds`` and report produce→/metrics latencies."""
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, 6)
    store = data / "bench-latency.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    port = free_port()
    child = Child(
        [
            HOTLINE,
            "run",
            "--bootstrap-servers",
            broker.bootstrap,
            "--topic",
            topic,
            "--group",
            _group("latency"),
            "--store",
            str(store),
            "--metrics-port",
            str(port),
        ]
    )
    deadline = time.perf_counter() + 60
    while child.first_line("partitions assigned") is None:
        if time.perf_counter() > deadline or not child.alive():
            child.popen.kill()
            raise RuntimeError(f"hotline-kpi run did not start: {child.wait(check=False).stderr}")
        time.sleep(0.05)

    from hotline_kpi.ingest.producer import message_key

    total = int(rate * seconds)
    with source.open("rb") as stream:
        lines = [stream.readline().rstrip(b"\n") for _ in range(total)]
    sent_at: list[float] = [0.0] * total
    seen: list[tuple[float, int]] = []
    stop = threading.Event()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, linger_ms=5)

    def produce() -> None:
        # Sends in 5 ms ticks; each tick catches up to where the steady schedule should be.
        started = time.perf_counter()
        index = 0
        while index < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            while index < due:
                line = lines[index]
                sent_at[index] = time.perf_counter()
                producer.send(topic, key=message_key(line), value=line)
                index += 1
            time.sleep(0.005)
        producer.flush()

    def scrape() -> None:
        last = -1
        while not stop.is_set():
            count = processed(port)
            if count != last:
                seen.append((time.perf_counter(), count))
                last = count
            time.sleep(scrape_every_s)

    before = load()
    threads = [threading.Thread(target=produce), threading.Thread(target=scrape, daemon=True)]
    for thread in threads:
        thread.start()
    threads[0].join()
    end_wait = time.perf_counter() + 30
    while (not seen or seen[-1][1] < total) and time.perf_counter() < end_wait:
        time.sleep(0.05)
    stop.set()
    threads[1].join()
    producer.close()
    child.popen.send_signal(signal.SIGTERM)
    run = child.wait()

    counts = [count for _, count in seen]
    first_send = sent_at[0]
    latencies = []
    for index in range(total):
        if sent_at[index] - first_send < warmup_s:
            continue
        at = bisect.bisect_left(counts, index + 1)
        if at == len(counts):
            continue  # never seen: reported as missing below
        latencies.append(seen[at][0] - sent_at[index])
    latencies.sort()
    measured = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(measured - 1, int(p * measured))] * 1000, 1)

    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "events": total,
        "warmup_excluded_s": warmup_s,
        "scrape_every_ms": scrape_every_s * 1000,
        "measured_events": measured,
        "never_seen": total - (counts[-1] if counts else 0),
        "achieved_rate_per_s": round((total - 1) / (sent_at[-1] - sent_at[0])),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "run_cpu_s": round(run.cpu_s, 2),
        "run_cpu_share": round(run.cpu_s / run.wall_s, 3),
        "run_peak_rss_mb": round(run.peak_rss_mb, 1),
        "load_before": before,
        "load_after": load(),
        "target": "p99 < 1000 ms",
        "target_met": pct(0.99) < 1000,
    }
