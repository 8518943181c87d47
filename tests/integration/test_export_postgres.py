"""The monthly export read from a PostgreSQL store is the golden export, byte for byte (issue 13).

The store's read side is one set of SQL for both dialects (``metrics/store.py``); PostgreSQL sums
to ``numeric``, divides integers its own way and keeps survey factors as text, so the golden month
(``tests/unit/test_export_golden.py``) is replayed into PostgreSQL and exported from there too.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from hotline_kpi.cli import main
from tests.unit.test_export_golden import GOLDEN, SECRET, SIMULATE

pytestmark = pytest.mark.integration


def test_the_export_from_postgresql_is_the_golden_export(
    postgres_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "month.jsonl"
    assert main([*SIMULATE, "--output", str(events)]) == 0
    monkeypatch.setenv("HOTLINE_KPI_CALLER_KEY", SECRET)  # the golden export's callers are keyed
    assert main(["replay", str(events), "--store", postgres_database]) == 0
    for month, fmt in (("2026-10", "json"), ("2026-10", "csv"), ("2026-11", "json")):
        output = tmp_path / f"export-{month}.{fmt}"
        assert main(["export", "--month", month, "--format", fmt, "--output", str(output),
                     "--store", postgres_database]) == 0  # fmt: skip
        golden = GOLDEN / f"export-{month}.{fmt}"
        diff = difflib.unified_diff(
            golden.read_text(encoding="utf-8").splitlines(),
            output.read_text(encoding="utf-8").splitlines(),
            str(golden),
            "PostgreSQL",
            lineterm="",
        )
        assert output.read_bytes() == golden.read_bytes(), "\n".join(list(diff)[:60])
