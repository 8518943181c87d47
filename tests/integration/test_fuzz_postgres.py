"""Fuzzed streams through `hotline-kpi replay` into a real PostgreSQL store (issue 18).

PostgreSQL is stricter than SQLite about what text may hold (no U+0000, valid UTF-8 only): a
rejected line that cannot be stored would fail the batch's transaction and stop the stream at the
same place on every restart. Same checks as the SQLite fuzz test.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from tests.support.fuzz import fuzzed_stream, reference_verdicts
from tests.support.fuzz_check import check_replay_outcome, replay_fuzzed

pytestmark = pytest.mark.integration


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=fuzzed_stream())
def test_replay_of_a_fuzzed_stream_into_postgresql_loses_nothing(
    lines: list[bytes],
    postgres_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path, positions, summary = replay_fuzzed(
        lines, folder, postgres_database, capsys, "--batch-size", "7"
    )
    with psycopg.connect(postgres_database) as db:
        rows = db.execute(
            "SELECT position, reason FROM rejected WHERE source = %s",
            (f"file:{path.resolve()}",),
        ).fetchall()
    check_replay_outcome(lines, positions, reference_verdicts(lines), rows, summary)
