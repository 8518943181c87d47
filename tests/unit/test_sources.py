"""The Source contract carries what a telephony converter will need (issue 13): several events
from one line, none from a skipped line, and state committed with the position."""

from __future__ import annotations

from pathlib import Path

from hotline_kpi.config import load_settings
from hotline_kpi.ingest.sources import Batch, SingleReader
from hotline_kpi.live import consume, open_live
from tests.conftest import line
from tests.unit.test_pipeline import a_call


class ConverterLike(SingleReader):
    """Two log lines: the first becomes a whole call (four events, all at its position), the
    second is skipped (no event) but still moves the position and the converter's state."""

    def __init__(self) -> None:
        call = [line(event) for event in a_call("c1")]
        self.batches = [
            Batch([(raw, 0, 100) for raw in call], {0: 100}, checkpoints={0: "pending:none"}),
            Batch([], {0: 180}, checkpoints={0: "pending:c2"}),
        ]

    @property
    def name(self) -> str:
        return "log:pbx"

    def poll(self) -> Batch | None:
        return self.batches.pop(0) if self.batches else None


def test_a_line_may_give_several_events_or_none_and_its_state_is_committed_with_it(
    tmp_path: Path,
) -> None:
    assert not Batch() and Batch([], {0: 1})
    live = open_live(load_settings(None, store=str(tmp_path / "s.db")), serve_metrics=False)
    try:
        totals = consume(live.pipeline, ConverterLike())
        assert (totals.accepted, totals.batches) == (4, 2)
        assert live.store.positions("log:pbx") == {0: 180}
        assert live.store.identities("log:pbx") == {0: "pending:c2"}
    finally:
        live.close()
