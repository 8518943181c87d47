"""A bare kafka-python consumer loop that only reads the topic: the practical limit of the client
hotline-kpi uses. Settings as measured in ENVIRONMENT.md. Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import time

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener


class _Assigned(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.at: float | None = None

    def on_partitions_revoked(self, revoked: object) -> None:
        pass

    def on_partitions_assigned(self, assigned: object) -> None:
        if self.at is None:
            self.at = time.perf_counter()


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
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap_servers,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=10_000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    listener = _Assigned()
    consumer.subscribe([args.topic], listener=listener)
    count = size = 0
    first_poll = time.perf_counter()
    first_message: float | None = None
    while count < args.expected:
        polled = consumer.poll(timeout_ms=500, max_records=10_000)
        for messages in polled.values():
            if first_message is None and messages:
                first_message = time.perf_counter()
            for message in messages:
                size += len(message.value)
                if args.parse:
                    json.loads(message.value)
            count += len(messages)
    done = time.perf_counter()
    consumer.close(autocommit=False)
    assigned = listener.at or first_poll
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
