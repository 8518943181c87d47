"""The simulated hotline as one stream: the traffic model's records, counted by the ground truth
and written as event lines in arrival order."""

from __future__ import annotations

import random
from collections.abc import Iterator

from hotline_kpi.config import Settings
from hotline_kpi.simulation.clock import HOUR_MS
from hotline_kpi.simulation.events import EventLines, IdSequence, call_events, run_id, ticket_events
from hotline_kpi.simulation.traffic import Scenario, Traffic
from hotline_kpi.simulation.truth import GroundTruth

# The thresholds a run depends on, in the ids' digest: a threshold added for KPIs the simulator
# does not model (the repeat windows) must not change the bytes of an unchanged run. Add a key
# here when the simulator starts to read it.
SIMULATED_THRESHOLDS = {"short_abandon_seconds", "service_level_seconds", "satisfied_score"}


class Simulator:
    """Generates the hotline's events in time order, and their ground truth (``truth``)."""

    def __init__(
        self,
        settings: Settings,
        scenario: Scenario,
        seed: int,
        *,
        duplicates: float = 0.0,
        shuffle: bool = False,
        bad: float = 0.0,
    ) -> None:
        self.zone = settings.zone
        self.scenario = scenario
        self.rng = random.Random(seed)
        self.seed = seed
        self.bad = bad
        thresholds = settings.thresholds
        short_ms = round(thresholds.short_abandon_seconds * 1000)
        service_ms = round(thresholds.service_level_seconds * 1000)
        self.truth = GroundTruth(self.zone, short_ms, service_ms, thresholds.satisfied_score)
        # Every id this run makes starts with a digest of its whole configuration, set when the
        # window is known (stream): two runs that differ in anything never share an id.
        self._identity = (
            seed,
            scenario,
            duplicates,
            shuffle,
            bad,
            settings.timezone,
            thresholds.model_dump_json(include=SIMULATED_THRESHOLDS),
        )
        self._ids = IdSequence(f"{seed:x}")
        self._lines = EventLines(
            self.rng, self.zone, self._ids, self.truth, duplicates=duplicates, shuffle=shuffle
        )
        self._traffic = Traffic(
            scenario,
            self.zone,
            self.rng,
            short_abandon_ms=short_ms,
            service_level_ms=service_ms,
            new_id=self._ids.new,
        )

    def stream(self, start_ms: int, end_ms: int | None) -> Iterator[tuple[int, bytes]]:
        """Events of calls offered in [start, end) as (arrival ms, JSON line), in order.

        With ``end_ms`` None the stream never ends (the demo). Events that follow a call
        (reviews days later, work orders closing) are emitted after the last arrival.
        """
        self._ids.run = run_id(self._identity, start_ms, end_ms)
        hour_ms = start_ms
        while end_ms is None or hour_ms < end_ms:
            next_hour = (hour_ms // HOUR_MS + 1) * HOUR_MS
            stop = next_hour if end_ms is None else min(next_hour, end_ms)
            for offered_ms in self._traffic.arrivals(hour_ms, stop):
                self._call(offered_ms)
                if self.bad and self.rng.random() < self.bad:
                    self._lines.bad_line(offered_ms)
            yield from self._lines.arrived_before(stop)
            hour_ms = stop
        yield from self._lines.arrived_before(None)

    def _call(self, offered_ms: int) -> None:
        call = self._traffic.call(offered_ms)
        self.truth.call(call)
        # A work order's events are written before its call's (the order of the random draws).
        if call.ticket is not None:
            self._lines.entity(ticket_events(call.ticket, self.zone))
        self._lines.entity(call_events(call))
