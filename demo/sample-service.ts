/**
 * The demo's target service: an ordinary HTTP service that knows nothing about Step Functions.
 *
 *   POST /step/sum    {"numbers": [1, 2, 3]}   -> 200 {"sum": 6}
 *                     a non-number             -> 422 with step-func-error / step-func-cause headers
 *                     {"flaky": true}          -> 503 without headers (the poller fills error and cause)
 *                     {"slowMs": 5000}         -> answers after 5 s (past the demo's requestTimeout)
 *   POST /step/split  {"text": "a b c"}        -> 200 {"words": ["a", "b", "c"]}
 *
 * It records, per path, how many requests were in flight at once: the demo's proof that the
 * poller kept maxConcurrency.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface PathStats {
  inFlight: number;
  peak: number;
  requests: number;
}

export class SampleService {
  readonly stats = new Map<string, PathStats>();
  readonly #server = http.createServer((req, res) => void this.#handle(req, res));
  #port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(port, "127.0.0.1", resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
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
    const path = req.url ?? "/";
    const stats = this.statsFor(path);
    stats.inFlight += 1;
    stats.requests += 1;
    stats.peak = Math.max(stats.peak, stats.inFlight);
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const input = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      // Simulated work: 10-40 ms, or as long as the input asks.
      const workMs = typeof input.slowMs === "number" ? input.slowMs : 10 + Math.random() * 30;
      // Stop working when the caller hangs up (the poller gave up at its requestTimeout).
      const hungUp = await workFor(workMs, res);
      if (hungUp) return;
      if (path === "/step/sum") sum(input, res);
      else if (path === "/step/split") split(input, res);
      else res.writeHead(404).end(`no route ${path}`);
    } catch (error) {
      res.writeHead(400, { "step-func-error": "Sample.BadRequest" }).end(String(error));
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
