"""The plumbing of telephony sources (SPEC §9): a converter's events, rejections and skipped
lines go through the pipeline like any event, and its state is committed with the position.

A toy format stands in for a real one: ``epoch|call|queue|ANSWER-or-ENTER``, whose converter
carries, from line to line, the calls that entered and not yet answered (its "open legs").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hotline_kpi.config import Settings
from hotline_kpi.ingest.converters import Converted, LineRejection, checkpoint_json
from hotline_kpi.ingest.decode import Reason
from hotline_kpi.live import consume
from hotline_kpi.metrics.export import KpiFigures
from hotline_kpi.metrics.store import SqliteStore
from hotline_kpi.pipeline import Pipeline, Totals, thresholds_of
from hotline_kpi.replay import ConvertingSource, ReplayState, resume


class Toy:
    """``epoch|call|queue|ENTER`` opens a leg; ``...|ANSWER`` answers the open one (else is
    skipped); ``...|NOISE`` is skipped; fewer than 4 fields is ``missing_field``."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self.open: dict[str, str] = dict((state or {}).get("open", {}))

    def convert(self, line: bytes) -> Converted:
        fields = line.decode().split("|")
        if len(fields) < 4:
            return Converted(rejection=LineRejection(Reason.missing_field, "fields", line.decode()))
        epoch, call, queue, kind = fields[:4]
        ts = f"2026-11-01T00:00:{int(epoch):02d}Z"
        if kind == "ENTER":
            self.open[call] = queue
            return Converted([_event(line, "call.queued", ts, call_id=call, queue=queue)])
        if kind == "ANSWER" and call in self.open:
            queue = self.open.pop(call)
            answered = _event(line, "call.answered", ts, call_id=call, queue=queue, agent_id="A")
            return Converted([answered])
        return Converted(skipped=True)

    def checkpoint(self) -> str:
        return checkpoint_json({"open": self.open})


def _event(line: bytes, kind: str, ts: str, **fields: str) -> dict[str, Any]:
    return {"event_id": line.decode(), "type": kind, "ts": ts, **fields}


LOG = b"1|c1|q|ENTER\n2|c2|q|ENTER\nbad line\n3|c9|q|ANSWER\n4|c1|q|NOISE\n5|c1|q|ANSWER\n"


def _replay(store: SqliteStore, settings: Settings, log: bytes, batch_size: int) -> Totals:
    """Replay ``log`` (written to a file next to the store, as it grows) like ``replay``."""
    pipeline = Pipeline(store, thresholds_of(settings))
    path = Path(settings.store).with_name("toy.log")
    path.write_bytes(log)
    name = "file:toy"
    with path.open("rb") as stream:
        start, fingerprint, why = resume(
            stream, store.positions(name).get(0), store.identities(name).get(0)
        )
        assert why is None
        saved = ReplayState.parse(store.converter_state("replay:toy"))
        checkpoint = saved.checkpoint
        toy = Toy(json.loads(checkpoint) if checkpoint is not None and start else None)
        source = ConvertingSource(
            stream, name, start, batch_size, toy, fingerprint, state_name="replay:toy", state=saved
        )
        return consume(pipeline, source)


def test_events_rejections_and_skipped_lines_are_counted(settings: Settings) -> None:
    store = SqliteStore(Path(settings.store))
    totals = _replay(store, settings, LOG, batch_size=2)
    assert totals.accepted == 3
    assert dict(totals.rejected) == {"missing_field": 1}
    assert totals.skipped == 2  # an answer with no open leg, and a noise line
    volumes = KpiFigures(store, settings).month("2026-11")["volumes"]["overall"]
    assert (volumes["requests"], volumes["answered"]) == (2, 1)
    # What is left open is committed with the position: c2 entered and was not answered.
    saved = ReplayState.parse(store.converter_state("replay:toy"))
    assert saved.checkpoint is not None
    assert json.loads(saved.checkpoint) == {"open": {"c2": "q"}}


def test_a_resumed_replay_continues_the_open_legs(settings: Settings) -> None:
    store = SqliteStore(Path(settings.store))
    first = LOG
    _replay(store, settings, first, batch_size=2)
    # The log grows: c2's answer is read after a restart, and answers the leg left open.
    grown = first + b"6|c2|q|ANSWER\n"
    totals = _replay(store, settings, grown, batch_size=2)
    assert (totals.accepted, totals.skipped, dict(totals.rejected)) == (1, 0, {})
    volumes = KpiFigures(store, settings).month("2026-11")["volumes"]["overall"]
    assert (volumes["requests"], volumes["answered"]) == (2, 2)


def test_an_unfinished_last_line_waits_for_its_newline(settings: Settings) -> None:
    store = SqliteStore(Path(settings.store))
    totals = _replay(store, settings, b"1|c1|q|ENTER\n2|c1|q|ANS", batch_size=10)
    assert totals.accepted == 1
    totals = _replay(store, settings, b"1|c1|q|ENTER\n2|c1|q|ANSWER\n", batch_size=10)
    assert (totals.accepted, totals.skipped) == (1, 0)
