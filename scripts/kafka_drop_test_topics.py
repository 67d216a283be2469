#!/usr/bin/env python3
"""Delete the topics earlier test runs left on a local broker.

Usage: kafka_drop_test_topics.py HOST:PORT

Tests name their topics with testkit::unique_name, `<prefix>-<32 hex digits>` (a UUID v7), and leave them
behind; each run of `orderflow demo` and `orderflow bench pipeline` (the tests run both) has its own topics,
`demo-<12 hex digits>.*` and `bench-<12 hex digits>.*`. Thousands of them make a broker restarted after
kill -9 recover for minutes. Only those are deleted: serve's and a developer's own topics are kept.
"""
import re
import sys

from confluent_kafka.admin import AdminClient

TEST_TOPIC = re.compile(r"[0-9a-f]{32}|^(demo|bench)-[0-9A-F]{12}\.")
BATCH = 500


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    admin = AdminClient({"bootstrap.servers": sys.argv[1]})
    names = sorted(n for n in admin.list_topics(timeout=30).topics if TEST_TOPIC.search(n))
    failed = 0
    for start in range(0, len(names), BATCH):
        futures = admin.delete_topics(names[start:start + BATCH], operation_timeout=60)
        for name, future in futures.items():
            try:
                future.result()
            except Exception as e:  # a topic another run deletes at the same time, say
                failed += 1
                print(f"could not delete {name}: {e}", file=sys.stderr)
    print(f"deleted {len(names) - failed} test topics left by earlier runs on {sys.argv[1]}")


if __name__ == "__main__":
    main()
