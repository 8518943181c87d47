"""hotline-kpi benchmarks (issue 9): one command per measurement, figures and ratios from one run.

    .venv/bin/python bench/run.py replay|kafka|latency|memory|export|profile|all [options]

Each prints the machine it ran on (CPU, cores, RAM, versions, load average) and its figures, and
keeps them as JSON in ``bench/.data/results/``. Data files, stores, the broker's log dir and the
Quix venv live in ``bench/.data/`` (gitignored) and are made once. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import data as datasets  # noqa: E402
from bench.machine import describe, quix_python, render  # noqa: E402

QUIX_REQUIREMENT = "quixstreams>=3.28.1,<3.29"  # the version ENVIRONMENT.md measured


def _ensure_quix(data: Path) -> None:
    python = quix_python(data)
    if python.exists():
        return
    venv = python.parents[1]
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    # Quix pins pydantic<2.14, which would downgrade the project's own venv: it gets its own.
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", QUIX_REQUIREMENT], check=True)


def _month(args: argparse.Namespace) -> tuple[Path, datasets.FileShape]:
    started = time.perf_counter()
    path = datasets.month_file(args.data, args.calls_per_day, args.seed)
    shape = datasets.shape(path)
    print(
        f"data: {path.name}: {shape.events:,} events, {shape.calls:,} calls "
        f"({shape.queued:,} call.queued), at most {shape.max_open_calls:,} calls open at once, "
        f"{shape.mib:.0f} MiB ({time.perf_counter() - started:.0f} s to make or scan)",
        flush=True,
    )
    return path, shape


def _topic(args: argparse.Namespace) -> str:
    return args.topic or f"bench-month-c{args.calls_per_day}-s{args.seed}"


def cmd_replay(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark 1."""
    from bench.replay import replay

    path, shape = _month(args)
    return replay(path, shape, args.data / "bench-replay.db")


def cmd_kafka(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark 2."""
    from bench.broker import BenchBroker
    from bench.kafka_e2e import kafka_e2e

    path, shape = _month(args)
    if not args.no_quix:
        _ensure_quix(args.data)
    with BenchBroker(args.data / "kafka") as broker:
        produced = broker.preload(_topic(args), path, shape.events)
        result = kafka_e2e(args.data, broker, _topic(args), shape, quix=not args.no_quix)
    result["preload_s"] = None if produced is None else round(produced, 1)
    return result


def cmd_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark 3."""
    from bench.broker import BenchBroker
    from bench.latency import latency

    path, _ = _month(args)
    with BenchBroker(args.data / "kafka") as broker:
        return latency(args.data, broker, path, rate=args.rate, seconds=args.latency_seconds)


def cmd_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark 4."""
    from bench.memory import memory

    path, _ = _month(args)
    return memory(args.data, path, args.seed)


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark 5 (makes benchmark 1's store first if it is missing)."""
    from bench.export import export
    from bench.process import HOTLINE, run_child

    path, _ = _month(args)
    base = args.data / "bench-replay.db"
    if not base.exists():
        run_child([HOTLINE, "replay", str(path), "--store", str(base)])
    scales = tuple(int(value) for value in args.export_scales.split(","))
    return export(args.data, base, "2026-10", scales)


def cmd_profile(args: argparse.Namespace) -> dict[str, Any]:
    """pyinstrument profiles of replay (a prefix of the month) and of ``run`` (the topic)."""
    from bench.broker import BenchBroker
    from bench.profiles import profile_replay, profile_run, summarise

    path, shape = _month(args)
    prefix = datasets.prefix_file(path, args.profile_lines)
    result: dict[str, Any] = {"replay_lines": args.profile_lines}
    result["replay"] = summarise(profile_replay(args.data, prefix))
    with BenchBroker(args.data / "kafka") as broker:
        broker.preload(_topic(args), path, shape.events)
        total = sum(broker.end_offsets(_topic(args)).values())
        result["run_messages"] = total
        result["run"] = summarise(profile_run(args.data, broker, _topic(args), total))
    return result


COMMANDS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "replay": cmd_replay,
    "kafka": cmd_kafka,
    "latency": cmd_latency,
    "memory": cmd_memory,
    "export": cmd_export,
    "profile": cmd_profile,
}


def _print(name: str, result: Any, indent: str = "  ") -> None:
    if isinstance(result, dict):
        print(f"{indent}{name}:")
        for key, value in result.items():
            _print(key, value, indent + "  ")
    elif isinstance(result, list) and result and isinstance(result[0], dict):
        print(f"{indent}{name}:")
        for item in result:
            print(f"{indent}  - " + ", ".join(f"{k}={v}" for k, v in item.items()))
    else:
        print(f"{indent}{name}: {result}")


def main() -> int:
    """Parse the command line, describe the machine, run the benchmarks asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=[*COMMANDS, "all", "machine"])
    parser.add_argument("--data", type=Path, default=REPO / "bench" / ".data")
    parser.add_argument(
        "--calls-per-day",
        type=int,
        default=20_000,
        help="simulated month size (20,000/day: about 2.2 million events)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--topic", help="preloaded topic (default bench-month-c<calls>-s<seed>)")
    parser.add_argument("--no-quix", action="store_true", help="skip the Quix Streams peer")
    parser.add_argument("--rate", type=int, default=2000, help="latency: events per second")
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument(
        "--export-scales",
        default="1,5,15",
        help="export: copies of the replayed month (15 x 620k = 9.3M calls)",
    )
    parser.add_argument("--profile-lines", type=int, default=500_000)
    args = parser.parse_args()
    args.data = args.data.resolve()
    args.data.mkdir(parents=True, exist_ok=True)

    machine = describe(args.data)
    print(render(machine), flush=True)
    names = (
        list(COMMANDS)
        if args.benchmark == "all"
        else ([] if args.benchmark == "machine" else [args.benchmark])
    )
    results: dict[str, Any] = {"machine": machine}
    for name in names:
        started = time.perf_counter()
        print(f"\n== {name}", flush=True)
        results[name] = COMMANDS[name](args)
        results[name]["bench_wall_s"] = round(time.perf_counter() - started, 1)
        _print(name, results[name])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.data / "results" / f"{args.benchmark}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
