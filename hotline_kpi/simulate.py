"""``hotline-kpi simulate``: a simulated month (or days) of events to a file or to Kafka, with
its ground truth.

The simulation itself lives in :mod:`hotline_kpi.simulation` (traffic model, ground truth,
event writer); this module is the command, and keeps the names its importers use.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import date
from zoneinfo import ZoneInfo

from hotline_kpi.config import KafkaCredentials, Settings
from hotline_kpi.errors import OutputError, UsageError
from hotline_kpi.metrics.months import day_start, month_bounds
from hotline_kpi.simulation.clock import DAY_MS, EPOCH, FOLLOW_UP_MS, LAST_MS, MS, iso
from hotline_kpi.simulation.events import run_id
from hotline_kpi.simulation.records import SimCall
from hotline_kpi.simulation.simulator import Simulator
from hotline_kpi.simulation.traffic import QUEUES, Scenario
from hotline_kpi.simulation.truth import GroundTruth
from hotline_kpi.simulation.writers import produce_events, write_events

__all__ = [
    "QUEUES",
    "GroundTruth",
    "Scenario",
    "SimCall",
    "Simulator",
    "iso",
    "local_midnight_ms",
    "run_id",
    "run_simulate",
    "window",
    "write_events",
]


def local_midnight_ms(day: date, zone: ZoneInfo) -> int:
    """Epoch milliseconds of local midnight starting ``day``."""
    return day_start(day, zone) // MS


def window(args: argparse.Namespace, zone: ZoneInfo) -> tuple[int, int]:
    """The [start, end) epoch ms to simulate from ``--month`` or ``--start``/``--days``."""
    if args.month:
        lo_us, hi_us = month_bounds(args.month, zone)
        start, end = lo_us // MS, hi_us // MS
        asked = f"--month {args.month}"
    else:
        if not args.start:
            raise UsageError("give --month YYYY-MM or --start YYYY-MM-DD")
        try:
            first = date.fromisoformat(args.start)
        except ValueError:
            raise UsageError(f"--start must look like 2026-10-30, got {args.start!r}") from None
        if first < EPOCH.date():
            raise UsageError(f"--start {args.start} is before 1970-01-01: no hotline is that old")
        if not (math.isfinite(args.days) and args.days > 0):
            raise UsageError(f"--days must be a positive number, got {args.days}")
        start = local_midnight_ms(first, zone)
        end = start + round(args.days * DAY_MS)
        asked = f"--start {args.start} with --days {args.days:g}"
    # Reviews, surveys and work orders follow their call by days; their times must fit a date.
    if end + FOLLOW_UP_MS > LAST_MS:
        raise UsageError(
            f"{asked} runs past what a date can hold: end the simulation before December 9999"
        )
    return start, end


def run_simulate(
    settings: Settings, args: argparse.Namespace, credentials: KafkaCredentials | None = None
) -> int:
    """``hotline-kpi simulate``: events to a file (or stdout) or to Kafka, plus ground truth.

    ``credentials`` (Kafka's SASL secrets, resolved by the composition root) are needed only
    with ``--to kafka``.
    """
    if args.calls_per_day <= 0:
        raise UsageError("--calls-per-day must be positive")
    for name in ("duplicates", "bad"):
        if not 0 <= getattr(args, name) < 1:
            raise UsageError(f"--{name} must be a share between 0 and 1")
    start, end = window(args, settings.zone)
    simulator = Simulator(
        settings,
        Scenario.named(args.scenario, args.calls_per_day),
        args.seed,
        duplicates=args.duplicates,
        shuffle=args.shuffle,
        bad=args.bad,
        event_model=getattr(args, "event_model", "v2"),
    )
    stream = simulator.stream(start, end)
    if args.to == "kafka":
        count = produce_events(settings, credentials or KafkaCredentials(), stream)
    elif args.output == "-":
        count = write_events(stream, sys.stdout.buffer)
        sys.stdout.flush()
    else:
        try:
            with open(args.output, "wb") as out:
                count = write_events(stream, out)
        except OSError as exc:
            raise OutputError(f"cannot write {args.output}: {exc.strerror}") from None
    if args.truth:
        try:
            with open(args.truth, "w", encoding="utf-8") as out:
                json.dump(simulator.truth.to_json(), out, indent=1, sort_keys=True)
        except OSError as exc:
            raise OutputError(f"cannot write {args.truth}: {exc.strerror}") from None
    print(f"simulated {count} lines", file=sys.stderr)
    return 0
