"""The store: facts, dedup keys, rejections, source positions and the watermark, in one
transaction per batch (SQLite by default, WAL; PostgreSQL through the same interface).

Exactly once in effect comes from here: a batch's facts and the position after its last event are
written in the same transaction, and a restart resumes from the stored position. The store knows
no KPI formula; it keeps the fact bits the fold computed (``calls.facts``) and the raw times.

The schema and its codes (outcome numbers, fact bits) stay in this module and ``postgres.py``:
everything else reads through typed methods returning the records of ``records.py`` (measure
counts per queue or agent, tickets due, wait buckets, survey scores and factors, queued calls
with their facts, the outbox size). The SQL is shared by both dialects; the schema is created by
one function (:func:`create_schema`).

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
from itertools import chain
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from hotline_kpi.errors import StoreError, UsageError
from hotline_kpi.ingest.decode import Rejected
from hotline_kpi.metrics.catalogue import BLOCKED_BY_REASON, LEFT_BY_REASON, Measure
from hotline_kpi.metrics.fold import (
    ABANDONED_FACT,
    ANSWERED,
    ANSWERED_FACT,
    BLOCKED,
    BLOCKED_EXCLUDED,
    BLOCKED_FACT,
    DROPPED,
    HANDLED,
    LEFT,
    LEFT_FACT,
    SHORT_ABANDON,
    TICKET_DUE,
    TICKET_ON_TIME,
    TRANSFERRED,
    WITHIN_THRESHOLD,
    WRAPPED,
    CallFact,
    ContactFact,
    FactThresholds,
    Review,
    StateChange,
    Survey,
    TicketFact,
    call_facts,
    ticket_facts,
)
from hotline_kpi.metrics.records import (
    AgentWork,
    FactorRating,
    FactorSums,
    GroupCounts,
    Grouping,
    IntervalLoad,
    PeriodCounts,
    PeriodTicket,
    QueuedCall,
    Rejection,
    SlotSums,
    TicketCounts,
    WaitBucket,
    factor_sums,
)
from hotline_kpi.metrics.rollups import (
    ANSWERS,
    BUSY_US,
    LOAD_MEASURES,
    Buckets,
    ContactState,
    Grain,
    Key,
    RollupConfig,
    Sums,
    add_leg,
    rebuild,
    slot_sums_of,
)
from hotline_kpi.metrics.states import AgentTime, state_time

SCHEMA_VERSION = "4"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS calls (
        call_id TEXT PRIMARY KEY,
        offered_at BIGINT, queued_at BIGINT, queue TEXT, queue_event_at BIGINT,
        outcome INTEGER NOT NULL, outcome_at BIGINT, agent_id TEXT,
        ended_at BIGINT, cause TEXT, counted INTEGER NOT NULL, facts INTEGER NOT NULL,
        contact_id TEXT, reason TEXT, hold_us BIGINT, wrapped_at BIGINT,
        contact_key TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS calls_queued_at ON calls (queued_at)",
    "CREATE INDEX IF NOT EXISTS calls_offered_at ON calls (offered_at)",
    "CREATE INDEX IF NOT EXISTS calls_contact ON calls (contact_key)",
    # A contact's call.offered (SPEC §2) and its caller key (SPEC §7): an HMAC, never a number.
    # `keyed` says it had a key. What SPEC §3 derives from its legs and from the other contacts
    # with its key is kept up to date by every batch that touches it (refresh_contacts): the
    # queue of its first agent request, whether a leg was answered, whether another contact
    # with its key was offered in the W before (`is_repeat`) or in the W after (`followed`).
    # Erasing the key (retention) freezes the two flags, so that no figure changes.
    """CREATE TABLE IF NOT EXISTS contacts (
        contact_key TEXT PRIMARY KEY, offered_at BIGINT, call_id TEXT, caller_key TEXT,
        counted INTEGER NOT NULL, keyed INTEGER NOT NULL, queue TEXT,
        answered INTEGER NOT NULL DEFAULT 0, is_repeat INTEGER NOT NULL DEFAULT 0,
        followed INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS contacts_offered_at ON contacts (offered_at)",
    "CREATE INDEX IF NOT EXISTS contacts_caller ON contacts (caller_key, offered_at)",
    """CREATE TABLE IF NOT EXISTS agent_states (
        event_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, ts BIGINT NOT NULL,
        state TEXT NOT NULL, reason TEXT)""",
    "CREATE INDEX IF NOT EXISTS agent_states_agent ON agent_states (agent_id, ts, event_id)",
    "CREATE INDEX IF NOT EXISTS agent_states_ts ON agent_states (ts)",
    """CREATE TABLE IF NOT EXISTS tickets (
        ticket_id TEXT PRIMARY KEY,
        opened_at BIGINT, due BIGINT, kind TEXT, queue TEXT, call_id TEXT,
        closed_at BIGINT, counted INTEGER NOT NULL, partition INTEGER NOT NULL DEFAULT 0,
        repeat_flag INTEGER, contact_key TEXT)""",
    "CREATE INDEX IF NOT EXISTS tickets_opened_at ON tickets (opened_at)",
    "CREATE INDEX IF NOT EXISTS tickets_call ON tickets (call_id)",
    "CREATE INDEX IF NOT EXISTS tickets_due ON tickets (due)",
    "CREATE INDEX IF NOT EXISTS tickets_contact ON tickets (contact_key)",
    """CREATE TABLE IF NOT EXISTS reviews (
        event_id TEXT PRIMARY KEY, call_id TEXT NOT NULL, agent_id TEXT NOT NULL,
        accurate INTEGER NOT NULL, queue TEXT, category TEXT, ts BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS reviews_ts ON reviews (ts)",
    # A leg whose queue or agent changes moves its reviews and surveys in the rollups.
    "CREATE INDEX IF NOT EXISTS reviews_call ON reviews (call_id)",
    """CREATE TABLE IF NOT EXISTS surveys (
        event_id TEXT PRIMARY KEY, call_id TEXT NOT NULL, score INTEGER NOT NULL,
        queue TEXT, agent_id TEXT, factors TEXT, ts BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS surveys_ts ON surveys (ts)",
    "CREATE INDEX IF NOT EXISTS surveys_call ON surveys (call_id)",
    # Sums of every measure per grain, bucket, queue and agent (metrics/rollups.py), kept in
    # the batch's transaction; built for the configuration stored in meta "rollups".
    """CREATE TABLE IF NOT EXISTS rollups (
        grain INTEGER NOT NULL, bucket BIGINT NOT NULL, queue TEXT NOT NULL,
        agent TEXT NOT NULL, measure TEXT NOT NULL, value BIGINT NOT NULL,
        PRIMARY KEY (grain, bucket, queue, agent, measure))""",
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

# The meta key of the instant before which caller keys were last erased (SPEC §7 retention).
KEYS_ERASED_BEFORE = "caller_keys_erased_before"

# The meta key of the configuration the rollups were built for (RollupConfig.key).
ROLLUPS = "rollups"

_SURVEY_COLUMNS = "event_id, call_id, score, queue, agent_id, factors, ts"
_SURVEY_COLUMNS_OF_S = ", ".join("s." + name.strip() for name in _SURVEY_COLUMNS.split(","))


# What refresh_contacts derives (SPEC §3), column by column, with W as the parameter {p}: the
# same rules the exports read, kept per contact so that no export joins the legs.
_CONTACT_DERIVED_COLUMNS: tuple[tuple[str, str], ...] = (
    (
        "queue",
        "(SELECT l.queue FROM calls l WHERE l.contact_key = contacts.contact_key "
        "AND l.queued_at IS NOT NULL ORDER BY l.queued_at, l.call_id LIMIT 1)",
    ),
    (
        "answered",
        "CASE WHEN EXISTS (SELECT 1 FROM calls l WHERE l.contact_key = contacts.contact_key "
        f"AND l.outcome = {ANSWERED}) THEN 1 ELSE 0 END",
    ),
    (
        "is_repeat",
        "CASE WHEN contacts.caller_key IS NULL THEN contacts.is_repeat "
        "WHEN EXISTS (SELECT 1 FROM contacts d WHERE d.caller_key = contacts.caller_key "
        "AND d.offered_at >= contacts.offered_at - {p} AND d.offered_at < contacts.offered_at) "
        "THEN 1 ELSE 0 END",
    ),
    (
        "followed",
        "CASE WHEN contacts.caller_key IS NULL THEN contacts.followed "
        "WHEN EXISTS (SELECT 1 FROM contacts d WHERE d.caller_key = contacts.caller_key "
        "AND d.offered_at > contacts.offered_at AND d.offered_at <= contacts.offered_at + {p}) "
        "THEN 1 ELSE 0 END",
    ),
)
_CONTACT_DERIVED = ", ".join(f"{column} = {sql}" for column, sql in _CONTACT_DERIVED_COLUMNS)
_CONTACT_DERIVED_SELECT = (
    "SELECT contact_key, queue, answered, is_repeat, followed, "
    + ", ".join(sql for _, sql in _CONTACT_DERIVED_COLUMNS)
    + " FROM contacts"
)


def _contact_state(row: Sequence[Any]) -> ContactState:
    key, offered_at, queue, keyed, answered, is_repeat, followed, caller_key = row
    return ContactState(
        key, offered_at, queue, bool(keyed), bool(answered), bool(is_repeat), bool(followed),
        caller_key,
    )  # fmt: skip


def _survey(row: Sequence[Any]) -> Survey:
    """A stored survey row (its factors as stored: JSON text, or a JSON value in PostgreSQL)."""
    event_id, call_id, score, queue, agent_id, factors, ts = row
    parsed = json.loads(factors) if isinstance(factors, str) else factors
    return Survey(event_id, call_id, int(score), queue, agent_id, parsed or None, int(ts))


# Seconds a writer waits for another writer's batch before giving up with a StoreError.
LOCK_TIMEOUT_SECONDS = 60.0

CALL_COLUMNS = (
    "call_id, offered_at, queued_at, queue, queue_event_at, outcome, outcome_at, agent_id, "
    "ended_at, cause, counted, facts, contact_id, reason, hold_us, wrapped_at"
)
CALL_WRITE_COLUMNS = CALL_COLUMNS + ", contact_key"
_CALL_COLUMNS_OF_C = ", ".join("c." + name.strip() for name in CALL_COLUMNS.split(","))
CONTACT_COLUMNS = "contact_key, offered_at, call_id, caller_key, counted"
CONTACT_STATE_COLUMNS = (
    "contact_key, offered_at, queue, keyed, answered, is_repeat, followed, caller_key"
)
TICKET_COLUMNS = "ticket_id, opened_at, due, kind, queue, call_id, closed_at, counted"
TICKET_WRITE_COLUMNS = TICKET_COLUMNS + ", partition"


def _bit(mask: int) -> str:
    """How many rows of a group have the fact bit ``mask`` (both dialects)."""
    return f"SUM((facts / {mask}) % 2)"


def _reason(outcome: int, reason: str) -> str:
    """How many rows of a group ended in ``outcome`` (blocked, left) for ``reason``."""
    return f"SUM(CASE WHEN outcome = {outcome} AND reason = '{reason}' THEN 1 ELSE 0 END)"


# The call measures and their SQL, in the order of the columns after the group (and period).
_CALL_MEASURE_SQL: tuple[tuple[Measure, str], ...] = (
    (Measure.REQUESTS, "COUNT(*)"),
    (Measure.ANSWERED, _bit(ANSWERED_FACT)),
    (Measure.WITHIN_THRESHOLD, _bit(WITHIN_THRESHOLD)),
    (Measure.ABANDONED, _bit(ABANDONED_FACT)),
    (Measure.SHORT_ABANDONED, _bit(SHORT_ABANDON)),
    (Measure.DROPPED, _bit(DROPPED)),
    (Measure.HANDLED, _bit(HANDLED)),
    (
        Measure.WAIT_US,
        f"SUM(CASE WHEN (facts / {ANSWERED_FACT}) % 2 = 1 THEN outcome_at - queued_at ELSE 0 END)",
    ),
    (
        Measure.HANDLE_US,
        f"SUM(CASE WHEN (facts / {HANDLED}) % 2 = 1 THEN ended_at - outcome_at ELSE 0 END)",
    ),
    (Measure.BLOCKED, _bit(BLOCKED_FACT)),
    (Measure.BLOCKED_EXCLUDED, _bit(BLOCKED_EXCLUDED)),
    (Measure.LEFT, _bit(LEFT_FACT)),
    (Measure.TRANSFERRED, _bit(TRANSFERRED)),
    (Measure.WRAPPED, _bit(WRAPPED)),
    (
        Measure.HOLD_US,
        f"SUM(CASE WHEN (facts / {HANDLED}) % 2 = 1 THEN COALESCE(hold_us, 0) ELSE 0 END)",
    ),
    (
        Measure.WRAP_US,
        f"SUM(CASE WHEN (facts / {WRAPPED}) % 2 = 1 AND wrapped_at > ended_at "
        "THEN wrapped_at - ended_at ELSE 0 END)",
    ),
    *((measure, _reason(BLOCKED, reason)) for reason, measure in BLOCKED_BY_REASON.items()),
    *((measure, _reason(LEFT, reason)) for reason, measure in LEFT_BY_REASON.items()),
)
CALL_MEASURES = tuple(measure for measure, _ in _CALL_MEASURE_SQL)
_CALL_COLUMNS_SQL = ", ".join(sql for _, sql in _CALL_MEASURE_SQL)
_CALL_MEASURES_SQL = f"""
    SELECT {{group}}, {_CALL_COLUMNS_SQL}
    FROM calls WHERE queued_at >= ? AND queued_at < ? {{where}} GROUP BY {{group}}
"""
_CALLS_SQL: dict[Grouping, str] = {
    "queue": _CALL_MEASURES_SQL.format(group="queue", where=""),
    "agent": _CALL_MEASURES_SQL.format(group="agent_id", where=f"AND outcome = {ANSWERED}"),
}
_REVIEWS_SQL: dict[Grouping, str] = {
    "queue": "SELECT COALESCE(r.queue, c.queue), COUNT(*), SUM(r.accurate) FROM reviews r "
    "LEFT JOIN calls c ON c.call_id = r.call_id WHERE r.ts >= ? AND r.ts < ? "
    "GROUP BY COALESCE(r.queue, c.queue)",
    "agent": "SELECT agent_id, COUNT(*), SUM(accurate) FROM reviews WHERE ts >= ? AND ts < ? "
    "GROUP BY agent_id",
}
_SURVEYS_SQL: dict[Grouping, str] = {
    "queue": "SELECT COALESCE(s.queue, c.queue), COUNT(*), "
    "SUM(CASE WHEN s.score >= ? THEN 1 ELSE 0 END), SUM(s.score) FROM surveys s "
    "LEFT JOIN calls c ON c.call_id = s.call_id WHERE s.ts >= ? AND s.ts < ? "
    "GROUP BY COALESCE(s.queue, c.queue)",
    "agent": "SELECT COALESCE(s.agent_id, c.agent_id), COUNT(*), "
    "SUM(CASE WHEN s.score >= ? THEN 1 ELSE 0 END), SUM(s.score) FROM surveys s "
    "LEFT JOIN calls c ON c.call_id = s.call_id WHERE s.ts >= ? AND s.ts < ? "
    "GROUP BY COALESCE(s.agent_id, c.agent_id)",
}


# The same reads cut into periods (SPEC §5 ``export --from --to --by``): {period} is the period
# index of the attributed time, {group} the grouping column, {where} the queue filter.
_PERIOD_CALLS_SQL = f"""
    SELECT {{period}}, {{group}}, {_CALL_COLUMNS_SQL}
    FROM calls WHERE queued_at >= ? AND queued_at < ? {{where}} GROUP BY 1, 2
"""
_PERIOD_CALL_GROUPS: dict[Grouping, tuple[str, str]] = {
    "queue": ("queue", ""),
    "agent": ("agent_id", f"AND outcome = {ANSWERED}"),
}
# Reviews and surveys count in the queue they name, else their call's (SPEC §5); by agent, a
# survey counts for the agent it names, else its call's.
_PERIOD_REVIEWS_SQL = (
    "SELECT {period}, {group}, COUNT(*), SUM(r.accurate) FROM reviews r "
    "LEFT JOIN calls c ON c.call_id = r.call_id WHERE r.ts >= ? AND r.ts < ? {where} "
    "GROUP BY 1, 2"
)
_PERIOD_REVIEW_GROUPS: dict[Grouping, str] = {
    "queue": "COALESCE(r.queue, c.queue)",
    "agent": "r.agent_id",
}
_PERIOD_SURVEYS_SQL = (
    "SELECT {period}, {group}, COUNT(*), SUM(CASE WHEN s.score >= ? THEN 1 ELSE 0 END), "
    "SUM(s.score) FROM surveys s LEFT JOIN calls c ON c.call_id = s.call_id "
    "WHERE s.ts >= ? AND s.ts < ? {where} GROUP BY 1, 2"
)
_PERIOD_SURVEY_GROUPS: dict[Grouping, str] = {
    "queue": "COALESCE(s.queue, c.queue)",
    "agent": "COALESCE(s.agent_id, c.agent_id)",
}


def period_index(column: str, edges_us: Sequence[int]) -> str:
    """A SQL expression (both dialects) giving the period of ``column``: ``i`` when
    ``edges_us[i] <= column < edges_us[i + 1]``, for a column the query keeps within
    [edges_us[0], edges_us[-1]).

    A binary search written as nested ``CASE``: about log2(periods) comparisons a row, so a
    month by the quarter hour (2,976 periods) costs 12 comparisons a row, not 2,976. The edges
    are integers written into the SQL (computed here, never user text).
    """
    edges = [int(edge) for edge in edges_us]

    def node(first: int, last: int) -> str:  # periods first .. last - 1
        if last - first == 1:
            return str(first)
        middle = (first + last) // 2
        return (
            f"CASE WHEN {column} < {edges[middle]} THEN {node(first, middle)} "
            f"ELSE {node(middle, last)} END"
        )

    return node(0, len(edges) - 1)


@dataclass(slots=True)
class BatchWrite:
    """Everything one batch changes, written in one transaction."""

    calls: Collection[CallFact] = ()
    tickets: Collection[TicketFact] = ()
    contacts: Collection[ContactFact] = ()
    merged_contacts: Sequence[str] = ()  # contact keys whose offer moved to another contact
    states: Sequence[StateChange] = ()
    # Open tickets the watermark settled: (ticket, counted before). Written only if the stored
    # row is still open and unchanged, so a consumer that just lost the partition cannot
    # overwrite its successor's newer facts.
    overdue: Sequence[tuple[TicketFact, int]] = ()
    reviews: Sequence[Review] = ()
    surveys: Sequence[Survey] = ()
    seen: Collection[str] = ()
    # What the batch adds to (or, negative, retracts from) each rollup sum (metrics/rollups.py).
    rollups: dict[Key, int] = field(default_factory=dict)
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
    # name -> a telephony converter's state after the batch (SPEC §9), kept with the position
    # so that a resumed replay continues its open legs.
    converter_states: dict[str, str] = field(default_factory=dict)


class StalePositionError(StoreError):
    """Another consumer committed this partition since the batch was read: drop the batch."""


class WriterConflictError(StoreError):
    """Another writer's transaction deadlocked with the batch or made it unserialisable; nothing
    was written, and the batch may be folded and written again."""


class StoreReader(Protocol):
    """The read side the exports, the reports and the staffing analysis use: typed records of
    what the fold stored, attributed to a period [lo, hi) of epoch microseconds."""

    def watermark(self) -> int | None: ...
    def call_counts(self, lo: int, hi: int, by: Grouping) -> list[GroupCounts]: ...
    def review_counts(self, lo: int, hi: int, by: Grouping) -> list[GroupCounts]: ...
    def survey_counts(
        self, lo: int, hi: int, by: Grouping, satisfied_score: int
    ) -> list[GroupCounts]: ...
    def tickets_due_in(self, lo: int, hi: int) -> list[TicketFact]: ...
    def offered_count(self, lo: int, hi: int) -> int: ...
    def wait_buckets(self, lo: int, hi: int, edges_us: Sequence[int]) -> list[WaitBucket]: ...
    def score_counts(self, lo: int, hi: int) -> dict[int, int]: ...
    def factor_sums(self, lo: int, hi: int) -> dict[str, FactorSums]: ...
    def rollups_built_for(self, config: RollupConfig) -> bool: ...
    def rollup_rows(
        self,
        grain: int,
        lo: int,
        hi: int,
        queue: str | None = None,
        measures: Collection[str] | None = None,
    ) -> list[tuple[int, str, str, str, int]]: ...
    def rollup_slot_rows(
        self, lo: int, hi: int
    ) -> tuple[tuple[IntervalLoad, ...], tuple[AgentWork, ...]]: ...
    def queued_calls(self, lo: int, hi: int, queue: str | None = None) -> list[QueuedCall]: ...
    def slot_sums(self, lo: int, hi: int, timezone: str, interval_minutes: int) -> SlotSums: ...
    def period_counts(
        self,
        edges_us: Sequence[int],
        by: Grouping,
        satisfied_score: int,
        queue: str | None = None,
    ) -> list[PeriodCounts]: ...
    def period_offered(
        self, edges_us: Sequence[int], queue: str | None = None
    ) -> dict[int, int]: ...
    def period_tickets(
        self, edges_us: Sequence[int], queue: str | None = None
    ) -> list[PeriodTicket]: ...
    def ticket_counts(
        self, edges_us: Sequence[int], now: int | None, queue: str | None = None
    ) -> list[TicketCounts]: ...
    def open_tickets_due(
        self, lo: int, hi: int, queue: str | None = None
    ) -> list[tuple[int, str | None, str | None]]: ...
    def period_contacts(
        self,
        edges_us: Sequence[int],
        now: int | None,
        window_us: int,
        complaint_window_us: int,
        queue: str | None = None,
    ) -> list[PeriodCounts]: ...
    def period_complaints(
        self, edges_us: Sequence[int], complaint_window_us: int
    ) -> list[PeriodCounts]: ...
    def resolvable_contacts(self, lo: int, hi: int, cutoff: int) -> tuple[int, int]: ...
    def state_changes(self, lo: int, hi: int) -> list[StateChange]: ...
    def state_time(
        self, edges_us: Sequence[int], now: int | None
    ) -> dict[tuple[int, str], AgentTime]: ...
    def latest_state_changes(self, before: int) -> list[StateChange]: ...


class Store(StoreReader, Protocol):
    """What the pipeline needs of a store besides its reads: batches written in one transaction,
    the facts and ids they fold on, positions, and the outbox."""

    def batch(self) -> AbstractContextManager[None]: ...
    def write(self, batch: BatchWrite) -> None: ...
    def load(
        self, call_ids: Collection[str], ticket_ids: Collection[str]
    ) -> tuple[dict[str, CallFact], dict[str, TicketFact]]: ...
    def seen(self, event_ids: Collection[str]) -> set[str]: ...
    def load_contacts(self, keys: Collection[str]) -> dict[str, ContactFact]: ...
    def recent_offers(
        self, caller_keys: Collection[str], lo: int, hi: int
    ) -> dict[str, list[int]]: ...
    def overdue_tickets(
        self, watermark: int, partitions: Collection[int] | None = None
    ) -> list[TicketFact]: ...
    def commit(self, batch: BatchWrite) -> None: ...
    def positions(self, source: str) -> dict[int, int]: ...
    def waiting_calls(self, since_us: int) -> list[CallFact]: ...
    def undelivered_count(self) -> int: ...
    def close(self) -> None: ...


def one_line(exc: BaseException) -> str:
    """The first line of a database error (PostgreSQL adds DETAIL, HINT and CONTEXT lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _identity_key(source: str, partition: int) -> str:
    return f"identity:{partition}:{source}"


def _state_key(name: str) -> str:
    return f"converter:{name}"


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
        call.contact_id,
        call.reason,
        call.hold_us,
        call.wrapped_at,
        call.contact_key,
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


# Most rows per multi-row INSERT: 17 columns of calls make 8,704 parameters, within SQLite's
# 32,766 and PostgreSQL's 65,535. Statements hold a power of two of rows, so that each INSERT
# has at most ten forms: any number of rows in every batch would fill the connection's cache of
# compiled statements (128) with a large one per remainder, megabytes each.
ROWS_PER_INSERT = 512


def _rows_sql(sql: str, rows: int) -> str:
    """A one-row ``INSERT … VALUES (…) …`` made to insert ``rows`` rows: its value group (only
    placeholders, no parenthesis inside) repeated."""
    start = sql.index(" VALUES (") + len(" VALUES ")
    end = sql.index(")", start) + 1
    return f"{sql[:start]}{', '.join([sql[start:end]] * rows)}{sql[end:]}"


def _upsert(table: str, columns: str, key: str, placeholder: str) -> str:
    names = [name.strip() for name in columns.split(",")]
    marks = ", ".join([placeholder] * len(names))
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _thresholds_key(thresholds: FactThresholds) -> str:
    """How the store records the thresholds its fact bits were derived with."""
    blocked = int(thresholds.blocked_are_requests)
    return f"{thresholds.short_abandon_us},{thresholds.service_level_us},{blocked}"


class SqlStore:
    """The SQL shared by the SQLite and PostgreSQL stores; subclasses supply the connection."""

    placeholder = "?"
    greatest = "max"

    def __init__(self, connection: Any) -> None:
        self._db = connection
        self._cursor: Any = None  # the open batch transaction's cursor, if any
        # (one-row INSERT, rows) -> its form for that many rows (a power of two)
        self._many_rows_sql: dict[tuple[str, int], str] = {}
        p = self.placeholder
        self._sql_call_upsert = _upsert("calls", CALL_WRITE_COLUMNS, "call_id", p)
        self._sql_contact_upsert = (
            f"INSERT INTO contacts ({CONTACT_COLUMNS}, keyed) VALUES ({', '.join([p] * 6)}) "
            "ON CONFLICT (contact_key) DO UPDATE SET offered_at = excluded.offered_at, "
            "call_id = excluded.call_id, caller_key = excluded.caller_key, "
            "counted = excluded.counted, keyed = excluded.keyed"
        )
        self._sql_state = (
            "INSERT INTO agent_states (event_id, agent_id, ts, state, reason) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (event_id) DO NOTHING"
        )
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
        self._sql_rollup_add = (
            "INSERT INTO rollups (grain, bucket, queue, agent, measure, value) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (grain, bucket, queue, agent, measure) "
            "DO UPDATE SET value = rollups.value + excluded.value"
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

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one of this module's reads, written with ``?`` placeholders, in this dialect."""
        if self.placeholder != "?":
            sql = sql.replace("%", "%%").replace("?", self.placeholder)
        cursor = self._db.execute(sql, tuple(params))
        return list(cursor.fetchall())

    def call_counts(self, lo: int, hi: int, by: Grouping) -> list[GroupCounts]:
        """Call measures of the requests queued in [lo, hi) (SPEC §3 attribution), per group.

        By ``"agent"`` only answered requests count: an agent's call figures are its answers.
        """
        return [
            GroupCounts(
                row[0], {m: int(v or 0) for m, v in zip(CALL_MEASURES, row[1:], strict=True)}
            )
            for row in self._rows(_CALLS_SQL[by], (lo, hi))
        ]

    def review_counts(self, lo: int, hi: int, by: Grouping) -> list[GroupCounts]:
        """QA reviews made in [lo, hi) and the accurate ones, per group (SPEC §5: a review counts
        in the queue it names, else the queue of its call)."""
        return [
            GroupCounts(
                group, {Measure.QA_REVIEWS: int(count), Measure.QA_ACCURATE: int(accurate or 0)}
            )
            for group, count, accurate in self._rows(_REVIEWS_SQL[by], (lo, hi))
        ]

    def survey_counts(
        self, lo: int, hi: int, by: Grouping, satisfied_score: int
    ) -> list[GroupCounts]:
        """Surveys answered in [lo, hi), the satisfied ones (score ≥ ``satisfied_score``) and
        their score sum, per group: the queue or agent a survey names, else that of its call."""
        rows = self._rows(_SURVEYS_SQL[by], (satisfied_score, lo, hi))
        return [
            GroupCounts(
                group,
                {
                    Measure.SURVEYS: int(count),
                    Measure.SATISFIED: int(satisfied or 0),
                    Measure.SCORE_SUM: int(score_sum or 0),
                },
            )
            for group, count, satisfied, score_sum in rows
        ]

    def tickets_due_in(self, lo: int, hi: int) -> list[TicketFact]:
        """The work orders whose ``due`` falls in [lo, hi) (SPEC §3 timeliness attribution)."""
        sql = f"SELECT {TICKET_COLUMNS} FROM tickets WHERE due >= ? AND due < ?"
        return [TicketFact(*row) for row in self._rows(sql, (lo, hi))]

    def offered_count(self, lo: int, hi: int) -> int:
        """Calls that reached the hotline in [lo, hi), by ``call.offered`` time."""
        sql = "SELECT COUNT(*) FROM calls WHERE offered_at >= ? AND offered_at < ?"
        return int(self._rows(sql, (lo, hi))[0][0])

    def wait_buckets(self, lo: int, hi: int, edges_us: Sequence[int]) -> list[WaitBucket]:
        """Answered and abandoned requests queued in [lo, hi) by wait: bucket ``i`` holds the
        waits from ``edges_us[i]`` to the next edge, the last one is open; empty ones are left
        out."""
        cases = " ".join(
            f"WHEN outcome_at - queued_at < {int(edge)} THEN {index - 1}"
            for index, edge in enumerate(edges_us)
            if index > 0
        )
        sql = (
            f"SELECT CASE {cases} ELSE {len(edges_us) - 1} END AS bucket, "
            f"{_bit(ANSWERED_FACT)}, {_bit(ABANDONED_FACT)} FROM calls "
            "WHERE queued_at >= ? AND queued_at < ? AND outcome_at IS NOT NULL GROUP BY bucket"
        )
        return [
            WaitBucket(int(bucket), int(answered or 0), int(abandoned or 0))
            for bucket, answered, abandoned in self._rows(sql, (lo, hi))
        ]

    def score_counts(self, lo: int, hi: int) -> dict[int, int]:
        """Surveys answered in [lo, hi) per overall score (scores no survey gave are missing)."""
        sql = "SELECT score, COUNT(*) FROM surveys WHERE ts >= ? AND ts < ? GROUP BY score"
        return {int(score): int(count) for score, count in self._rows(sql, (lo, hi))}

    def factor_ratings(self, lo: int, hi: int) -> list[FactorRating]:
        """The surveys answered in [lo, hi) that rated factors, with their overall score."""
        # In a fixed order (the correlations summed from them are floats), whatever the dialect
        # or the order the surveys arrived in.
        sql = (
            "SELECT score, factors FROM surveys WHERE ts >= ? AND ts < ? AND factors IS NOT NULL "
            "ORDER BY ts, event_id"
        )
        ratings = []
        for score, factors in self._rows(sql, (lo, hi)):
            parsed = json.loads(factors) if isinstance(factors, str) else factors
            if parsed:
                ratings.append(FactorRating(int(score), parsed))
        return ratings

    def factor_sums(self, lo: int, hi: int) -> dict[str, FactorSums]:
        """The sums of each factor's scores over the surveys answered in [lo, hi) that rated it
        (what the importance analysis needs; exact integers)."""
        return factor_sums((rating.score, rating.factors) for rating in self.factor_ratings(lo, hi))

    def queued_calls(self, lo: int, hi: int, queue: str | None = None) -> list[QueuedCall]:
        """The agent requests queued in [lo, hi) (of one queue if given), with their facts."""
        select = "SELECT queue, queued_at, outcome_at, agent_id, ended_at, facts FROM calls"
        # A fixed order: the analysis sums seconds as floats.
        rows = self._span_rows(select, "queued_at", lo, hi, queue, " ORDER BY queued_at, call_id")
        return [QueuedCall.with_facts(*row) for row in rows]

    def slot_sums(self, lo: int, hi: int, timezone: str, interval_minutes: int) -> SlotSums:
        """The staffing analysis' sums of the intervals (of ``interval_minutes`` in
        ``timezone``) that start in [lo, hi), computed from the facts with the rollups' own
        :func:`add_leg` (so that they equal the rollup reader's): loads of the legs queued in
        the period, and the agents' answers and busy time *in* the period, whenever their leg was
        queued (an answer just after the month's first midnight of a leg queued before it counts
        in the new month; see ``docs/staffing.md``).

        The legs worked in the period but queued outside it are found without an index (they
        are few, but any leg might be one): the path of exports whose configuration the stored
        rollups do not fit, not the usual one.
        """
        answered = (
            f"(facts / {ANSWERED_FACT}) % 2 = 1 "  # the fact bit, in both dialects
            "AND outcome_at < ? AND (outcome_at >= ? OR ended_at > ?)"
        )
        rows = self._rows(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE queued_at >= ? AND queued_at < ? "
            f"UNION ALL SELECT {CALL_COLUMNS} FROM calls "
            f"WHERE (queued_at < ? OR queued_at >= ?) AND {answered}",
            [lo, hi, lo, hi, hi, lo, lo],
        )
        buckets = Buckets(ZoneInfo(timezone), interval_minutes)
        sums: Sums = {}
        for row in rows:
            add_leg(sums, CallFact(*row), buckets)
        return slot_sums_of(sums, lo, hi, timezone, interval_minutes)

    def _span_rows(
        self, select: str, column: str, lo: int, hi: int, queue: str | None, tail: str = ""
    ) -> list[tuple[Any, ...]]:
        """The rows of ``select`` (``SELECT … FROM <table>``) whose ``column`` lies in [lo, hi),
        of ``queue`` only if given, with ``tail`` (a GROUP BY or ORDER BY) after the filter."""
        sql = f"{select} WHERE {column} >= ? AND {column} < ?"
        params: list[Any] = [lo, hi]
        if queue is not None:
            sql += " AND queue = ?"
            params.append(queue)
        return self._rows(sql + tail, params)

    def period_counts(
        self,
        edges_us: Sequence[int],
        by: Grouping,
        satisfied_score: int,
        queue: str | None = None,
    ) -> list[PeriodCounts]:
        """Call, QA review and survey measures per period and group, one grouped pass over each
        table: what :meth:`call_counts`, :meth:`review_counts` and :meth:`survey_counts` give
        for one [lo, hi), for every period [edges_us[i], edges_us[i + 1]) at once.

        With ``queue``, only that queue's legs, and the reviews and surveys that count in it
        (SPEC §5 attribution), are read. Groups of a period with nothing are left out.
        """
        if len(edges_us) < 2:
            return []
        span = [int(edges_us[0]), int(edges_us[-1])]
        found: list[PeriodCounts] = []
        column, where = _PERIOD_CALL_GROUPS[by]
        sql = _PERIOD_CALLS_SQL.format(
            period=period_index("queued_at", edges_us),
            group=column,
            where=where + (" AND queue = ?" if queue is not None else ""),
        )
        for row in self._rows(sql, [*span, *([queue] if queue is not None else [])]):
            counts = {m: int(v or 0) for m, v in zip(CALL_MEASURES, row[2:], strict=True)}
            found.append(PeriodCounts(int(row[0]), row[1], counts))
        filtered = f" AND {_PERIOD_REVIEW_GROUPS['queue']} = ?" if queue is not None else ""
        sql = _PERIOD_REVIEWS_SQL.format(
            period=period_index("r.ts", edges_us), group=_PERIOD_REVIEW_GROUPS[by], where=filtered
        )
        for period, group, count, accurate in self._rows(
            sql, [*span, *([queue] if queue is not None else [])]
        ):
            counts = {Measure.QA_REVIEWS: int(count), Measure.QA_ACCURATE: int(accurate or 0)}
            found.append(PeriodCounts(int(period), group, counts))
        filtered = f" AND {_PERIOD_SURVEY_GROUPS['queue']} = ?" if queue is not None else ""
        sql = _PERIOD_SURVEYS_SQL.format(
            period=period_index("s.ts", edges_us), group=_PERIOD_SURVEY_GROUPS[by], where=filtered
        )
        params = [satisfied_score, *span, *([queue] if queue is not None else [])]
        for period, group, count, satisfied, score_sum in self._rows(sql, params):
            counts = {
                Measure.SURVEYS: int(count),
                Measure.SATISFIED: int(satisfied or 0),
                Measure.SCORE_SUM: int(score_sum or 0),
            }
            found.append(PeriodCounts(int(period), group, counts))
        return found

    def period_offered(self, edges_us: Sequence[int], queue: str | None = None) -> dict[int, int]:
        """Calls offered per period (by ``call.offered`` time; with ``queue``, its legs only);
        periods with none are missing."""
        if len(edges_us) < 2:
            return {}
        select = f"SELECT {period_index('offered_at', edges_us)}, COUNT(*) FROM calls"
        lo, hi = int(edges_us[0]), int(edges_us[-1])
        rows = self._span_rows(select, "offered_at", lo, hi, queue, " GROUP BY 1")
        return {int(period): int(count) for period, count in rows}

    def ticket_counts(
        self, edges_us: Sequence[int], now: int | None, queue: str | None = None
    ) -> list[TicketCounts]:
        """Settled work orders due in each period, per queue and kind, and those on time (SPEC §3:
        closed, or open with ``due`` before "now"); with ``queue``, only that queue's."""
        found: dict[tuple[int, str | None, str], list[int]] = {}
        for due in self.period_tickets(edges_us, queue):
            facts = ticket_facts(due.ticket, now)
            if not facts & TICKET_DUE:
                continue
            key = (due.period, due.ticket.queue or None, due.ticket.kind or "unknown")
            counts = found.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += 1 if facts & TICKET_ON_TIME else 0
        return [TicketCounts(*key, *counts) for key, counts in found.items()]

    def open_tickets_due(
        self, lo: int, hi: int, queue: str | None = None
    ) -> list[tuple[int, str | None, str | None]]:
        """The open work orders due in [lo, hi) (of ``queue`` only if given): (due, queue, kind)."""
        rows = self._rows(
            "SELECT due, queue, kind FROM tickets WHERE closed_at IS NULL AND due >= ? AND due < ?"
            + (" AND queue = ?" if queue is not None else ""),
            [lo, hi, *([queue] if queue is not None else [])],
        )
        return [(int(due), q, kind) for due, q, kind in rows]

    def period_tickets(
        self, edges_us: Sequence[int], queue: str | None = None
    ) -> list[PeriodTicket]:
        """The work orders due in each period (SPEC §3 timeliness attribution), with their
        period; with ``queue``, only that queue's."""
        if len(edges_us) < 2:
            return []
        select = f"SELECT {period_index('due', edges_us)}, {TICKET_COLUMNS} FROM tickets"
        rows = self._span_rows(select, "due", int(edges_us[0]), int(edges_us[-1]), queue)
        return [PeriodTicket(int(row[0]), TicketFact(*row[1:])) for row in rows]

    def period_contacts(
        self,
        edges_us: Sequence[int],
        now: int | None,
        window_us: int,
        complaint_window_us: int,
        queue: str | None = None,
    ) -> list[PeriodCounts]:
        """Contacts and the caller-key measures per period (SPEC §3), read at ``now``.

        ``CONTACTS`` by the contact's ``call.offered`` time, grouped by the contact's queue (that
        of its earliest agent request; None without one); the repeat contact, first contact
        resolution and repeat complaint measures in groups of None (they are overall only).
        Flags come from the caller keys, or from the flags stored when the keys were erased
        (retention). With ``queue``, only that queue's contacts, and no caller-key measures.
        """
        if len(edges_us) < 2:
            return []
        span = [int(edges_us[0]), int(edges_us[-1])]
        found: list[PeriodCounts] = []
        sql = (
            f"SELECT {period_index('offered_at', edges_us)}, queue, COUNT(*) FROM contacts "
            "WHERE offered_at >= ? AND offered_at < ? "
            + ("AND queue = ? " if queue is not None else "")
            + "GROUP BY 1, 2"
        )
        params: list[Any] = [*span, *([queue] if queue is not None else [])]
        for period, group, count in self._rows(sql, params):
            found.append(PeriodCounts(int(period), group, {Measure.CONTACTS: int(count)}))
        if queue is not None:
            return found
        cutoff = now - window_us if now is not None else span[0] - 1
        sql = (
            f"SELECT {period_index('offered_at', edges_us)}, COUNT(*), SUM(is_repeat), "
            "SUM(CASE WHEN offered_at <= ? AND answered = 1 THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN offered_at <= ? AND answered = 1 AND followed = 0 THEN 1 ELSE 0 END) "
            "FROM contacts WHERE keyed = 1 AND offered_at >= ? AND offered_at < ? GROUP BY 1"
        )
        for period, keyed, repeat, resolvable, resolved in self._rows(sql, [cutoff, cutoff, *span]):
            counts = {
                Measure.CONTACTS_KEYED: int(keyed),
                Measure.REPEAT_CONTACTS: int(repeat or 0),
                Measure.RESOLVABLE: int(resolvable or 0),
                Measure.RESOLVED: int(resolved or 0),
            }
            found.append(PeriodCounts(int(period), None, counts))
        found.extend(self.period_complaints(edges_us, complaint_window_us))
        return found

    def period_complaints(
        self, edges_us: Sequence[int], complaint_window_us: int
    ) -> list[PeriodCounts]:
        """Complaint tickets that lead to a caller key (through their leg's contact) and the
        repeat ones, per period of ``ticket.opened`` (SPEC §3; overall only, group None)."""
        if len(edges_us) < 2:
            return []
        span = [int(edges_us[0]), int(edges_us[-1])]
        earlier_complaint = (
            "EXISTS (SELECT 1 FROM contacts c2 JOIN tickets t2 ON t2.contact_key = c2.contact_key "
            "WHERE c2.caller_key = c.caller_key AND t2.kind = 'complaint' "
            "AND t2.opened_at >= t.opened_at - ? AND t2.opened_at < t.opened_at)"
        )
        sql = (
            f"SELECT {period_index('t.opened_at', edges_us)}, COUNT(*), "
            f"SUM(CASE WHEN COALESCE(t.repeat_flag, CASE WHEN {earlier_complaint} THEN 1 "
            "ELSE 0 END) = 1 THEN 1 ELSE 0 END) "
            "FROM tickets t JOIN contacts c ON c.contact_key = t.contact_key "
            "WHERE t.kind = 'complaint' AND c.keyed = 1 AND t.opened_at >= ? "
            "AND t.opened_at < ? GROUP BY 1"
        )
        found = []
        for period, keyed, repeat in self._rows(sql, [complaint_window_us, *span]):
            counts = {
                Measure.COMPLAINTS_KEYED: int(keyed),
                Measure.REPEAT_COMPLAINTS: int(repeat or 0),
            }
            found.append(PeriodCounts(int(period), None, counts))
        return found

    def resolvable_contacts(self, lo: int, hi: int, cutoff: int) -> tuple[int, int]:
        """Keyed answered contacts offered in [lo, hi) and no later than ``cutoff`` ("now" − W),
        and those of them not followed by another contact with their key: the settled part of
        first contact resolution where "now" − W cuts an interval."""
        rows = self._rows(
            "SELECT COUNT(*), SUM(1 - followed) FROM contacts WHERE keyed = 1 AND answered = 1 "
            "AND offered_at >= ? AND offered_at < ? AND offered_at <= ?",
            (lo, hi, cutoff),
        )
        count, resolved = rows[0]
        return int(count or 0), int(resolved or 0)

    def state_changes(self, lo: int, hi: int) -> list[StateChange]:
        """The agent state changes stamped in [lo, hi), and each agent's last changes before
        ``lo`` (all those at its latest time: ties are ordered by event id when reading), so
        that the state holding at ``lo`` is known (SPEC §3)."""
        columns = "a.event_id, a.agent_id, a.ts, a.state, a.reason"
        sql = (
            f"SELECT {columns} FROM agent_states a WHERE a.ts >= ? AND a.ts < ? "
            f"UNION ALL SELECT {columns} FROM agent_states a JOIN "
            "(SELECT agent_id, MAX(ts) AS ts FROM agent_states WHERE ts < ? GROUP BY agent_id) b "
            "ON a.agent_id = b.agent_id AND a.ts = b.ts"
        )
        return [
            StateChange(str(e), str(agent), int(ts), str(state), reason)
            for e, agent, ts, state, reason in self._rows(sql, (lo, hi, lo))
        ]

    def state_time(
        self, edges_us: Sequence[int], now: int | None
    ) -> dict[tuple[int, str], AgentTime]:
        """Agent state microseconds per (period, agent) of these edges (SPEC §3), up to ``now``."""
        if len(edges_us) < 2:
            return {}
        return state_time(self.state_changes(edges_us[0], edges_us[-1]), edges_us, now)

    def latest_state_changes(self, before: int) -> list[StateChange]:
        """Each agent's last changes stamped before ``before`` (all those at its latest time)."""
        columns = "a.event_id, a.agent_id, a.ts, a.state, a.reason"
        sql = (
            f"SELECT {columns} FROM agent_states a JOIN "
            "(SELECT agent_id, MAX(ts) AS ts FROM agent_states WHERE ts < ? GROUP BY agent_id) b "
            "ON a.agent_id = b.agent_id AND a.ts = b.ts"
        )
        return [
            StateChange(str(e), str(agent), int(ts), str(state), reason)
            for e, agent, ts, state, reason in self._rows(sql, (before,))
        ]

    def state_window(self, agent_id: str, lo: int, hi: int) -> list[StateChange]:
        """Inside a batch: the agent's stored changes stamped from its last time before ``lo``
        to its first time after ``hi`` (every change at those two times included)."""
        columns = "event_id, agent_id, ts, state, reason"
        sql = (
            f"SELECT {columns} FROM agent_states WHERE agent_id = ? "
            "AND ts >= COALESCE((SELECT MAX(ts) FROM agent_states "
            "WHERE agent_id = ? AND ts < ?), ?) "
            "AND ts <= COALESCE((SELECT MIN(ts) FROM agent_states "
            "WHERE agent_id = ? AND ts > ?), ?)"
        )
        params = (agent_id, agent_id, lo, lo, agent_id, hi, hi)
        return [
            StateChange(str(e), str(agent), int(ts), str(state), reason)
            for e, agent, ts, state, reason in self._rows(sql, params)
        ]

    def undelivered_count(self) -> int:
        """How many rejected events wait in the dead-letter outbox (not yet on the topic)."""
        return int(self._rows("SELECT COUNT(*) FROM rejected WHERE dead_lettered = 0")[0][0])

    def load(
        self, call_ids: Collection[str], ticket_ids: Collection[str]
    ) -> tuple[dict[str, CallFact], dict[str, TicketFact]]:
        """The stored facts of these calls and tickets (absent ones are simply missing)."""
        calls = {
            row[0]: CallFact(*row)
            for row in self._rows_in(f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id", call_ids)
        }
        tickets = {
            row[0]: TicketFact(*row)
            for row in self._rows_in(
                f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id", ticket_ids
            )
        }
        return calls, tickets

    def _rows_in(self, select: str, ids: Collection[str]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``select`` (ending in ``WHERE <column>``) whose column is one of ``ids``,
        asked in chunks that one statement can hold."""
        for chunk in _chunks(sorted(ids)):
            marks = ", ".join([self.placeholder] * len(chunk))
            yield from self._db.execute(f"{select} IN ({marks})", tuple(chunk)).fetchall()

    def load_contacts(self, keys: Collection[str]) -> dict[str, ContactFact]:
        """The stored contacts of these contact keys (absent ones are missing)."""
        sql = f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE contact_key"
        return {row[0]: ContactFact(*row) for row in self._rows_in(sql, keys)}

    def recent_offers(self, caller_keys: Collection[str], lo: int, hi: int) -> dict[str, list[int]]:
        """Offer times in [lo, hi) of the stored contacts with these caller keys, per key."""
        found: dict[str, list[int]] = {}
        for key, offered_at in self._keyed_contacts("caller_key, offered_at", caller_keys, lo, hi):
            found.setdefault(key, []).append(int(offered_at))
        return found

    def seen(self, event_ids: Collection[str]) -> set[str]:
        """Which of these event ids the store has already seen in a valid event."""
        sql = "SELECT event_id FROM seen_events WHERE event_id"
        return {row[0] for row in self._rows_in(sql, event_ids)}

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
        rows = self._rows("SELECT partition, position FROM positions WHERE source = ?", (source,))
        return {int(partition): int(position) for partition, position in rows}

    def watermark(self) -> int | None:
        """The latest event time of an accepted event, in epoch microseconds."""
        rows = self._rows("SELECT value FROM meta WHERE key = 'watermark'")
        return int(rows[0][0]) if rows else None

    def identities(self, source: str) -> dict[int, str]:
        """The identity stored with each partition's position of ``source`` (see
        :attr:`BatchWrite.identities`); partitions committed without one are missing."""
        rows = self._rows("SELECT key, value FROM meta WHERE key LIKE 'identity:%'")
        found: dict[int, str] = {}
        for key, value in rows:
            _, partition, name = str(key).split(":", 2)
            if name == source:
                found[int(partition)] = str(value)
        return found

    def converter_state(self, name: str) -> str | None:
        """The telephony converter state last committed under ``name`` (None: none yet)."""
        return self.meta(_state_key(name))

    def queue_labels(self) -> list[str]:
        """The queue names that hold a label slot, in the order they got it."""
        return [str(row[0]) for row in self._rows("SELECT queue FROM queue_labels ORDER BY slot")]

    def meta(self, key: str) -> str | None:
        """A stored setting (schema version, thresholds the facts were computed with)."""
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
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
        rows = self._rows("SELECT reason, COUNT(*) FROM rejected GROUP BY reason")
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
            self._insert_rows(cursor, self._sql_call_upsert, [_call_row(c) for c in batch.calls])
        if batch.merged_contacts:
            p = self.placeholder
            cursor.executemany(
                f"DELETE FROM contacts WHERE contact_key = {p}",
                [(key,) for key in batch.merged_contacts],
            )
        if batch.contacts:
            self._insert_rows(
                cursor,
                self._sql_contact_upsert,
                [
                    (
                        c.contact_key,
                        c.offered_at,
                        c.call_id,
                        c.caller_key,
                        c.counted,
                        int(c.caller_key is not None),
                    )
                    for c in batch.contacts
                ],
            )
        if batch.states:
            self._insert_rows(
                cursor,
                self._sql_state,
                [(s.event_id, s.agent_id, s.ts, s.state, s.reason) for s in batch.states],
            )
        if batch.tickets:
            where = batch.ticket_partitions
            self._insert_rows(
                cursor,
                self._sql_ticket_upsert,
                [_ticket_row(t, where.get(t.ticket_id, 0)) for t in batch.tickets],
            )
        if batch.overdue:
            cursor.executemany(
                self._sql_ticket_settle,
                [(t.counted, t.ticket_id, before) for t, before in batch.overdue],
            )
        if batch.reviews:
            self._insert_rows(
                cursor,
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
            self._insert_rows(
                cursor,
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
            self._write_seen(cursor, sorted(batch.seen))
        if batch.rollups:
            # Keys are distinct (a dict's), as a multi-row upsert needs.
            self._insert_rows(
                cursor,
                self._sql_rollup_add,
                [(*key, amount) for key, amount in batch.rollups.items()],
            )
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
        if batch.converter_states:
            cursor.executemany(
                self._sql_meta,
                [(_state_key(name), state) for name, state in batch.converter_states.items()],
            )
        if batch.watermark is not None:
            cursor.execute(self._sql_watermark, (str(batch.watermark),))

    def _insert_rows(self, cursor: Any, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run the one-row INSERT ``sql`` for every row, up to :data:`ROWS_PER_INSERT` rows a
        statement (issue 17: a third less than one ``executemany`` step per row for the calls).
        The rows must have distinct keys: PostgreSQL refuses an upsert that meets one twice."""
        start = 0
        while start < len(rows):
            size = min(ROWS_PER_INSERT, 1 << ((len(rows) - start).bit_length() - 1))
            statement = self._many_rows_sql.get((sql, size))
            if statement is None:
                statement = self._many_rows_sql[sql, size] = _rows_sql(sql, size)
            cursor.execute(statement, list(chain.from_iterable(rows[start : start + size])))
            start += size

    def _write_seen(self, cursor: Any, event_ids: list[str]) -> None:
        """Record a batch's event ids as seen (sorted: neighbours in the b-tree), one row each;
        a dialect may do it in one statement."""
        cursor.executemany(self._sql_seen, [(event_id,) for event_id in event_ids])

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

    def undelivered_rejections(self, limit: int) -> list[Rejection]:
        """The dead-letter outbox: rejected rows not yet sent to the dead-letter topic."""
        rows = self._rows(
            "SELECT id, source, partition, position, reason, event_id, type, detail, payload "
            "FROM rejected WHERE dead_lettered = 0 ORDER BY id LIMIT ?",
            (limit,),
        )
        return [Rejection(*row) for row in rows]

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

    def refresh_facts(self, thresholds: FactThresholds) -> int:
        """Recompute every call's fact bits for new thresholds; returns the calls changed.

        Counters already moved are not moved again (``counted`` is kept); exports, which read
        the fact bits, follow the new thresholds.
        """
        with self.batch():
            return self._refresh_facts(thresholds)

    def _refresh_facts(self, thresholds: FactThresholds) -> int:
        # Read inside the batch: another writer's newer facts must not be overwritten.
        rows = self._rows(f"SELECT {CALL_COLUMNS} FROM calls WHERE queued_at IS NOT NULL")
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

    def erase_caller_keys(self, cutoff: int, complaint_window_us: int) -> int:
        """Inside a batch: erase the caller keys of contacts offered before ``cutoff`` (SPEC §7
        retention), after storing every flag that reads them, so that no figure changes.

        A contact's repeat and resolution flags are kept up to date on the contact by every
        batch (:meth:`refresh_contacts`) and stay as they are once its key is gone. Stored
        first: the repeat flag of complaint tickets opened before ``cutoff`` + the complaint
        window (their window looks back to erased keys). Returns the keys erased.
        """
        cursor = self._open_cursor()
        p = self.placeholder
        complaint_before = (
            "EXISTS (SELECT 1 FROM contacts c JOIN contacts c2 ON c2.caller_key = c.caller_key "
            "JOIN tickets t2 ON t2.contact_key = c2.contact_key "
            "WHERE c.contact_key = tickets.contact_key AND t2.kind = 'complaint' "
            f"AND t2.opened_at >= tickets.opened_at - {p} AND t2.opened_at < tickets.opened_at)"
        )
        cursor.execute(
            f"UPDATE tickets SET repeat_flag = CASE WHEN {complaint_before} THEN 1 ELSE 0 END "
            "WHERE kind = 'complaint' AND repeat_flag IS NULL AND contact_key IS NOT NULL "
            f"AND opened_at < {p}",
            (complaint_window_us, cutoff + complaint_window_us),
        )
        cursor.execute(
            "UPDATE contacts SET caller_key = NULL "
            f"WHERE caller_key IS NOT NULL AND offered_at < {p}",
            (cutoff,),
        )
        erased = int(cursor.rowcount)
        cursor.execute(self._sql_meta, (KEYS_ERASED_BEFORE, str(cutoff)))
        return erased

    def check_thresholds(self, thresholds: FactThresholds) -> None:
        """Inside a batch: fail (one line) when another process re-derived the stored fact bits
        with other thresholds since this one started, rather than mix the two in the facts."""
        stored = self.meta("thresholds")
        if stored is not None and stored != _thresholds_key(thresholds):
            short_us, level_us, blocked = (int(part) for part in stored.split(","))
            raise StoreError(
                "another process re-derived the store's facts with other thresholds "
                f"(short abandon {short_us / 1e6:g} s, service level {level_us / 1e6:g} s, "
                f"blocked_are_requests {bool(blocked)}): restart every writer of this store "
                "with the same thresholds and definitions"
            )

    def ensure_thresholds(self, thresholds: FactThresholds) -> None:
        """Make the stored fact bits agree with ``thresholds`` (refold once if they changed)."""
        wanted = _thresholds_key(thresholds)
        if self.meta("thresholds") == wanted:
            return
        with self.batch():
            if self.meta("thresholds") != wanted:  # another process may have just done it
                self._refresh_facts(thresholds)
                self._open_cursor().execute(self._sql_meta, ("thresholds", wanted))

    # -- rollups (metrics/rollups.py) ---------------------------------------------------------

    def contact_states(self, keys: Collection[str]) -> dict[str, ContactState]:
        """The stored contacts of these keys as the rollups count them (absent: missing)."""
        sql = f"SELECT {CONTACT_STATE_COLUMNS} FROM contacts WHERE contact_key"
        return {row[0]: _contact_state(row) for row in self._rows_in(sql, keys)}

    def contact_neighbours(
        self, caller_keys: Collection[str], lo: int, hi: int
    ) -> dict[str, ContactState]:
        """The stored contacts with these caller keys offered in [lo, hi]: those whose repeat
        and resolution flags a batch's offers in [lo + W, hi − W] may change."""
        rows = self._keyed_contacts(CONTACT_STATE_COLUMNS, caller_keys, lo, hi + 1)
        return {row[0]: _contact_state(row) for row in rows}

    def _keyed_contacts(
        self, columns: str, caller_keys: Collection[str], lo: int, hi: int
    ) -> Iterator[tuple[Any, ...]]:
        """``columns`` of the stored contacts with these caller keys offered in [lo, hi)."""
        p = self.placeholder
        for chunk in _chunks(sorted(caller_keys)):
            marks = ", ".join([p] * len(chunk))
            yield from self._db.execute(
                f"SELECT {columns} FROM contacts WHERE caller_key IN ({marks}) "
                f"AND offered_at >= {p} AND offered_at < {p}",
                (*chunk, lo, hi),
            ).fetchall()

    def refresh_contacts(self, keys: Collection[str], window_us: int) -> dict[str, ContactState]:
        """Inside a batch, after its writes: derive again what SPEC §3 derives for these
        contacts from their legs and from the other contacts with their key (the queue of the
        first agent request, answered, repeat, followed), and return them as now stored. A
        contact whose key was erased keeps its flags (retention freezes them)."""
        cursor = self._open_cursor()
        p = self.placeholder
        for chunk in _chunks(sorted(keys)):
            marks = ", ".join([p] * len(chunk))
            cursor.execute(
                f"UPDATE contacts SET {_CONTACT_DERIVED.format(p=p)} "
                f"WHERE contact_key IN ({marks})",
                (window_us, window_us, *chunk),
            )
        return self.contact_states(keys)

    def link_tickets(self, call_ids: Collection[str]) -> None:
        """Inside a batch, after its writes: point the work orders of these legs at the legs'
        contacts (a complaint leads to a caller key through its contact, SPEC §3)."""
        cursor = self._open_cursor()
        p = self.placeholder
        for chunk in _chunks(sorted(call_ids)):
            marks = ", ".join([p] * len(chunk))
            cursor.execute(
                "UPDATE tickets SET contact_key = (SELECT l.contact_key FROM calls l "
                f"WHERE l.call_id = tickets.call_id) WHERE call_id IN ({marks})",
                tuple(chunk),
            )

    def add_rollups(self, sums: Sums) -> None:
        """Inside a batch: add these amounts (negative: retract) to the rollup sums."""
        if sums:
            rows = [(*key, amount) for key, amount in sums.items()]
            self._insert_rows(self._open_cursor(), self._sql_rollup_add, rows)

    def rollups_built_for(self, config: RollupConfig) -> bool:
        """Whether the stored rollups were built, and are kept, for ``config``."""
        return self.meta(ROLLUPS) == config.key()

    def rollup_rows(
        self,
        grain: int,
        lo: int,
        hi: int,
        queue: str | None = None,
        measures: Collection[str] | None = None,
    ) -> list[tuple[int, str, str, str, int]]:
        """The rollup sums of ``grain`` whose bucket starts in [lo, hi) (of ``queue`` only if
        given, of ``measures`` only if given): (bucket, queue, agent, measure, value); ``""`` is
        no queue or no agent."""
        sql = (
            "SELECT bucket, queue, agent, measure, value FROM rollups "
            "WHERE grain = ? AND bucket >= ? AND bucket < ? AND value <> 0"
        )
        params: list[Any] = [grain, lo, hi]
        if queue is not None:
            sql += " AND queue = ?"
            params.append(queue)
        if measures is not None:
            sql += f" AND measure IN ({', '.join(['?'] * len(measures))})"
            params.extend(sorted(measures))
        return [
            (int(bucket), str(q), str(agent), str(measure), int(value))
            for bucket, q, agent, measure, value in self._rows(sql, params)
        ]

    def rollup_slot_rows(
        self, lo: int, hi: int
    ) -> tuple[tuple[IntervalLoad, ...], tuple[AgentWork, ...]]:
        """The staffing sums kept in the rollups for the buckets that start in [lo, hi): per
        queue and interval (Grain.INTERVAL) and per queue, interval and agent (Grain.ANSWER),
        each measure summed into its column by the database (a month at 2,000 calls a day has
        ~60k such measure rows; the pivot returns a sixth of them), ordered as
        :func:`~hotline_kpi.metrics.rollups.slot_sums` orders them."""

        def pivot(grain: Grain, names: Sequence[str], group: str) -> list[tuple[Any, ...]]:
            columns = ", ".join(f"SUM(CASE WHEN measure = '{name}' THEN value ELSE 0 END)"
                                for name in names)  # fmt: skip
            marks = ", ".join("?" * len(names))
            return self._rows(
                f"SELECT {group}, {columns} FROM rollups WHERE grain = ? AND bucket >= ? "
                f"AND bucket < ? AND measure IN ({marks}) GROUP BY {group}",
                [int(grain), lo, hi, *names],
            )

        loads = [
            IntervalLoad(str(queue), int(bucket), *(int(value) for value in values))
            for queue, bucket, *values in pivot(Grain.INTERVAL, LOAD_MEASURES, "queue, bucket")
        ]
        work = [
            AgentWork(str(queue), int(bucket), str(agent), int(answers), int(busy))
            for queue, bucket, agent, answers, busy in pivot(
                Grain.ANSWER, (ANSWERS, BUSY_US), "queue, bucket, agent"
            )
        ]
        # Sorted here, not by SQL: PostgreSQL's collation may order queue names otherwise.
        return (
            tuple(sorted((load for load in loads if any(load[2:])), key=lambda r: (r[1], r[0]))),
            tuple(sorted((w for w in work if any(w[3:])), key=lambda r: (r[1], r[0], r[2]))),
        )

    def rollup_dependents(self, call_ids: Collection[str]) -> tuple[list[Review], list[Survey]]:
        """Inside a batch: the stored reviews and surveys of these legs whose attribution follows
        the leg's (a review naming no queue, a survey naming no queue or no agent)."""
        reviews = [
            Review(e, c, a, bool(accurate), q, category, ts)
            for e, c, a, accurate, q, category, ts in self._rows_in(
                "SELECT event_id, call_id, agent_id, accurate, queue, category, ts FROM reviews "
                "WHERE queue IS NULL AND call_id",
                call_ids,
            )
        ]
        surveys = [
            _survey(row)
            for row in self._rows_in(
                f"SELECT {_SURVEY_COLUMNS} FROM surveys "
                "WHERE (queue IS NULL OR agent_id IS NULL) AND call_id",
                call_ids,
            )
        ]
        return reviews, surveys

    def stored_rollups(self) -> Sums:
        """Every non-zero rollup sum as stored."""
        rows = self._rows(
            "SELECT grain, bucket, queue, agent, measure, value FROM rollups WHERE value <> 0"
        )
        return {(int(g), int(b), str(q), str(a), str(m)): int(v) for g, b, q, a, m, v in rows}

    def computed_rollups(self, config: RollupConfig) -> Sums:
        """Every rollup sum recomputed from the stored facts (what ``verify`` compares)."""
        buckets = Buckets(ZoneInfo(config.timezone), config.interval_minutes)
        calls = (CallFact(*row) for row in self._db.execute(f"SELECT {CALL_COLUMNS} FROM calls"))
        reviews = (
            (Review(e, c, a, bool(accurate), q, category, ts), call_queue)
            for e, c, a, accurate, q, category, ts, call_queue in self._db.execute(
                "SELECT r.event_id, r.call_id, r.agent_id, r.accurate, r.queue, r.category, "
                "r.ts, c.queue FROM reviews r LEFT JOIN calls c ON c.call_id = r.call_id"
            )
        )
        surveys = (
            (_survey(row[:7]), None if row[7] is None else CallFact(*row[7:]))
            for row in self._db.execute(
                f"SELECT {_SURVEY_COLUMNS_OF_S}, {_CALL_COLUMNS_OF_C} FROM surveys s "
                "LEFT JOIN calls c ON c.call_id = s.call_id"
            )
        )
        contacts = (
            _contact_state(row)
            for row in self._db.execute(f"SELECT {CONTACT_STATE_COLUMNS} FROM contacts")
        )
        states = (
            StateChange(str(e), str(agent), int(ts), str(state), reason)
            for e, agent, ts, state, reason in self._db.execute(
                "SELECT event_id, agent_id, ts, state, reason FROM agent_states ORDER BY agent_id"
            )
        )
        tickets = (
            TicketFact(*row) for row in self._db.execute(f"SELECT {TICKET_COLUMNS} FROM tickets")
        )
        return rebuild(
            calls, reviews, surveys, contacts, config.thresholds.satisfied_score, buckets, states,
            tickets,
        )  # fmt: skip

    def contact_drift(self, window_us: int) -> list[str]:
        """The contacts whose stored queue or flags differ from what their legs and the other
        contacts with their key give now (``verify``); nothing is changed."""
        p = self.placeholder
        rows = self._db.execute(
            _CONTACT_DERIVED_SELECT.format(p=p), (window_us, window_us)
        ).fetchall()
        return sorted(
            str(row[0])
            for row in rows
            if (row[1], bool(row[2]), bool(row[3]), bool(row[4]))
            != (row[5], bool(row[6]), bool(row[7]), bool(row[8]))
        )

    def _refresh_all_contacts(self, window_us: int) -> None:
        p = self.placeholder
        self._open_cursor().execute(
            f"UPDATE contacts SET {_CONTACT_DERIVED.format(p=p)}", (window_us, window_us)
        )

    def check_rollups(self, config: RollupConfig) -> None:
        """Inside a batch: fail (one line) when another process rebuilt the rollups for another
        configuration since this one started, rather than mix the two."""
        stored = self.meta(ROLLUPS)
        if stored is not None and stored != config.key():
            raise StoreError(
                "another process rebuilt the store's rollups for another time zone, interval or "
                f"thresholds ({stored}): restart every writer of this store with one configuration"
            )

    def ensure_rollups(self, config: RollupConfig) -> bool:
        """Make the stored rollups agree with ``config``: rebuild them from the facts once if
        they were built for another one (or never). Returns whether there was anything to
        rebuild (not for a new store)."""
        wanted = config.key()
        if self.meta(ROLLUPS) == wanted:
            return False
        with self.batch():
            previous = self.meta(ROLLUPS)
            if previous == wanted:  # another process may have just done it
                return False
            self._refresh_all_contacts(config.thresholds.repeat_window_us)
            sums = self.computed_rollups(config)
            cursor = self._open_cursor()
            cursor.execute("DELETE FROM rollups")
            self._insert_rows(
                cursor, self._sql_rollup_add, [(*key, amount) for key, amount in sums.items()]
            )
            cursor.execute(self._sql_meta, (ROLLUPS, wanted))
        return previous is not None or bool(sums)

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


def create_schema(db: Any, *, placeholder: str, serial: str, exists: bool, where: object) -> None:
    """Create the tables of :data:`SCHEMA` on a connection of either dialect, and record the
    schema version; refuse a store written with another version (``exists``: it has a ``meta``
    table) rather than misread it."""
    if exists:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        stored = row[0] if row else None
        if stored is not None and stored != SCHEMA_VERSION:
            raise StoreError(
                f"store {where} has schema version {stored}, this version needs "
                f"{SCHEMA_VERSION}: replay the events into a new store"
            )
    for statement in SCHEMA:
        db.execute(statement.format(serial=serial))
    db.execute(
        f"INSERT INTO meta (key, value) VALUES ('schema_version', {placeholder}) "
        "ON CONFLICT (key) DO NOTHING",
        (SCHEMA_VERSION,),
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


# "WHERE true" lets SQLite read the ON CONFLICT clause of an INSERT … SELECT as an upsert.
_SQLITE_SEEN_MANY = (
    "INSERT INTO seen_events (event_id) SELECT value FROM json_each(?) WHERE true "
    "ON CONFLICT (event_id) DO NOTHING"
)


# The batch's ids already stored, in one statement: a look-up in the key's index per id.
_SQLITE_SEEN_READ = (
    "SELECT s.event_id FROM json_each(?) j JOIN seen_events s ON s.event_id = j.value"
)


def _has_json_each(db: sqlite3.Connection) -> bool:
    """Whether this SQLite has the JSON functions (built in since 3.38, optional before)."""
    try:
        db.execute("SELECT value FROM json_each('[]')").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


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
            self._json_each = _has_json_each(db)
            exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
            create_schema(db, placeholder="?", serial="INTEGER", exists=bool(exists), where=path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from None
        super().__init__(db)

    def _transaction(self) -> _SqliteTransaction:
        return _SqliteTransaction(self._db)

    def seen(self, event_ids: Collection[str]) -> set[str]:
        """Which of these event ids the store has already seen in a valid event: one statement,
        the ids as one JSON array (a batch took a dozen ``IN`` statements of 900 ids)."""
        if not self._json_each:
            return super().seen(event_ids)
        ids = json.dumps(sorted(event_ids), ensure_ascii=False)
        return {row[0] for row in self._db.execute(_SQLITE_SEEN_READ, (ids,)).fetchall()}

    def _write_seen(self, cursor: Any, event_ids: list[str]) -> None:
        """One statement for the whole batch: the ids as one JSON array, expanded by SQLite's
        ``json_each`` (about a third of the cost of one INSERT per id; issue 17)."""
        if not self._json_each:
            super()._write_seen(cursor, event_ids)
            return
        cursor.execute(_SQLITE_SEEN_MANY, (json.dumps(event_ids, ensure_ascii=False),))

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


# Where mypy checks that both SQL stores are a Store, whether or not a caller types them so.
_CONFORMS: tuple[type[Store], ...] = (SqlStore, SqliteStore)
