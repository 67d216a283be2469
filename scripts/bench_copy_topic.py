#!/usr/bin/env python3
"""The baseline of `orderflow bench replay`: a topic-to-topic copy loop with Confluent's Python client.

Usage: bench_copy_topic.py --bootstrap HOST:PORT --source TOPIC --target TOPIC [--linger-ms N]

Reads every partition of SOURCE from its beginning to its end (read committed), produces each record to
TARGET with its key, value and headers plus the three headers a replay adds (replay.id, replay.source,
replay.at), with an idempotent producer (acks=all, lz4, the same linger as orderflow's replay), then flushes
and checks every delivery. Prints the count and time, and last `records_per_second=N`.

It is what a team would write by hand instead of `orderflow replay`: no checkpoints, no resume, no filters.
Run by the venv `./dev up` installs, which has confluent-kafka.
"""
import argparse
import datetime
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--linger-ms", type=int, default=20)
    args = parser.parse_args()

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"orderflow-bench-copy-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": args.linger_ms,
            "batch.size": 1000000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500000,
        }
    )
    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(err)

    metadata = consumer.list_topics(args.source, timeout=30)
    topic = metadata.topics.get(args.source)
    if topic is None or topic.error is not None or not topic.partitions:
        sys.exit(f"error: topic {args.source} does not exist")
    partitions = sorted(topic.partitions)
    run_id = str(uuid.uuid4())
    at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")

    started = time.monotonic()
    consumer.assign([TopicPartition(args.source, p, OFFSET_BEGINNING) for p in partitions])
    left = set(partitions)
    copied = 0
    while left:
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    left.discard(message.partition())
                    continue
                sys.exit(f"error: reading {args.source}: {error}")
            headers = list(message.headers() or [])
            headers.append(("replay.id", run_id))
            headers.append(("replay.source", f"{args.source}/{message.partition()}/{message.offset()}"))
            headers.append(("replay.at", at))
            while True:
                try:
                    producer.produce(
                        args.target,
                        value=message.value(),
                        key=message.key(),
                        headers=headers,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    producer.poll(0.01)
            copied += 1
        producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.monotonic() - started
    consumer.close()
    if remaining or failures:
        sys.exit(f"error: {remaining} records not delivered, {len(failures)} failed: {failures[:3]}")
    print(f"copied {copied} records in {elapsed:.2f} s")
    print(f"records_per_second={copied / elapsed:.0f}")


if __name__ == "__main__":
    main()
