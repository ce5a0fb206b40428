/**
 * Small real proxies on loopback for the AWS transport tests:
 *
 * - `ReverseProxy`: a plain `node:http` reverse proxy in front of one upstream (the emulator), as
 *   teams put in front of endpoints (or as a corporate gateway behaves). Like Node's own server it
 *   answers `Keep-Alive: timeout=5` and keeps client connections open that long; like many simple
 *   proxies, it does not cancel the upstream request when the client goes away (so a long poll the
 *   client gave up can still take a task at the emulator). Optionally terminates TLS, and can reset
 *   the first connections.
 * - `ForwardProxy`: an HTTP forward proxy: CONNECT tunnels (for https endpoints) and absolute-URI
 *   requests (for http endpoints), counting both; optionally requires Basic proxy authentication,
 *   or never answers CONNECT.
 */
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo } from "node:net";

export interface ProxiedRequest {
  target: string;
  /** 1 for the first request on its client connection, 2 for the next, ... */
  onConnection: number;
  startedAt: number;
  endedAt?: number;
  /** The client went away before the answer was written. */
  clientGone: boolean;
}

export interface ReverseProxyOptions {
  upstream: string;
  /** TLS key and certificate (PEM): serve https. */
  tls?: { key: Buffer; cert: Buffer };
  /** Destroy this many client connections as soon as their first request arrives. */
  resetConnections?: number;
}

export class ReverseProxy {
  readonly requests: ProxiedRequest[] = [];
  /** Client connections accepted. */
  connections = 0;
  port = 0;
  #server: http.Server | undefined;
  #resetsLeft: number;
  readonly #options: ReverseProxyOptions;
  readonly #upstreamAgent = new http.Agent({ keepAlive: true });

  constructor(options: ReverseProxyOptions) {
    this.#options = options;
    this.#resetsLeft = options.resetConnections ?? 0;
  }

  async start(): Promise<this> {
    const upstream = new URL(this.#options.upstream);
    const perConnection = new WeakMap<net.Socket, number>();
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const count = (perConnection.get(req.socket) ?? 0) + 1;
      perConnection.set(req.socket, count);
      if (this.#resetsLeft > 0) {
        this.#resetsLeft--;
        req.socket.destroy();
        return;
      }
      const record: ProxiedRequest = {
        target: String(req.headers["x-amz-target"] ?? req.url),
        onConnection: count,
        startedAt: performance.now(),
        clientGone: false,
      };
      this.requests.push(record);
      res.on("close", () => {
        if (!res.writableFinished) record.clientGone = true;
      });
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
          agent: this.#upstreamAgent,
        },
        (answer) => {
          const headers = { ...answer.headers };
          delete headers.connection;
          delete headers["keep-alive"];
          // What Node's own servers send (keepAliveTimeout 5 s); the client's agent then lowers the
          // pooled socket's timeout to 4 s (nodejs/node#53458).
          headers["keep-alive"] = "timeout=5";
          res.writeHead(answer.statusCode ?? 502, headers);
          answer.pipe(res);
          answer.on("end", () => {
            record.endedAt = performance.now();
          });
        },
      );
      forward.on("error", () => res.destroy());
      req.pipe(forward);
    };
    const server = this.#options.tls
      ? https.createServer({ ...this.#options.tls }, handler)
      : http.createServer(handler);
    server.keepAliveTimeout = 5_000;
    server.on(this.#options.tls ? "secureConnection" : "connection", () => {
      this.connections++;
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  url(host = "127.0.0.1"): string {
    return `${this.#options.tls ? "https" : "http"}://${host}:${this.port}`;
  }

  /** GetActivityTask requests seen so far. */
  polls(): ProxiedRequest[] {
    return this.requests.filter((r) => r.target === "AWSStepFunctions.GetActivityTask");
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
    this.#upstreamAgent.destroy();
  }
}

export interface ForwardProxyOptions {
  /** Require `Proxy-Authorization: Basic base64(user:password)`; 407 otherwise. */
  credentials?: { user: string; password: string };
  /** Accept CONNECT requests but never answer them. */
  stallConnect?: boolean;
}

export class ForwardProxy {
  /** `host:port` of every CONNECT tunnel opened. */
  readonly tunnels: string[] = [];
  /** Absolute URIs of every plain HTTP request forwarded. */
  readonly forwarded: string[] = [];
  /** Client connections accepted. */
  connections = 0;
  /** Requests refused with 407. */
  refused = 0;
  #server: http.Server | undefined;
  #port = 0;
  readonly #options: ForwardProxyOptions;
  readonly #open = new Set<net.Socket>();
  readonly #agent = new http.Agent({ keepAlive: true });

  constructor(options: ForwardProxyOptions = {}) {
    this.#options = options;
  }

  #authorized(req: http.IncomingMessage): boolean {
    const wanted = this.#options.credentials;
    if (!wanted) return true;
    const expected = `Basic ${Buffer.from(`${wanted.user}:${wanted.password}`).toString("base64")}`;
    return req.headers["proxy-authorization"] === expected;
  }

  async start(): Promise<this> {
    const server = http.createServer((req, res) => {
      if (!this.#authorized(req)) {
        this.refused++;
        res.writeHead(407, { "proxy-authenticate": 'Basic realm="test"' }).end();
        return;
      }
      const url = req.url ?? "";
      if (!/^https?:\/\//.test(url)) {
        res.writeHead(400).end("a forward proxy wants absolute URIs");
        return;
      }
      this.forwarded.push(url);
      const target = new URL(url);
      const headers = { ...req.headers };
      delete headers["proxy-authorization"];
      delete headers["proxy-connection"];
      const forward = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: target.pathname + target.search,
          headers,
          agent: this.#agent,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on("error", () => res.destroy());
      req.pipe(forward);
    });
    server.on("connection", (socket: net.Socket) => {
      this.connections++;
      this.#open.add(socket);
      socket.on("close", () => this.#open.delete(socket));
    });
    server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      if (this.#options.stallConnect) return;
      if (!this.#authorized(req)) {
        this.refused++;
        client.end(
          'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n',
        );
        return;
      }
      const [host, port] = (req.url ?? "").split(/:(?=\d+$)/);
      this.tunnels.push(req.url ?? "");
      const upstream = net.connect(Number(port), host === "localhost" ? "127.0.0.1" : host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      this.#open.add(upstream);
      upstream.on("close", () => this.#open.delete(upstream));
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#open) socket.destroy();
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
    this.#agent.destroy();
  }
}
