"""The monthly export of a simulated month, byte for byte (issue 13's safety net).

Refactoring the catalogue, the store's read side or the wiring must not change a single byte of
what managers receive. The month has duplicates, shuffled calls and malformed lines, and spans
two months in Asia/Shanghai. Re-record deliberately, after checking the change is intended:

    HOTLINE_KPI_RECORD_GOLDEN=1 .venv/bin/pytest tests/unit/test_export_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hotline_kpi.cli import main
from tests.support.truth import assert_matches_truth

GOLDEN = Path(__file__).parent.parent / "golden"
SIMULATE = [
    "simulate", "--month", "2026-10", "--calls-per-day", "150", "--seed", "7",
    "--duplicates", "0.03", "--shuffle", "--bad", "0.004",
]  # fmt: skip
SECRET = "golden secret"  # SPEC §7: callers keyed, so the repeat figures are in the golden file


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("golden")
    events, store = folder / "month.jsonl", folder / "store.db"
    truth = folder / "truth.json"
    assert main([*SIMULATE, "--output", str(events), "--truth", str(truth)]) == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOTLINE_KPI_CALLER_KEY", SECRET)
        assert main(["replay", str(events), "--store", str(store)]) == 0
    return store


def test_the_golden_months_equal_the_ground_truth(store: Path) -> None:
    """The recorded figures are the simulator's own (re-recorded with v2 traffic, issue 14)."""
    truth = json.loads((store.parent / "truth.json").read_text())
    for month in ("2026-10", "2026-11"):
        report = json.loads((GOLDEN / f"export-{month}.json").read_text())
        assert_matches_truth(report, truth["months"][month])


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
