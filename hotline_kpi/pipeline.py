"""One batch through the whole pipeline: decode → dedup → fold → store → exposition.

Sources (a file, Kafka, the demo's simulator) hand raw records with their positions to
:meth:`Pipeline.process`; the batch's facts, dedup keys, rejections, positions and watermark are
committed in one store transaction, and only then do the Prometheus counters move.

Dedup, the stored facts and the watermark are read inside that same transaction, which the store
serialises between writers: several processes writing to one store (two replays, several
``run`` consumers, a mis-keyed producer that splits a call between them) end with what one
process replaying their batches one after the other would have stored.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast, get_args
from zoneinfo import ZoneInfo

from hotline_kpi.config import Settings
from hotline_kpi.errors import StoreError
from hotline_kpi.ingest.decode import (
    DEFAULT_MAX_CLOCK_SKEW_US,
    Accepted,
    Reason,
    Record,
    Rejected,
    decode_batch,
    reject_event,
)
from hotline_kpi.ingest.wire import (
    AgentState,
    CallEvent,
    CallOffered,
    QaReviewed,
    SurveyAnswered,
    TicketClosed,
    TicketOpened,
)
from hotline_kpi.metrics.exposition import HotlineMetrics, ProcessedBatch
from hotline_kpi.metrics.fold import (
    US,
    CallFact,
    FactThresholds,
    FoldResult,
    StateChange,
    contact_key,
    fold_batch,
)
from hotline_kpi.metrics.rollups import (
    Buckets,
    ContactState,
    RollupConfig,
    Sums,
    add_sums,
    batch_delta,
    changed_attribution,
    contacts_delta,
    states_delta,
    tickets_delta,
)
from hotline_kpi.metrics.store import (
    KEYS_ERASED_BEFORE,
    BatchWrite,
    SqlStore,
    WriterConflictError,
)

log = logging.getLogger(__name__)

# Attempts at a batch that another writer's transaction deadlocked or serialised away.
CONFLICT_RETRIES = 3

Clock = Callable[[], int]
CallerKey = Callable[[str | None], str | None]
# Later than any event time (9999-12-31): where "the latest state before" means "now".
_END_OF_TIME = 253_402_300_800 * US
# Caller keys past retention are erased at most once per this much event time.
RETENTION_STEP_US = 3600 * US


def max_clock_skew_of(settings: Settings) -> int:
    """How far ahead of the wall clock an event may be stamped, in microseconds (SPEC §6)."""
    return settings.max_clock_skew_seconds * US


def thresholds_of(settings: Settings) -> FactThresholds:
    """The fold's thresholds from the configuration."""
    t = settings.thresholds
    return FactThresholds.of_seconds(
        t.short_abandon_seconds,
        t.service_level_seconds,
        t.satisfied_score,
        blocked_are_requests=settings.definitions.blocked_are_requests,
        repeat_window=t.repeat_window_hours * 3600,
        complaint_window=t.repeat_complaint_days * 86_400,
    )


def rollup_config_of(settings: Settings) -> RollupConfig:
    """What the rollups of the configuration are built for: its zone, interval and thresholds."""
    return RollupConfig(settings.timezone, settings.interval_minutes, thresholds_of(settings))


def key_retention_of(settings: Settings) -> int:
    """SPEC §7: how long caller keys are kept, in microseconds of event time."""
    return settings.privacy.caller_key_retention_days * 86_400 * US


def wall_clock_us() -> int:
    """The wall clock in epoch microseconds (the only clock the pipeline reads)."""
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What one committed batch counted: events accepted, and events rejected by reason."""

    accepted: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Totals:
    """What a source's batches counted so far, for the command line's summary."""

    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    skipped: int = 0  # source lines that make no event (telephony sources, SPEC §9)

    def add(self, outcome: BatchOutcome, skipped: int = 0) -> None:
        """Count one committed batch (and the source lines it skipped)."""
        self.accepted += outcome.accepted
        self.rejected.update(outcome.rejected)
        self.batches += 1
        self.skipped += skipped

    @property
    def total_rejected(self) -> int:
        """All rejections, whatever the reason."""
        return sum(self.rejected.values())


class _RejectionLog:
    """Logs rejections without personal data, at most ``burst`` lines per reason per minute."""

    def __init__(self, burst: int = 10) -> None:
        self._burst = burst
        self._window_start = 0.0
        self._lines: Counter[str] = Counter()
        self._suppressed: Counter[str] = Counter()

    def __call__(self, source: str, rejection: Rejected) -> None:
        now = time.monotonic()
        if now - self._window_start > 60:
            for reason, count in self._suppressed.items():
                log.warning("%d more %s rejections were not logged", count, reason)
            self._window_start = now
            self._lines.clear()
            self._suppressed.clear()
        reason = rejection.reason.name
        if self._lines[reason] >= self._burst:
            self._suppressed[reason] += 1
            return
        self._lines[reason] += 1
        log.warning(
            "rejected %s: event_id=%s type=%s at %s:%d@%d (%s)",
            reason,
            rejection.event_id,
            rejection.type,
            source,
            rejection.partition,
            rejection.position,
            rejection.detail,
        )


# By exact type (every event is one of the wire structs): a set look-up, where an isinstance on
# a union walks its members (issue 17: these loops run once per event of every batch).
_CALL_CLASSES: frozenset[type] = frozenset(get_args(CallEvent))
_TICKET_CLASSES: frozenset[type] = frozenset({TicketOpened, TicketClosed})


def _keys(items: Sequence[Accepted]) -> tuple[set[str], dict[str, int]]:
    """The call ids a batch touches (reviews and surveys name their call), and its tickets
    with the partition they come from."""
    calls: set[str] = set()
    tickets: dict[str, int] = {}
    add_call = calls.add
    for item in items:
        event = item.event
        kind = type(event)
        if kind in _TICKET_CLASSES:
            tickets[cast("TicketOpened | TicketClosed", event).ticket_id] = item.partition
        elif kind is not AgentState:
            add_call(cast("CallEvent | QaReviewed | SurveyAnswered", event).call_id)
    return calls, tickets


def _contact_keys(items: Sequence[Accepted], calls: Mapping[str, CallFact]) -> set[str]:
    """The contacts a batch's call events may touch: each leg alone, the contact it names, and
    the contact its stored leg already belongs to."""
    keys: set[str] = set()
    add = keys.add
    for item in items:
        event = item.event
        if type(event) in _CALL_CLASSES:
            call_id = cast(CallEvent, event).call_id
            add(contact_key(call_id, None))
            contact_id = cast(CallEvent, event).contact_id
            if contact_id is not None:
                add(contact_key(call_id, contact_id))
            stored = calls.get(call_id)
            if stored is not None and stored.contact_id is not None:
                add(stored.contact_key)
    return keys


@dataclass(frozen=True, slots=True)
class _Contacts:
    """What a batch settles about contacts after its writes (see ``Pipeline._contacts``)."""

    keys: set[str]
    before: dict[str, ContactState]
    links: set[str]


class Pipeline:
    """Processes batches of raw records into a store, moving the metrics after each commit."""

    def __init__(
        self,
        store: SqlStore,
        thresholds: FactThresholds,
        metrics: HotlineMetrics | None = None,
        clock: Clock = wall_clock_us,
        max_clock_skew_us: int = DEFAULT_MAX_CLOCK_SKEW_US,
        caller_key: CallerKey | None = None,
        key_retention_us: int | None = None,
        rollups: RollupConfig | None = None,
    ) -> None:
        self.store = store
        self.thresholds = thresholds
        # The interval rollups kept with the facts (issue 17); the default zone and interval
        # when not given.
        # (The fields' defaults, not Settings(): that would read the environment.)
        fields = Settings.model_fields
        self.rollups = rollups or RollupConfig(
            fields["timezone"].default, fields["interval_minutes"].default, thresholds
        )
        if self.rollups.thresholds != thresholds:
            raise ValueError("the rollups must be built with the pipeline's thresholds")
        self._buckets = Buckets(ZoneInfo(self.rollups.timezone), self.rollups.interval_minutes)
        # SPEC §7: the caller key of a raw number (an HMAC), or None without a secret.
        self.caller_key = caller_key
        # SPEC §7: keys of contacts older than this (in event time) are erased, flags kept.
        self.key_retention_us = key_retention_us
        erased = store.meta(KEYS_ERASED_BEFORE) if key_retention_us is not None else None
        self._keys_erased_before = int(erased) if erased is not None else None
        self.metrics = metrics
        self.clock = clock
        self.max_clock_skew_us = max_clock_skew_us
        self._watermark = store.watermark()
        self._log_rejection = _RejectionLog()
        store.ensure_thresholds(thresholds)
        started = time.perf_counter()
        if store.ensure_rollups(self.rollups):
            log.info(
                "rebuilt the store's rollups for time zone %s, %d-minute intervals and the "
                "configured thresholds (%.1f s)",
                self.rollups.timezone,
                self.rollups.interval_minutes,
                time.perf_counter() - started,
            )
        if metrics is not None:
            metrics.queue_labels.adopt(store.queue_labels())
            if self._watermark is not None:
                metrics.track_waiting(
                    store.waiting_calls(self._watermark - 4 * 3600 * US),
                    self._watermark,
                    self.clock(),
                )
                # The state each agent is in now: its latest change before the end of time.
                metrics.track_agents(store.state_changes(_END_OF_TIME, _END_OF_TIME))

    @property
    def watermark(self) -> int | None:
        """The latest event time accepted so far (epoch microseconds)."""
        return self._watermark

    def process(
        self,
        records: Sequence[Record],
        source: str,
        positions: Mapping[int, int],
        *,
        expected: Mapping[int, int | None] | None = None,
        owned: Collection[int] | None = None,
        identities: Mapping[int, str] | None = None,
        rejected: Sequence[Rejected] = (),
        converter_states: Mapping[str, str] | None = None,
    ) -> BatchOutcome:
        """Process one batch, commit it with ``positions`` (partition → next position), and
        return what it counted.

        ``expected`` (partition → position the batch was read from) fences the commit against
        another consumer that took the partition over; ``owned`` are the partitions this
        process owns, whose overdue tickets it settles (None: all); ``identities`` (partition →
        identity of the source up to its position) are committed with the positions.

        Raises :class:`StoreError` when the commit fails; nothing of the batch is then counted
        and the source must re-deliver it from the stored positions.
        """
        decoded, decode_rejected = decode_batch(records, self.clock(), self.max_clock_skew_us)
        # Lines a converter could not read (SPEC §9) are rejections like any other.
        decode_rejected = [*rejected, *decode_rejected]
        started = 0.0
        labels: list[str] | None = None
        attempt = 1
        while True:
            labels = None  # what a rolled-back attempt assigned was rolled back with it
            try:
                with self.store.batch():
                    # Another writer may have moved the watermark or seen these events since
                    # our last batch: everything the fold depends on is read inside the
                    # transaction.
                    self._watermark = self.store.watermark()
                    self.store.check_thresholds(self.thresholds)
                    self.store.check_rollups(self.rollups)
                    fresh, rejected, result, ticket_partitions, rollups, contacts = self._fold(
                        decoded, decode_rejected, owned
                    )
                    if self.metrics is not None:
                        wanted = self.metrics.queue_labels.unlabelled(
                            self.metrics.queue_names(result.deltas, result.calls.values())
                        )
                        if wanted:
                            labels = self.store.assign_queue_labels(
                                wanted, self.metrics.queue_labels.cap
                            )
                    # Measured from the writes to the commit, as before: waiting for another
                    # writer's batch and folding are not the store's commit time.
                    started = time.perf_counter()
                    self.store.write(
                        BatchWrite(
                            calls=list(result.calls.values()),
                            tickets=list(result.tickets.values()),
                            contacts=list(result.contacts.values()),
                            merged_contacts=result.merged,
                            states=result.states,
                            overdue=result.overdue,
                            reviews=result.reviews,
                            surveys=result.surveys,
                            seen={item.event.event_id for item in fresh},
                            rollups=rollups,
                            rejected=rejected,
                            source=source,
                            positions=dict(positions),
                            expected=None if expected is None else dict(expected),
                            watermark=result.watermark,
                            ticket_partitions=ticket_partitions,
                            identities=dict(identities or {}),
                            converter_states=dict(converter_states or {}),
                        )
                    )
                    self._settle_contacts(contacts)
                    self._erase_old_keys(result.watermark)
                break
            except WriterConflictError as exc:
                # Only a writer that does not take the store's lock (an older version during
                # an upgrade) can cause this; nothing was written, so fold the batch again.
                if attempt < CONFLICT_RETRIES:
                    log.warning("%s; retrying the batch (%d of %d)", exc, attempt, CONFLICT_RETRIES)
                    attempt += 1
                    continue
                if self.metrics is not None:
                    self.metrics.commit_failures.inc()
                raise
            except StoreError:
                if self.metrics is not None:
                    self.metrics.commit_failures.inc()
                raise
        if self.metrics is not None:
            self.metrics.commit_seconds.observe(time.perf_counter() - started)

        self._watermark = result.watermark
        reasons = Counter(rejection.reason.name for rejection in rejected)
        for rejection in rejected:
            self._log_rejection(source, rejection)
        outcome = BatchOutcome(len(fresh) - len(result.conflicts), reasons)
        if self.metrics is not None:
            if labels is not None:
                self.metrics.queue_labels.adopt(labels)
            self.metrics.apply(
                ProcessedBatch(
                    result.deltas,
                    reasons,
                    result.calls.values(),
                    result.watermark,
                    self.clock(),
                    result.states,
                )
            )
        return outcome

    def _erase_old_keys(self, watermark: int | None) -> None:
        """Inside the batch: erase the caller keys past retention (SPEC §7), at most once per
        hour of event time (the flags that read them are stored first, see the store)."""
        if self.key_retention_us is None or watermark is None:
            return
        cutoff = watermark - self.key_retention_us
        done = self._keys_erased_before
        if done is not None and cutoff - done < RETENTION_STEP_US:
            return
        stored = self.store.meta(KEYS_ERASED_BEFORE)  # another writer may have done it
        if stored is not None and cutoff - int(stored) < RETENTION_STEP_US:
            self._keys_erased_before = int(stored)
            return
        erased = self.store.erase_caller_keys(cutoff, self.thresholds.complaint_window_us)
        self._keys_erased_before = cutoff
        if erased:
            log.info("erased %d caller keys older than the retention period", erased)

    def _caller_keys(
        self, fresh: Sequence[Accepted]
    ) -> tuple[dict[str, str | None], dict[str, list[int]]]:
        """The caller key of each ``call.offered`` (by event id), and the offer times of the
        stored contacts with those keys in the repeat window before (for the repeat counter)."""
        if self.caller_key is None:
            return {}, {}
        keys: dict[str, str | None] = {}
        times: list[int] = []
        for item in fresh:
            event = item.event
            if isinstance(event, CallOffered):
                keys[event.event_id] = self.caller_key(event.caller)
                times.append(item.ts_us)
        wanted = {key for key in keys.values() if key is not None}
        if not wanted:
            return keys, {}
        window = self.thresholds.repeat_window_us
        return keys, self.store.recent_offers(wanted, min(times) - window, max(times))

    def _fold(
        self,
        decoded: Sequence[Accepted],
        decode_rejected: Sequence[Rejected],
        owned: Collection[int] | None,
    ) -> tuple[list[Accepted], list[Rejected], FoldResult, dict[str, int], Sums, _Contacts]:
        """Dedup and fold a decoded batch on the store's current state (inside its batch), and
        compute what it changes in the rollups."""
        rejected = list(decode_rejected)
        ids = [item.event.event_id for item in decoded]
        unique = set(ids)
        stored = self.store.seen(unique)
        fresh: list[Accepted] = []
        if not stored and len(unique) == len(ids):
            fresh.extend(decoded)  # the usual batch: no duplicate at all
        else:
            batch_ids: set[str] = set()
            for item in decoded:
                event_id = item.event.event_id
                if event_id in stored or event_id in batch_ids:
                    rejected.append(reject_event(item, Reason.duplicate, "event_id already seen"))
                    continue
                batch_ids.add(event_id)
                fresh.append(item)

        call_ids, ticket_partitions = _keys(fresh)
        calls, tickets = self.store.load(call_ids, ticket_partitions)
        horizon = max((item.ts_us for item in fresh), default=self._watermark)
        if self._watermark is not None and horizon is not None:
            horizon = max(horizon, self._watermark)
        overdue = self.store.overdue_tickets(horizon, owned) if horizon is not None else []
        contacts = self.store.load_contacts(_contact_keys(fresh, calls))
        caller_keys, recent = self._caller_keys(fresh)
        result = fold_batch(
            fresh,
            calls,
            tickets,
            self.thresholds,
            self._watermark,
            overdue,
            contacts=contacts,
            caller_keys=caller_keys,
            recent=recent,
        )
        for item, why in result.conflicts:
            rejected.append(reject_event(item, Reason.conflict, why))
        moved = changed_attribution(calls, result.calls)
        dependents = self.store.rollup_dependents(moved) if moved else ([], [])
        rollups = batch_delta(
            calls,
            result.calls,
            result.reviews,
            result.surveys,
            dependents,
            self.thresholds.satisfied_score,
            self._buckets,
        )
        self._add_states(rollups, result.states)
        add_sums(rollups, tickets_delta(tickets, result.tickets, self._buckets))
        return fresh, rejected, result, ticket_partitions, rollups, self._contacts(calls, result)

    def _add_states(self, rollups: Sums, states: Sequence[StateChange]) -> None:
        """Before the batch's writes: add to ``rollups`` what its agent state changes change in
        the agents' state time (each agent's stored changes around them read once)."""
        by_agent: dict[str, list[StateChange]] = {}
        for change in states:
            by_agent.setdefault(change.agent_id, []).append(change)
        for agent, new in by_agent.items():
            stored = self.store.state_window(agent, min(c.ts for c in new), max(c.ts for c in new))
            add_sums(rollups, states_delta(stored, new, self._buckets))

    def _contacts(self, calls: Mapping[str, CallFact], result: FoldResult) -> _Contacts:
        """Before the batch's writes: the stored contacts whose derived facts it may change
        (those of its legs and offers, and the contacts with the same caller keys within W of
        its offers), and the legs whose work orders must follow their contact."""
        touched = set(result.contacts) | set(result.merged)
        links = {ticket.call_id for ticket in result.tickets.values() if ticket.call_id}
        for call_id, leg in result.calls.items():
            touched.add(leg.contact_key)
            old = calls.get(call_id)
            if old is None or old.contact_key != leg.contact_key:
                links.add(call_id)
                if old is not None:
                    touched.add(old.contact_key)
        before = self.store.contact_states(touched)
        offers = [
            (key, moment)
            for key, moment in [
                *((c.caller_key, c.offered_at) for c in result.contacts.values()),
                *((c.caller_key, c.offered_at) for c in before.values()),
            ]
            if key is not None and moment is not None
        ]
        if offers:
            window = self.thresholds.repeat_window_us
            moments = [moment for _, moment in offers]
            before.update(
                self.store.contact_neighbours(
                    {key for key, _ in offers}, min(moments) - window, max(moments) + window
                )
            )
        return _Contacts(touched | before.keys(), before, links)

    def _settle_contacts(self, contacts: _Contacts) -> None:
        """After the batch's writes, in its transaction: derive its contacts' facts again, move
        the rollups by what changed, and point work orders at their legs' contacts."""
        after = self.store.refresh_contacts(contacts.keys, self.thresholds.repeat_window_us)
        self.store.add_rollups(contacts_delta(contacts.before, after, self._buckets))
        if contacts.links:
            self.store.link_tickets(contacts.links)
