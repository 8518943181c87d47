"""Agents' states (v2): one agent's ``agent.state`` changes, written from the traffic model's
own staffing, calls and breaks, so that an agent only ever answers while logged in and ready.

The traffic model says when an agent is on duty (its queue's staff for the local hour), when it
talks (busy), does after-call work (wrap_up) and takes a break (not_ready); between those, an
agent is ``ready`` while on duty and ``logged_out`` otherwise. A shift that ends during a call
ends when the agent is free. Changes are written strictly later than the one before (one that
lands on the same millisecond replaces it), so the ground truth never has to order ties.
"""

from __future__ import annotations

from collections.abc import Callable

from hotline_kpi.simulation.clock import HOUR_MS
from hotline_kpi.simulation.records import SimState


class AgentTimeline:
    """The state changes of one agent, in time order, each one written once it is final.

    ``on_duty(ms)`` says whether the staffing puts the agent on duty at ``ms``; ``written``
    receives each final change.
    """

    def __init__(
        self,
        agent: str,
        on_duty: Callable[[int], bool],
        written: Callable[[SimState], None],
        start_ms: int,
    ) -> None:
        self.agent = agent
        self._on_duty = on_duty
        self._written = written
        self.cursor_ms = start_ms  # states are decided up to here
        self._last: SimState | None = None  # the last change written
        self._pending: SimState | None = None  # the latest change, still replaceable

    def _set(self, ts_ms: int, state: str, reason: str | None = None) -> None:
        pending = self._pending
        if pending is not None and pending.ts_ms == ts_ms:
            self._pending = None  # the same instant: the later decision is the state
            pending = None
        current = pending or self._last
        if current is None and state == "logged_out":
            return  # an agent's time starts at its first login
        if current is not None and current.state == state and current.reason == reason:
            return
        if pending is not None:
            self._flush()
        self._pending = SimState(self.agent, ts_ms, state, reason)

    def _flush(self) -> None:
        if self._pending is not None:
            self._written(self._pending)
            self._last = self._pending
            self._pending = None

    def _duty_state(self, ms: int) -> str:
        return "ready" if self._on_duty(ms) else "logged_out"

    def idle(self, until_ms: int) -> None:
        """Ready or logged out, as the staffing says, from the cursor up to ``until_ms``."""
        if until_ms < self.cursor_ms:
            return  # still on a call or a break
        ms = self.cursor_ms
        self._set(ms, self._duty_state(ms))
        boundary = (ms // HOUR_MS + 1) * HOUR_MS
        while boundary < until_ms:
            self._set(boundary, self._duty_state(boundary))
            boundary += HOUR_MS
        self.cursor_ms = until_ms

    def call(self, start_ms: int, ended_ms: int, free_ms: int) -> None:
        """Busy from ``start_ms``, after-call work from ``ended_ms`` until ``free_ms``."""
        self.idle(start_ms)
        self._set(start_ms, "busy")
        if free_ms > ended_ms:
            self._set(ended_ms, "wrap_up")
        self.cursor_ms = free_ms

    def away(self, reason: str, until_ms: int) -> None:
        """Not ready (``reason``) from the cursor (the end of a call's work) until ``until_ms``."""
        self._set(self.cursor_ms, "not_ready", reason)
        self.cursor_ms = until_ms

    def settle(self, stop_ms: int) -> None:
        """Everything before ``stop_ms`` is decided: write it (no call can start before it)."""
        self.idle(stop_ms)
        if self._pending is not None and self._pending.ts_ms < stop_ms:
            self._flush()

    def log_out(self, end_ms: int) -> None:
        """The simulation ends: the agent logs out at ``end_ms`` or once free, whichever later."""
        at = max(end_ms, self.cursor_ms)
        self.idle(at)
        self._set(at, "logged_out")
        self._flush()
