"""The contract between the pipeline and every source of events: batches with positions.

A source reads raw records (bytes with the partition they come from and the position after them)
and hands them over in batches. The pipeline commits a batch's facts with the batch's positions
and checkpoints in one store transaction and then tells the source (``commit``), so the store,
not the source, says where reading resumes: after a crash a source is built again from the
positions the store holds, and nothing is lost or counted twice.

The contract is the same for a file (``replay``), a Kafka topic (``run``, with any client
library) and the demo's simulator, and it leaves room for a telephony log's converter: one line
may give several records (all with that line's position) or none (a skipped line still moves
``positions``), and whatever state the converter carries from line to line goes into
``checkpoints``, committed with the position it belongs to.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hotline_kpi.ingest.decode import Record, Rejected


@dataclass(frozen=True, slots=True)
class Batch:
    """Raw records read together, and where the source stands after them."""

    records: Sequence[Record] = ()
    """(bytes, partition, position after the record), in the order read."""
    positions: Mapping[int, int] = field(default_factory=dict)
    """partition → the position to resume reading at, committed with the batch."""
    expected: Mapping[int, int | None] | None = None
    """partition → the stored position the batch was read from (None: the beginning). The
    store refuses the batch if another process moved it since (a fence); None: no fence."""
    checkpoints: Mapping[int, str] = field(default_factory=dict)
    """partition → the source's identity up to its position (a file's device, inode and prefix
    hash), committed with the position and handed back on resume."""
    rejected: Sequence[Rejected] = ()
    """Lines of a telephony source its converter could not read (SPEC §9): rejected with a
    reason, like events."""
    converter_states: Mapping[str, str] = field(default_factory=dict)
    """name → a converter's state after the batch (open legs, ordinals: SPEC §9), committed
    with the position and handed back on resume; one name per format, so it spans files."""
    skipped: int = 0
    """Source lines read that make no event (SPEC §9: counted as skipped, never lost)."""

    def __bool__(self) -> bool:
        # A batch of skipped lines has no records but moves positions: it is committed too.
        return bool(self.records or self.positions)


EMPTY = Batch()


class Source(Protocol):
    """Where a pipeline's events come from: ``poll`` → the store commits → ``commit``."""

    @property
    def name(self) -> str:
        """The key of this source's positions in the store (``kafka:TOPIC``, ``file:PATH``)."""
        ...

    def poll(self) -> Batch | None:
        """The next batch: empty when nothing is ready yet, None when the source is exhausted.
        It may wait a little (a network poll), never for long: a stop is checked between."""
        ...

    def owned(self) -> Collection[int] | None:
        """The partitions this process reads now, whose overdue tickets it settles (None:
        every partition)."""
        ...

    def commit(self, batch: Batch) -> None:
        """The store committed ``batch``: acknowledge it upstream (never relied on to resume)."""
        ...

    def rewind(self, batch: Batch) -> None:
        """The store refused ``batch`` (another process owns a partition of it now): forget it
        and read again from the positions the store holds."""
        ...

    def close(self) -> None:
        """Release the source's files or connections."""
        ...


class SingleReader:
    """What a source read by one process without a fence shares (a file, the demo): every
    partition is its own, nothing is acknowledged upstream, and nothing needs releasing."""

    def owned(self) -> None:
        """Every partition is this reader's, and so is every ticket's deadline."""
        return None

    def commit(self, batch: Batch) -> None:
        """Nothing to acknowledge: the store's positions are where reading resumes."""

    def rewind(self, batch: Batch) -> None:
        """Never asked: the batches of a single reader carry no position fence."""
        raise AssertionError(f"{type(self).__name__}: a batch without a fence was refused")

    def close(self) -> None:
        """Nothing to release (a stream belongs to whoever opened it)."""
