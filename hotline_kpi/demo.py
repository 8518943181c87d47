"""``hotline-kpi demo``: the simulator as a source, and the live terminal view of today's KPIs.

A simulated hotline (the same simulator as ``simulate``) runs from local midnight of today,
fast-forwarded by ``--speed`` but never ahead of the wall clock; the composition root feeds it
through the live pipeline (store, ``/metrics``) like any other source, and :class:`KpiView`
shows today's KPIs against their targets, per queue, and under them how many agents are ready,
busy, in wrap-up and not ready now (SPEC §3's agent states). The columns, their heads and their
number formats come from the KPI catalogue.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hotline_kpi.config import Settings, Targets
from hotline_kpi.ingest.sources import Batch, SingleReader
from hotline_kpi.metrics import catalogue
from hotline_kpi.metrics.catalogue import Kpi, Measure, Unit, met
from hotline_kpi.metrics.export import KpiFigures, MeasureCounts, kpi_entries
from hotline_kpi.metrics.fold import US, StateChange
from hotline_kpi.metrics.states import latest_states
from hotline_kpi.pipeline import Totals
from hotline_kpi.simulate import Scenario, Simulator, local_midnight_ms

log = logging.getLogger(__name__)

MS_PER_S = 1000  # the simulator's clock is in epoch milliseconds
US_PER_MS = 1000  # the pipeline's watermark is in epoch microseconds
BATCH_LINES = 5000  # lines handed over at most in one batch
IDLE_S = 0.2  # how long to wait when the simulated hotline has caught up with its clock
# Later than any event time (9999-12-31): each agent's latest change before it is its state now.
END_OF_TIME_US = 253_402_300_800 * US

# The live view's columns, in order; two-line heads keep the table inside 80 columns.
COLUMNS: tuple[Kpi, ...] = (
    catalogue.MANUAL_CONNECTION_RATE,
    catalogue.SERVICE_LEVEL,
    catalogue.ABANDON_RATE,
    catalogue.DROP_RATE,
    catalogue.AVERAGE_SPEED_OF_ANSWER,
    catalogue.ANSWER_ACCURACY,
    catalogue.SATISFACTION_RATE,
    catalogue.TIMELINESS,
)


class SimulatorSource(SingleReader):
    """Batches of simulated event lines whose arrival has come, never ahead of the wall clock.

    The demo keeps no position: a restarted demo continues the day after the store's
    watermark instead (:func:`simulated_today`)."""

    def __init__(
        self,
        simulator: Simulator,
        start_ms: int,
        speed: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._stream = simulator.stream(start_ms, None)
        self._start_ms = start_ms
        self._speed = speed
        self._clock = clock
        self._sleep = sleep
        self._wall0 = clock()
        self._pending: tuple[int, bytes] | None = None
        self._caught_up = False

    @property
    def name(self) -> str:
        """``demo``."""
        return "demo"

    def poll(self) -> Batch:
        """The lines due by now (at most :data:`BATCH_LINES`); the simulator never ends."""
        if self._caught_up:
            self._sleep(IDLE_S)
        wall = self._clock()
        simulated_ms = min(
            self._start_ms + (wall - self._wall0) * self._speed * MS_PER_S, wall * MS_PER_S
        )
        lines: list[bytes] = []
        while len(lines) < BATCH_LINES:
            if self._pending is None:
                self._pending = next(self._stream)
            if self._pending[0] > simulated_ms:
                break
            lines.append(self._pending[1])
            self._pending = None
        self._caught_up = len(lines) < BATCH_LINES
        return Batch([(line, 0, 0) for line in lines])


def simulated_today(
    settings: Settings,
    watermark_us: int | None,
    *,
    seed: int,
    scenario: str,
    calls_per_day: int,
    speed: float,
) -> tuple[date, SimulatorSource]:
    """Today's local date and a source simulating it, continuing after ``watermark_us`` (what
    the store already holds)."""
    zone = settings.zone
    today = datetime.now(zone).date()
    start_ms = local_midnight_ms(today, zone)
    if watermark_us is not None:
        start_ms = max(start_ms, watermark_us // US_PER_MS + 1)
    day_seed = seed * 1_000_003 + start_ms // MS_PER_S
    simulator = Simulator(settings, Scenario.named(scenario, calls_per_day), day_seed)
    return today, SimulatorSource(simulator, start_ms, speed)


def _cell(entry: Kpi, value: float | None, target: float | None) -> Text:
    if value is None:
        return Text("—", style="dim")
    shown = value * 100 if entry.unit is Unit.RATIO else value
    text = f"{shown:.{entry.digits}f}"
    reached = None if target is None else met(entry, value, target)
    colour = "" if reached is None else ("green" if reached else "bold red")
    return Text(text, style=colour)


def _target(entry: Kpi, targets: Targets) -> float | None:
    return None if entry.target is None else float(getattr(targets, entry.target))


def kpi_table(
    overall: MeasureCounts, queues: dict[str, MeasureCounts], settings: Settings, title: str
) -> Table:
    """Today's KPIs per queue and overall, coloured green/red against their targets."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("队列\nqueue", max_width=12, no_wrap=True, overflow="ellipsis")
    table.add_column("排队\ncalls", justify="right", no_wrap=True)
    for entry in COLUMNS:
        table.add_column(entry.short, justify="right", no_wrap=True, min_width=5)
    targets = settings.targets
    for name, counts in [*queues.items(), ("全部 all", overall)]:
        kpis: dict[str, dict[str, Any]] = kpi_entries(counts, targets)
        table.add_row(
            Text(name, style="bold" if counts is overall else ""),
            str(counts[Measure.REQUESTS]),
            *(_cell(entry, kpis[entry.key]["value"], _target(entry, targets)) for entry in COLUMNS),
        )
    return table


# The agent states the view counts, with their labels; logged-out agents are not shown.
AGENT_STATES: tuple[tuple[str, str], ...] = (
    ("ready", "ready"),
    ("busy", "busy"),
    ("wrap_up", "wrap-up"),
    ("not_ready", "not ready"),
)


@dataclass(frozen=True, slots=True)
class AgentsNow:
    """How many agents are in each state now, and the not-ready ones by reason (most first,
    ties by name; ``""`` is no reason)."""

    states: dict[str, int]
    not_ready_reasons: tuple[tuple[str, int], ...]


def agents_now(changes: Iterable[StateChange]) -> AgentsNow:
    """Count each agent once, in its latest state (``changes`` must hold each agent's latest
    ones: the store's ``state_changes(END_OF_TIME_US, END_OF_TIME_US)``)."""
    latest = latest_states(changes).values()
    states = Counter(change.state for change in latest)
    reasons = Counter(change.reason or "" for change in latest if change.state == "not_ready")
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return AgentsNow(dict(states), tuple(ranked))


def agents_line(agents: AgentsNow, width: int) -> Text:
    """``坐席 agents  ready 12  busy 30  wrap-up 4  not ready 7 (lunch 4, break 2, other 1)``:
    as many of the top not-ready reasons as fit in ``width`` cells, the rest as ``other``."""
    line = Text()
    line.append("坐席 agents", style="bold")
    for state, label in AGENT_STATES:
        line.append(f"  {label} ")
        line.append(str(agents.states.get(state, 0)), style="bold")
    reasons = agents.not_ready_reasons
    for shown in range(len(reasons), 0, -1):
        parts = [(reason or "no reason", count) for reason, count in reasons[:shown]]
        rest = sum(count for _, count in reasons[shown:])
        if rest:
            parts.append(("other", rest))
        detail = " (" + ", ".join(f"{reason} {count}" for reason, count in parts) + ")"
        if cell_len(line.plain) + cell_len(detail) <= width:
            line.append(detail, style="dim")
            break
    return line


def live_view(
    overall: MeasureCounts,
    queues: dict[str, MeasureCounts],
    agents: AgentsNow,
    settings: Settings,
    title: str,
    width: int,
) -> Group:
    """The whole live view: the KPI table, the agents now, and how to stop."""
    return Group(
        kpi_table(overall, queues, settings, title),
        agents_line(agents, width),
        Text("Ctrl-C to stop", style="dim"),
    )


class KpiView:
    """Today's KPIs, redrawn at most once a second: a live table with the agents now on the
    terminal, or (headless) one log line."""

    def __init__(
        self,
        figures: KpiFigures,
        settings: Settings,
        day: date,
        url: str,
        terminal: Live | None,
        watermark: Callable[[], int | None],
        agent_states: Callable[[], Iterable[StateChange]],
    ) -> None:
        self.figures = figures
        self.settings = settings
        self.day = day.isoformat()
        self.url = url
        self.terminal = terminal  # None: headless
        self.watermark = watermark
        self.agent_states = agent_states  # each agent's latest changes, read once per redraw
        self._last = 0.0

    def refresh(self, totals: Totals) -> None:
        """Redraw if a second has passed since the last time."""
        now = time.monotonic()
        if now - self._last < 1.0:
            return
        self._last = now
        self.show(totals)

    def show(self, totals: Totals) -> None:
        """Redraw now."""
        zone = self.settings.zone
        watermark = self.watermark()
        clock = "—"
        lo = hi = 0
        if watermark is not None:
            moment = datetime.fromtimestamp(watermark / US, tz=zone)
            clock = moment.strftime("%Y-%m-%d %H:%M:%S")
            midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
            lo = int(midnight.timestamp()) * US
            hi = lo + 24 * 3600 * US
        overall, queues = self.figures.scopes(lo, hi)
        if self.terminal is None:
            kpis = kpi_entries(overall, self.settings.targets)
            value = kpis[catalogue.MANUAL_CONNECTION_RATE.key]["value"]
            log.info(
                "%s: queued %d, manual connection rate %s, accepted %d",
                clock,
                overall[Measure.REQUESTS],
                "—" if value is None else f"{value:.1%}",
                totals.accepted,
            )
            return
        title = (
            f"10000 热线 KPI — {self.day} — clock {clock}\n"
            f"accepted {totals.accepted}, rejected {totals.total_rejected} — {self.url}"
        )
        agents = agents_now(self.agent_states())
        self.terminal.update(
            live_view(overall, queues, agents, self.settings, title, self.terminal.console.width)
        )
