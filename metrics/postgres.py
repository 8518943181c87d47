"""The PostgreSQL store: the same SQL as SQLite, shared by several consumer processes.

Each consumer owns some partitions; the position fence of :class:`SqlStore` makes a consumer
that lost a partition in a rebalance fail its commit instead of writing over its successor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from hotline_kpi.errors import StoreError
from hotline_kpi.metrics.store import SCHEMA, SCHEMA_VERSION, SqlStore, _check_version

# Any fixed number: serialises schema creation between processes starting together.
_SCHEMA_LOCK = 7_100_042


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database (``postgresql://`` URL)."""

    placeholder = "%s"
    greatest = "GREATEST"

    def __init__(self, url: str) -> None:
        try:
            db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"cannot connect to the PostgreSQL store: {reason}") from None
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                exists = db.execute("SELECT to_regclass('meta')").fetchone()
                if exists is not None and exists[0] is not None:
                    row = db.execute(
                        "SELECT value FROM meta WHERE key = 'schema_version'"
                    ).fetchone()
                    _check_version(row[0] if row else None, "(PostgreSQL)")
                for statement in SCHEMA:
                    db.execute(statement.format(serial="BIGSERIAL"))
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (SCHEMA_VERSION,),
                )
        except (psycopg.Error, StoreError) as exc:
            db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot prepare the PostgreSQL store: {exc}") from None
        super().__init__(db)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._db.transaction(), self._db.cursor() as cursor:
            yield cursor

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error,)
