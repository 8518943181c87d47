"""Several processes writing one store at once end exactly where one sequential replay does.

Every third line of a simulated month goes to one of three concurrent replay processes writing
one store (SQLite, then PostgreSQL): the events of one call are split between the writers, as a
mis-keyed producer would split them between consumers. The export must equal that of a
sequential replay of the whole file (issue 18, defect 4: it lost duplicates, invented conflicts
and deadlocked). Then the same with ``run``: two consumers of a topic whose producer keyed every
event by its own id, so that a call's events are spread over partitions and consumers.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer

from hotline_kpi.errors import StoreError
from hotline_kpi.metrics.fold import CallFact
from hotline_kpi.metrics.postgres import PostgresStore
from hotline_kpi.metrics.store import BatchWrite, WriterConflictError, _call_row
from tests.integration.test_kafka import (
    Consumer,
    export_matches,
    rejection_counts,
    wait_consumed,
)
from tests.support.services import KafkaBroker

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "hotline_kpi.cli"]
MONTHS = ("2026-10", "2026-11")
WRITERS = 3


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def exports(work: Path, store: str) -> dict[str, Any]:
    return {
        month: json.loads(
            cli("export", "--month", month, "--format", "json", "--store", store, cwd=work).stdout
        )
        for month in MONTHS
    }


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}/{index}")
    else:
        yield path, value


def differing(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Paths whose values differ. Counts and sums are exact; derived floats (a correlation
    summed in row order) may differ in their last bits between insertion orders."""
    want, got = dict(leaves(expected)), dict(leaves(actual))
    out = []
    for path in sorted(want.keys() | got.keys()):
        a, b = want.get(path), got.get(path)
        if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-9):
            continue
        if a != b:
            out.append(f"{path}: {a!r} != {b!r}")
    return out


def tally(stdout: str) -> tuple[int, dict[str, int]]:
    accepted = int(re.search(r"accepted (\d+) events", stdout).group(1))  # type: ignore[union-attr]
    return accepted, {reason: int(n) for reason, n in re.findall(r"(\w+) (\d+)[,)]", stdout)}


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A simulated October (duplicates, shuffled), its lines dealt to 3 writers, and the
    export of one sequential replay of the whole file."""
    work = tmp_path_factory.mktemp("writers")
    cli(
        "simulate",
        "--month",
        "2026-10",
        "--calls-per-day",
        "400",
        "--seed",
        "11",
        "--duplicates",
        "0.03",
        "--shuffle",
        "--output",
        "events.jsonl",
        cwd=work,
    )
    lines = (work / "events.jsonl").read_bytes().splitlines(keepends=True)
    for index in range(WRITERS):
        (work / f"part-{index}.jsonl").write_bytes(b"".join(lines[index::WRITERS]))
    sequential = cli("replay", "events.jsonl", "--store", "sequential.db", cwd=work)
    return {
        "work": work,
        "tally": tally(sequential.stdout),
        "export": exports(work, "sequential.db"),
    }


def replay_concurrently(work: Path, store: str) -> list[str]:
    """Start one replay process per part at once; return their stdouts (all must exit 0)."""
    processes = [
        subprocess.Popen(
            [
                *CLI,
                "replay",
                f"part-{index}.jsonl",
                "--store",
                store,
                "--batch-size",
                "1000",  # many batches: many interleavings
            ],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(WRITERS)
    ]
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
        outputs.append(stdout)
    return outputs


def assert_like_sequential(month: dict[str, Any], outputs: list[str], store: str) -> None:
    accepted = sum(tally(out)[0] for out in outputs)
    duplicates = sum(tally(out)[1].get("duplicate", 0) for out in outputs)
    conflicts = sum(tally(out)[1].get("conflict", 0) for out in outputs)
    expected_accepted, expected_rejected = month["tally"]
    assert (accepted, duplicates, conflicts) == (
        expected_accepted,
        expected_rejected.get("duplicate", 0),
        expected_rejected.get("conflict", 0),
    )
    got = exports(month["work"], store)
    for name in MONTHS:
        assert differing(month["export"][name], got[name]) == [], name


def test_three_replays_into_one_sqlite_store_equal_a_sequential_replay(
    month: dict[str, Any],
) -> None:
    outputs = replay_concurrently(month["work"], "concurrent.db")
    assert_like_sequential(month, outputs, "concurrent.db")


def test_three_replays_into_one_postgres_store_equal_a_sequential_replay(
    month: dict[str, Any], postgres_database: str
) -> None:
    outputs = replay_concurrently(month["work"], postgres_database)
    assert_like_sequential(month, outputs, postgres_database)


@pytest.fixture
def running() -> Iterator[list[Consumer]]:
    started: list[Consumer] = []
    yield started
    for consumer in started:
        if consumer.process.poll() is None:
            consumer.kill()


def test_two_run_consumers_of_a_mis_keyed_topic_share_a_postgres_store_exactly(
    tmp_path: Path,
    kafka_broker: KafkaBroker,
    kafka_topic: Callable[..., str],
    postgres_database: str,
    running: list[Consumer],
) -> None:
    topic = kafka_topic(partitions=4)
    cli(
        "simulate",
        "--start",
        "2026-10-31",
        "--days",
        "1",
        "--calls-per-day",
        "4000",
        "--seed",
        "24",
        "--duplicates",
        "0.02",
        "--output",
        "day.jsonl",
        "--truth",
        "truth.json",
        cwd=tmp_path,
    )
    truth = json.loads((tmp_path / "truth.json").read_text())
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", linger_ms=20)
    for raw in (tmp_path / "day.jsonl").read_bytes().splitlines():
        # Keyed by event id, not by call: one call's events land on several partitions.
        producer.send(topic, key=json.loads(raw)["event_id"].encode(), value=raw)
    producer.flush(timeout=60)
    producer.close()
    running.append(Consumer(tmp_path, kafka_broker.bootstrap, topic, postgres_database))
    running.append(Consumer(tmp_path, kafka_broker.bootstrap, topic, postgres_database))
    wait_consumed(postgres_database, kafka_broker.bootstrap, topic, running)
    assert [consumer.stop() for consumer in running] == [0, 0]
    export_matches(tmp_path, postgres_database, truth)
    assert rejection_counts(postgres_database) == truth["rejections"]


def test_a_deadlock_with_a_writer_that_skips_the_lock_is_one_retryable_line(
    postgres_database: str,
) -> None:
    """An older version's consumer (no advisory lock) can still deadlock with a batch: the
    batch's error is then one line and of the kind the pipeline folds again."""
    store = PostgresStore(postgres_database)
    first, second = CallFact("a"), CallFact("b")
    foreign = psycopg.connect(postgres_database)
    upsert = store._sql_call_upsert
    failure: list[BaseException] = []

    def batch_b_then_a() -> None:
        try:
            store.commit(BatchWrite(calls=[second, first]))
        except StoreError as exc:
            failure.append(exc)

    try:
        foreign.execute(upsert, _call_row(first))  # holds "a" in an open transaction
        ours = threading.Thread(target=batch_b_then_a)
        ours.start()
        time.sleep(0.3)  # ours holds "b" and waits for "a"; its deadlock check runs first
        foreign.execute(upsert, _call_row(second))
        foreign.commit()
        ours.join(timeout=30)
    finally:
        foreign.close()
        store.close()
    (error,) = failure
    assert isinstance(error, WriterConflictError)
    assert str(error) == "store commit failed: deadlock detected"
