"""Multi-row INSERTs (issue 17): every row is written, whatever the count, and each INSERT keeps
a bounded number of forms (powers of two), so the connection's statement cache stays small."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_kpi.metrics.fold import StateChange
from hotline_kpi.metrics.store import ROWS_PER_INSERT, BatchWrite, SqliteStore


@pytest.mark.parametrize("count", [1, 2, 3, ROWS_PER_INSERT - 1, ROWS_PER_INSERT, 1300])
def test_every_row_of_a_multi_row_insert_is_written(tmp_path: Path, count: int) -> None:
    store = SqliteStore(tmp_path / "rows.db")
    states = [
        StateChange(f"e{i:05d}", f"A{i % 7}", 1_000_000 * i, "ready", None) for i in range(count)
    ]
    store.commit(BatchWrite(states=states, seen=[s.event_id for s in states]))
    stored = store.state_changes(0, 1_000_000 * count)
    assert sorted(stored, key=lambda s: s.event_id) == states
    assert store.seen({s.event_id for s in states}) == {s.event_id for s in states}
    store.close()


def test_an_insert_has_at_most_ten_forms(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "rows.db")
    for batch in range(40):
        states = [
            StateChange(f"e{batch:03d}-{i:04d}", "A1", i, "ready", None)
            for i in range(batch * 37 + 1)
        ]
        store.commit(BatchWrite(states=states))
    forms = [size for (sql, size) in store._many_rows_sql if "agent_states" in sql]
    assert len(forms) <= 10
    assert all(size & (size - 1) == 0 and size <= ROWS_PER_INSERT for size in forms)
    store.close()
