"""A bare confluent-kafka (librdkafka) consumer loop that only reads the topic: what an optional
confluent-kafka source could reach at most (issue 9). Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import time

from confluent_kafka import Consumer


def main() -> None:
    """Read ``--expected`` messages from the start of ``--topic`` and report the rate."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--parse", action="store_true", help="json.loads each value too")
    args = parser.parse_args()
    started = time.perf_counter()
    assigned_at: list[float] = []
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
        }
    )
    consumer.subscribe([args.topic], on_assign=lambda c, p: assigned_at.append(time.perf_counter()))
    count = size = 0
    first_poll = time.perf_counter()
    first_message: float | None = None
    while count < args.expected:
        messages = consumer.consume(num_messages=10_000, timeout=0.5)
        for message in messages:
            if message.error():
                continue
            if first_message is None:
                first_message = time.perf_counter()
            value = message.value()
            size += len(value)
            if args.parse:
                json.loads(value)
            count += 1
    done = time.perf_counter()
    consumer.close()
    assigned = assigned_at[0] if assigned_at else first_poll
    print(
        json.dumps(
            {
                "messages": count,
                "mib": round(size / 2**20, 1),
                "startup_s": round(first_poll - started, 3),
                "join_s": round(assigned - first_poll, 3),
                "seconds": round(done - assigned, 3),
                "seconds_from_first_message": round(done - (first_message or assigned), 3),
                "msg_per_s": round(count / (done - assigned)),
            }
        )
    )


if __name__ == "__main__":
    main()
