"""The peer: per-queue 15-minute counts of agent requests (``call.queued``) with Quix Streams.

Run with the interpreter of ``bench/.data/quix-venv`` (Quix Streams pins pydantic<2.14, so it
does not share the project's venv). Event time comes from each event's ``ts``; ``group_by``
re-keys by queue through a repartition topic, which interleaves the six source partitions in
chunks of about a megabyte each, so event time jumps back and forth by up to a day: with the
default grace of 0 (or one hour) Quix drops most events as late (ENVIRONMENT.md). The grace is
therefore 7 days; events still dropped as late are counted and reported. Stops once every
input message and every re-keyed ``call.queued`` message has been processed, then prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from quixstreams import Application


def _event_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    try:
        return int(datetime.fromisoformat(value["ts"].replace("Z", "+00:00")).timestamp() * 1000)
    except (KeyError, TypeError, ValueError, AttributeError):
        return timestamp


def main() -> None:
    """Count, report, exit."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expected", type=int, required=True, help="messages in the topic")
    parser.add_argument("--queued", type=int, required=True, help="call.queued among them")
    parser.add_argument("--guarantee", choices=["at-least-once", "exactly-once"], required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--idle-timeout", type=float, default=30.0)
    args = parser.parse_args()
    logging.getLogger("quixstreams").setLevel(logging.WARNING)

    started = time.perf_counter()
    app = Application(
        broker_address=args.bootstrap_servers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee=args.guarantee,
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    seen = {"input": 0, "queued": 0, "late": 0, "windows": 0, "window_sum": 0}
    moments: dict[str, float] = {}

    def stop_when_done() -> None:
        if seen["input"] >= args.expected and seen["queued"] >= args.queued:
            moments.setdefault("last", time.perf_counter())
            app.stop()

    def on_input(value: Any) -> None:
        if seen["input"] == 0:
            moments["first"] = moments["progress"] = time.perf_counter()
        seen["input"] += 1
        if seen["input"] % 100_000 == 0:
            now = time.perf_counter()
            print(f"progress {now - moments['first']:.0f} s: {seen}", file=sys.stderr, flush=True)
        stop_when_done()

    def on_queued(value: Any) -> None:
        seen["queued"] += 1
        stop_when_done()

    def on_late(*_: Any, **__: Any) -> bool:
        seen["late"] += 1
        return False  # counted here, not logged line by line

    def on_window(value: dict[str, Any]) -> None:
        seen["windows"] += 1
        seen["window_sum"] += value["value"]

    topic = app.topic(args.topic, value_deserializer="json", timestamp_extractor=_event_time)
    sdf = app.dataframe(topic)
    sdf = sdf.update(on_input)
    sdf = sdf.filter(lambda event: event.get("type") == "call.queued")
    sdf = sdf.group_by("queue")
    sdf = sdf.update(on_queued)
    sdf = (
        sdf.tumbling_window(timedelta(minutes=15), grace_ms=timedelta(days=7), on_late=on_late)
        .count()
        .final()
    )
    sdf = sdf.update(on_window)
    # The timeout is a safety net: Quix stops when nothing new was consumed for that long.
    app.run(timeout=args.idle_timeout)
    done = moments.get("last") or time.perf_counter() - args.idle_timeout
    first = moments.get("first", started)
    print(
        json.dumps(
            {
                "guarantee": args.guarantee,
                "messages": seen["input"],
                "queued": seen["queued"],
                "late": seen["late"],
                "windows_closed": seen["windows"],
                "window_count_sum": seen["window_sum"],
                "startup_s": round(first - started, 3),
                "stopped_by": "count" if "last" in moments else "idle timeout",
                "seconds": round(done - first, 3),
                "seconds_to_last_message": round(moments.get("last", done) - first, 3),
                "msg_per_s": round(seen["input"] / (done - first)),
            }
        )
    )


if __name__ == "__main__":
    main()
