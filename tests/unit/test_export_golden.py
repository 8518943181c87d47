"""The monthly export of a simulated month, byte for byte (issue 13's safety net).

Refactoring the catalogue, the store's read side or the wiring must not change a single byte of
what managers receive. The month has duplicates, shuffled calls and malformed lines, and spans
two months in Asia/Shanghai. Re-record deliberately, after checking the change is intended:

    HOTLINE_KPI_RECORD_GOLDEN=1 .venv/bin/pytest tests/unit/test_export_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hotline_kpi.cli import main

GOLDEN = Path(__file__).parent.parent / "golden"
SIMULATE = [
    "simulate", "--month", "2026-10", "--calls-per-day", "150", "--seed", "7",
    "--duplicates", "0.03", "--shuffle", "--bad", "0.004",
    "--event-model", "v1",  # the golden export is of v1 traffic
]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("golden")
    events, store = folder / "month.jsonl", folder / "store.db"
    assert main([*SIMULATE, "--output", str(events)]) == 0
    assert main(["replay", str(events), "--store", str(store)]) == 0
    return store


@pytest.mark.parametrize(
    ("month", "fmt"), [("2026-10", "json"), ("2026-10", "csv"), ("2026-11", "json")]
)
def test_the_export_of_a_simulated_month_is_unchanged(
    store: Path, tmp_path: Path, month: str, fmt: str
) -> None:
    output = tmp_path / f"export.{fmt}"
    assert main(["export", "--month", month, "--format", fmt, "--output", str(output),
                 "--store", str(store)]) == 0  # fmt: skip
    golden = GOLDEN / f"export-{month}.{fmt}"
    if os.environ.get("HOTLINE_KPI_RECORD_GOLDEN"):
        golden.write_bytes(output.read_bytes())
    assert output.read_bytes() == golden.read_bytes(), f"{golden} differs"
