// What the Node.js test sessions share.
"use strict";
const net = require("net");

// A free loopback port.
function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function ok(what) {
  console.log(`ok - ${what}`);
}

module.exports = { freePort, ok };
