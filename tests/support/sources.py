"""A scripted :class:`~hotline_kpi.ingest.sources.Source` that can crash, for recovery tests.

Modelled on bytewax's ``TestingSource`` (``pysrc/bytewax/testing.py``): the script is a list of
items, and an :data:`ABORT` item among them makes the source raise :class:`SourceCrashed` the
first time it is reached, in the middle of assembling a batch, so that the lines read into that
batch are lost with the process. A resumed source, built again from the positions the store
holds, passes the same ``ABORT`` without stopping (each fires once, as bytewax's do), and a crash
between the store's commit and the source's acknowledgement is scripted with
``crash_on_commit``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from hotline_kpi.ingest.decode import Record
from hotline_kpi.ingest.sources import Batch


class SourceCrashed(RuntimeError):
    """The scripted crash: the process dies here, whatever it held."""


@dataclass(eq=False)
class Abort:
    """Crash the first time the source reaches this item."""

    fired: bool = False


ABORT = Abort  # script with ABORT(), one per crash


@dataclass
class Script:
    """What the source reads: (partition, line) items and aborts, and what survives a crash
    (which aborts fired, how many batches were acknowledged)."""

    items: Sequence[tuple[int, bytes] | Abort]
    batch_size: int = 50
    crash_on_commit: set[int] = field(default_factory=set)  # batch numbers, counted from 1
    committed: int = 0


class ScriptedSource:
    """The script's lines after the positions the store holds, ``batch_size`` lines a batch;
    positions are, per partition, how many of its lines were read."""

    def __init__(self, script: Script, stored: Mapping[int, int], name: str = "scripted") -> None:
        self.script = script
        self._name = name
        self._read: dict[int, int] = {}
        self._cursor = 0
        self._stored = dict(stored)

    @property
    def name(self) -> str:
        """The key of the script's positions in the store."""
        return self._name

    def poll(self) -> Batch | None:
        """The next lines not yet stored; raises :class:`SourceCrashed` at an unfired abort."""
        items = self.script.items
        records: list[Record] = []
        positions: dict[int, int] = {}
        while len(records) < self.script.batch_size and self._cursor < len(items):
            item = items[self._cursor]
            self._cursor += 1
            if isinstance(item, Abort):
                if not item.fired:
                    item.fired = True
                    raise SourceCrashed(f"scripted crash with {len(records)} lines in hand")
                continue
            partition, line = item
            position = self._read.get(partition, 0) + 1
            self._read[partition] = position
            if position <= self._stored.get(partition, 0):
                continue  # committed before the crash: the store says to resume after it
            records.append((line, partition, position))
            positions[partition] = position
        if not records:
            return None
        expected = {p: self._stored.get(p) for p in positions}
        return Batch(records, positions, expected)

    def owned(self) -> Collection[int] | None:
        """Every partition."""
        return None

    def commit(self, batch: Batch) -> None:
        """Acknowledge, unless the script crashes here (after the store committed)."""
        self._stored.update(batch.positions)
        self.script.committed += 1
        if self.script.committed in self.script.crash_on_commit:
            self.script.crash_on_commit.discard(self.script.committed)
            raise SourceCrashed(
                f"scripted crash after the store committed batch {self.script.committed}"
            )

    def rewind(self, batch: Batch) -> None:
        """Never asked: one reader."""
        raise AssertionError("a scripted batch was fenced")

    def close(self) -> None:
        """Nothing to release."""
