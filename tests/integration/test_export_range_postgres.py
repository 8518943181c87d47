"""Range reports read from PostgreSQL are the ones read from SQLite, byte for byte (issue 16).

The grouped pass behind the read seam (``StoreReader.period_counts`` and its siblings) is one SQL
for both dialects: the period index a nested ``CASE`` over the edges, the queue filter the same
attribution as the month export's. The same simulated events go into both stores; every range
export (days, hours over a daylight-saving change, quarter hours, one queue, CSV) must agree.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from hotline_kpi.cli import main
from tests.unit.test_export_golden import SIMULATE

pytestmark = pytest.mark.integration

RANGES = [
    ("json", "--month", "2026-10", "--by", "day"),
    ("json", "--from", "2026-10-30", "--to", "2026-11-01", "--by", "interval"),
    ("json", "--from", "2026-10-01", "--to", "2026-10-31", "--queue", "billing"),
    ("csv", "--from", "2026-10-05", "--to", "2026-10-06", "--by", "hour"),
]


def _export(store: str, fmt: str, options: tuple[str, ...], output: Path, config: Path) -> bytes:
    assert main(["export", *options, "--format", fmt, "--output", str(output),
                 "--store", store, "--config", str(config)]) == 0  # fmt: skip
    return output.read_bytes()


def _same(sqlite: bytes, postgres: bytes, what: str) -> None:
    diff = difflib.unified_diff(
        sqlite.decode().splitlines(), postgres.decode().splitlines(), "SQLite", what, lineterm=""
    )
    assert postgres == sqlite, "\n".join(list(diff)[:60])


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_range_exports_from_postgresql_are_those_from_sqlite(
    postgres_database: str, tmp_path: Path, zone: str
) -> None:
    config = tmp_path / "hotline-kpi.yaml"
    config.write_text(f"timezone: {zone}\n", encoding="utf-8")
    events = tmp_path / "month.jsonl"
    sqlite = str(tmp_path / "store.db")
    assert main([*SIMULATE, "--config", str(config), "--output", str(events)]) == 0
    for store in (sqlite, postgres_database):
        assert main(["replay", str(events), "--store", store, "--config", str(config)]) == 0
    for index, (fmt, *options) in enumerate(RANGES):
        mine = _export(sqlite, fmt, tuple(options), tmp_path / f"s{index}.{fmt}", config)
        theirs = _export(
            postgres_database, fmt, tuple(options), tmp_path / f"p{index}.{fmt}", config
        )
        assert len(mine) > 1000
        _same(mine, theirs, f"PostgreSQL {' '.join(options)} --format {fmt}")
