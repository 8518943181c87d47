"""The simulator split into traffic model, ground truth and writers (issue 13) changed no byte,
and the ground truth stays an oracle independent of what it checks."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

import hotline_kpi.simulation.truth as truth_module
from hotline_kpi.cli import main

# sha256 of the events and of the ground truth, as simulate.py wrote them before the split.
BEFORE_THE_SPLIT = {
    (
        "--month", "2026-10", "--calls-per-day", "300", "--seed", "5", "--duplicates", "0.02",
        "--shuffle", "--bad", "0.003", "--event-model", "v1",
    ): (
        "68777c8b66d884811fbc98a1df2504f08c8f0fb1aba9780498fa3aed5386c71d",
        "210e4be6f7a40c24e55e2d8d0cff8b4c57eb7961e5b22f816bf8f64776997db8",
    ),
    (
        "--start", "2026-03-28", "--days", "2.5", "--calls-per-day", "2000", "--seed", "11",
        "--scenario", "understaffed", "--event-model", "v1",
    ): (
        "01e5438b3a3ff030c20346a302644a7ba358af10a31733eeeb7a7eda99ce9b65",
        "c60e7bc04e9b9533cb9bf34b332dffb9d3f12284bfcc0db60b969bbe9b132fc4",
    ),
}  # fmt: skip


@pytest.mark.parametrize("args", list(BEFORE_THE_SPLIT), ids=["month-noisy", "understaffed"])
def test_the_simulated_events_and_truth_are_the_bytes_of_before_the_split(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    events, truth = tmp_path / "events.jsonl", tmp_path / "truth.json"
    assert main(["simulate", *args, "--output", str(events), "--truth", str(truth)]) == 0
    got = (
        hashlib.sha256(events.read_bytes()).hexdigest(),
        hashlib.sha256(truth.read_bytes()).hexdigest(),
    )
    assert got == BEFORE_THE_SPLIT[args]


FORBIDDEN = ("hotline_kpi.metrics", "hotline_kpi.ingest", "hotline_kpi.reports")


def test_the_ground_truth_imports_nothing_of_the_pipeline_it_checks() -> None:
    """Neither directly nor through another module: not the fold, the store, the catalogue
    (``hotline_kpi.metrics``), nor the decoder; only the simulation's clock and records."""
    tree = ast.parse(Path(truth_module.__file__).read_text(encoding="utf-8"))
    direct = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hotline")
    }
    direct |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.startswith("hotline")
    }
    assert direct == {"hotline_kpi.simulation.clock", "hotline_kpi.simulation.records"}
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, hotline_kpi.simulation.truth\n"
            "print('\\n'.join(m for m in sys.modules if m.startswith('hotline_kpi')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "hotline_kpi.simulation.truth" in loaded
    assert [module for module in loaded if module.startswith(FORBIDDEN)] == []
