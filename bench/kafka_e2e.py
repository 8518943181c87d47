"""Benchmark 2: ``hotline-kpi run`` on a preloaded 6-partition topic, against a bare kafka-python
loop, a bare confluent-kafka loop and the Quix Streams peer (both guarantees), in one run."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from bench.broker import BenchBroker
from bench.data import FileShape
from bench.machine import load, quix_python
from bench.process import HOTLINE, PYTHON, REPO, Child, ChildRun, free_port, run_child

CONSUMERS = REPO / "bench" / "consumers"


def _group(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:8]}"


def stored_positions(store: Path, source: str) -> int:
    """Sum of the next offsets the store holds for ``source`` (0 before the first commit)."""
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute(
                "SELECT COALESCE(SUM(position), 0) FROM positions WHERE source = ?", (source,)
            ).fetchone()
            return int(row[0])
    except sqlite3.OperationalError:
        return 0  # the store or its tables do not exist yet


def run_hotline(
    broker: BenchBroker,
    topic: str,
    total: int,
    store: Path,
    port: int,
    timeout_s: float = 900,
    client: str = "kafka-python",
) -> dict[str, Any]:
    """Start ``hotline-kpi run`` on a new store (with ``client``, the configured ``kafka.client``);
    stop it once the store holds every offset."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    config = store.with_suffix(".yml")
    config.write_text(f"kafka:\n  client: {client}\n")
    child = Child(
        [
            HOTLINE,
            "run",
            "--config",
            str(config),
            "--bootstrap-servers",
            broker.bootstrap,
            "--topic",
            topic,
            "--group",
            _group("hotline"),
            "--store",
            str(store),
            "--metrics-port",
            str(port),
        ]
    )
    deadline = time.perf_counter() + timeout_s
    done_at: float | None = None
    while time.perf_counter() < deadline and child.alive():
        if stored_positions(store, f"kafka:{topic}") >= total:
            done_at = time.perf_counter()
            break
        time.sleep(0.1)
    child.popen.send_signal(signal.SIGTERM)
    run = child.wait()
    if done_at is None:
        raise RuntimeError(f"hotline-kpi run did not reach the end offsets:\n{run.stderr[-2000:]}")
    assigned = child.first_line("partitions assigned") or child.started
    stopped = [line for line in run.stderr.splitlines() if "stopped: accepted" in line]
    return {
        "messages": total,
        "startup_and_join_s": round(assigned - child.started, 3),
        "seconds": round(done_at - assigned, 3),
        "msg_per_s": round(total / (done_at - assigned)),
        "cpu_s": round(run.cpu_s, 2),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "summary": stopped[-1].split(": ", 1)[-1] if stopped else None,
    }


def _loop(script: str, python: str, extra: list[str]) -> dict[str, Any]:
    run: ChildRun = run_child([python, str(CONSUMERS / script), *extra])
    figures: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    figures["cpu_s"] = round(run.cpu_s, 2)
    figures["peak_rss_mb"] = round(run.peak_rss_mb, 1)
    print(f"  {script} {' '.join(extra[-4:])}: {figures}", flush=True)
    return figures


def kafka_e2e(
    data: Path, broker: BenchBroker, topic: str, shape: FileShape, *, quix: bool = True
) -> dict[str, Any]:
    """All consumers on the same topic, one after the other, each from the beginning."""

    total = sum(broker.end_offsets(topic).values())
    common = ["--bootstrap-servers", broker.bootstrap, "--topic", topic, "--expected", str(total)]
    results: dict[str, Any] = {"topic": topic, "messages": total, "partitions": 6}
    loads: dict[str, Any] = {}

    loads["bare_kafka_python"] = load()
    results["bare_kafka_python"] = _loop(
        "bare_kafka_python.py", PYTHON, [*common, "--group", _group("bare")]
    )
    loads["bare_kafka_python_json"] = load()
    results["bare_kafka_python_json"] = _loop(
        "bare_kafka_python.py", PYTHON, [*common, "--group", _group("barejson"), "--parse"]
    )
    loads["bare_confluent"] = load()
    results["bare_confluent"] = _loop(
        "bare_confluent.py", PYTHON, [*common, "--group", _group("confluent")]
    )
    loads["hotline_run"] = load()
    results["hotline_run"] = run_hotline(broker, topic, total, data / "bench-run.db", free_port())
    print(f"  hotline-kpi run: {results['hotline_run']}", flush=True)
    loads["hotline_run_confluent"] = load()
    results["hotline_run_confluent"] = run_hotline(
        broker, topic, total, data / "bench-run-confluent.db", free_port(),
        client="confluent-kafka",
    )  # fmt: skip
    print(f"  hotline-kpi run (confluent-kafka): {results['hotline_run_confluent']}", flush=True)
    if quix:
        for guarantee in ("at-least-once", "exactly-once"):
            key = f"quix_{guarantee.replace('-', '_')}"
            loads[key] = load()
            state = data / "quix-state" / uuid.uuid4().hex[:8]
            results[key] = _loop(
                "quix_peer.py",
                str(quix_python(data)),
                [
                    *common,
                    "--group",
                    _group("quix"),
                    "--queued",
                    str(shape.queued),
                    "--guarantee",
                    guarantee,
                    "--state-dir",
                    str(state),
                ],
            )
    results["load_before_each"] = loads
    results["load_after"] = load()
    hot = results["hotline_run"]["msg_per_s"]
    ratios = {
        "hotline_run_to_bare_kafka_python": hot / results["bare_kafka_python"]["msg_per_s"],
        "hotline_run_to_bare_kafka_python_json": hot
        / results["bare_kafka_python_json"]["msg_per_s"],
        "hotline_run_to_bare_confluent": hot / results["bare_confluent"]["msg_per_s"],
        "bare_confluent_to_bare_kafka_python": results["bare_confluent"]["msg_per_s"]
        / results["bare_kafka_python"]["msg_per_s"],
    }
    fast = results["hotline_run_confluent"]["msg_per_s"]
    ratios["hotline_run_confluent_to_bare_kafka_python"] = (
        fast / results["bare_kafka_python"]["msg_per_s"]
    )
    if quix:
        for key in ("quix_at_least_once", "quix_exactly_once"):
            ratios[f"hotline_run_to_{key}"] = hot / results[key]["msg_per_s"]
            ratios[f"hotline_run_confluent_to_{key}"] = fast / results[key]["msg_per_s"]
    results["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    results["targets"] = {  # issue 17's
        "hotline_run >= 0.5x bare kafka-python": ratios["hotline_run_to_bare_kafka_python"] >= 0.5,
        "hotline_run (confluent) >= 1.0x bare kafka-python": (
            ratios["hotline_run_confluent_to_bare_kafka_python"] >= 1.0
        ),
        "hotline_run (confluent) >= 3x quix exactly-once": (
            ratios.get("hotline_run_confluent_to_quix_exactly_once", 0) >= 3
        ),
    }
    return results
