#!/usr/bin/env node
// The web console end to end in headless Chromium (Debian's, driven by playwright-core):
// open the page served by `eddy server`, see the catalog, start a push query while rows are
// being inserted, and see rows arrive in the table and the chart grow; stop the query. A
// screenshot is kept in test-artifacts/console.png.
// Usage: node console_test.js PATH/TO/eddy [PATH/TO/chromium]
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
const assert = require("assert/strict");
const { freePort, ok } = require("./support");
const { chromium } = require("playwright-core");

const ARTIFACTS = path.join(__dirname, "..", "..", "test-artifacts");


function request(port, method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: urlPath, headers: { "Content-Type": "application/json" } }, (res) => {
      let data = "";
      res.on("data", (chunk) => (data += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body: data }));
    });
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

async function waitFor(what, check, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


async function main() {
  const eddy = process.argv[2];
  const browserPath = process.argv[3] || "/usr/bin/chromium";
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "eddy-console-"));
  const setup = path.join(dataDir, "setup.sql");
  fs.writeFileSync(
    setup,
    "CREATE STREAM readings (sensor STRING KEY, temperature DOUBLE) WITH (kafka_topic='readings', value_format='JSON', partitions=1);\n" +
      "CREATE STREAM warm AS SELECT sensor, temperature FROM readings WHERE temperature > 22;\n" +
      "CREATE SOURCE CONNECTOR orders_gen WITH ('connector.class'='DatagenSource', 'kafka.topic'='orders', " +
      "'quickstart'='orders', 'max.interval'=20);\n",
  );
  const server = spawn(eddy, ["--data-dir", path.join(dataDir, "data"), "server", "--listen", `127.0.0.1:${port}`, "--queries-file", setup], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  let feeding = null;
  let browser = null;
  try {
    await waitFor("the server", async () => (await request(port, "GET", "/healthcheck").catch(() => ({}))).status === 200);
    browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox"] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector("#streams li", { timeout: 30000 });
    assert.match(await page.textContent("#streams"), /READINGS/);
    ok("the console lists the streams");

    // Rows keep arriving: a reading every 50 ms, a wave.
    let n = 0;
    feeding = setInterval(() => {
      const t = (20 + 5 * Math.sin(n / 5)).toFixed(2);
      const sensor = `s${n % 3}`;
      n++;
      request(port, "POST", "/ksql", JSON.stringify({ ksql: `INSERT INTO readings (sensor, temperature) VALUES ('${sensor}', ${t});` })).catch(() => {});
    }, 50);

    await page.fill("#sql", "SELECT ROWTIME, sensor, temperature FROM readings EMIT CHANGES;");
    await page.click("#run");
    await waitFor("rows in the table", () => page.evaluate(() => window.eddyConsole.rows() >= 15));
    const before = await page.evaluate(() => window.eddyConsole.rows());
    await waitFor("more rows, live", () => page.evaluate((b) => window.eddyConsole.rows() >= b + 10, before));
    const shown = await page.$$eval("#rows tbody tr", (rows) => rows.length);
    assert.ok(shown >= 25, `${shown} rows shown`);
    assert.deepEqual(await page.$$eval("#rows thead th", (ths) => ths.map((th) => th.textContent)), ["ROWTIME", "SENSOR", "TEMPERATURE"]);
    ok("rows arrive live in the table");

    assert.equal(await page.inputValue("#column"), "2", "the chart plots TEMPERATURE");
    const points = await page.evaluate(() => window.eddyConsole.points());
    assert.ok(points >= 25, `${points} points`);
    // The line is drawn: pixels of its colour on the canvas.
    const drawn = await page.evaluate(() => {
      const canvas = document.getElementById("chart");
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      let count = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] === 0x4f && data[i + 1] === 0xb3 && data[i + 2] === 0xff) count++;
      return count;
    });
    assert.ok(drawn > 200, `${drawn} pixels of the line`);
    ok("the chart grows with the rows");

    // Three sensors, three lines, with their average; by event time; a moving average; the
    // lowest and highest readings labelled.
    await page.selectOption("#series", "1");
    await page.selectOption("#xaxis", "0");
    await page.check("#smooth");
    const chart = await page.evaluate(() => window.eddyConsole.chart());
    assert.deepEqual([...chart.series].sort(), ["s0", "s1", "s2"], JSON.stringify(chart));
    assert.ok(chart.average && chart.smoothed, JSON.stringify(chart));
    assert.equal(chart.x, "ROWTIME");
    assert.ok(chart.min >= 15 && chart.max <= 25 && chart.min < chart.max, JSON.stringify(chart));
    const colours = await page.evaluate(() => {
      const canvas = document.getElementById("chart");
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      const seen = new Set();
      for (let i = 0; i < data.length; i += 4) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      return [0x4fb3ff, 0xffb454, 0x7ee787].filter((c) => seen.has(c)).length;
    });
    assert.equal(colours, 3, "a line in each sensor's colour");
    ok("one line per sensor, their average, a moving average, min and max, by event time");

    // The catalog shows rates: of the stream being written, and of the query reading it.
    await waitFor("a rate beside the stream", async () => /\/s/.test(await page.textContent("#streams")));
    await waitFor("a rate beside the query", async () => /CSAS_WARM_\d+.*\/s/.test(await page.textContent("#queries")));
    await waitFor("the datagen's rate", async () => /ORDERS_GEN\d*(\.\d)?\/s/.test(await page.textContent("#connectors")));
    ok("the catalog shows rates, the orders' connector's among them");

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "console.png") });
    ok(`screenshot in ${path.join(ARTIFACTS, "console.png")}`);

    await page.click("#stop");
    await waitFor("the push query to end", async () => /eddy_push_queries 0/.test((await request(port, "GET", "/metrics")).body));
    ok("Stop ends the push query on the server");
  } finally {
    if (feeding) clearInterval(feeding);
    if (browser) await browser.close();
    const exited = new Promise((resolve) => server.on("exit", resolve));
    server.kill("SIGINT");
    const code = await exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
    assert.equal(code, 0, `server exit code ${code}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
