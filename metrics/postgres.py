"""The PostgreSQL store: the same SQL as SQLite, shared by several consumer processes.

Each consumer owns some partitions; the position fence of :class:`SqlStore` makes a consumer
that lost a partition in a rebalance fail its commit instead of writing over its successor.

Every write transaction starts by taking one transaction-scoped advisory lock, so the batches of
all processes on the store are serialised: a batch reads (seen ids, facts, watermark) and writes
with no other batch in between, whatever partitions or calls the processes share (a mis-keyed
producer included), and two batches can never deadlock on each other's rows. Readers (exports)
take no lock. The lock costs one round trip per batch; batches wait for each other, which is
what a single SQLite writer does anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from hotline_kpi.errors import StoreError
from hotline_kpi.metrics.store import (
    LOCK_TIMEOUT_SECONDS,
    SqlStore,
    WriterConflictError,
    create_schema,
    one_line,
)

# Any fixed numbers: serialise schema creation between processes starting together, and every
# write transaction (a batch) between all the processes writing to the store.
_SCHEMA_LOCK = 7_100_042
_WRITE_LOCK = 7_100_043


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database (``postgresql://`` URL)."""

    placeholder = "%s"
    greatest = "GREATEST"

    def _write_seen(self, cursor: Any, event_ids: list[str]) -> None:
        """One statement for the whole batch: the ids as one text array, ``unnest``-ed."""
        cursor.execute(
            "INSERT INTO seen_events (event_id) SELECT unnest(%s::text[]) "
            "ON CONFLICT (event_id) DO NOTHING",
            (event_ids,),
        )

    def __init__(self, url: str, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.lock_timeout = lock_timeout
        try:
            # lock_timeout bounds the wait for another writer's batch (the advisory lock).
            db = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=10,
                options=f"-c lock_timeout={int(lock_timeout * 1000)}",
            )
        except psycopg.ProgrammingError:
            # An unreadable connection string: libpq quotes it, or a piece of it, back, and that
            # piece may be the password (SPEC §7). Say what is wrong without repeating it.
            raise StoreError(
                "cannot connect to the PostgreSQL store: the URL is not a valid connection "
                "string (check its percent-encoding and brackets)"
            ) from None
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the PostgreSQL store: {one_line(exc)}") from None
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                meta = db.execute("SELECT to_regclass('meta')").fetchone()
                create_schema(
                    db,
                    placeholder=self.placeholder,
                    serial="BIGSERIAL",
                    exists=meta is not None and meta[0] is not None,
                    where="(PostgreSQL)",
                )
        except (psycopg.Error, StoreError) as exc:
            db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot prepare the PostgreSQL store: {one_line(exc)}") from None
        super().__init__(db)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            yield cursor

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error,)

    def _failure(self, exc: BaseException) -> StoreError:
        if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
            return WriterConflictError(f"store commit failed: {one_line(exc)}")
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return StoreError(
                "PostgreSQL store is locked: another writer held it for more than "
                f"{self.lock_timeout:g} s"
            )
        return super()._failure(exc)
