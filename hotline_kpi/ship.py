"""``hotline-kpi ship --format F PATH --to kafka``: follow a telephony log and produce its events.

The shipper follows a log as ``tail -F`` does (SPEC §5, §9): it reads the complete lines that
were appended, converts them (:mod:`hotline_kpi.ingest.converters`), produces their events to
Kafka keyed as SPEC §2 partitions them (:func:`~hotline_kpi.ingest.producer.message_key`), waits
until the broker acknowledged every one of them (``acks=all``), and only then writes its state
file: the format, the path, the device and inode of the file being read, the read position, a
hash of the file's first bytes and the converter's state (open legs, leg ordinals, agents'
queues and pauses). The state file is replaced atomically (a temporary file written, fsynced and
renamed), so after a crash it holds either the old or the new state, never a mix.

**The guarantee: at least once to Kafka, exactly once in effect in the store.** A crash between
the broker's acknowledgement and the state write (or the broker acknowledging a batch that the
shipper then never heard back about) makes the restarted shipper read those lines again from
the last state, with the converter's state of that moment, and produce their events a second
time. Nothing is lost: a line's position is never written before its events were acknowledged.
A line is not repeated in effect either: event ids are derived from the line (SPEC §9), so the
second copies are rejected by ``run`` as ``duplicate`` and counted as such; no figure changes.

Rotation, both kinds ``logrotate`` does:

- *rename* (``mv queue_log queue_log.1``, then the platform opens a new ``queue_log``): when the
  path names another inode, the old file is read to its end through the descriptor still open
  on it, then the new file is read from byte 0;
- *truncate* (``copytruncate``): when the file got shorter than the read position, or its first
  bytes changed, it is read again from byte 0. What had not been read yet is taken from the copy
  beside it (a file named like the log whose first bytes and length match), when there is one.

After a restart the state names the file read before by device and inode: if the path now names
another file, the renamed one is looked for beside it (same device and inode) and finished
first. The converter's state spans files: a call that entered the queue before the rotation and
was answered after it is still one leg. Lines the platform writes into the old file after the
shipper moved on to the new one (a platform that reopens its log late) are not read — as with
``tail -F``; Asterisk reopens ``queue_log`` when it rotates it itself (``logger rotate``).

Rejected lines (SPEC §9: not UTF-8, too few fields, a bad epoch, …) produce nothing; they are
counted by reason in ``/metrics`` and logged with their byte position and the reason, never with
their content. Lines that make no event are counted as skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from hotline_kpi.errors import SourceError, UsageError
from hotline_kpi.ingest.converters import Converter, event_line

log = logging.getLogger(__name__)

# How many of a file's first bytes identify it (with its device and inode): enough to hold
# several queue_log lines, each stamped with its own time, so a rewritten file differs.
HEAD_BYTES = 4096

STATE_VERSION = 1

# Waits between attempts to produce a batch the broker did not acknowledge.
RETRY_WAIT_S = (1.0, 2.0, 5.0)


class ProduceError(Exception):
    """The broker did not acknowledge every event of a batch."""


class Producer(Protocol):
    """Where the events go: ``send`` queues one event line, ``flush`` returns once the broker
    acknowledged every line sent so far (or raises :class:`ProduceError`)."""

    def send(self, value: bytes) -> None:
        """Queue one event line for the topic."""
        ...

    def flush(self) -> None:
        """Wait until every queued line is acknowledged; :class:`ProduceError` if one is not."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class KafkaLineProducer:
    """A :class:`Producer` to a Kafka topic (kafka-python, ``acks=all``, idempotent, so that
    the broker's retries neither reorder nor double a partition's events)."""

    def __init__(self, topic: str, config: Mapping[str, Any], *, timeout_s: float = 60.0) -> None:
        """Connect with the client ``config`` (:func:`~hotline_kpi.ingest.kafka.client_config`);
        kafka-python's errors propagate (the caller turns them into one line)."""
        from kafka import KafkaProducer

        self.topic = topic
        self._timeout_s = timeout_s
        self._producer = KafkaProducer(acks="all", linger_ms=5, **config)
        self._pending: list[Any] = []

    def send(self, value: bytes) -> None:
        """Queue ``value`` keyed by :func:`~hotline_kpi.ingest.producer.message_key`."""
        from hotline_kpi.ingest.producer import message_key

        self._pending.append(self._producer.send(self.topic, key=message_key(value), value=value))

    def flush(self) -> None:
        """Wait for the broker's acknowledgement of every queued line."""
        from kafka.errors import KafkaError

        pending, self._pending = self._pending, []
        try:
            self._producer.flush(timeout=self._timeout_s)
        except KafkaError as exc:
            raise ProduceError(f"{type(exc).__name__}: {exc}") from None
        for future in pending:
            if not future.is_done:
                raise ProduceError("an event was not acknowledged in time")
            if future.failed():
                raise ProduceError(f"{type(future.exception).__name__}: {future.exception}")

    def close(self) -> None:
        """Close the producer (what was flushed is acknowledged already)."""
        self._producer.close(timeout=10)


@dataclass(frozen=True, slots=True)
class ShipState:
    """What the state file holds: the file read (device, inode, and a SHA-256 of its first
    ``head_bytes`` bytes, ``min(position, HEAD_BYTES)``), how far, and the converter's state
    after the lines before ``position``."""

    format: str
    path: str
    device: int
    inode: int
    position: int
    head_bytes: int
    head_sha256: str
    converter: str
    version: int = STATE_VERSION

    def dumps(self) -> bytes:
        """The state as the JSON the file holds."""
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)

    @classmethod
    def loads(cls, data: bytes, where: Path) -> ShipState:
        """The state in ``data`` (read from ``where``); a :class:`SourceError` if it is not."""
        try:
            value = orjson.loads(data)
            if not isinstance(value, dict) or value.get("version") != STATE_VERSION:
                raise ValueError(f"not a version {STATE_VERSION} state")
            state = cls(**value)
            for name in ("device", "inode", "position", "head_bytes"):
                if not isinstance(getattr(state, name), int) or getattr(state, name) < 0:
                    raise ValueError(f"{name} is not a whole number")
        except (ValueError, TypeError) as exc:
            raise SourceError(
                f"the state file {where} cannot be read ({exc}); move it away to ship the log "
                "again from its start (what was produced already counts as duplicates)"
            ) from None
        return state


def read_state(path: Path) -> ShipState | None:
    """The state in ``path``, or None when there is none (a first start)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SourceError(f"cannot read the state file {path}: {exc.strerror}") from None
    return ShipState.loads(data, path)


def write_state(path: Path, state: ShipState) -> None:
    """Replace ``path`` with ``state`` atomically and durably: a temporary file beside it,
    fsynced, renamed over it, and the directory fsynced (so the rename survives a power cut)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, state.dumps())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise SourceError(f"cannot write the state file {path}: {exc.strerror}") from None


class ShipMetrics:
    """The shipper's own ``/metrics`` (in a registry of its own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.lines_read = Counter(
            "hotline_ship_lines_read", "Non-empty log lines read", registry=registry
        )
        self.events_produced = Counter(
            "hotline_ship_events_produced",
            "Events produced and acknowledged by the broker",
            registry=registry,
        )
        self.lines_rejected = Counter(
            "hotline_ship_lines_rejected",
            "Log lines that could not be read, by reason (nothing produced)",
            ["reason"],
            registry=registry,
        )
        self.lines_skipped = Counter(
            "hotline_ship_lines_skipped",
            "Log lines read that make no event (an event the format does not map)",
            registry=registry,
        )
        self.lag_bytes = Gauge(
            "hotline_ship_lag_bytes",
            "Bytes of the file being read beyond the read position",
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class CrashPoints:
    """Test-only: where the shipper kills itself with SIGKILL (``HOTLINE_KPI_SHIP_CRASH_AT``,
    comma-separated): ``after-produce:N`` once the broker acknowledged the batch holding the
    N-th line this process read, before the state write; ``after-commit:N`` once the state
    holding the N-th line is written; ``after-rotation`` once a rotation was noticed while
    following (not one found at start) and the old file finished, before the state names the
    new one."""

    after_produce: int | None = None
    after_commit: int | None = None
    after_rotation: bool = False

    @classmethod
    def parse(cls, text: str | None) -> CrashPoints:
        """The points in ``text`` (None or empty: none); a :class:`UsageError` for a bad one."""
        points: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in (text or "").split(","))):
            name, _, count = item.partition(":")
            if name == "after-rotation" and not count:
                points["after_rotation"] = True
            elif name in ("after-produce", "after-commit") and count.isdigit() and int(count):
                points[name.replace("-", "_")] = int(count)
            else:
                raise UsageError(
                    f"bad crash point {item!r}: after-produce:N, after-commit:N or after-rotation"
                )
        return cls(**points)


def _sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _head(stream: BinaryIO, position: int) -> tuple[int, str]:
    """How many of the first bytes identify a file read to ``position``, and their SHA-256."""
    size = min(position, HEAD_BYTES)
    data = os.pread(stream.fileno(), size, 0)
    return size, hashlib.sha256(data).hexdigest()


@dataclass(slots=True)
class _Followed:
    """A file being read: its open stream and identity."""

    stream: BinaryIO
    device: int
    inode: int
    name: str

    @classmethod
    def open(cls, path: Path) -> _Followed:
        stream = path.open("rb")
        stat = os.fstat(stream.fileno())
        return cls(stream, stat.st_dev, stat.st_ino, str(path))

    def size(self) -> int:
        return os.fstat(self.stream.fileno()).st_size


def read_lines(stream: BinaryIO, position: int, limit: int) -> list[tuple[bytes, int]]:
    """Up to ``limit`` complete lines from ``position`` (line ending removed), each with the
    position after it; a last line without its newline is left: it is still being written."""
    stream.seek(position)
    lines: list[tuple[bytes, int]] = []
    while len(lines) < limit:
        line = stream.readline()
        if not line.endswith(b"\n"):
            break
        position += len(line)
        lines.append((line.rstrip(b"\r\n"), position))
    return lines


def rotated_copy(
    path: Path, exclude: Sequence[Path], accept: Callable[[Path], bool]
) -> Path | None:
    """A file beside ``path`` named like it (``queue_log.1``, ``queue_log-20261129``) that
    ``accept`` takes for the file read before, or None."""
    try:
        candidates = sorted(path.parent.iterdir())
    except OSError:
        return None
    for candidate in candidates:
        if candidate == path or candidate in exclude or not candidate.name.startswith(path.name):
            continue
        try:
            if candidate.is_file() and accept(candidate):
                return candidate
        except OSError:
            continue
    return None


class Shipper:
    """Follows one log into a :class:`Producer`, committing its position to a state file (see
    the module docstring for the order of things and what it guarantees)."""

    def __init__(
        self,
        path: Path,
        format_name: str,
        state_path: Path,
        producer: Producer,
        make_converter: Callable[[str | None], Converter],
        metrics: ShipMetrics,
        *,
        batch_size: int = 1000,
        crash: CrashPoints | None = None,
        kill: Callable[[], None] = _sigkill,
        stop: threading.Event | None = None,
    ) -> None:
        """``make_converter`` builds the format's converter from a checkpoint (None: afresh)."""
        self.path = path
        self.format = format_name
        self.state_path = state_path
        self.producer = producer
        self.metrics = metrics
        self.batch_size = batch_size
        self.crash = crash or CrashPoints()
        self.kill = kill
        self.stop = stop if stop is not None else threading.Event()
        self._make_converter = make_converter
        self._converter: Converter | None = None
        self._file: _Followed | None = None
        self._position = 0
        self._head = (0, hashlib.sha256(b"").hexdigest())
        self._read = 0  # non-empty lines read by this process (for the crash points)
        self._once = False  # --once: a batch the broker does not acknowledge ends the run
        self._excluded = (state_path, state_path.with_name(f".{state_path.name}.tmp"))

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        """Resume from the state file: finish the file read before if it was rotated away
        while the shipper was stopped, then go on with the file at the path."""
        state = read_state(self.state_path)
        if state is None:
            if not self.path.exists():
                raise UsageError(f"{self.path} does not exist: give the path of the log to ship")
            self._converter = self._make_converter(None)
            self._open_path()
            log.info("shipping %s from its start (no state in %s)", self.path, self.state_path)
            return
        if state.format != self.format:
            raise UsageError(
                f"the state file {self.state_path} is of a {state.format} log, not "
                f"{self.format}: give another --state"
            )
        if state.path != str(self.path):
            raise UsageError(
                f"the state file {self.state_path} is of {state.path}, not {self.path}: give "
                "another --state"
            )
        try:
            self._converter = self._make_converter(state.converter)
        except ValueError as exc:
            raise SourceError(f"cannot resume the {self.format} converter: {exc}") from None
        self._position = state.position
        self._head = (state.head_bytes, state.head_sha256)
        before = self._find_read_before(state)
        if before is not None and before.name == str(self.path):
            self._file = before
            log.info("resuming %s at byte %d", self.path, state.position)
            return
        if before is not None:
            log.info(
                "%s was rotated while stopped: finishing %s from byte %d",
                self.path,
                before.name,
                state.position,
            )
            self._file = before
            self._finish()
        else:
            log.warning(
                "the file read before (inode %d, read to byte %d) is neither at %s nor beside it "
                "(removed after a rotation, or truncated without a copy): what was written to it "
                "after that byte was not shipped; reading %s from its start",
                state.inode,
                state.position,
                self.path,
                self.path,
            )
        self._file = None
        if self.path.exists():
            self._switch_to_path()

    def _find_read_before(self, state: ShipState) -> _Followed | None:
        """The file of ``state`` at the read position, at the path or beside it; None if
        neither is it (rotated away and gone, or rewritten)."""

        def same(path: Path) -> bool:
            stat = path.stat()
            if (stat.st_dev, stat.st_ino) != (state.device, state.inode):
                return False
            return stat.st_size >= state.position and self._head_of(path) == self._head

        def copy(path: Path) -> bool:
            return path.stat().st_size >= state.position and self._head_of(path) == self._head

        try:
            if same(self.path):
                return _Followed.open(self.path)
        except FileNotFoundError:
            pass
        found = rotated_copy(self.path, self._excluded, same)
        if found is None and state.position > 0:
            # Truncated (copytruncate) while stopped: the copy holds what was not read yet.
            found = rotated_copy(self.path, self._excluded, copy)
        return _Followed.open(found) if found is not None else None

    def _head_of(self, path: Path) -> tuple[int, str]:
        with path.open("rb") as stream:
            return _head(stream, self._head[0])

    # -- following ---------------------------------------------------------------------------

    def run(self, *, once: bool = False, poll_interval: float = 1.0) -> None:
        """Ship until :attr:`stop` is set (``once``: until nothing more is there)."""
        self._once = once
        self.start()
        while not self.stop.is_set():
            busy = self.step()
            if once and not busy:
                break
            if not busy:
                self.stop.wait(poll_interval)

    def step(self) -> bool:
        """Ship the complete lines there are, then look for a rotation; whether anything
        happened (lines read, or a file changed)."""
        if self._file is None:
            if not self.path.exists():
                return False
            self._switch_to_path()
        truncated = self._rewritten()
        if truncated:
            self._truncated()
        shipped = self._finish()
        renamed = self._renamed()
        self._set_lag()
        return shipped > 0 or truncated or renamed

    def _finish(self) -> int:
        """Ship the current file's complete lines, batch after batch; how many lines."""
        total = 0
        while not self.stop.is_set() and not self._rewritten():
            count = self._ship_batch()
            if count == 0:
                break
            total += count
        return total

    def _rewritten(self) -> bool:
        """Whether the file read was truncated (shorter than the position, or its first bytes
        changed: truncated and written again) since the last look."""
        assert self._file is not None
        if not self._position:
            return False
        if self._file.size() < self._position:
            return True
        return _head(self._file.stream, self._position) != self._head

    def _renamed(self) -> bool:
        """Whether the path names another file now (rename rotation): if so, the old file is
        finished and the new one followed from its start."""
        assert self._file is not None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False  # renamed away; the platform has not opened the new one yet
        if (stat.st_dev, stat.st_ino) == (self._file.device, self._file.inode):
            return False
        self._finish()  # what was written to the old file before it was renamed
        if self.stop.is_set():
            return False
        unread = self._file.size() - self._position
        if unread:
            log.warning(
                "%s was rotated with an unfinished last line (%d bytes): not shipped",
                self.path,
                unread,
            )
        log.info("%s was rotated (renamed): reading the new file from its start", self.path)
        if self.crash.after_rotation:
            self.kill()
        self._file.stream.close()
        self._switch_to_path()
        return True

    def _truncated(self) -> None:
        """The file was truncated (``copytruncate``): finish from the copy if there is one,
        then read the file again from its start."""
        assert self._file is not None
        current = self._file
        position = self._position

        def copy(path: Path) -> bool:
            stat = path.stat()
            if (stat.st_dev, stat.st_ino) == (current.device, current.inode):
                return False
            return stat.st_size >= position and self._head_of(path) == self._head

        found = rotated_copy(self.path, self._excluded, copy)
        if found is not None:
            log.info(
                "%s was truncated: finishing its copy %s from byte %d", self.path, found, position
            )
            self._file = _Followed.open(found)
            self._finish()
            self._file.stream.close()
            self._file = current
        else:
            log.info("%s was truncated: reading it again from its start", self.path)
        if self.crash.after_rotation:
            self.kill()
        self._position = 0
        self._commit()

    def _switch_to_path(self) -> None:
        """Follow the file now at the path from its start, and say so in the state."""
        self._open_path()
        self._commit()

    def _open_path(self) -> None:
        try:
            self._file = _Followed.open(self.path)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror}") from None
        self._position = 0
        self._head = _head(self._file.stream, 0)

    def _ship_batch(self) -> int:
        """Convert, produce and commit the next lines of the current file; how many."""
        assert self._file is not None and self._converter is not None
        lines = read_lines(self._file.stream, self._position, self.batch_size)
        if not lines:
            return 0
        events: list[bytes] = []
        for text, end in lines:
            if not text.strip():
                continue
            self._read += 1
            self.metrics.lines_read.inc()
            converted = self._converter.convert(text)
            if converted.rejection is not None:
                why = converted.rejection
                self.metrics.lines_rejected.labels(why.reason.name).inc()
                # The reason and where, never the line: it may hold what the converter blanks
                # only in its payload.
                log.warning(
                    "%s: the line ending at byte %d is rejected (%s): %s",
                    self._file.name,
                    end,
                    why.reason.name,
                    why.detail,
                )
                continue
            if converted.skipped or not converted.events:
                self.metrics.lines_skipped.inc()
            events.extend(event_line(event) for event in converted.events)
        self._produce(events)
        if self.crash.after_produce is not None and self._read >= self.crash.after_produce:
            self.kill()
        self._position = lines[-1][1]
        self._commit()
        if self.crash.after_commit is not None and self._read >= self.crash.after_commit:
            self.kill()
        self._set_lag()
        return len(lines)

    def _produce(self, events: list[bytes]) -> None:
        """Send ``events`` and wait for the broker's acknowledgement; a batch that is not
        acknowledged is sent again (its events are duplicates if they got through)."""
        attempt = 0
        while True:
            try:
                for event in events:
                    self.producer.send(event)
                self.producer.flush()
            except ProduceError as exc:
                if self._once:
                    raise SourceError(
                        f"the broker did not acknowledge a batch ({exc}); its lines are shipped "
                        "again at the next run"
                    ) from None
                wait = RETRY_WAIT_S[min(attempt, len(RETRY_WAIT_S) - 1)]
                log.warning(
                    "the broker did not acknowledge a batch (%s): retrying in %g s", exc, wait
                )
                attempt += 1
                if self.stop.wait(wait):
                    raise SourceError(
                        f"stopped before the broker acknowledged a batch ({exc}); its lines are "
                        "shipped again at the next start"
                    ) from None
                continue
            self.metrics.events_produced.inc(len(events))
            return

    def _commit(self) -> None:
        """Write the state: the current file, the position, the converter's state."""
        assert self._file is not None and self._converter is not None
        self._head = _head(self._file.stream, self._position)
        write_state(
            self.state_path,
            ShipState(
                format=self.format,
                path=str(self.path),
                device=self._file.device,
                inode=self._file.inode,
                position=self._position,
                head_bytes=self._head[0],
                head_sha256=self._head[1],
                converter=self._converter.checkpoint(),
            ),
        )

    def _set_lag(self) -> None:
        if self._file is not None:
            self.metrics.lag_bytes.set(max(self._file.size() - self._position, 0))

    def close(self) -> None:
        """Close the file being read (not the producer: its owner closes it)."""
        if self._file is not None:
            self._file.stream.close()
            self._file = None
