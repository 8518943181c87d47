"""Shared factories: events as the producers send them, settings, a store."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

# Helpers that assert get pytest's detailed assertion messages too.
pytest.register_assert_rewrite("tests.support.truth", "tests.support.reports")

from hotline_kpi.config import Settings, load_settings  # noqa: E402

_ids = itertools.count(1)


def make_event(event_type: str, ts: str | datetime, **fields: Any) -> dict[str, Any]:
    """One event dict of SPEC §2; ``event_id`` is unique unless given."""
    stamp = ts.isoformat() if isinstance(ts, datetime) else ts
    event = {
        "event_id": fields.pop("event_id", f"ev-{next(_ids)}"),
        "type": event_type,
        "ts": stamp,
    }
    event.update(fields)
    return event


def line(event: dict[str, Any]) -> bytes:
    """The event as one JSON line's bytes (no newline)."""
    return json.dumps(event, separators=(",", ":")).encode()


@pytest.fixture
def event() -> Callable[..., dict[str, Any]]:
    """Factory fixture: ``event("call.queued", ts, call_id="c1", queue="billing")``."""
    return make_event


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Default settings with the store in a temporary directory, no config file around."""
    monkeypatch.chdir(tmp_path)
    yield load_settings(None, store=str(tmp_path / "store.db"))
