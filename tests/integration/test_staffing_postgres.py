"""The staffing sums from a PostgreSQL store (issue 17): the rollups' pivot (``numeric`` sums,
the server's collation) and the read from the facts give the same sums, and the same sums as a
SQLite store of the same events."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_kpi.cli import main
from hotline_kpi.config import load_settings
from hotline_kpi.metrics.months import month_bounds
from hotline_kpi.metrics.rolled import RollupReader, reader_for
from hotline_kpi.metrics.store import open_store
from tests.unit.test_export_golden import SIMULATE

pytestmark = pytest.mark.integration


def test_the_staffing_sums_from_postgresql_agree_with_its_facts_and_with_sqlite(
    postgres_database: str, tmp_path: Path
) -> None:
    events, sqlite = tmp_path / "month.jsonl", tmp_path / "store.db"
    assert main([*SIMULATE, "--output", str(events)]) == 0
    for location in (postgres_database, str(sqlite)):
        assert main(["replay", str(events), "--store", location]) == 0
    settings = load_settings(None, store=postgres_database)
    postgres, lite = open_store(postgres_database), open_store(str(sqlite))
    try:
        rolled = reader_for(postgres, settings)
        assert isinstance(rolled, RollupReader)
        for month in ("2026-10", "2026-11"):
            lo, hi = month_bounds(month, settings.zone)
            grid = (settings.timezone, settings.interval_minutes)
            from_rollups = rolled.slot_sums(lo, hi, *grid)
            assert from_rollups == postgres.slot_sums(lo, hi, *grid), month
            assert from_rollups == reader_for(lite, settings).slot_sums(lo, hi, *grid), month
            assert bool(from_rollups.loads) == (month == "2026-10")  # November: spill-over only
    finally:
        postgres.close()
        lite.close()
