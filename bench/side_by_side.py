"""Replay one JSONL file with several checkouts of the project, and ``json.loads`` it, in one run.

    .venv/bin/python bench/side_by_side.py FILE NAME=CHECKOUT [NAME=CHECKOUT ...] [--rounds N]

Each round replays the file once with each checkout's ``hotline-kpi`` (its own ``.venv``) into a
new SQLite store, as a child process from exec to exit, then reads the file line by line with
``json.loads``. On a shared, noisy machine only ratios of the same round mean something: the
summary gives each checkout's median events/s, CPU µs per event, and median ratio to the
``json.loads`` pass of its round, with and without start-up (the replay of an empty file, timed
in the same round: it weighs more in a small file than in the 2.2 M events of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def json_rate(path: Path) -> float:
    """Lines per second of reading ``path`` line by line and ``json.loads``-ing each line."""
    started = time.perf_counter()
    count = 0
    with path.open("rb") as stream:
        for line in stream:
            json.loads(line)
            count += 1
    return count / (time.perf_counter() - started)


def replay(checkout: Path, path: Path, store: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds and the summary line (with the child's peak RSS: this
    script stays small, so ``ru_maxrss`` is the child's own) of one replay into a new store."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [str(checkout / ".venv/bin/hotline-kpi"), "replay", str(path), "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdout is not None
    out = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{checkout}: replay failed ({status}): {out}")
    return wall, usage.ru_utime + usage.ru_stime, f"{out.strip()}; {usage.ru_maxrss / 1024:.0f} MB"


def main() -> None:
    """Alternate the checkouts' replays and json.loads passes; print each round and a summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("checkouts", nargs="+", help="NAME=PATH of a checkout with its .venv")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    checkouts = dict(item.split("=", 1) for item in args.checkouts)
    with args.file.open("rb") as stream:
        events = sum(1 for line in stream if line.strip())
    ratios: dict[str, list[float]] = {name: [] for name in checkouts}
    rates: dict[str, list[float]] = {name: [] for name in checkouts}
    cpus: dict[str, list[float]] = {name: [] for name in checkouts}
    net: dict[str, list[float]] = {name: [] for name in checkouts}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            reference = json_rate(args.file)
            loads.append(reference)
            empty = Path(tmp) / "empty.jsonl"
            empty.write_bytes(b"")
            for name, checkout in checkouts.items():
                store = Path(tmp) / f"{name}-{round_}.db"
                startup, _, _ = replay(Path(checkout), empty, Path(tmp) / f"{name}-{round_}-0.db")
                wall, cpu, summary = replay(Path(checkout), args.file, store)
                net[name].append(events / (wall - startup) / reference)
                rates[name].append(events / wall)
                cpus[name].append(cpu / events * 1e6)
                ratios[name].append(events / wall / reference)
                print(
                    f"round {round_} {name:>8}: {events / wall:9,.0f} ev/s  {wall:6.2f} s wall  "
                    f"{cpu / events * 1e6:5.2f} µs CPU/ev  ratio {events / wall / reference:.3f}"
                    f"  start-up {startup:.2f} s  ({summary})",
                    flush=True,
                )
            print(f"round {round_} json.loads: {reference:9,.0f} lines/s", flush=True)
    print(f"\n{events} events, json.loads median {statistics.median(loads):,.0f} lines/s")
    for name in checkouts:
        print(
            f"{name:>8}: median {statistics.median(rates[name]):9,.0f} ev/s, "
            f"{statistics.median(cpus[name]):5.2f} µs CPU/ev, "
            f"ratio to json.loads median {statistics.median(ratios[name]):.3f} "
            f"(all: {', '.join(f'{r:.3f}' for r in ratios[name])}), "
            f"without start-up {statistics.median(net[name]):.3f}"
        )


if __name__ == "__main__":
    main()
