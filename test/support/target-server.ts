/**
 * A real HTTP target for integration tests, steered by the task input it receives:
 *
 *   {"reply": "json" | "text" | "huge" | "status" | "reset" | "echo", "delayMs": 0, "status": 500,
 *    "headers": {"step-func-error": "..."}, "headerEncoding": "utf8" | "latin1", "body": "...",
 *    "hold": "gate"}
 *
 * It measures what only the target can see: concurrency (current and peak), every request's headers,
 * and how many requests it got.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface TargetInstruction {
  reply?: "json" | "text" | "huge" | "status" | "reset" | "echo";
  delayMs?: number;
  status?: number;
  headers?: Record<string, string>;
  /**
   * How "status" writes header values: as their UTF-8 bytes (the default, as Go and most frameworks
   * do), or as Node.js does with a plain string, one Latin-1 byte per character.
   */
  headerEncoding?: "utf8" | "latin1";
  body?: string;
  /**
   * Holds the request (before `delayMs`) until the test calls `release(hold)`: tasks that stay in
   * flight for as long as a test needs them to, whatever the machine's speed.
   */
  hold?: string;
  /** Any other field is carried through (e.g. an id the test uses). */
  [key: string]: unknown;
}

export interface ReceivedRequest {
  /** When the request arrived (Date.now()). */
  at: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class TestTarget {
  readonly requests: ReceivedRequest[] = [];
  inFlight = 0;
  peak = 0;
  readonly #server: http.Server;
  readonly #gates = new Map<string, PromiseWithResolvers<void>>();
  #port = 0;

  constructor() {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  resetCounters(): void {
    this.requests.length = 0;
    this.peak = this.inFlight;
  }

  /** Lets the requests held by `gate` go on, and those that come later pass at once. */
  release(gate: string): void {
    this.#gate(gate).resolve();
  }

  #gate(name: string): PromiseWithResolvers<void> {
    let gate = this.#gates.get(name);
    if (gate === undefined) {
      gate = Promise.withResolvers<void>();
      this.#gates.set(name, gate);
    }
    return gate;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = Date.now();
    this.inFlight += 1;
    this.peak = Math.max(this.peak, this.inFlight);
    let closed = false;
    res.on("close", () => {
      closed = true;
    });
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString("utf8");
      this.requests.push({ at, path: req.url ?? "/", headers: req.headers, body });
      let instruction: TargetInstruction = {};
      try {
        instruction = JSON.parse(body) as TargetInstruction;
      } catch {
        // not an instruction: answer with the default
      }
      if (instruction.hold !== undefined) {
        await Promise.race([this.#gate(instruction.hold).promise, closedPromise(res)]);
      }
      if (closed) return;
      if (instruction.delayMs) await waitOrClose(instruction.delayMs, res);
      if (closed) return;
      this.#reply(instruction, body, res);
    } finally {
      this.inFlight -= 1;
    }
  }

  #reply(instruction: TargetInstruction, body: string, res: http.ServerResponse): void {
    const headers = instruction.headers ?? {};
    switch (instruction.reply ?? "json") {
      case "json":
        res
          .writeHead(200, { "content-type": "application/json", ...headers })
          .end(JSON.stringify({ ok: true, got: instruction }));
        return;
      case "echo":
        res.writeHead(200, { "content-type": "application/json", ...headers }).end(body);
        return;
      case "text":
        res
          .writeHead(200, { "content-type": "text/plain", ...headers })
          .end(instruction.body ?? "plain text");
        return;
      case "huge":
        res.writeHead(200, { "content-type": "application/json" }).end(`"${"x".repeat(300_000)}"`);
        return;
      case "status":
        res
          .writeHead(
            instruction.status ?? 500,
            instruction.headerEncoding === "latin1" ? headers : encodeHeaders(headers),
          )
          .end(instruction.body ?? "");
        return;
      case "reset":
        res.socket?.destroy();
        return;
    }
  }
}

/** Header values as their UTF-8 bytes, one character per byte: Node writes each as one byte. */
function encodeHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, Buffer.from(value, "utf8").toString("latin1")]),
  );
}

function waitOrClose(ms: number, res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    res.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function closedPromise(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.closed) resolve();
    else res.once("close", () => resolve());
  });
}
