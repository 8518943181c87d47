"""Reports from the interval rollups (issue 17): the store's measure reads, answered from sums.

:func:`reader_for` gives the exports a :class:`RollupReader` when the store's rollups were built
for the export's configuration (time zone, interval, thresholds): its call, review, survey,
offered, wait, score, factor and staffing reads then cost what the month's buckets cost, not what
its calls cost. A read whose bounds are not bucket starts, and every other read (tickets,
contacts, agent states, the per-call reads), goes to the store itself, so the answer is the same
either way; the tests compare the two.
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from zoneinfo import ZoneInfo

from hotline_kpi.config import Settings
from hotline_kpi.metrics.catalogue import Measure
from hotline_kpi.metrics.fold import StateChange, TicketFact
from hotline_kpi.metrics.records import (
    AgentWork,
    FactorSums,
    GroupCounts,
    Grouping,
    IntervalLoad,
    PeriodCounts,
    PeriodTicket,
    QueuedCall,
    SlotSums,
    TicketCounts,
    WaitBucket,
)
from hotline_kpi.metrics.rollups import (
    ANSWERED_KEYED,
    OFFERED,
    UNFOLLOWED,
    WAIT_EDGES,
    Buckets,
    Grain,
    RollupConfig,
    state_names,
    wait_measure,
)
from hotline_kpi.metrics.states import AgentTime
from hotline_kpi.metrics.store import CALL_MEASURES, StoreReader

log = logging.getLogger(__name__)

_REVIEW_MEASURES = (Measure.QA_REVIEWS, Measure.QA_ACCURATE)
_SURVEY_MEASURES = (Measure.SURVEYS, Measure.SATISFIED, Measure.SCORE_SUM)
# The measure that every group of each kind of record has at least once.
_PRESENT = {
    CALL_MEASURES: Measure.REQUESTS,
    _REVIEW_MEASURES: Measure.QA_REVIEWS,
    _SURVEY_MEASURES: Measure.SURVEYS,
}
_US = 1_000_000
_END_OF_TIME = (1 << 63) - 1
_WAIT_EDGES_US = [edge * _US for edge in WAIT_EDGES]

Row = tuple[int, str, str, str, int]  # bucket, queue, agent, measure, value


def reader_for(store: StoreReader, settings: Settings) -> StoreReader:
    """``store`` read through its rollups when they fit ``settings``, else ``store`` itself."""
    if isinstance(store, RollupReader):
        return store
    config = rollup_config(settings)
    if store.rollups_built_for(config):
        return RollupReader(store, config)
    log.info(
        "the store's rollups were not built for this time zone, interval and thresholds: "
        "reading every fact (slower); a writer started with this configuration rebuilds them"
    )
    return store


def rollup_config(settings: Settings) -> RollupConfig:
    """The rollups a configuration reads (the same as ``pipeline.rollup_config_of``)."""
    from hotline_kpi.pipeline import rollup_config_of

    return rollup_config_of(settings)


class RollupReader:
    """A :class:`StoreReader` whose measure reads come from the rollups built for ``config``."""

    def __init__(self, store: StoreReader, config: RollupConfig) -> None:
        self.store = store
        self.config = config
        self.buckets = Buckets(ZoneInfo(config.timezone), config.interval_minutes)

    # -- what the rollups answer ----------------------------------------------------------------

    def _rows(
        self,
        grain: Grain,
        lo: int,
        hi: int,
        queue: str | None = None,
        measures: Sequence[Measure] | None = None,
    ) -> list[Row]:
        # Read every time: the store may be written between two reads (the demo's view). Only
        # the measures asked for: call, review and survey counts read a scope's rows once each.
        names = None if measures is None else [measure.value for measure in measures]
        return self.store.rollup_rows(grain, lo, hi, queue, names)

    def _cut(self, *edges: int) -> bool:
        """Whether every edge starts an interval (sums of buckets then cut exactly there)."""
        return all(self.buckets.is_edge(edge) for edge in edges)

    def _days(self, *edges: int) -> bool:
        return all(self.buckets.day(edge) == edge for edge in edges)

    def _groups(
        self, rows: Iterable[Row], by: Grouping, measures: tuple[Measure, ...]
    ) -> list[GroupCounts]:
        wanted = {measure.value: measure for measure in measures}
        found: dict[str, dict[Measure, int]] = {}
        for _, queue, agent, name, value in rows:
            measure = wanted.get(name)
            if measure is not None:
                counts = found.setdefault(queue if by == "queue" else agent, {})
                counts[measure] = counts.get(measure, 0) + value
        present = _PRESENT[measures]
        return [
            GroupCounts(group or None, {measure: counts.get(measure, 0) for measure in measures})
            for group, counts in found.items()
            if counts.get(present, 0)
        ]

    def _group_rows(
        self, lo: int, hi: int, by: Grouping, measures: tuple[Measure, ...]
    ) -> list[Row] | None:
        if by == "queue":
            return self._rows(Grain.INTERVAL, lo, hi, None, measures) if self._cut(lo, hi) else None
        return self._rows(Grain.DAY, lo, hi, None, measures) if self._days(lo, hi) else None

    def call_counts(self, lo: int, hi: int, by: Grouping) -> list[GroupCounts]:
        rows = self._group_rows(lo, hi, by, CALL_MEASURES)
        if rows is None:
            return self.store.call_counts(lo, hi, by)
        return self._groups(rows, by, CALL_MEASURES)

    def review_counts(self, lo: int, hi: int, by: Grouping) -> list[GroupCounts]:
        rows = self._group_rows(lo, hi, by, _REVIEW_MEASURES)
        if rows is None:
            return self.store.review_counts(lo, hi, by)
        return self._groups(rows, by, _REVIEW_MEASURES)

    def survey_counts(
        self, lo: int, hi: int, by: Grouping, satisfied_score: int
    ) -> list[GroupCounts]:
        rows = self._group_rows(lo, hi, by, _SURVEY_MEASURES)
        if rows is None or satisfied_score != self.config.thresholds.satisfied_score:
            return self.store.survey_counts(lo, hi, by, satisfied_score)
        return self._groups(rows, by, _SURVEY_MEASURES)

    def offered_count(self, lo: int, hi: int) -> int:
        if not self._cut(lo, hi):
            return self.store.offered_count(lo, hi)
        return sum(value for _, _, _, name, value in self._rows(Grain.INTERVAL, lo, hi)
                   if name == OFFERED)  # fmt: skip

    def wait_buckets(self, lo: int, hi: int, edges_us: Sequence[int]) -> list[WaitBucket]:
        if list(edges_us) != _WAIT_EDGES_US or not self._days(lo, hi):
            return self.store.wait_buckets(lo, hi, edges_us)
        names = {
            wait_measure(outcome, index): (outcome, index)
            for outcome in ("answered", "abandoned")
            for index in range(len(WAIT_EDGES))
        }
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for _, _, _, name, value in self._rows(Grain.DAY, lo, hi):
            found = names.get(name)
            if found is not None:
                counts[found[1]][0 if found[0] == "answered" else 1] += value
        return [WaitBucket(index, *pair) for index, pair in sorted(counts.items()) if any(pair)]

    def score_counts(self, lo: int, hi: int) -> dict[int, int]:
        if not self._days(lo, hi):
            return self.store.score_counts(lo, hi)
        counts: dict[int, int] = defaultdict(int)
        for _, _, _, name, value in self._rows(Grain.DAY, lo, hi):
            if name.startswith("score:"):
                counts[int(name[6:])] += value
        return {score: count for score, count in counts.items() if count}

    def factor_sums(self, lo: int, hi: int) -> dict[str, FactorSums]:
        if not self._days(lo, hi):
            return self.store.factor_sums(lo, hi)
        stats: dict[str, dict[str, int]] = defaultdict(dict)
        for _, _, _, name, value in self._rows(Grain.DAY, lo, hi):
            if name.startswith("factor:"):
                stat, factor = name[7:].split(":", 1)
                stats[factor][stat] = stats[factor].get(stat, 0) + value
        stat_names = ("n", "x", "xx", "xy", "y", "yy")
        return {
            factor: FactorSums(*(found.get(stat, 0) for stat in stat_names))
            for factor, found in stats.items()
            if found.get("n", 0)
        }

    def period_counts(
        self,
        edges_us: Sequence[int],
        by: Grouping,
        satisfied_score: int,
        queue: str | None = None,
    ) -> list[PeriodCounts]:
        edges = [int(edge) for edge in edges_us]
        if len(edges) < 2:
            return []
        cut = self._cut(*edges) if by == "queue" else self._days(*edges)
        if not cut or satisfied_score != self.config.thresholds.satisfied_score:
            return self.store.period_counts(edges_us, by, satisfied_score, queue)
        grain = Grain.INTERVAL if by == "queue" else Grain.DAY
        rows = self._rows(grain, edges[0], edges[-1], queue)
        by_period: dict[int, list[Row]] = defaultdict(list)
        for row in rows:
            by_period[bisect.bisect_right(edges, row[0]) - 1].append(row)
        found = []
        for period, period_rows in sorted(by_period.items()):
            for measures in (CALL_MEASURES, _REVIEW_MEASURES, _SURVEY_MEASURES):
                for group in self._groups(period_rows, by, measures):
                    found.append(PeriodCounts(period, group.group, group.counts))
        return found

    def period_offered(self, edges_us: Sequence[int], queue: str | None = None) -> dict[int, int]:
        edges = [int(edge) for edge in edges_us]
        if len(edges) < 2:
            return {}
        if not self._cut(*edges):
            return self.store.period_offered(edges_us, queue)
        counts: dict[int, int] = defaultdict(int)
        for bucket, _, _, name, value in self._rows(Grain.INTERVAL, edges[0], edges[-1], queue):
            if name == OFFERED:
                counts[bisect.bisect_right(edges, bucket) - 1] += value
        return {period: count for period, count in counts.items() if count}

    def slot_sums(self, lo: int, hi: int, timezone: str, interval_minutes: int) -> SlotSums:
        config = self.config
        if (
            (timezone, interval_minutes) != (config.timezone, config.interval_minutes)
            or not self._cut(lo, hi)
        ):  # fmt: skip
            return self.store.slot_sums(lo, hi, timezone, interval_minutes)
        return SlotSums(timezone, interval_minutes, *self.store.rollup_slot_rows(lo, hi))

    # -- what the store answers -----------------------------------------------------------------

    def watermark(self) -> int | None:
        return self.store.watermark()

    def tickets_due_in(self, lo: int, hi: int) -> list[TicketFact]:
        return self.store.tickets_due_in(lo, hi)

    def queued_calls(self, lo: int, hi: int, queue: str | None = None) -> list[QueuedCall]:
        return self.store.queued_calls(lo, hi, queue)

    def period_tickets(
        self, edges_us: Sequence[int], queue: str | None = None
    ) -> list[PeriodTicket]:
        return self.store.period_tickets(edges_us, queue)

    def open_tickets_due(
        self, lo: int, hi: int, queue: str | None = None
    ) -> list[tuple[int, str | None, str | None]]:
        return self.store.open_tickets_due(lo, hi, queue)

    def ticket_counts(
        self, edges_us: Sequence[int], now: int | None, queue: str | None = None
    ) -> list[TicketCounts]:
        """Closed work orders from the rollups; open ones, settled late once "now" is past
        their ``due``, from the store (only those still open)."""
        edges = [int(edge) for edge in edges_us]
        if len(edges) < 2:
            return []
        if not self._cut(*edges):
            return self.store.ticket_counts(edges_us, now, queue)
        found: dict[tuple[int, str | None, str], list[int]] = defaultdict(lambda: [0, 0])
        for bucket, group, kind, name, value in self._rows(
            Grain.TICKET, edges[0], edges[-1], queue
        ):
            counts = found[(bisect.bisect_right(edges, bucket) - 1, group or None, kind)]
            counts[0 if name == Measure.TICKETS_SETTLED.value else 1] += value
        if now is not None:
            for due, named, of_kind in self.store.open_tickets_due(
                edges[0], min(edges[-1], now), queue
            ):
                period = bisect.bisect_right(edges, due) - 1
                found[(period, named or None, of_kind or "unknown")][0] += 1
        return [TicketCounts(*key, *counts) for key, counts in found.items() if counts[0]]

    def period_contacts(
        self,
        edges_us: Sequence[int],
        now: int | None,
        window_us: int,
        complaint_window_us: int,
        queue: str | None = None,
    ) -> list[PeriodCounts]:
        edges = [int(edge) for edge in edges_us]
        if len(edges) < 2:
            return []
        if not self._cut(*edges) or window_us != self.config.thresholds.repeat_window_us:
            return self.store.period_contacts(edges_us, now, window_us, complaint_window_us, queue)
        cutoff = now - window_us if now is not None else edges[0] - 1
        contacts: dict[tuple[int, str], int] = defaultdict(int)
        keyed: dict[int, dict[Measure, int]] = defaultdict(lambda: defaultdict(int))
        for bucket, group, _, name, value in self._rows(Grain.INTERVAL, edges[0], edges[-1], queue):
            period = bisect.bisect_right(edges, bucket) - 1
            if name == Measure.CONTACTS.value:
                contacts[(period, group)] += value
            elif name in (Measure.CONTACTS_KEYED.value, Measure.REPEAT_CONTACTS.value):
                keyed[period][Measure(name)] += value
            elif name in (ANSWERED_KEYED, UNFOLLOWED) and bucket <= cutoff:
                # Resolution is settled for contacts offered at most "now" − W: all of an
                # interval that ends by then, none of one that starts after, and the one
                # interval it cuts counted from the contacts themselves.
                end = self.buckets.end(bucket)
                if end - 1 <= cutoff:
                    measure = Measure.RESOLVABLE if name == ANSWERED_KEYED else Measure.RESOLVED
                    keyed[period][measure] += value
                elif name == ANSWERED_KEYED:
                    resolvable, resolved = self.store.resolvable_contacts(bucket, end, cutoff)
                    keyed[period][Measure.RESOLVABLE] += resolvable
                    keyed[period][Measure.RESOLVED] += resolved
        found = [
            PeriodCounts(period, group or None, {Measure.CONTACTS: count})
            for (period, group), count in sorted(contacts.items())
            if count
        ]
        if queue is not None:
            return found
        measures = (
            Measure.CONTACTS_KEYED,
            Measure.REPEAT_CONTACTS,
            Measure.RESOLVABLE,
            Measure.RESOLVED,
        )
        found.extend(
            PeriodCounts(period, None, {measure: counts.get(measure, 0) for measure in measures})
            for period, counts in sorted(keyed.items())
            if counts.get(Measure.CONTACTS_KEYED, 0)
        )
        found.extend(self.store.period_complaints(edges_us, complaint_window_us))
        return found

    def period_complaints(
        self, edges_us: Sequence[int], complaint_window_us: int
    ) -> list[PeriodCounts]:
        return self.store.period_complaints(edges_us, complaint_window_us)

    def resolvable_contacts(self, lo: int, hi: int, cutoff: int) -> tuple[int, int]:
        return self.store.resolvable_contacts(lo, hi, cutoff)

    def state_changes(self, lo: int, hi: int) -> list[StateChange]:
        return self.store.state_changes(lo, hi)

    def latest_state_changes(self, before: int) -> list[StateChange]:
        return self.store.latest_state_changes(before)

    def state_time(
        self, edges_us: Sequence[int], now: int | None
    ) -> dict[tuple[int, str], AgentTime]:
        """The closed spans between changes from the rollups; each agent's last change, which
        runs until ``now``, from the store (one row per agent)."""
        edges = [int(edge) for edge in edges_us]
        if now is None or len(edges) < 2:
            return {}
        if not self._cut(*edges):
            return self.store.state_time(edges_us, now)
        found: dict[tuple[int, str], AgentTime] = {}
        for bucket, _, agent, name, value in self._rows(Grain.STATE, edges[0], edges[-1]):
            seconds = found.setdefault((bisect.bisect_right(edges, bucket) - 1, agent), {})
            seconds[name] = seconds.get(name, 0) + value
        latest: dict[str, StateChange] = {}
        for change in self.store.latest_state_changes(_END_OF_TIME):
            held = latest.get(change.agent_id)
            if held is None or (change.ts, change.event_id) > (held.ts, held.event_id):
                latest[change.agent_id] = change
        for change in latest.values():
            start, end = max(change.ts, edges[0]), min(now, edges[-1])
            period = bisect.bisect_right(edges, start) - 1
            while start < end:
                stop = min(end, edges[period + 1])
                seconds = found.setdefault((period, change.agent_id), {})
                for name in state_names(change):
                    seconds[name] = seconds.get(name, 0) + stop - start
                start, period = stop, period + 1
        return found

    def rollups_built_for(self, config: RollupConfig) -> bool:
        return self.store.rollups_built_for(config)

    def rollup_rows(
        self,
        grain: int,
        lo: int,
        hi: int,
        queue: str | None = None,
        measures: Collection[str] | None = None,
    ) -> list[tuple[int, str, str, str, int]]:
        return self.store.rollup_rows(grain, lo, hi, queue, measures)

    def rollup_slot_rows(
        self, lo: int, hi: int
    ) -> tuple[tuple[IntervalLoad, ...], tuple[AgentWork, ...]]:
        return self.store.rollup_slot_rows(lo, hi)
