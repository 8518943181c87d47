"""The simulated hotline as one stream: the traffic model's records, counted by the ground truth
and written as event lines in arrival order.

Two event models: ``v2`` (the default) writes SPEC §2 as it stands — contacts of several legs,
blocked and left legs, hold and after-call work, agents' states, repeat callers; ``v1`` writes
only the event types of before, byte for byte as it always did, for a pipeline that does not
know the new types yet.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from hotline_kpi.config import Settings
from hotline_kpi.simulation.clock import DAY_MS, HOUR_MS
from hotline_kpi.simulation.events import (
    EventLines,
    IdSequence,
    call_events,
    run_id,
    state_events,
    ticket_events,
)
from hotline_kpi.simulation.traffic import Scenario, Traffic
from hotline_kpi.simulation.truth import GroundTruth

# The thresholds a run depends on, in the ids' digest: a threshold added for KPIs the simulator
# does not model (the repeat windows) must not change the bytes of an unchanged run. Add a key
# here when the simulator starts to read it.
SIMULATED_THRESHOLDS = {"short_abandon_seconds", "service_level_seconds", "satisfied_score"}
EVENT_MODELS = ("v1", "v2")


class Simulator:
    """Generates the hotline's events in time order, and their ground truth (``truth``).

    ``event_model``: ``v2`` (SPEC §2 as it stands) or ``v1`` (the types of before, the same
    bytes as before). ``blocked_are_requests`` overrides the settings' definition for the truth.
    """

    def __init__(
        self,
        settings: Settings,
        scenario: Scenario,
        seed: int,
        *,
        duplicates: float = 0.0,
        shuffle: bool = False,
        bad: float = 0.0,
        event_model: str = "v2",
        blocked_are_requests: bool | None = None,
    ) -> None:
        if event_model not in EVENT_MODELS:
            raise ValueError(f"event_model must be one of {EVENT_MODELS}, got {event_model!r}")
        self.event_model = event_model
        self.zone = settings.zone
        self.scenario = scenario
        self.rng = random.Random(seed)
        self.seed = seed
        self.bad = bad
        thresholds = settings.thresholds
        short_ms = round(thresholds.short_abandon_seconds * 1000)
        service_ms = round(thresholds.service_level_seconds * 1000)
        # The v2 thresholds and definitions are read when the settings have them (SPEC §6).
        window_h = getattr(thresholds, "repeat_window_hours", 24)
        complaint_days = getattr(thresholds, "repeat_complaint_days", 30)
        if blocked_are_requests is None:
            definitions = getattr(settings, "definitions", None)
            blocked_are_requests = bool(getattr(definitions, "blocked_are_requests", True))
        self.truth = GroundTruth(
            self.zone,
            short_ms,
            service_ms,
            thresholds.satisfied_score,
            event_model=event_model,
            blocked_are_requests=blocked_are_requests,
            repeat_window_ms=round(window_h * HOUR_MS),
            complaint_window_ms=round(complaint_days * DAY_MS),
        )
        # Every id this run makes starts with a digest of its whole configuration, set when the
        # window is known (stream): two runs that differ in anything never share an id.
        self._identity: tuple[object, ...] = (
            seed,
            scenario,
            duplicates,
            shuffle,
            bad,
            settings.timezone,
            thresholds.model_dump_json(include=SIMULATED_THRESHOLDS),
        )
        if event_model != "v1":  # a v1 run keeps the ids it always had
            self._identity += (event_model, repr(scenario.v2))
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
            event_model=event_model,
        )

    def stream(self, start_ms: int, end_ms: int | None) -> Iterator[tuple[int, bytes]]:
        """Events of calls offered in [start, end) as (arrival ms, JSON line), in order.

        With ``end_ms`` None the stream never ends (the demo). Events that follow a call
        (reviews days later, work orders closing) are emitted after the last arrival.
        """
        self._ids.run = run_id(self._identity, start_ms, end_ms)
        v2 = self.event_model == "v2"
        if v2:
            self._traffic.start_shifts(start_ms)
        hour_ms = start_ms
        while end_ms is None or hour_ms < end_ms:
            next_hour = (hour_ms // HOUR_MS + 1) * HOUR_MS
            stop = next_hour if end_ms is None else min(next_hour, end_ms)
            for offered_ms in self._traffic.arrivals(hour_ms, stop):
                if v2:
                    self._contact(offered_ms)
                else:
                    self._call(offered_ms)
                if self.bad and self.rng.random() < self.bad:
                    self._lines.bad_line(offered_ms)
            if v2:
                self._traffic.settle_shifts(stop)
                self._states()
            yield from self._lines.arrived_before(stop)
            hour_ms = stop
        if v2 and end_ms is not None:
            self._traffic.end_shifts(end_ms)
            self._states()
        yield from self._lines.arrived_before(None)

    def _call(self, offered_ms: int) -> None:
        call = self._traffic.call(offered_ms)
        self.truth.call(call)
        # A work order's events are written before its call's (the order of the random draws).
        if call.ticket is not None:
            self._lines.entity(ticket_events(call.ticket, self.zone))
        self._lines.entity(call_events(call))

    def _contact(self, offered_ms: int) -> None:
        contact = self._traffic.contact(offered_ms)
        self.truth.contact(contact)
        for leg in contact.legs:
            if leg.ticket is not None:
                self._lines.entity(ticket_events(leg.ticket, self.zone))
            self._lines.entity(call_events(leg))
        self._states()

    def _states(self) -> None:
        """Write the agents' state changes the traffic model has made final."""
        for state in self._traffic.states:
            self.truth.state(state)
            self._lines.entity(state_events(state))
        self._traffic.states.clear()
