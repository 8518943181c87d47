"""The file source of ``hotline-kpi replay FILE|-``: a JSONL file's lines in batches.

The position after each committed batch is stored with it, so an interrupted replay resumes
where it stopped; replaying a file again changes nothing, since every event is then a duplicate.

With the position the store keeps the file's identity: its device and inode and a SHA-256 of the
bytes before the position, committed in the same transaction. A file replaced at the same path
(``mv new old`` changes the inode, ``cp new old`` the bytes) is therefore noticed: it is read
again from the start, with a one-line notice on stderr, and the events already stored count as
duplicates. A file that only grew (a log appended to) keeps its identity and resumes.

A file may be read while it is still being written: a last line without its newline that is not
yet a complete JSON value is left for the next replay (with a warning), never half-consumed, so
that the rest of it appended later is read as one line.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from pydantic_core import from_json

from hotline_kpi.errors import SourceError
from hotline_kpi.ingest.converters import Converter, event_line, line_digest
from hotline_kpi.ingest.decode import Record, Rejected
from hotline_kpi.ingest.sources import Batch, SingleReader
from hotline_kpi.pipeline import Totals

log = logging.getLogger(__name__)

# What surrounds a line and is not part of it: JSON's own white space (SPEC §2 reads the bytes
# between, nothing else; a form feed around a line is as invalid in a file as in a message).
_LINE_SPACE = b" \t\r\n"


@dataclass(slots=True)
class Fingerprint:
    """The identity of a file read up to a position: device, inode, SHA-256 of the bytes."""

    device: int
    inode: int
    digest: Any = field(default_factory=hashlib.sha256)

    @classmethod
    def of(cls, stream: BinaryIO) -> Fingerprint:
        """The fingerprint of an open file before any byte is read."""
        stat = os.fstat(stream.fileno())
        return cls(stat.st_dev, stat.st_ino)

    def update(self, data: bytes) -> None:
        """Account for the next bytes read."""
        self.digest.update(data)

    def identity(self) -> str:
        """What the store keeps with the position: ``device:inode:sha256``."""
        return f"{self.device}:{self.inode}:{self.digest.hexdigest()}"


def _unfinished(line: bytes) -> bool:
    """Whether ``line``, the file's last and without its newline, may still be being written."""
    try:
        from_json(line)
    except ValueError:
        return True
    return False


def read_lines(
    stream: BinaryIO,
    start: int,
    fingerprint: Fingerprint | None,
    unfinished: Callable[[bytes], bool],
    why: str,
) -> Iterator[tuple[bytes, int]]:
    """Each line read from ``start`` (with its ending) and the position after it; every byte
    read goes into ``fingerprint`` too. With a ``fingerprint`` (a file that can be resumed, so
    may still be being written), a last line without its newline that ``unfinished`` says may
    not be whole is held back, with a warning saying ``why``: its position is not passed."""
    position = start
    for line in stream:
        if fingerprint is not None and not line.endswith(b"\n") and unfinished(line):
            log.warning(
                "the last line (%d bytes at byte %d) has no newline and %s: left for the next "
                "replay, as the file may still be being written",
                len(line),
                position,
                why,
            )
            break
        position += len(line)
        if fingerprint is not None:
            fingerprint.update(line)
        yield line, position


def file_batches(
    stream: BinaryIO, start: int, batch_size: int, fingerprint: Fingerprint | None = None
) -> Iterator[tuple[list[Record], int]]:
    """Batches of non-empty lines as records (partition 0, offset after the line); every byte
    read goes into ``fingerprint`` too. With a ``fingerprint`` (a file that can be resumed), an
    unfinished last line is held back: its position is not passed."""
    position = start
    batch: list[Record] = []
    # Only the last line can lack its newline: the JSON parse is paid once, at the end.
    for line, position in read_lines(
        stream, start, fingerprint, _unfinished, "is not complete JSON"
    ):
        stripped = line.strip(_LINE_SPACE)
        if stripped:
            batch.append((stripped, 0, position))
        if len(batch) >= batch_size:
            yield batch, position
            batch = []
    if batch:
        yield batch, position


class FileSource(SingleReader):
    """A file (or standard input) read from ``start`` in batches of ``batch_size`` lines; with a
    ``fingerprint`` of the bytes before ``start``, each position is committed with the file's
    identity up to it."""

    def __init__(
        self,
        stream: BinaryIO,
        name: str,
        start: int,
        batch_size: int,
        fingerprint: Fingerprint | None = None,
    ) -> None:
        self._name = name
        self._fingerprint = fingerprint
        self._batches = file_batches(stream, start, batch_size, fingerprint)

    @property
    def name(self) -> str:
        """``file:PATH`` (resolved), or ``stdin``."""
        return self._name

    def poll(self) -> Batch | None:
        """The next lines, or None at the end of the file."""
        try:
            records, position = next(self._batches)
        except StopIteration:
            return None
        identity = {0: self._fingerprint.identity()} if self._fingerprint is not None else {}
        return Batch(records, {0: position}, checkpoints=identity)


def resume(
    stream: BinaryIO, position: int | None, identity: str | None
) -> tuple[int, Fingerprint, str | None]:
    """Where to resume reading ``stream``, given the position and identity the store holds.

    Returns the position, the fingerprint of the bytes before it, and why the stored position
    is not used (None when it is): the file is not the one read before, so it is read again
    from the start (safe: what was already stored is recognised as duplicates).
    """
    fingerprint = Fingerprint.of(stream)
    if not position:
        return 0, fingerprint, None
    remaining = position
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            break
        fingerprint.update(chunk)
        remaining -= len(chunk)
    if remaining == 0 and fingerprint.identity() == identity:
        return position, fingerprint, None
    if identity is None:
        why = "the store has no identity for that position (written by an older version)"
    elif remaining > 0:
        why = "the file is shorter: it was replaced"
    elif identity.rsplit(":", 1)[0] != f"{fingerprint.device}:{fingerprint.inode}":
        why = "another file is at that path: its device or inode changed"
    else:
        why = "the bytes before that position changed: the file was replaced"
    why = f"not resuming at byte {position}, {why}"
    stream.seek(0)
    return 0, Fingerprint.of(stream), why


def summary(totals: Totals) -> str:
    """One line: accepted, rejected, and the rejections by reason (and, for a telephony log,
    the source lines skipped: read, but of a kind that makes no event)."""
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(totals.rejected.items()))
    line = f"accepted {totals.accepted} events, rejected {totals.total_rejected}"
    line = f"{line} ({reasons})" if reasons else line
    return f"{line}; skipped {totals.skipped} source lines" if totals.skipped else line


def source_lines(
    stream: BinaryIO, start: int, fingerprint: Fingerprint | None = None
) -> Iterator[tuple[bytes, int]]:
    """The non-empty lines of a telephony log (line ending removed) with the position after
    each. With a ``fingerprint`` (a file that can be resumed or is still being written), a last
    line without its newline is held back: the platform may not have finished writing it."""
    # Any last line without its newline may be cut: a log line has no end marker of its own.
    for line, position in read_lines(stream, start, fingerprint, lambda _: True, "may be cut"):
        text = line.rstrip(b"\r\n")
        if text.strip():
            yield text, position


def converted_batch(
    converter: Converter, lines: Iterable[tuple[bytes, int]], partition: int = 0
) -> tuple[list[Record], list[Rejected], int, int | None]:
    """The records and rejections of some source lines through ``converter``, the lines skipped
    and the position after the last one (None: no line). A line's events are never split."""
    records: list[Record] = []
    rejected: list[Rejected] = []
    skipped = 0
    last: int | None = None
    for line, position in lines:
        last = position
        converted = converter.convert(line)
        if converted.rejection is not None:
            why = converted.rejection
            rejected.append(
                Rejected(why.reason, partition, position, None, None, why.payload, why.detail)
            )
        elif converted.skipped or not converted.events:
            skipped += 1
        records.extend((event_line(event), partition, position) for event in converted.events)
    return records, rejected, skipped, last


@dataclass(slots=True)
class ReplayState:
    """What ``replay --format`` keeps of a format's converter in the store (SPEC §9): its
    checkpoint, and a key of the first line of each file it read (newest last).

    One state per format, not per path, so that it spans files: replaying ``queue_log.1`` then
    ``queue_log``, or a log again after it was rotated, continues the legs left open. A file
    whose first line is one already read is a file read again (replaced by a copy, or given with
    ``--from-start``): it is read with a fresh converter, so that its events get the same ids
    and count as duplicates, and the state is left as it was.
    """

    checkpoint: str | None = None
    heads: list[str] = field(default_factory=list)

    KEEP: ClassVar[int] = 50  # first-line keys remembered

    @classmethod
    def parse(cls, text: str | None) -> ReplayState:
        """The state stored as ``text`` (None or unreadable: a fresh start)."""
        if not text:
            return cls()
        try:
            value = json.loads(text)
            return cls(value.get("checkpoint"), [str(head) for head in value.get("heads", [])])
        except (ValueError, AttributeError, TypeError):
            return cls()

    def dump(self) -> str:
        """The text the store keeps."""
        return json.dumps({"checkpoint": self.checkpoint, "heads": self.heads[-self.KEEP :]})


def head_key(fresh: Converter, line: bytes | None) -> str | None:
    """A key of a file's first line that holds no caller number: the id of its first event (ids
    are derived with callers blanked), else a digest of its blanked rejection, else of the line
    (a line that makes no event carries no caller). None for an empty file."""
    if line is None:
        return None
    converted = fresh.convert(line)
    if converted.events:
        return str(converted.events[0]["event_id"])
    if converted.rejection is not None:
        return line_digest(b"rejected", converted.rejection.payload.encode())
    return line_digest(b"skipped", line)


def first_line(path: Path) -> bytes | None:
    """The first non-empty complete line of ``path`` (None: none yet)."""
    with path.open("rb") as stream:
        for line, _ in source_lines(stream, 0, Fingerprint.of(stream)):
            return line
    return None


class ConvertingSource(SingleReader):
    """A telephony log (SPEC §9) read from ``start`` through a converter, ``batch_size`` source
    lines a batch; the file's identity and (under ``state_name``, when given) the converter's
    state are committed with each position, so that a resumed replay continues the open legs
    where it stopped."""

    def __init__(
        self,
        stream: BinaryIO,
        name: str,
        start: int,
        batch_size: int,
        converter: Converter,
        fingerprint: Fingerprint | None = None,
        *,
        state_name: str | None = None,
        state: ReplayState | None = None,
    ) -> None:
        self._name = name
        self._fingerprint = fingerprint
        self._converter = converter
        self._batch_size = batch_size
        self._lines = source_lines(stream, start, fingerprint)
        self._state_name = state_name
        self._state = state if state is not None else ReplayState()

    @property
    def name(self) -> str:
        """``file:PATH`` (resolved), ``stream:PATH`` or ``stdin``."""
        return self._name

    def poll(self) -> Batch | None:
        """The events of the next source lines, or None at the end of the log."""
        lines = itertools.islice(self._lines, self._batch_size)
        records, rejected, skipped, position = converted_batch(self._converter, lines)
        if position is None:
            return None
        identity = {0: self._fingerprint.identity()} if self._fingerprint is not None else {}
        states = {}
        if self._state_name is not None:
            self._state.checkpoint = self._converter.checkpoint()
            states[self._state_name] = self._state.dump()
        return Batch(
            records,
            {0: position},
            checkpoints=identity,
            rejected=rejected,
            converter_states=states,
            skipped=skipped,
        )


def cdr_files(directory: Path) -> list[Path]:
    """The CDR files of a directory, ``*.json`` in name order; anything else so named (a
    directory) is left out (see :func:`not_cdr_files`)."""
    return [path for path in sorted(directory.glob("*.json")) if path.is_file()]


def not_cdr_files(directory: Path) -> list[Path]:
    """What :func:`cdr_files` leaves out: entries named ``*.json`` that are not files."""
    return [path for path in sorted(directory.glob("*.json")) if not path.is_file()]


def read_cdr(path: Path) -> bytes:
    """One CDR file's bytes; a file the system refuses is a one-line :class:`SourceError`."""
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None


def cdr_lines(directory: Path) -> Iterator[tuple[bytes, int]]:
    """Each CDR file of ``directory`` as one source line, with its position: ``i`` files read."""
    for index, path in enumerate(cdr_files(directory), start=1):
        yield read_cdr(path), index


class CdrDirectorySource(SingleReader):
    """A directory of CDR files (``*.json``, one CDR each, as ``mod_json_cdr`` writes them),
    read whole in name order through a converter: a CDR read again is a duplicate, so the
    directory is simply read from its first file each time. Position ``i`` is "``i`` files"."""

    def __init__(self, directory: Path, batch_size: int, converter: Converter) -> None:
        self._name = f"dir:{directory.resolve()}"
        self._converter = converter
        self._batch_size = batch_size
        self._cdrs = cdr_lines(directory)

    @property
    def name(self) -> str:
        """``dir:PATH`` (resolved)."""
        return self._name

    def poll(self) -> Batch | None:
        """The events of the next files, or None when every file was read."""
        lines = itertools.islice(self._cdrs, self._batch_size)
        records, rejected, skipped, position = converted_batch(self._converter, lines)
        if position is None:
            return None
        return Batch(records, {0: position}, rejected=rejected, skipped=skipped)
