/**
 * The HTTP call to a target (src/target/http-target.ts) against real servers: node:http ones, and raw
 * TCP ones where a Node server cannot produce the bytes in question (UTF-8 in headers, a reset in
 * the middle of a body). What the outcome rules then make of each answer is checked with
 * decideOutcome, the function the task runner applies.
 */
import { once } from "node:events";
import fs from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { gzipSync } from "node:zlib";
import { expect } from "chai";
import { Abandonment, HttpTarget, type TargetRequest } from "../../src/target/http-target.ts";
import { decideOutcome, type TargetResult, type TaskOutcome } from "../../src/target/outcome.ts";
import { createPki } from "../support/cluster-pki.ts";

interface Served {
  url: string;
  port: number;
  /** Sockets the server accepted (to tell keep-alive reuse from new connections). */
  connections: number;
  close(): Promise<void>;
}

async function serve(
  handler: http.RequestListener,
  tlsOptions?: https.ServerOptions,
): Promise<Served & { server: http.Server }> {
  const server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
  const served = { connections: 0 };
  server.on(tlsOptions ? "secureConnection" : "connection", () => {
    served.connections += 1;
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return Object.assign(served, {
    server,
    port,
    url: `${tlsOptions ? "https" : "http"}://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** A TCP server that reads one request head (and its body, by content-length) and writes `answer`. */
async function serveRaw(answer: (socket: net.Socket) => void): Promise<Served> {
  const sockets = new Set<net.Socket>();
  const served = { connections: 0 };
  const server = net.createServer((socket) => {
    served.connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffered = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(buffered.subarray(0, end).toString())?.[1] ?? 0);
      if (buffered.length >= end + 4 + length) {
        socket.removeAllListeners("data");
        answer(socket);
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return Object.assign(served, {
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** A response head written as raw bytes: header values may hold any bytes (UTF-8 here). */
function rawHead(status: string, headers: Array<[string, Buffer | string]>): Buffer {
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status}\r\n`),
    ...headers.map(([name, value]) =>
      Buffer.concat([Buffer.from(`${name}: `), Buffer.from(value), Buffer.from("\r\n")]),
    ),
    Buffer.from("\r\n"),
  ]);
}

function request(overrides: Partial<TargetRequest> = {}): TargetRequest {
  return {
    body: '{"n":1}',
    headers: { "step-func-task-id": "0123456789abcdef0123456789abcdef" },
    timeoutMs: 5000,
    abandonment: new Abandonment(),
    ...overrides,
  };
}

const call = { method: "POST", path: "/work" };

function outcomeOf(result: TargetResult): TaskOutcome {
  return decideOutcome(result, call);
}

function asResponse(result: TargetResult): Extract<TargetResult, { kind: "response" }> {
  if (result.kind !== "response") throw new Error(`expected a response, got ${JSON.stringify(result)}`);
  return result;
}

describe("HttpTarget (the call to the target service)", function () {
  this.timeout(30_000);
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function target(url: string, maxSockets = 2, headers?: Record<string, string>): HttpTarget {
    const made = headers ? new HttpTarget(url, maxSockets, headers) : new HttpTarget(url, maxSockets);
    cleanups.push(() => (made as { destroy?: () => void }).destroy?.());
    return made;
  }

  async function server(handler: http.RequestListener): Promise<Served & { server: http.Server }> {
    const s = await serve(handler);
    cleanups.push(() => s.close());
    return s;
  }

  async function rawServer(answer: (socket: net.Socket) => void): Promise<Served> {
    const s = await serveRaw(answer);
    cleanups.push(() => s.close());
    return s;
  }

  describe("the request", () => {
    it("sends the input byte for byte (non-ASCII, surrounding white space) with only the headers it means to", async () => {
      let received:
        | { headers: http.IncomingHttpHeaders; body: Buffer; method?: string; url?: string }
        | undefined;
      const s = await server(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        received = { headers: req.headers, body: Buffer.concat(chunks), method: req.method, url: req.url };
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
      const input = ' {"name": "grüße, 日本語, 😀", "e": "\\u00e9"}\n';
      const result = await target(`${s.url}/work?x=1`).post(request({ body: input }));
      expect(asResponse(result).status).to.equal(200);
      expect(received?.method).to.equal("POST");
      expect(received?.url).to.equal("/work?x=1");
      expect(received?.body.equals(Buffer.from(input, "utf8")), "body bytes").to.equal(true);
      expect(received?.headers["content-type"]).to.equal("application/json");
      expect(received?.headers["content-length"]).to.equal(String(Buffer.byteLength(input)));
      expect(received?.headers["user-agent"]).to.match(/^sfn-operator\/\d+\.\d+\.\d+/);
      expect(received?.headers["step-func-task-id"]).to.equal("0123456789abcdef0123456789abcdef");
      // No Accept, no Accept-Encoding (the body is read as sent, never decompressed), nothing else.
      expect(Object.keys(received?.headers ?? {}).sort()).to.deep.equal([
        "connection",
        "content-length",
        "content-type",
        "host",
        "step-func-task-id",
        "user-agent",
      ]);
    });

    it("sends the configured headers (non-ASCII values as UTF-8); the task's headers win", async () => {
      let received: http.IncomingHttpHeaders = {};
      const s = await server((req, res) => {
        received = req.headers;
        res.writeHead(200).end("{}");
      });
      const t = target(s.url, 1, {
        Authorization: "Bearer t0ken",
        "X-Greeting": "grüße 日本",
        Accept: "application/json",
        "User-Agent": "team-a-poller",
        // The config parsers refuse this name; should one get through, the task's own value wins.
        "Step-Func-Task-Id": "forged",
      });
      expect(asResponse(await t.post(request())).status).to.equal(200);
      expect(received).to.include({
        authorization: "Bearer t0ken",
        accept: "application/json",
        "user-agent": "team-a-poller",
        "content-type": "application/json",
        "step-func-task-id": "0123456789abcdef0123456789abcdef",
      });
      expect(Buffer.from(String(received["x-greeting"]), "latin1").toString("utf8")).to.equal("grüße 日本");
      expect(received).not.to.have.property("accept-encoding");
    });

    it("sends an input of 262,144 bytes (the largest Step Functions hands out) whole", async () => {
      let size = 0;
      const s = await server(async (req, res) => {
        for await (const chunk of req) size += (chunk as Buffer).length;
        res.writeHead(200).end("{}");
      });
      const input = `"${"é".repeat(131_071)}"`;
      expect(Buffer.byteLength(input)).to.equal(262_144);
      expect(asResponse(await target(s.url).post(request({ body: input }))).status).to.equal(200);
      expect(size).to.equal(262_144);
    });

    it("reuses kept-alive connections between calls", async () => {
      const s = await server((_req, res) => res.writeHead(200).end("{}"));
      const t = target(s.url, 1);
      for (let i = 0; i < 3; i++) expect(asResponse(await t.post(request())).status).to.equal(200);
      expect(s.connections).to.equal(1);
    });
  });

  describe("the answer", () => {
    it("returns a 200 body byte for byte (non-ASCII)", async () => {
      const body = Buffer.from('{"greeting": "grüße 日本語 😀"}', "utf8");
      const s = await server((_req, res) =>
        res.writeHead(200, { "content-type": "application/json" }).end(body),
      );
      const result = asResponse(await target(s.url).post(request()));
      expect(result.body.equals(body)).to.equal(true);
      expect(outcomeOf(result)).to.deep.equal({ kind: "success", output: body.toString("utf8") });
    });

    it("every status is an answer; a redirect is not followed (HTTP.302)", async () => {
      let calls = 0;
      const s = await server((req, res) => {
        calls += 1;
        if (req.url === "/work") res.writeHead(302, { location: "/elsewhere" }).end();
        else res.writeHead(200).end("{}");
      });
      const result = asResponse(await target(`${s.url}/work`).post(request()));
      expect(result.status).to.equal(302);
      expect(calls).to.equal(1);
      expect(outcomeOf(result)).to.include({ kind: "failure", error: "HTTP.302" });
    });

    it("does not decode a compressed answer: a gzip body stays gzip bytes (Target.InvalidOutput)", async () => {
      const gzipped = gzipSync(Buffer.from('{"compressed": true}'));
      const s = await server((_req, res) =>
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" }).end(gzipped),
      );
      const result = asResponse(await target(s.url).post(request()));
      expect(result.body.equals(gzipped)).to.equal(true);
      expect(outcomeOf(result)).to.include({ kind: "failure", error: "Target.InvalidOutput" });
    });

    it("cuts an endless body at 262,145 bytes without reading the rest, and closes the connection", async () => {
      let written = 0;
      let closed = false;
      const s = await server((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.on("close", () => {
          closed = true;
        });
        const chunk = Buffer.alloc(64 * 1024, "x");
        const pump = (): void => {
          while (!closed && res.write(chunk)) written += chunk.length;
          if (!closed) res.once("drain", pump);
        };
        pump();
      });
      const started = Date.now();
      const result = asResponse(await target(s.url).post(request()));
      expect(Date.now() - started).to.be.below(3000);
      expect(result.bodyTruncated).to.equal(true);
      expect(result.body.length).to.equal(262_145);
      expect(outcomeOf(result)).to.include({ kind: "failure", error: "Target.OutputTooLarge" });
      await new Promise((r) => setTimeout(r, 200));
      expect(closed, "the server saw the connection closed").to.equal(true);
      expect(written, "bytes the server managed to write").to.be.below(16 * 1024 * 1024);
    });

    it("reads a failed answer's body for the default cause", async () => {
      const s = await server((_req, res) =>
        res.writeHead(503, "Service Unavailable").end("down for maintenance"),
      );
      const outcome = outcomeOf(await target(s.url).post(request()));
      expect(outcome).to.deep.equal({
        kind: "failure",
        error: "HTTP.503",
        cause: "POST /work answered HTTP 503 Service Unavailable: down for maintenance",
      });
    });
  });

  describe("calls that do not end in an answer", () => {
    it("the timeout covers waiting for the headers", async () => {
      const s = await server(() => {});
      const started = Date.now();
      const result = await target(s.url).post(request({ timeoutMs: 300 }));
      expect(result).to.deep.equal({ kind: "timeout", timeoutMs: 300 });
      expect(Date.now() - started).to.be.within(250, 2000);
    });

    it("the timeout covers the body too (headers sent, body stalls)", async () => {
      const s = await server((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"partial": ');
      });
      const started = Date.now();
      const result = await target(s.url).post(request({ timeoutMs: 400 }));
      expect(result).to.deep.equal({ kind: "timeout", timeoutMs: 400 });
      expect(Date.now() - started).to.be.within(350, 2000);
      expect(outcomeOf(result)).to.include({ error: "Target.Timeout" });
    });

    it("abandonment ends a call waiting for the headers, and one reading the body", async () => {
      let closes = 0;
      const s = await server((req, res) => {
        res.on("close", () => {
          closes += 1;
        });
        if (req.url === "/body") res.writeHead(200).write("{");
      });
      for (const where of ["/headers", "/body"]) {
        const abandonment = new Abandonment();
        const started = Date.now();
        setTimeout(() => abandonment.abandon("TaskTimedOut"), 200);
        const result = await target(`${s.url}${where}`).post(request({ abandonment, timeoutMs: 10_000 }));
        expect(result, where).to.include({ kind: "connection-error", code: "ABORTED" });
        expect(Date.now() - started, where).to.be.below(2000);
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(closes, "the server saw both connections closed").to.equal(2);
    });

    it("an already abandoned call does not reach the target", async () => {
      let calls = 0;
      const s = await server((_req, res) => {
        calls += 1;
        res.writeHead(200).end("{}");
      });
      const abandonment = new Abandonment();
      abandonment.abandon("TaskDoesNotExist");
      const result = await target(s.url).post(request({ abandonment }));
      expect(result).to.include({ kind: "connection-error", code: "ABORTED" });
      await new Promise((r) => setTimeout(r, 100));
      expect(calls).to.equal(0);
    });

    it("a refused connection is Target.ConnectionRefused", async () => {
      const result = await target("http://127.0.0.1:1").post(request());
      expect(result).to.include({ kind: "connection-error", code: "ECONNREFUSED" });
      expect(outcomeOf(result)).to.include({ error: "Target.ConnectionRefused" });
    });

    it("a connection reset before the answer is Target.ConnectionReset", async () => {
      const s = await rawServer((socket) => socket.destroy());
      const result = await target(s.url).post(request());
      expect(result).to.include({ kind: "connection-error", code: "ECONNRESET" });
      expect(outcomeOf(result)).to.include({ error: "Target.ConnectionReset" });
    });

    it("a connection closed in the middle of the body is Target.ConnectionReset too", async () => {
      const s = await rawServer((socket) => {
        socket.write(
          rawHead("200 OK", [
            ["content-length", "1000"],
            ["content-type", "application/json"],
          ]),
        );
        socket.write('{"only": "part');
        setTimeout(() => socket.destroy(), 50);
      });
      const result = await target(s.url).post(request());
      expect(result).to.include({ kind: "connection-error", code: "ECONNRESET" });
      expect(outcomeOf(result)).to.include({ error: "Target.ConnectionReset" });
    });

    it("a host that does not resolve is Target.ConnectionFailed", async () => {
      const result = await target("http://no-such-host.invalid").post(request());
      expect(result).to.include({ kind: "connection-error" });
      expect(outcomeOf(result)).to.include({ error: "Target.ConnectionFailed" });
    });
  });

  describe("error and cause headers", () => {
    /** A Node target that sets both headers with `setHeader` (Node writes strings as Latin-1). */
    async function nodeTarget(error: string, cause: string): Promise<Served> {
      return server((_req, res) => {
        res.statusCode = 500;
        res.setHeader("step-func-error", error);
        res.setHeader("step-func-cause", cause);
        res.end();
      });
    }

    it("a Node target's Latin-1 header values arrive as written (é, not �)", async () => {
      const s = await nodeTarget("Fehler.Größe", "the cause, with unicode: é");
      expect(outcomeOf(await target(s.url).post(request()))).to.deep.equal({
        kind: "failure",
        error: "Fehler.Größe",
        cause: "the cause, with unicode: é",
      });
    });

    it("a Node target that writes UTF-8 bytes (from a Buffer) is decoded as UTF-8", async () => {
      const utf8 = (text: string): string => Buffer.from(text, "utf8").toString("latin1");
      const s = await nodeTarget(utf8("Fehler.日本"), utf8("原因: ärger 😀"));
      expect(outcomeOf(await target(s.url).post(request()))).to.deep.equal({
        kind: "failure",
        error: "Fehler.日本",
        cause: "原因: ärger 😀",
      });
    });

    it("UTF-8 bytes (CJK, emoji) from a raw server; an emoji straddling either limit is dropped whole", async () => {
      const error = `${"a".repeat(255)}😀 beyond`; // the emoji's two UTF-16 units are positions 256 and 257
      const cause = `${"日".repeat(32_767)}😀 beyond`; // ... and positions 32,768 and 32,769
      const s = await rawServer((socket) =>
        socket.end(
          rawHead("500 Internal Server Error", [
            ["step-func-error", Buffer.from(error, "utf8")],
            ["step-func-cause", Buffer.from(cause, "utf8")],
            ["content-length", "0"],
          ]),
        ),
      );
      const outcome = outcomeOf(await target(s.url).post(request()));
      expect(outcome).to.deep.equal({
        kind: "failure",
        error: "a".repeat(255),
        cause: "日".repeat(32_767),
      });
    });

    it("keeps an emoji that ends exactly at either limit", async () => {
      const error = `${"a".repeat(254)}😀`; // 256 UTF-16 units
      const cause = `${"ü".repeat(32_766)}😀 beyond`; // the emoji ends at 32,768
      const s = await rawServer((socket) =>
        socket.end(
          rawHead("500 Internal Server Error", [
            ["step-func-error", Buffer.from(error, "utf8")],
            ["step-func-cause", Buffer.from(cause, "utf8")],
            ["content-length", "0"],
          ]),
        ),
      );
      const outcome = outcomeOf(await target(s.url).post(request()));
      expect(outcome).to.deep.equal({ kind: "failure", error, cause: `${"ü".repeat(32_766)}😀` });
    });
  });

  describe("proxies from the environment", () => {
    const saved = { ...process.env };
    afterEach(() => {
      for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"]) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    });

    /** A tiny forward proxy: absolute-URI requests for http://, CONNECT tunnels for https://. */
    async function forwardProxy(): Promise<{ url: string; seen: string[] }> {
      const seen: string[] = [];
      const proxy = await server((req, res) => {
        seen.push(`${req.method} ${req.url}`);
        const upstream = http.request(
          req.url as string,
          { method: req.method, headers: req.headers, agent: false },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        upstream.on("error", () => res.destroy());
        req.pipe(upstream);
      });
      // Tunnels are no longer the server's connections: close them with the test.
      const tunnels = new Set<net.Socket>();
      cleanups.push(() => {
        for (const socket of tunnels) socket.destroy();
      });
      proxy.server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
        seen.push(`CONNECT ${req.url}`);
        tunnels.add(client);
        const [host, port] = String(req.url).split(":");
        const upstream = net.connect(Number(port), host, () => {
          tunnels.add(upstream);
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
          upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        upstream.on("error", () => client.destroy());
        client.on("error", () => upstream.destroy());
      });
      return { url: proxy.url, seen };
    }

    it("sends http:// calls through HTTP_PROXY, and straight to hosts in NO_PROXY", async () => {
      const proxy = await forwardProxy();
      const s = await server((req, res) =>
        res.writeHead(200).end(JSON.stringify({ via: req.headers.via ?? null })),
      );
      process.env.HTTP_PROXY = proxy.url;
      delete process.env.http_proxy;
      const proxied = asResponse(await target(`${s.url}/work`).post(request()));
      expect(proxied.status).to.equal(200);
      expect(proxy.seen).to.deep.equal([`POST ${s.url}/work`]);

      process.env.NO_PROXY = "127.0.0.1";
      delete process.env.no_proxy;
      const direct = asResponse(await target(`${s.url}/work`).post(request()));
      expect(direct.status).to.equal(200);
      expect(proxy.seen).to.have.length(1);
    });

    it("tunnels https:// calls through HTTPS_PROXY with CONNECT", async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-target-tls-"));
      const defaults = tls.getCACertificates("default");
      cleanups.push(async () => {
        tls.setDefaultCACertificates(defaults);
        await fs.rm(dir, { recursive: true, force: true });
      });
      const pki = await createPki(dir);
      tls.setDefaultCACertificates([...defaults, await fs.readFile(pki.ca.cert, "utf8")]);
      const s = await serve((_req, res) => res.writeHead(200).end('{"secure": true}'), {
        cert: await fs.readFile(pki.serving.cert),
        key: await fs.readFile(pki.serving.key),
      });
      cleanups.push(() => s.close());
      const proxy = await forwardProxy();
      process.env.HTTPS_PROXY = proxy.url;
      delete process.env.https_proxy;
      const result = asResponse(await target(`${s.url}/work`).post(request()));
      expect(result.body.toString()).to.equal('{"secure": true}');
      expect(proxy.seen).to.deep.equal([`CONNECT 127.0.0.1:${s.port}`]);
    });
  });
});
