"""The store: facts, dedup keys, rejections, source positions and the watermark, in one
transaction per batch (SQLite by default, WAL; PostgreSQL through the same interface).

Exactly once in effect comes from here: a batch's facts and the position after its last event are
written in the same transaction, and a restart resumes from the stored position. The store knows
no KPI formula; it keeps the fact bits the fold computed (``calls.facts``) and the raw times.

Several writers may share one store (two replays, several ``run`` consumers): every write
transaction is serialised between them (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock),
and :meth:`SqlStore.batch` lets the pipeline read what it folds on (seen event ids, stored facts,
overdue tickets, the watermark) inside that same transaction. What they write is therefore
exactly what one writer replaying the batches one after the other would have written.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hotline_kpi.errors import StoreError, UsageError
from hotline_kpi.ingest.decode import Rejected
from hotline_kpi.metrics.fold import (
    CallFact,
    Review,
    Survey,
    Thresholds,
    TicketFact,
    call_facts,
)

SCHEMA_VERSION = "2"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS calls (
        call_id TEXT PRIMARY KEY,
        offered_at BIGINT, queued_at BIGINT, queue TEXT, queue_event_at BIGINT,
        outcome INTEGER NOT NULL, outcome_at BIGINT, agent_id TEXT,
        ended_at BIGINT, cause TEXT, counted INTEGER NOT NULL, facts INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS calls_queued_at ON calls (queued_at)",
    "CREATE INDEX IF NOT EXISTS calls_offered_at ON calls (offered_at)",
    """CREATE TABLE IF NOT EXISTS tickets (
        ticket_id TEXT PRIMARY KEY,
        opened_at BIGINT, due BIGINT, kind TEXT, queue TEXT, call_id TEXT,
        closed_at BIGINT, counted INTEGER NOT NULL, partition INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS tickets_due ON tickets (due)",
    """CREATE TABLE IF NOT EXISTS reviews (
        event_id TEXT PRIMARY KEY, call_id TEXT NOT NULL, agent_id TEXT NOT NULL,
        accurate INTEGER NOT NULL, queue TEXT, category TEXT, ts BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS reviews_ts ON reviews (ts)",
    """CREATE TABLE IF NOT EXISTS surveys (
        event_id TEXT PRIMARY KEY, call_id TEXT NOT NULL, score INTEGER NOT NULL,
        queue TEXT, agent_id TEXT, factors TEXT, ts BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS surveys_ts ON surveys (ts)",
    "CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS rejected (
        id {serial} PRIMARY KEY,
        source TEXT NOT NULL, partition INTEGER NOT NULL, position BIGINT NOT NULL,
        reason TEXT NOT NULL, event_id TEXT, type TEXT, detail TEXT, payload TEXT,
        rejected_at BIGINT NOT NULL, dead_lettered INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS rejected_outbox ON rejected (dead_lettered, id)",
    """CREATE TABLE IF NOT EXISTS positions (
        source TEXT NOT NULL, partition INTEGER NOT NULL, position BIGINT NOT NULL,
        PRIMARY KEY (source, partition))""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # The queue label slots of the exposition (max_queues), shared by every process on the store.
    """CREATE TABLE IF NOT EXISTS queue_labels (
        queue TEXT PRIMARY KEY, slot INTEGER NOT NULL)""",
)

# Seconds a writer waits for another writer's batch before giving up with a StoreError.
LOCK_TIMEOUT_SECONDS = 60.0

CALL_COLUMNS = (
    "call_id, offered_at, queued_at, queue, queue_event_at, outcome, outcome_at, agent_id, "
    "ended_at, cause, counted, facts"
)
TICKET_COLUMNS = "ticket_id, opened_at, due, kind, queue, call_id, closed_at, counted"
TICKET_WRITE_COLUMNS = TICKET_COLUMNS + ", partition"


@dataclass(slots=True)
class BatchWrite:
    """Everything one batch changes, written in one transaction."""

    calls: Collection[CallFact] = ()
    tickets: Collection[TicketFact] = ()
    # Open tickets the watermark settled: (ticket, counted before). Written only if the stored
    # row is still open and unchanged, so a consumer that just lost the partition cannot
    # overwrite its successor's newer facts.
    overdue: Sequence[tuple[TicketFact, int]] = ()
    reviews: Sequence[Review] = ()
    surveys: Sequence[Survey] = ()
    seen: Collection[str] = ()
    rejected: Sequence[Rejected] = ()
    source: str = ""
    positions: dict[int, int] = field(default_factory=dict)  # partition -> next position
    # partition -> the position the batch started from; when given, the commit fails with
    # StalePositionError if another consumer moved the partition meanwhile (a fence).
    expected: dict[int, int | None] | None = None
    watermark: int | None = None
    ticket_partitions: dict[str, int] = field(default_factory=dict)
    # partition -> identity of what was read up to its position (a replayed file's device,
    # inode and prefix hash), so that a source replaced under the same name is noticed.
    identities: dict[int, str] = field(default_factory=dict)


class StalePositionError(StoreError):
    """Another consumer committed this partition since the batch was read: drop the batch."""


class WriterConflictError(StoreError):
    """Another writer's transaction deadlocked with the batch or made it unserialisable; nothing
    was written, and the batch may be folded and written again."""


class Store(Protocol):
    """What the pipeline and the exports need of a store."""

    def batch(self) -> AbstractContextManager[None]: ...
    def write(self, batch: BatchWrite) -> None: ...
    def load(
        self, call_ids: Collection[str], ticket_ids: Collection[str]
    ) -> tuple[dict[str, CallFact], dict[str, TicketFact]]: ...
    def seen(self, event_ids: Collection[str]) -> set[str]: ...
    def overdue_tickets(
        self, watermark: int, partitions: Collection[int] | None = None
    ) -> list[TicketFact]: ...
    def commit(self, batch: BatchWrite) -> None: ...
    def positions(self, source: str) -> dict[int, int]: ...
    def watermark(self) -> int | None: ...
    def waiting_calls(self, since_us: int) -> list[CallFact]: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def close(self) -> None: ...


def one_line(exc: BaseException) -> str:
    """The first line of a database error (PostgreSQL adds DETAIL, HINT and CONTEXT lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _identity_key(source: str, partition: int) -> str:
    return f"identity:{partition}:{source}"


def _chunks(values: Sequence[str], size: int = 900) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _call_row(call: CallFact) -> tuple[Any, ...]:
    return (
        call.call_id,
        call.offered_at,
        call.queued_at,
        call.queue,
        call.queue_event_at,
        call.outcome,
        call.outcome_at,
        call.agent_id,
        call.ended_at,
        call.cause,
        call.counted,
        call.facts,
    )


def _ticket_row(ticket: TicketFact, partition: int) -> tuple[Any, ...]:
    return (
        ticket.ticket_id,
        ticket.opened_at,
        ticket.due,
        ticket.kind,
        ticket.queue,
        ticket.call_id,
        ticket.closed_at,
        ticket.counted,
        partition,
    )


def _upsert(table: str, columns: str, key: str, placeholder: str) -> str:
    names = [name.strip() for name in columns.split(",")]
    marks = ", ".join([placeholder] * len(names))
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


class SqlStore:
    """The SQL shared by the SQLite and PostgreSQL stores; subclasses supply the connection."""

    placeholder = "?"
    greatest = "max"

    def __init__(self, connection: Any) -> None:
        self._db = connection
        self._cursor: Any = None  # the open batch transaction's cursor, if any
        p = self.placeholder
        self._sql_call_upsert = _upsert("calls", CALL_COLUMNS, "call_id", p)
        # Each field of a ticket is set once (opening, closing) and counters only add bits, so
        # the upsert merges rather than overwrites: even a producer that keys ticket.opened by
        # its call (another partition, maybe another consumer) cannot lose a close. A ticket's
        # partition is that of its first event.
        ticket_names = [name.strip() for name in TICKET_WRITE_COLUMNS.split(",")]
        merges = ", ".join(
            f"{name} = COALESCE(tickets.{name}, excluded.{name})"
            for name in ticket_names
            if name not in ("ticket_id", "counted", "partition")
        )
        self._sql_ticket_upsert = (
            f"INSERT INTO tickets ({TICKET_WRITE_COLUMNS}) "
            f"VALUES ({', '.join([p] * len(ticket_names))}) ON CONFLICT (ticket_id) DO UPDATE "
            f"SET {merges}, counted = tickets.counted | excluded.counted"
        )
        self._sql_ticket_settle = (
            f"UPDATE tickets SET counted = {p} WHERE ticket_id = {p} AND counted = {p} "
            "AND closed_at IS NULL"
        )
        self._sql_review = (
            "INSERT INTO reviews (event_id, call_id, agent_id, accurate, queue, category, ts) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (event_id) DO NOTHING"
        )
        self._sql_survey = (
            "INSERT INTO surveys (event_id, call_id, score, queue, agent_id, factors, ts) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (event_id) DO NOTHING"
        )
        self._sql_seen = (
            f"INSERT INTO seen_events (event_id) VALUES ({p}) ON CONFLICT (event_id) DO NOTHING"
        )
        self._sql_rejected = (
            "INSERT INTO rejected (source, partition, position, reason, event_id, type, detail, "
            f"payload, rejected_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
        )
        self._sql_position = (
            f"INSERT INTO positions (source, partition, position) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (source, partition) DO UPDATE SET position = excluded.position"
        )
        self._sql_position_fenced = (
            f"UPDATE positions SET position = {p} WHERE source = {p} AND partition = {p} "
            f"AND position = {p}"
        )
        self._sql_position_first = (
            f"INSERT INTO positions (source, partition, position) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (source, partition) DO NOTHING"
        )
        self._sql_watermark = (
            f"INSERT INTO meta (key, value) VALUES ('watermark', {p}) ON CONFLICT (key) "
            f"DO UPDATE SET value = CAST({self.greatest}(CAST(meta.value AS BIGINT), "
            "CAST(excluded.value AS BIGINT)) AS TEXT)"
        )
        self._sql_meta = (
            f"INSERT INTO meta (key, value) VALUES ({p}, {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )

    # -- reading ------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query written with ``?`` placeholders."""
        if self.placeholder != "?":
            sql = sql.replace("%", "%%").replace("?", self.placeholder)
        cursor = self._db.execute(sql, tuple(params))
        return list(cursor.fetchall())

    def load(
        self, call_ids: Collection[str], ticket_ids: Collection[str]
    ) -> tuple[dict[str, CallFact], dict[str, TicketFact]]:
        """The stored facts of these calls and tickets (absent ones are simply missing)."""
        calls: dict[str, CallFact] = {}
        for chunk in _chunks(sorted(call_ids)):
            marks = ", ".join([self.placeholder] * len(chunk))
            sql = f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id IN ({marks})"
            for row in self._db.execute(sql, tuple(chunk)).fetchall():
                calls[row[0]] = CallFact(*row)
        tickets: dict[str, TicketFact] = {}
        for chunk in _chunks(sorted(ticket_ids)):
            marks = ", ".join([self.placeholder] * len(chunk))
            sql = f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id IN ({marks})"
            for row in self._db.execute(sql, tuple(chunk)).fetchall():
                tickets[row[0]] = TicketFact(*row)
        return calls, tickets

    def seen(self, event_ids: Collection[str]) -> set[str]:
        """Which of these event ids the store has already seen in a valid event."""
        found: set[str] = set()
        for chunk in _chunks(list(event_ids)):
            marks = ", ".join([self.placeholder] * len(chunk))
            sql = f"SELECT event_id FROM seen_events WHERE event_id IN ({marks})"
            found.update(row[0] for row in self._db.execute(sql, tuple(chunk)).fetchall())
        return found

    def overdue_tickets(
        self, watermark: int, partitions: Collection[int] | None = None
    ) -> list[TicketFact]:
        """Open tickets not yet counted as due whose ``due`` is before the watermark.

        With several consumers sharing a store, each settles only the tickets of the
        partitions it owns, so that no two count the same ticket.
        """
        p = self.placeholder
        sql = (
            f"SELECT {TICKET_COLUMNS} FROM tickets WHERE due < {p} AND closed_at IS NULL "
            "AND (counted & 1) = 0"
        )
        params: list[Any] = [watermark]
        if partitions is not None:
            if not partitions:
                return []
            sql += f" AND partition IN ({', '.join([p] * len(partitions))})"
            params.extend(sorted(partitions))
        return [TicketFact(*row) for row in self._db.execute(sql, tuple(params)).fetchall()]

    def positions(self, source: str) -> dict[int, int]:
        """The next position to read, per partition, of ``source``."""
        rows = self.query("SELECT partition, position FROM positions WHERE source = ?", (source,))
        return {int(partition): int(position) for partition, position in rows}

    def watermark(self) -> int | None:
        """The latest event time of an accepted event, in epoch microseconds."""
        rows = self.query("SELECT value FROM meta WHERE key = 'watermark'")
        return int(rows[0][0]) if rows else None

    def identities(self, source: str) -> dict[int, str]:
        """The identity stored with each partition's position of ``source`` (see
        :attr:`BatchWrite.identities`); partitions committed without one are missing."""
        rows = self.query("SELECT key, value FROM meta WHERE key LIKE 'identity:%'")
        found: dict[int, str] = {}
        for key, value in rows:
            _, partition, name = str(key).split(":", 2)
            if name == source:
                found[int(partition)] = str(value)
        return found

    def queue_labels(self) -> list[str]:
        """The queue names that hold a label slot, in the order they got it."""
        return [str(row[0]) for row in self.query("SELECT queue FROM queue_labels ORDER BY slot")]

    def meta(self, key: str) -> str | None:
        """A stored setting (schema version, thresholds the facts were computed with)."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def waiting_calls(self, since_us: int) -> list[CallFact]:
        """Calls queued since ``since_us`` with no outcome and no end: callers on hold."""
        p = self.placeholder
        sql = (
            f"SELECT {CALL_COLUMNS} FROM calls WHERE queued_at >= {p} AND outcome = 0 "
            "AND ended_at IS NULL"
        )
        return [CallFact(*row) for row in self._db.execute(sql, (since_us,)).fetchall()]

    def rejection_counts(self) -> dict[str, int]:
        """Rejected events by reason, over the store's whole history."""
        rows = self.query("SELECT reason, COUNT(*) FROM rejected GROUP BY reason")
        return {str(reason): int(count) for reason, count in rows}

    # -- writing ------------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One write transaction, serialised with every other writer of the store.

        Reads made inside it (:meth:`seen`, :meth:`load`, :meth:`overdue_tickets`,
        :meth:`watermark`, ...) see every batch another writer committed before, and no other
        writer commits until it ends: a batch folded on them and written with :meth:`write` is
        what a single writer would have written. Commits on a clean exit, rolls back on an
        exception; a database error becomes a one-line :class:`StoreError`.
        """
        if self._cursor is not None:
            raise RuntimeError("a store batch is already open on this connection")
        try:
            with self._transaction() as cursor:
                self._cursor = cursor
                try:
                    yield
                finally:
                    self._cursor = None
        except self._errors() as exc:
            raise self._failure(exc) from exc

    def commit(self, batch: BatchWrite) -> None:
        """Write one batch atomically: facts, dedup keys, rejections, positions, watermark."""
        with self.batch():
            self.write(batch)

    def assign_queue_labels(self, queues: Collection[str], cap: int) -> list[str]:
        """Give free label slots (``cap`` in all) to new queue names; inside :meth:`batch`.

        First committed, first served, across every process on the store, so that restarts and
        several consumers label the same queues. Returns every name that holds a slot.
        """
        cursor = self._open_cursor()
        assigned = self.queue_labels()
        taken = set(assigned)
        new = sorted(set(queues) - taken)[: max(0, cap - len(assigned))]
        p = self.placeholder
        cursor.executemany(
            f"INSERT INTO queue_labels (queue, slot) VALUES ({p}, {p})",
            [(queue, len(assigned) + index) for index, queue in enumerate(new)],
        )
        return assigned + new

    def write(self, batch: BatchWrite) -> None:
        """Write one batch's changes inside the open :meth:`batch` transaction."""
        now_us = time.time_ns() // 1000
        cursor = self._open_cursor()
        if batch.calls:
            cursor.executemany(self._sql_call_upsert, [_call_row(c) for c in batch.calls])
        if batch.tickets:
            where = batch.ticket_partitions
            cursor.executemany(
                self._sql_ticket_upsert,
                [_ticket_row(t, where.get(t.ticket_id, 0)) for t in batch.tickets],
            )
        if batch.overdue:
            cursor.executemany(
                self._sql_ticket_settle,
                [(t.counted, t.ticket_id, before) for t, before in batch.overdue],
            )
        if batch.reviews:
            cursor.executemany(
                self._sql_review,
                [
                    (
                        r.event_id,
                        r.call_id,
                        r.agent_id,
                        int(r.accurate),
                        r.queue,
                        r.category,
                        r.ts,
                    )
                    for r in batch.reviews
                ],
            )
        if batch.surveys:
            cursor.executemany(
                self._sql_survey,
                [
                    (
                        s.event_id,
                        s.call_id,
                        s.score,
                        s.queue,
                        s.agent_id,
                        json.dumps(dict(s.factors), sort_keys=True) if s.factors else None,
                        s.ts,
                    )
                    for s in batch.surveys
                ],
            )
        if batch.seen:
            cursor.executemany(self._sql_seen, zip(batch.seen))
        if batch.rejected:
            cursor.executemany(
                self._sql_rejected,
                [
                    (
                        batch.source,
                        r.partition,
                        r.position,
                        r.reason.name,
                        r.event_id,
                        r.type,
                        r.detail,
                        r.payload,
                        now_us,
                    )
                    for r in batch.rejected
                ],
            )
        if batch.positions and batch.expected is not None:
            self._fence(cursor, batch)
        elif batch.positions:
            cursor.executemany(
                self._sql_position,
                [(batch.source, part, pos) for part, pos in batch.positions.items()],
            )
        if batch.identities:
            cursor.executemany(
                self._sql_meta,
                [
                    (_identity_key(batch.source, partition), identity)
                    for partition, identity in batch.identities.items()
                ],
            )
        if batch.watermark is not None:
            cursor.execute(self._sql_watermark, (str(batch.watermark),))

    def _open_cursor(self) -> Any:
        if self._cursor is None:
            raise RuntimeError("store writes need an open batch (with store.batch(): ...)")
        return self._cursor

    def _fence(self, cursor: Any, batch: BatchWrite) -> None:
        assert batch.expected is not None
        for partition, position in batch.positions.items():
            expected = batch.expected.get(partition)
            if expected is None:
                cursor.execute(self._sql_position_first, (batch.source, partition, position))
            else:
                cursor.execute(
                    self._sql_position_fenced, (position, batch.source, partition, expected)
                )
            if cursor.rowcount != 1:
                raise StalePositionError(
                    f"partition {partition} of {batch.source} moved since the batch was read"
                )

    def undelivered_rejections(self, limit: int) -> list[tuple[Any, ...]]:
        """The dead-letter outbox: rejected rows not yet sent to the dead-letter topic."""
        return self.query(
            "SELECT id, source, partition, position, reason, event_id, type, detail, payload "
            "FROM rejected WHERE dead_lettered = 0 ORDER BY id LIMIT ?",
            (limit,),
        )

    def mark_dead_lettered(self, ids: Sequence[int]) -> None:
        """Mark outbox rows as delivered to the dead-letter topic."""
        p = self.placeholder
        with self.batch():
            self._open_cursor().executemany(
                f"UPDATE rejected SET dead_lettered = 1 WHERE id = {p}", [(i,) for i in ids]
            )

    def set_meta(self, key: str, value: str) -> None:
        """Store one setting."""
        with self.batch():
            self._open_cursor().execute(self._sql_meta, (key, value))

    def refresh_facts(self, thresholds: Thresholds) -> int:
        """Recompute every call's fact bits for new thresholds; returns the calls changed.

        Counters already moved are not moved again (``counted`` is kept); exports, which read
        the fact bits, follow the new thresholds.
        """
        with self.batch():
            return self._refresh_facts(thresholds)

    def _refresh_facts(self, thresholds: Thresholds) -> int:
        # Read inside the batch: another writer's newer facts must not be overwritten.
        rows = self.query(f"SELECT {CALL_COLUMNS} FROM calls WHERE queued_at IS NOT NULL")
        changed = []
        for row in rows:
            call = CallFact(*row)
            facts = call_facts(call, thresholds)
            if facts != call.facts:
                changed.append((facts, call.call_id))
        p = self.placeholder
        self._open_cursor().executemany(
            f"UPDATE calls SET facts = {p} WHERE call_id = {p}", changed
        )
        return len(changed)

    def ensure_thresholds(self, thresholds: Thresholds) -> None:
        """Make the stored fact bits agree with ``thresholds`` (refold once if they changed)."""
        wanted = f"{thresholds.short_abandon_us},{thresholds.service_level_us}"
        if self.meta("thresholds") == wanted:
            return
        with self.batch():
            if self.meta("thresholds") != wanted:  # another process may have just done it
                self._refresh_facts(thresholds)
                self._open_cursor().execute(self._sql_meta, ("thresholds", wanted))

    # -- dialect hooks ------------------------------------------------------------------------

    def _transaction(self) -> Any:
        raise NotImplementedError

    def _errors(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError

    def _failure(self, exc: BaseException) -> StoreError:
        """The one-line error a failed transaction becomes."""
        return StoreError(f"store commit failed: {one_line(exc)}")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def _check_version(stored: str | None, where: object) -> None:
    """Refuse a store written with another schema rather than misread it."""
    if stored is not None and stored != SCHEMA_VERSION:
        raise StoreError(
            f"store {where} has schema version {stored}, this version needs "
            f"{SCHEMA_VERSION}: replay the events into a new store"
        )


class _SqliteTransaction:
    """``BEGIN IMMEDIATE``: the write lock is taken before the batch reads anything."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Cursor:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db.cursor()

    def __exit__(self, kind: object, value: object, trace: object) -> None:
        if kind is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:
            self._db.execute("ROLLBACK")


class SqliteStore(SqlStore):
    """The embedded default: one SQLite file in WAL mode."""

    def __init__(self, path: str | Path, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        try:
            db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            # Another writer holds the lock for one batch at a time: wait for it.
            db.execute(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                _check_version(row[0] if row else None, path)
            for statement in SCHEMA:
                db.execute(statement.format(serial="INTEGER"))
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO NOTHING",
                (SCHEMA_VERSION,),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from None
        super().__init__(db)

    def _transaction(self) -> _SqliteTransaction:
        return _SqliteTransaction(self._db)

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def _failure(self, exc: BaseException) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(
                f"store {self.path} is locked: another writer held it for more than "
                f"{self.lock_timeout:g} s"
            )
        return super()._failure(exc)


def open_store(location: str) -> SqlStore:
    """A SQLite file path or a ``postgresql://`` URL (SPEC §5 ``--store``)."""
    if location.startswith(("postgresql://", "postgres://")):
        from hotline_kpi.metrics.postgres import PostgresStore

        return PostgresStore(location)
    path = Path(location)
    if path.parent and not path.parent.exists():
        raise StoreError(f"cannot open SQLite store {location}: directory does not exist")
    return SqliteStore(path)


def open_existing_store(location: str) -> SqlStore:
    """Open a store that must already exist (exports, staffing): a missing file is a usage error."""
    if "://" not in location and not Path(location).exists():
        raise UsageError(f"store {location} does not exist (give --store PATH)")
    return open_store(location)
