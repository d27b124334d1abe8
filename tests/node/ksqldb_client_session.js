#!/usr/bin/env node
// ksqlDB's Node.js client (npm `ksqldb-client`, HTTP/2 with prior knowledge), unchanged,
// against `eddy server`: statements, listings, a row through /inserts-stream, a pull
// query, a push query that receives a live row and is closed with /close-query.
// Usage: node ksqldb_client_session.js PATH/TO/eddy
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
const assert = require("assert/strict");
const { freePort, ok } = require("./support");
const KsqldbClient = require("ksqldb-client");


function healthy(port) {
  return new Promise((resolve) => {
    const request = http.get({ host: "127.0.0.1", port, path: "/healthcheck", timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on("error", () => resolve(false));
  });
}

async function waitUntilServing(port, server) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`eddy server exited with ${server.exitCode}`);
    if (await healthy(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("eddy server did not start serving within 30 s");
}


async function session(port) {
  const client = new KsqldbClient({ host: "http://127.0.0.1", port });
  await client.connect();

  const created = await client.executeStatement(
    "CREATE STREAM orders (id STRING KEY, amount DOUBLE) WITH (kafka_topic='orders', value_format='JSON', partitions=1);",
  );
  assert.equal(created.status, 200, JSON.stringify(created));
  assert.equal(created.data.rows[0].commandStatus.message, "Stream created");
  ok("executeStatement CREATE STREAM");

  const streams = await client.listStreams();
  assert.deepEqual(streams.map((s) => s.name), ["ORDERS"]);
  ok("listStreams");
  const described = await client.describeSource("orders");
  assert.deepEqual(described.fields.map((f) => f.name), ["ID", "AMOUNT"]);
  ok("describeSource");

  const inserted = await client.insertInto("ORDERS", { ID: "o1", AMOUNT: 9.5 });
  assert.equal(inserted.status, 200, JSON.stringify(inserted));
  ok("insertInto");

  await client.executeStatement(
    "CREATE TABLE totals AS SELECT id, SUM(amount) AS total FROM orders GROUP BY id;",
    { streamsProperties: { "ksql.streams.auto.offset.reset": "earliest" } },
  );
  let pulled;
  const deadline = Date.now() + 30000;
  do {
    pulled = await client.query("SELECT * FROM totals;");
    if (pulled.data && pulled.data.rows && pulled.data.rows.length === 1) break;
    await new Promise((r) => setTimeout(r, 50)); // the table's query catches up
  } while (Date.now() < deadline);
  assert.equal(pulled.status, 200, JSON.stringify(pulled));
  assert.deepEqual(pulled.data.metadata.columnNames, ["ID", "TOTAL"]);
  assert.deepEqual(pulled.data.rows, [{ ID: "o1", TOTAL: 9.5 }]);
  ok("query (pull)");

  // A push query: the earlier row, then one inserted while it runs, then closed.
  const received = [];
  let queryId;
  let sawLive;
  const live = new Promise((resolve) => (sawLive = resolve));
  const pushed = client.streamQuery(
    "SELECT * FROM orders EMIT CHANGES;",
    (data) => {
      queryId = data.metadata && data.metadata.queryId;
      for (const row of data.rows || []) {
        received.push(row);
        if (row.ID === "o2") sawLive();
      }
      if (received.length === 1 && (data.rows || []).length === 1) {
        client.insertInto("ORDERS", { ID: "o2", AMOUNT: 1.25 });
      }
    },
    { properties: { "auto.offset.reset": "earliest" } },
  );
  await live;
  assert.deepEqual(received, [{ ID: "o1", AMOUNT: 9.5 }, { ID: "o2", AMOUNT: 1.25 }]);
  ok("streamQuery receives rows as they arrive");
  const closed = await client.terminatePushQuery(queryId);
  assert.equal(closed.status, 200, JSON.stringify(closed));
  const ended = await pushed;
  assert.equal(ended.status, 200);
  ok("terminatePushQuery ends the stream");
  await client.disconnect();
}

async function main() {
  const eddy = process.argv[2];
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "eddy-node-"));
  const server = spawn(eddy, ["--data-dir", dataDir, "server", "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  try {
    await waitUntilServing(port, server);
    await session(port);
  } finally {
    const exited = new Promise((resolve) => server.on("exit", resolve));
    server.kill("SIGINT");
    const code = await exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
    assert.equal(code, 0, `server exit code ${code}`);
    ok("server stops on Ctrl-C");
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
