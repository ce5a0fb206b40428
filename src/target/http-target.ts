/**
 * The HTTP call to a target service: POST the task input, read the answer up to the output limit.
 * Its result is data for the outcome rules (outcome.ts); it never throws for what the target does.
 *
 * Written on `node:http`/`node:https` directly rather than axios: on the dispatch benchmark
 * (bench/, BENCHMARKS.md) an axios call cost about 200 µs of CPU against about 60 µs for the same
 * request made here, a fifth of the poller's whole CPU per task with an instant target. What axios
 * did for us is kept: every status is an answer, redirects are not followed, the body is sent byte
 * for byte, `HTTP(S)_PROXY`/`NO_PROXY` are honoured (the agents' `proxyEnv`, Node.js >= 24.5), and a
 * timeout or an abort covers the whole call, body included. Not kept: axios's `Accept` and
 * `Accept-Encoding: gzip, ...` headers (and decompression): the target answers uncompressed.
 */
import http from "node:http";
import https from "node:https";
import { urlToHttpOptions } from "node:url";
import { AWS_LIMITS } from "../api/defaults.ts";
import { VERSION } from "../version.ts";
import type { TargetResult } from "./outcome.ts";

const USER_AGENT = `sfn-operator/${VERSION}`;

/** Destroys the request when `requestTimeout` passes. */
class RequestTimeout extends Error {
  override name = "RequestTimeout";
}

/**
 * Lets a caller abandon a call from outside (the task is gone at AWS). It does what an AbortSignal
 * would, for one listener: one is made per task, and an AbortController with its event listeners
 * cost about 5 µs of CPU per task on the dispatch benchmark; this costs next to nothing.
 */
export class Abandonment {
  #abandoned = false;
  #reason = "";
  #listener: (() => void) | undefined;

  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** Why (for logs), once abandoned. */
  get reason(): string {
    return this.#reason;
  }

  abandon(reason: string): void {
    if (this.#abandoned) return;
    this.#abandoned = true;
    this.#reason = reason;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }

  /** Calls `listener` once when abandoned (at once if it already is); undefined detaches it. */
  listen(listener: (() => void) | undefined): void {
    if (listener && this.#abandoned) listener();
    else this.#listener = listener;
  }
}

export interface TargetRequest {
  /** The task input, sent as is. */
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Ends the call early when abandoned. The result is then irrelevant; callers check it themselves. */
  abandonment: Abandonment;
}

export class HttpTarget {
  readonly url: string;
  /** The request path, for causes ("POST /step/sum answered ..."). */
  readonly path: string;
  /** Everything of a request but its headers, made once (a URL argument is converted per call). */
  readonly #options: http.RequestOptions;
  readonly #request: typeof http.request;

  /** `maxSockets`: the most calls this target gets at once from this process (its loops). */
  constructor(url: string, maxSockets: number) {
    this.url = url;
    const parsed = new URL(url);
    this.path = parsed.pathname;
    const secure = parsed.protocol === "https:";
    // keepAliveMsecs: the TCP keep-alive probe delay axios used (60 s), so that sockets behave alike.
    const agentOptions = { keepAlive: true, keepAliveMsecs: 60_000, maxSockets, proxyEnv: process.env };
    // urlToHttpOptions: what http.request does with a URL (IPv6 brackets, credentials, default port).
    const { protocol, hostname, port, path, auth } = urlToHttpOptions(parsed);
    this.#options = {
      protocol,
      hostname,
      port,
      path,
      auth,
      method: "POST",
      agent: secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions),
    };
    this.#request = secure ? https.request : http.request;
  }

  post(request: TargetRequest): Promise<TargetResult> {
    return new Promise<TargetResult>((resolve) => {
      let settled = false;
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      let req: http.ClientRequest | undefined;
      const onAbort = (): void => {
        req?.destroy(new Error("the call was aborted"));
      };
      const finish = (result: TargetResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.abandonment.listen(undefined);
        resolve(result);
      };
      const fail = (error: unknown): void =>
        finish(
          timedOut
            ? { kind: "timeout", timeoutMs: request.timeoutMs }
            : { kind: "connection-error", ...describeConnectionError(error, request.abandonment) },
        );

      try {
        req = this.#request(
          {
            ...this.#options,
            headers: {
              "content-type": "application/json",
              "user-agent": USER_AGENT,
              ...request.headers,
              "content-length": Buffer.byteLength(request.body),
            },
          },
          (response) => {
            // Read up to one byte past the output limit: enough to know the body is too large.
            const limit = AWS_LIMITS.outputBytes + 1;
            const chunks: Buffer[] = [];
            let size = 0;
            const answer = (truncated: boolean): void =>
              finish({
                kind: "response",
                status: response.statusCode ?? 0,
                statusText: response.statusMessage ?? "",
                headers: response.headers,
                body: Buffer.concat(chunks, Math.min(size, limit)),
                bodyTruncated: truncated,
              });
            response.on("data", (chunk: Buffer) => {
              chunks.push(chunk);
              size += chunk.length;
              if (size > limit) {
                answer(true);
                response.destroy(); // discard the rest; the socket is not reused
              }
            });
            response.on("end", () => answer(false));
            response.on("error", fail);
            // A connection that closes mid-body may end the response without an error event.
            response.on("close", () => {
              if (!response.complete)
                fail(Object.assign(new Error("the connection closed mid-response"), { code: "ECONNRESET" }));
            });
          },
        );
      } catch (error) {
        // Thrown at once for a header value Node refuses; axios reported it as a failed call too.
        fail(error);
        return;
      }
      const call = req;
      call.on("error", fail);
      timer = setTimeout(() => {
        timedOut = true;
        call.destroy(new RequestTimeout(`no answer within ${request.timeoutMs} ms`));
      }, request.timeoutMs);
      request.abandonment.listen(onAbort);
      call.end(request.body);
    });
  }
}

function describeConnectionError(error: unknown, external: Abandonment): { code: string; message: string } {
  if (external.abandoned) return { code: "ABORTED", message: "the call was aborted" };
  const e = error as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
  const code =
    typeof e.code === "string" ? e.code : typeof e.cause?.code === "string" ? e.cause.code : "UNKNOWN";
  const message = typeof e.message === "string" && e.message ? e.message : "connection failed";
  return { code, message };
}
