/**
 * The demo's target service: an ordinary HTTP service that knows nothing about Step Functions.
 *
 *   POST /step/sum    {"numbers": [1, 2, 3]}   -> 200 {"sum": 6}
 *                     a non-number             -> 422 with step-func-error / step-func-cause headers
 *                     {"flaky": true}          -> 503 without headers (the poller fills error and cause)
 *                     {"slowMs": 5000}         -> answers after 5 s (past the demo's requestTimeout; 60 s at most)
 *   POST /step/split  {"text": "a b c"}        -> 200 {"words": ["a", "b", "c"]}
 *
 *   GET  /healthz                             -> 200 (for probes)
 *
 * It records, per path, how many requests were in flight at once: the demo's proof that the
 * poller kept maxConcurrency. The demo runs it in-process; `sfn-operator sample-service` runs it as
 * the target of the Kubernetes examples (examples/), which is why it ships in the package: it
 * answers only its two routes, reads at most MAX_BODY_BYTES of a body, and keeps no state per
 * unknown path.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** The largest input a Step Functions task can carry (256 KiB), with room for JSON escaping. */
const MAX_BODY_BYTES = 512 * 1024;

const ROUTES = ["/step/sum", "/step/split"] as const;
/** The longest simulated work a request may ask for (`slowMs`): a request holds its body meanwhile. */
const MAX_WORK_MS = 60_000;
/** Connections at once; more are refused, so a flood of slow requests cannot exhaust the pod's memory. */
const MAX_CONNECTIONS = 256;

export interface PathStats {
  inFlight: number;
  peak: number;
  requests: number;
}

export class SampleService {
  readonly stats = new Map<string, PathStats>();
  readonly #server = http.createServer((req, res) => void this.#handle(req, res));
  #port = 0;
  #host = "127.0.0.1";

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const host = this.#host === "0.0.0.0" || this.#host === "::" ? "127.0.0.1" : this.#host;
    return `http://${host.includes(":") ? `[${host}]` : host}:${this.#port}`;
  }

  async start(port = 0, host = "127.0.0.1"): Promise<this> {
    this.#server.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#host = host;
    return this;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  statsFor(path: string): PathStats {
    let stats = this.stats.get(path);
    if (!stats) {
      stats = { inFlight: 0, peak: 0, requests: 0 };
      this.stats.set(path, stats);
    }
    return stats;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "GET" && path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    if (!(ROUTES as readonly string[]).includes(path) || req.method !== "POST") {
      res.writeHead(404, { "content-type": "text/plain" }).end(`no route ${req.method} ${path}`);
      return;
    }
    const stats = this.statsFor(path);
    stats.inFlight += 1;
    stats.requests += 1;
    stats.peak = Math.max(stats.peak, stats.inFlight);
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) {
          res.writeHead(413, { "step-func-error": "Sample.InputTooLarge", connection: "close" }).end();
          return;
        }
        chunks.push(chunk as Buffer);
      }
      const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const input = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<string, unknown>;
      // Simulated work: 10-40 ms, or as long as the input asks.
      const workMs =
        typeof input.slowMs === "number"
          ? Math.min(Math.max(input.slowMs, 0), MAX_WORK_MS)
          : 10 + Math.random() * 30;
      // Stop working when the caller hangs up (the poller gave up at its requestTimeout).
      const hungUp = await workFor(workMs, res);
      if (hungUp) return;
      if (path === "/step/sum") sum(input, res);
      else split(input, res);
    } catch (error) {
      if (!res.headersSent) res.writeHead(400, { "step-func-error": "Sample.BadRequest" }).end(String(error));
    } finally {
      stats.inFlight -= 1;
    }
  }
}

/** Waits `ms`; resolves true early if the client closed the connection first. */
function workFor(ms: number, res: http.ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      res.off("close", onClose);
      resolve(false);
    }, ms);
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    res.once("close", onClose);
  });
}

function sum(input: Record<string, unknown>, res: http.ServerResponse): void {
  if (input.flaky) {
    res.writeHead(503, { "content-type": "text/plain" }).end("upstream database unavailable, try again");
    return;
  }
  const numbers = Array.isArray(input.numbers) ? input.numbers : [];
  const bad = numbers.find((n) => typeof n !== "number");
  if (bad !== undefined) {
    res
      .writeHead(422, {
        "step-func-error": "Sum.NotANumber",
        "step-func-cause": `cannot add ${JSON.stringify(bad)}: every element of "numbers" must be a number`,
      })
      .end();
    return;
  }
  const total = (numbers as number[]).reduce((a, b) => a + b, 0);
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ sum: total }));
}

function split(input: Record<string, unknown>, res: http.ServerResponse): void {
  const text = typeof input.text === "string" ? input.text : "";
  res
    .writeHead(200, { "content-type": "application/json" })
    .end(JSON.stringify({ words: text.split(/\s+/) }));
}
