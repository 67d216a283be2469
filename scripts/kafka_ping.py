#!/usr/bin/env python3
"""Ask a Kafka-protocol broker for its metadata; exit 0 when it answers with at least one broker.

Usage: kafka_ping.py [--all-partitions-led] [--topic NAME] HOST:PORT[,HOST:PORT...] [TIMEOUT_SECONDS]

With --all-partitions-led it also waits for every partition of every topic to have a leader: a broker
restarted after a kill -9 answers metadata requests before it leads its partitions again, and a client that
reads a topic in between gets an error. With --topic it also waits for that topic to exist (MirrorMaker 2's
`heartbeats`, say).

Uses only the standard library, so `./dev up` can wait for the broker before anything is built.
Sends a Metadata v0 request (api key 3) for all topics and reads the brokers and partitions of the answer.
"""
import socket
import struct
import sys

METADATA_API_KEY = 3
CLIENT_ID = b"orderflow-dev"


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def metadata(host, port, timeout):
    correlation_id = 7
    body = struct.pack(">hhih", METADATA_API_KEY, 0, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    body += struct.pack(">i", 0)  # v0: an empty topic array asks for every topic
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", read_exact(sock, 4))
        answer = read_exact(sock, size)
    (got_correlation, broker_count) = struct.unpack(">ii", answer[:8])
    if got_correlation != correlation_id:
        raise ValueError(f"correlation id {got_correlation}, expected {correlation_id}")
    brokers, pos = [], 8
    for _ in range(broker_count):
        (node_id, host_len) = struct.unpack(">ih", answer[pos:pos + 6])
        pos += 6
        broker_host = answer[pos:pos + host_len].decode()
        pos += host_len
        (broker_port,) = struct.unpack(">i", answer[pos:pos + 4])
        pos += 4
        brokers.append(f"{node_id}@{broker_host}:{broker_port}")
    (topic_count,) = struct.unpack(">i", answer[pos:pos + 4])
    pos += 4
    partitions, leaderless, topics = 0, 0, set()
    for _ in range(topic_count):
        (_topic_error, name_len) = struct.unpack(">hh", answer[pos:pos + 4])
        topics.add(answer[pos + 4:pos + 4 + name_len].decode())
        pos += 4 + name_len
        (partition_count,) = struct.unpack(">i", answer[pos:pos + 4])
        pos += 4
        for _ in range(partition_count):
            (error, _index, leader, replica_count) = struct.unpack(">hiii", answer[pos:pos + 14])
            pos += 14 + 4 * replica_count
            (isr_count,) = struct.unpack(">i", answer[pos:pos + 4])
            pos += 4 + 4 * isr_count
            partitions += 1
            if error != 0 or leader < 0:
                leaderless += 1
    return brokers, partitions, leaderless, topics


def main():
    args = sys.argv[1:]
    all_led = "--all-partitions-led" in args
    args = [a for a in args if a != "--all-partitions-led"]
    wanted_topic = None
    if "--topic" in args:
        at = args.index("--topic")
        if at + 1 >= len(args):
            print(__doc__, file=sys.stderr)
            return 2
        wanted_topic = args[at + 1]
        del args[at:at + 2]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    timeout = float(args[1]) if len(args) > 1 else 3.0
    errors = []
    for server in args[0].split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            brokers, partitions, leaderless, topics = metadata(host or "localhost", int(port), timeout)
        except (OSError, ValueError, struct.error) as e:
            errors.append(f"{server}: {e}")
            continue
        if not brokers:
            errors.append(f"{server}: metadata lists no broker")
        elif all_led and leaderless:
            errors.append(f"{server}: {leaderless} of {partitions} partitions have no leader yet")
        elif wanted_topic is not None and wanted_topic not in topics:
            errors.append(f"{server}: no topic {wanted_topic} yet")
        else:
            print(f"{server}: brokers {', '.join(brokers)}; {partitions} partitions")
            return 0
    print("; ".join(errors), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
