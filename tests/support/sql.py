"""Tests inspect a SQLite store with their own connection: the store has no public SQL."""

from __future__ import annotations

import sqlite3
from typing import Any

from hotline_kpi.metrics.store import SqliteStore, SqlStore


def sqlite_rows(store: SqlStore, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the file of a SQLite store in a connection of its own (and commit it)."""
    assert isinstance(store, SqliteStore), "tests inspect SQLite stores only"
    with sqlite3.connect(store.path) as db:
        rows = db.execute(sql, params).fetchall()
    db.close()
    return rows
