/**
 * The "instant" target of the dispatch benchmark, run as its own process so that the poller's event
 * loop is measured alone: every POST is answered 200 with `{}` as soon as its body is read (or after
 * the input's `delayMs`).
 *
 * `node dist/bench/target-server.js` prints `listening <url>`; SIGTERM prints `requests <n>` and exits.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

const BODY = "{}";
let requests = 0;

// A task whose input holds `"delayMs":<n>` is answered n ms later: a target that takes time (the
// peer comparison, bench/peer.ts), chosen per batch of tasks without restarting anything.
const DELAY = /"delayMs":(\d+)/;

const server = http.createServer((req, res) => {
  // Read the body first: answering before it is read would leave the client's socket dirty.
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => {
    body += chunk;
  });
  req.on("end", () => {
    requests += 1;
    const answer = (): void => {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(BODY.length) });
      res.end(BODY);
    };
    const delayMs = Number(DELAY.exec(body)?.[1] ?? 0);
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});
// Keep-alive longer than the clients' idle sockets, so neither side races to close a socket in use.
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`listening http://127.0.0.1:${port}\n`);
});

process.once("SIGTERM", () => {
  process.stdout.write(`requests ${requests}\n`);
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
