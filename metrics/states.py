"""Agent state time (SPEC §3): the timeline of each agent, cut into periods. Pure, no I/O.

Each ``agent.state`` holds from its ``ts`` until the same agent's next change by ``ts`` (equal
timestamps: the greater ``event_id``, compared by code point, is the later), and the last one
until "now". A period starts in the state that held at its start, so a shift that crosses
midnight or a month boundary is split there. Time before an agent's first state is not counted.
The store keeps the changes as they came; this module orders them when reading, so the seconds
do not depend on the order the events arrived in.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from hotline_kpi.metrics.catalogue import Measure
from hotline_kpi.metrics.fold import StateChange

STATES: tuple[str, ...] = ("logged_out", "ready", "busy", "wrap_up", "not_ready")
STAFFED = frozenset({"ready", "busy", "wrap_up"})  # taking or able to take calls
OCCUPIED = frozenset({"busy", "wrap_up"})

AgentTime = dict[str, int]
"""Microseconds of one agent in one period: by state, and ``not_ready:<reason>`` per reason
(``not_ready:`` without one)."""


def timeline(changes: Iterable[StateChange]) -> dict[str, list[StateChange]]:
    """Each agent's changes in the order SPEC §3 gives them: by ``ts``, ties by event id."""
    agents: dict[str, list[StateChange]] = defaultdict(list)
    for change in changes:
        agents[change.agent_id].append(change)
    for own in agents.values():
        own.sort(key=lambda change: (change.ts, change.event_id))
    return dict(agents)


def state_time(
    changes: Iterable[StateChange], edges_us: Sequence[int], now: int | None
) -> dict[tuple[int, str], AgentTime]:
    """Microseconds per (period, agent) and state, for periods [edges[i], edges[i + 1]).

    ``changes`` must include, for each agent, the changes before ``edges[0]`` that decide the
    state holding there (the store's ``state_changes`` gives them). Nothing runs past ``now``
    (the store's watermark); without one there is no time at all.
    """
    found: dict[tuple[int, str], AgentTime] = {}
    if now is None or len(edges_us) < 2:
        return found
    lo, hi = edges_us[0], edges_us[-1]
    for agent, own in timeline(changes).items():
        for index, change in enumerate(own):
            start = max(change.ts, lo)
            end = min(own[index + 1].ts if index + 1 < len(own) else now, now, hi)
            if end <= start:
                continue
            key = change.state
            reason_key = f"not_ready:{change.reason or ''}" if key == "not_ready" else None
            period = bisect_right(edges_us, start) - 1
            while start < end:
                stop = min(end, edges_us[period + 1])
                seconds = found.setdefault((period, agent), {})
                seconds[key] = seconds.get(key, 0) + stop - start
                if reason_key is not None:
                    seconds[reason_key] = seconds.get(reason_key, 0) + stop - start
                start, period = stop, period + 1
    return found


def state_measures(seconds: Mapping[str, int]) -> dict[Measure, int]:
    """The catalogue's state measures (occupancy, utilisation, not-ready share) of one agent's
    (or many agents' pooled) state microseconds."""
    staffed = sum(seconds.get(state, 0) for state in STAFFED)
    occupied = sum(seconds.get(state, 0) for state in OCCUPIED)
    logged_in = sum(seconds.get(state, 0) for state in STATES if state != "logged_out")
    return {
        Measure.STAFFED_US: staffed,
        Measure.OCCUPIED_US: occupied,
        Measure.LOGGED_IN_US: logged_in,
        Measure.NOT_READY_US: seconds.get("not_ready", 0),
    }


def latest_states(changes: Iterable[StateChange]) -> dict[str, StateChange]:
    """Each agent's latest change (its state now)."""
    return {agent: own[-1] for agent, own in timeline(changes).items() if own}


def staffed_at(changes: Iterable[StateChange], moments: Sequence[int]) -> list[int]:
    """How many agents were staffed (ready, busy or wrap-up) at each of ``moments`` (sorted)."""
    counts = [0] * len(moments)
    for own in timeline(changes).values():
        times = [change.ts for change in own]
        for index, moment in enumerate(moments):
            position = bisect_right(times, moment) - 1
            if position >= 0 and own[position].state in STAFFED:
                counts[index] += 1
    return counts
