#!/usr/bin/env python3
"""ksqlDB's Python client, unchanged, against `eddy server`.

Starts the server on a free loopback port over a scratch data directory and runs a scripted
session through PyPI's `ksql-python-ng`: statements over /ksql (create, SHOW, DESCRIBE),
rows over /inserts-stream (HTTP/2), push queries over /query (HTTP/1.1) and /query-stream
(HTTP/2), a pull query, and a push query closed with /close-query. Every answer is checked
against what a ksqlDB server would give. Usage: ksql_python_ng_session.py PATH/TO/eddy
"""
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

from ksql import KSQLAPI
from ksql.errors import KSQLError

from checks import check, free_port


def wait_until_serving(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"eddy server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthcheck", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("eddy server did not start serving within 30 s")


def session(url: str) -> None:
    client = KSQLAPI(url)  # reads /info
    check("version from /info", client.get_ksql_version(), "0.29.0")

    created = client.ksql(
        "CREATE STREAM riders (id STRING KEY, lat DOUBLE, lon DOUBLE) "
        "WITH (kafka_topic='riders', value_format='JSON', partitions=1)")
    check("CREATE STREAM status", created[0]["commandStatus"]["message"], "Stream created")
    streams = client.ksql("SHOW STREAMS")[0]["streams"]
    check("SHOW STREAMS", [(s["name"], s["topic"], s["type"]) for s in streams], [("RIDERS", "riders", "STREAM")])
    fields = client.ksql("DESCRIBE riders")[0]["sourceDescription"]["fields"]
    check("DESCRIBE fields", [(f["name"], f["schema"]["type"]) for f in fields],
          [("ID", "STRING"), ("LAT", "DOUBLE"), ("LON", "DOUBLE")])
    try:
        client.ksql("CREATE STREAM broken AS SELECT * FROM missing")
        raise AssertionError("a statement over a missing stream was accepted")
    except KSQLError as e:
        check("statement error code", e.error_code, 40001)

    acks = client.inserts_stream("riders", [
        {"ID": "r1", "LAT": 52.52, "LON": 13.40},
        {"ID": "r2", "LAT": 48.85, "LON": 2.35},
        {"ID": "r1", "LAT": 52.53, "LON": 13.41},
    ])
    check("inserts-stream acks", acks, [{"status": "ok", "seq": n} for n in range(3)])

    earliest = {"auto.offset.reset": "earliest"}
    rows = list(client.query("SELECT id, lat FROM riders EMIT CHANGES LIMIT 3",
                             stream_properties=earliest, parse=True))
    check("push query over /query (HTTP/1.1)", rows,
          [{"ID": "r1", "LAT": 52.52}, {"ID": "r2", "LAT": 48.85}, {"ID": "r1", "LAT": 52.53}])
    rows = list(client.query("SELECT id, lon FROM riders WHERE lon > 10 EMIT CHANGES LIMIT 2",
                             stream_properties=earliest, use_http2=True, parse=True))
    check("push query over /query-stream (HTTP/2)", rows, [{"ID": "r1", "LON": 13.40}, {"ID": "r1", "LON": 13.41}])

    client.ksql("CREATE TABLE latest AS SELECT id, LATEST_BY_OFFSET(lat) AS lat, COUNT(*) AS n "
                "FROM riders GROUP BY id", stream_properties=earliest)
    deadline = time.monotonic() + 30
    while True:
        rows = list(client.query("SELECT * FROM latest", use_http2=True, parse=True))
        if rows == [{"ID": "r1", "LAT": 52.53, "N": 2}, {"ID": "r2", "LAT": 48.85, "N": 1}] or \
                time.monotonic() > deadline:
            break
        time.sleep(0.05)  # the table's query catches up with its input
    check("pull query over /query-stream", rows, [{"ID": "r1", "LAT": 52.53, "N": 2}, {"ID": "r2", "LAT": 48.85, "N": 1}])

    # A push query without LIMIT runs until closed.
    stream = client.query("SELECT * FROM riders EMIT CHANGES", stream_properties=earliest, use_http2=True)
    metadata = json.loads(next(stream))
    check("push query metadata", metadata["columnNames"], ["ID", "LAT", "LON"])
    check("first row", json.loads(next(stream)), ["r1", 52.52, 13.40])
    check("close-query", client.close_query(metadata["queryId"]), True)
    rest = list(stream)
    check("stream ends once closed (rows already sent may come first)", all(r.startswith("[") for r in rest), True)
    check("close-query of an unknown id", client.close_query("transient_NOPE_1"), False)


def main() -> int:
    eddy = sys.argv[1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen([eddy, "--data-dir", data_dir, "server", "--listen", f"127.0.0.1:{port}"])
        try:
            wait_until_serving(url, server)
            session(url)
        finally:
            server.send_signal(2)  # Ctrl-C: a graceful stop
            code = server.wait(timeout=30)
        check("server exit code after Ctrl-C", code, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
