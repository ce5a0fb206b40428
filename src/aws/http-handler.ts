/**
 * The HTTP transport of our Step Functions clients: a smithy `HttpHandler` on `node:http` and
 * `node:https`, in place of the SDK's `NodeHttpHandler`.
 *
 * Why our own: the poller makes two SDK calls per task with an instant target, and
 * `NodeHttpHandler` cost about 10 µs of CPU per call more than this handler (64 loops of
 * GetActivityTask + SendTaskSuccess against the emulator, clients otherwise alike, measured in one
 * process with the two interleaved: medians of about 703 against 685 µs per task), 2 to 3% of the
 * poller's CPU per task. Per request it arms up to four timers (a socket-acquisition warning
 * and deferred connection, socket and keep-alive timers), registers several listeners and settles
 * through async wrappers. Here the socket idle timeout is the agent's (set once per socket), the
 * connection timeout is armed only while a new socket connects, and nothing else runs per
 * request.
 *
 * What `NodeHttpHandler` does for the SDK is kept:
 * - keep-alive agents with a socket limit;
 * - a connection timeout and a socket idle timeout, both failing with `name: "TimeoutError"`, as
 *   do ECONNRESET, EPIPE and ETIMEDOUT, which is what the SDK's retry strategy treats as transient;
 * - the per-call `abortSignal` (an `AbortError`) and `requestTimeout` options;
 * - bodies given as strings, bytes or streams; the response body is handed over as a stream.
 * Not supported: `Expect: 100-continue` (Step Functions requests never carry it) and HTTP/2.
 */
import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { buildQueryString, type HttpHandler, type HttpRequest, HttpResponse } from "@smithy/core/protocols";
import type { HttpHandlerOptions } from "@smithy/types";
import { abortErrorFor } from "../util/abort.ts";

const REQUEST_ABORTED = "the request was aborted";

/** Node's error codes that the SDK's retry strategy treats as transient when named TimeoutError. */
const TRANSIENT_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT"]);

export interface SdkHttpHandlerOptions {
  /** Concurrent connections per protocol (the agents' maxSockets). */
  maxSockets: number;
  /** How long a new connection may take to be established. */
  connectionTimeoutMs: number;
  /** How long a connection may stay silent, in a call or idle in the pool, before it is closed. */
  socketTimeoutMs: number;
}

type Answer = { response: HttpResponse };

export class SdkHttpHandler implements HttpHandler {
  readonly metadata = { handlerProtocol: "http/1.1" };
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;
  readonly #connectionTimeoutMs: number;
  readonly #socketTimeoutMs: number;

  constructor(options: SdkHttpHandlerOptions) {
    // `timeout` on the agent: each socket gets its idle timeout once, when it is created, instead
    // of a socket.setTimeout per request; the agent also closes pooled sockets that stay idle that
    // long, and a call whose socket times out gets a `timeout` event (handled below).
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets,
      timeout: options.socketTimeoutMs,
    };
    this.#httpAgent = new http.Agent(agentOptions);
    this.#httpsAgent = new https.Agent(agentOptions);
    this.#connectionTimeoutMs = options.connectionTimeoutMs;
    this.#socketTimeoutMs = options.socketTimeoutMs;
  }

  handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const signal = options.abortSignal as AbortSignal | undefined;
      if (signal?.aborted) {
        reject(abortErrorFor(signal, REQUEST_ABORTED));
        return;
      }
      const secure = request.protocol === "https:";
      const query = request.query ? buildQueryString(request.query) : "";
      let requestTimer: NodeJS.Timeout | undefined;
      const fail = (error: Error): void => {
        clearTimeout(requestTimer);
        reject(error);
      };
      const req = (secure ? https.request : http.request)(
        {
          agent: secure ? this.#httpsAgent : this.#httpAgent,
          // URL hostnames keep IPv6 brackets; the socket needs the bare address.
          host: request.hostname.startsWith("[") ? request.hostname.slice(1, -1) : request.hostname,
          port: request.port,
          method: request.method,
          path: `${request.path}${query ? `?${query}` : ""}${request.fragment ? `#${request.fragment}` : ""}`,
          headers: request.headers,
          auth:
            request.username || request.password
              ? `${request.username ?? ""}:${request.password ?? ""}`
              : undefined,
        },
        (res) => {
          clearTimeout(requestTimer);
          resolve({
            response: new HttpResponse({
              statusCode: res.statusCode ?? -1,
              reason: res.statusMessage,
              headers: flatHeaders(res.headers),
              body: res,
            }),
          });
        },
      );
      req.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code && TRANSIENT_CODES.has(error.code)) error.name = "TimeoutError";
        fail(error);
      });
      // The socket stayed silent for the agent's timeout: give the call up (and the socket).
      req.on("timeout", () => {
        req.destroy(timeoutError(`the socket timed out after ${this.#socketTimeoutMs} ms of inactivity`));
      });
      // Only a new connection can take long to set up; pooled sockets are already connected.
      req.on("socket", (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => {
          req.destroy(timeoutError(`no connection within ${this.#connectionTimeoutMs} ms`));
        }, this.#connectionTimeoutMs);
        const clear = (): void => {
          clearTimeout(timer);
          socket.off("connect", clear);
          socket.off("close", clear);
        };
        socket.once("connect", clear);
        socket.once("close", clear);
      });
      if (options.requestTimeout) {
        const ms = options.requestTimeout;
        requestTimer = setTimeout(() => req.destroy(timeoutError(`no answer within ${ms} ms`)), ms);
      }
      if (signal) {
        const onAbort = (): void => {
          req.destroy();
          fail(abortErrorFor(signal, REQUEST_ABORTED));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        req.once("close", () => signal.removeEventListener("abort", onAbort));
      }
      writeBody(req, request.body);
    });
  }

  /** The SDK hands over settings it has for the default handler (a logger, a socket timeout); ours are fixed at construction. */
  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}

function writeBody(req: http.ClientRequest, body: unknown): void {
  if (body === undefined || body === null) req.end();
  else if (typeof body === "string" || body instanceof Uint8Array) req.end(body);
  else if (body instanceof Readable) body.pipe(req);
  else req.destroy(new TypeError(`unsupported request body type: ${Object.prototype.toString.call(body)}`));
}

/** Node gives repeated headers (set-cookie) as arrays; the SDK expects one string per header. */
function flatHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(",") : value;
  }
  return flat;
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: "TimeoutError" });
}
