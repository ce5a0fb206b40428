/**
 * The SDK's HTTP transport (src/aws/http-handler.ts) against real local servers: what a request
 * carries, what comes back, and how each way a call can fail is named (the SDK's retry strategy
 * decides on those names). Every Step Functions call of the poller goes through it, so the
 * emulator-backed tests exercise it with the real SDK as well.
 */
import { once } from "node:events";
import fs from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import tls from "node:tls";
import { HttpRequest, type HttpResponse } from "@smithy/core/protocols";
import { expect } from "chai";
import { SdkHttpHandler } from "../../src/aws/http-handler.ts";
import { createPki } from "../support/cluster-pki.ts";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** An HTTP(S) server on 127.0.0.1 whose answer each test sets. */
async function serve(
  handler: Handler,
  tlsOptions?: https.ServerOptions,
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function post(port: number, body?: unknown, extra: Partial<HttpRequest> = {}): HttpRequest {
  return new HttpRequest({
    protocol: "http:",
    hostname: "127.0.0.1",
    port,
    method: "POST",
    path: "/call",
    headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "Test.Call" },
    body,
    ...extra,
  });
}

async function text(response: HttpResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.body as Readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Echoes the request as JSON, with a status and repeated headers to flatten. */
const echo: Handler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    res.writeHead(201, "Made", [
      ["content-type", "application/json"],
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ]);
    res.end(
      JSON.stringify({
        method: req.method,
        url: req.url,
        target: req.headers["x-amz-target"],
        body: Buffer.concat(chunks).toString("utf8"),
      }),
    );
  });
};

const options = { maxSockets: 4, connectionTimeoutMs: 2_000, socketTimeoutMs: 2_000 };

describe("SdkHttpHandler (the SDK's HTTP transport)", () => {
  let handler: SdkHttpHandler;
  beforeEach(() => {
    handler = new SdkHttpHandler(options);
  });
  afterEach(() => handler.destroy());

  it("sends the method, path, query, headers and body, and hands back status, headers and the body as a stream", async () => {
    const server = await serve(echo);
    try {
      const { response } = await handler.handle(
        post(server.port, '{"n":1}', { query: { page: "2", tag: ["x", "y"] } }),
      );
      expect(response.statusCode).to.equal(201);
      expect(response.reason).to.equal("Made");
      expect(response.headers["content-type"]).to.equal("application/json");
      expect(response.headers["set-cookie"], "repeated headers joined").to.equal("a=1,b=2");
      expect(JSON.parse(await text(response))).to.deep.equal({
        method: "POST",
        url: "/call?page=2&tag=x&tag=y",
        target: "Test.Call",
        body: '{"n":1}',
      });
    } finally {
      await server.close();
    }
  });

  it("sends bodies given as bytes or as a stream, and no body at all", async () => {
    const server = await serve(echo);
    try {
      const bytes = await handler.handle(post(server.port, new TextEncoder().encode("bytes")));
      expect(JSON.parse(await text(bytes.response)).body).to.equal("bytes");
      const stream = await handler.handle(
        post(server.port, Readable.from([Buffer.from("str"), Buffer.from("eam")])),
      );
      expect(JSON.parse(await text(stream.response)).body).to.equal("stream");
      const none = await handler.handle(post(server.port, undefined, { method: "GET" }));
      expect(JSON.parse(await text(none.response))).to.include({ method: "GET", body: "" });
    } finally {
      await server.close();
    }
  });

  it("reuses its connections (keep-alive)", async () => {
    const sockets = new Set<unknown>();
    const server = await serve((req, res) => {
      sockets.add(req.socket);
      echo(req, res);
    });
    try {
      for (let i = 0; i < 5; i++) await text((await handler.handle(post(server.port, "{}"))).response);
      expect(sockets.size).to.equal(1);
    } finally {
      await server.close();
    }
  });

  it("gives up a call whose socket stays silent for the socket timeout, as a TimeoutError", async () => {
    const silent = new SdkHttpHandler({ ...options, socketTimeoutMs: 200 });
    const server = await serve(() => {}); // reads the request, never answers
    try {
      const started = performance.now();
      const error = await silent.handle(post(server.port, "{}")).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.name).to.equal("TimeoutError");
      expect(error?.message).to.match(/200 ms of inactivity/);
      expect(performance.now() - started).to.be.within(150, 1_500);
    } finally {
      silent.destroy();
      await server.close();
    }
  });

  it("names a reset connection a TimeoutError (transient for the SDK's retries), a refused one by its code", async () => {
    const server = await serve((req) => req.socket.destroy());
    try {
      const reset = await handler
        .handle(post(server.port, "{}"))
        .catch((e: unknown) => e as NodeJS.ErrnoException);
      expect(reset).to.include({ name: "TimeoutError", code: "ECONNRESET" });
    } finally {
      await server.close();
    }
    const closedPort = server.port; // nothing listens there any more
    const refused = await handler
      .handle(post(closedPort, "{}"))
      .catch((e: unknown) => e as NodeJS.ErrnoException);
    expect(refused).to.include({ code: "ECONNREFUSED" });
    expect((refused as Error).name).to.not.equal("TimeoutError");
  });

  it("honours the per-call abortSignal and requestTimeout options", async () => {
    const server = await serve(() => {});
    try {
      const controller = new AbortController();
      const aborted = handler.handle(post(server.port, "{}"), { abortSignal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      expect(await aborted.catch((e: unknown) => (e as Error).name)).to.equal("AbortError");
      const already = await handler
        .handle(post(server.port, "{}"), { abortSignal: AbortSignal.abort() })
        .catch((e: unknown) => (e as Error).name);
      expect(already).to.equal("AbortError");
      const timedOut = await handler
        .handle(post(server.port, "{}"), { requestTimeout: 100 })
        .catch((e: unknown) => e as Error);
      expect(timedOut).to.include({ name: "TimeoutError" });
      expect((timedOut as Error).message).to.match(/no answer within 100 ms/);
    } finally {
      await server.close();
    }
  });

  it("speaks HTTPS, trusting the process's default CA store (as AWS endpoints need)", async function () {
    this.timeout(30_000);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-tls-"));
    const defaults = tls.getCACertificates("default");
    try {
      const pki = await createPki(dir);
      const server = await serve(echo, {
        cert: await fs.readFile(pki.serving.cert),
        key: await fs.readFile(pki.serving.key),
      });
      try {
        const request = post(server.port, '{"secure":true}', { protocol: "https:" });
        // Untrusted first: the handler must verify the server's certificate.
        const untrusted = await handler.handle(request).catch((e: unknown) => e as NodeJS.ErrnoException);
        expect(untrusted)
          .to.have.property("code")
          .that.matches(/CERT|SIGNATURE|SIGNED/);
        tls.setDefaultCACertificates([...defaults, await fs.readFile(pki.ca.cert, "utf8")]);
        const trusting = new SdkHttpHandler(options); // agents take the CA store when made
        try {
          const { response } = await trusting.handle(request);
          expect(JSON.parse(await text(response)).body).to.equal('{"secure":true}');
        } finally {
          trusting.destroy();
        }
      } finally {
        await server.close();
      }
    } finally {
      tls.setDefaultCACertificates(defaults);
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
