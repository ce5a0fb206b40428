/**
 * The HTTP call to a target service: POST the task input, read the answer up to the output limit.
 * Its result is data for the outcome rules (outcome.ts); it never throws for what the target does.
 *
 * Made with axios, as the project's users asked (DESIGN.md "Dependencies asked for"), configured so
 * that nothing axios would do on its own changes what reaches the target or what we report:
 *
 * - every status is an answer (`validateStatus`), redirects are not followed (`maxRedirects: 0`, so
 *   axios uses node:http directly instead of follow-redirects): a 3xx is reported as `HTTP.3xx`;
 * - the body goes out byte for byte: a Buffer, and no `transformRequest` (axios's default trims a
 *   string that parses as JSON and re-encodes one that does not);
 * - the answer is read byte for byte: `responseType: "stream"`, no `transformResponse` (we validate
 *   the JSON ourselves), `decompress: false` and no `Accept-Encoding` (nor axios's `Accept`): the
 *   target answers uncompressed as it always has, and a body it compresses anyway is reported as the
 *   bytes it is (Target.InvalidOutput) rather than inflated without bound;
 * - the output cap is enforced while reading: at most `AWS_LIMITS.outputBytes + 1` bytes are kept,
 *   then the stream is destroyed (axios's `maxContentLength` would buffer or wrap the stream; off);
 * - `requestTimeout` covers the whole call, body included: our own timer aborts the call's signal.
 *   axios's `timeout` is not used, since it stops counting once the headers arrive;
 * - abandonment (the task is gone at AWS) aborts the same signal;
 * - HTTP(S)_PROXY / NO_PROXY are honoured by axios itself (`proxy` left unset: proxy-from-env, with
 *   NO_PROXY host, suffix, port and CIDR entries; CONNECT tunnels for https:// targets). Our agents
 *   are made without `proxyEnv`, so exactly one layer applies the proxy, on any Node.js version.
 *
 * Cost: an axios call takes more CPU than a bare node:http request (BENCHMARKS.md has the figures);
 * it is the price of the library the users asked for, small next to any real target's work.
 */
import http, { IncomingMessage } from "node:http";
import https from "node:https";
import type { AxiosInstance, AxiosResponse, CreateAxiosDefaults } from "axios";
import { AWS_LIMITS } from "../api/defaults.ts";
import { VERSION } from "../version.ts";
import type { TargetResult } from "./outcome.ts";

const USER_AGENT = `sfn-operator/${VERSION}`;

/**
 * Largest response head we accept. Node's default (16 KiB) refuses a `step-func-cause` header long
 * before the 32,768 characters Step Functions takes (up to 3 bytes each in UTF-8, ~96 KiB), and the
 * call would fail as a parse error instead of reporting the target's cause.
 */
export const MAX_RESPONSE_HEADER_BYTES = 128 * 1024;

/**
 * Lets a caller abandon a call from outside (the task is gone at AWS). The task runner makes one per
 * task whether or not it is ever used, so it is a plain object; the call turns it into the AbortSignal
 * axios takes, together with its timeout.
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
  /** Headers of this call (the task's); they win over the target's configured headers. */
  headers: Record<string, string>;
  timeoutMs: number;
  /** Ends the call early when abandoned. The result is then irrelevant; callers check it themselves. */
  abandonment: Abandonment;
}

/** Why the call's signal was aborted; decides what a failed call is reported as. */
type StopReason = "timeout" | "abandoned";

export class HttpTarget {
  readonly url: string;
  /** The request path, for causes ("POST /step/sum answered ..."). */
  readonly path: string;
  /** Names of the configured headers, for logs (their values are never logged). */
  readonly headerNames: readonly string[];
  readonly #config: CreateAxiosDefaults;
  /** Made at the first call: see `#axios`. */
  #client: Promise<AxiosInstance> | undefined;
  readonly #agent: http.Agent;
  /** User-Agent and the configured headers, encoded for the wire once. */
  readonly #headers: Record<string, string | false>;

  /**
   * `maxSockets`: the most calls this target gets at once from this process (its loops).
   * `headers`: sent with every call (configuration: API keys, tokens); validated by the config
   * parsers, which refuse names the poller sets itself.
   */
  constructor(url: string, maxSockets: number, headers: Readonly<Record<string, string>> = {}) {
    this.url = url;
    const parsed = new URL(url);
    this.path = parsed.pathname;
    this.headerNames = Object.keys(headers);
    // keepAliveMsecs: the TCP keep-alive probe delay axios sets on every socket too (60 s).
    const agentOptions = { keepAlive: true, keepAliveMsecs: 60_000, maxSockets };
    this.#agent = parsed.protocol === "https:" ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#headers = {
      // `false` keeps axios from adding its defaults (see the module comment). Configuration may set
      // User-Agent and Accept; not Accept-Encoding or Content-Type (the config parsers refuse them).
      "user-agent": USER_AGENT,
      accept: false,
      ...Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, toWire(value)])),
      "accept-encoding": false,
      "content-type": "application/json",
    };
    this.#config = {
      method: "POST",
      validateStatus: () => true,
      maxRedirects: 0,
      responseType: "stream",
      decompress: false,
      transformRequest: [],
      transformResponse: [],
      // Unlimited here: the reader below stops at the output limit itself and reports it.
      maxContentLength: -1,
      // Step Functions hands out inputs of at most 256 KiB; anything larger is not a task input.
      maxBodyLength: AWS_LIMITS.outputBytes,
      httpAgent: this.#agent,
      httpsAgent: this.#agent,
      // axios has no option for the head size: a transport is how to pass one to node:http(s).
      transport: {
        request: (options: https.RequestOptions, callback: (response: IncomingMessage) => void) =>
          (options.protocol === "https:" ? https : http).request(
            { ...options, maxHeaderSize: MAX_RESPONSE_HEADER_BYTES },
            callback,
          ),
      },
    };
  }

  /**
   * The axios client, loaded at the first call rather than at start-up: a poller that waits for
   * tasks, as most do most of the time, never holds the module in memory (BENCHMARKS.md, Memory).
   */
  #axios(): Promise<AxiosInstance> {
    this.#client ??= import("axios").then(({ default: axios }) => axios.create(this.#config));
    return this.#client;
  }

  async post(request: TargetRequest): Promise<TargetResult> {
    const client = await this.#axios();
    const controller = new AbortController();
    let stopped: StopReason | undefined;
    const stop = (reason: StopReason): void => {
      stopped ??= reason;
      controller.abort();
    };
    const timer = setTimeout(() => stop("timeout"), request.timeoutMs);
    request.abandonment.listen(() => stop("abandoned"));
    try {
      const response = await client.request<unknown>({
        url: this.url,
        data: Buffer.from(request.body, "utf8"),
        // Task headers last: what the poller sets cannot be overridden by configuration.
        headers: { ...this.#headers, ...request.headers },
        signal: controller.signal,
      });
      return await readAnswer(response, controller.signal);
    } catch (error) {
      if (stopped === "timeout") return { kind: "timeout", timeoutMs: request.timeoutMs };
      if (stopped === "abandoned")
        return { kind: "connection-error", code: "ABORTED", message: "the call was aborted" };
      return { kind: "connection-error", ...describeConnectionError(error) };
    } finally {
      clearTimeout(timer);
      request.abandonment.listen(undefined);
    }
  }

  /** Closes idle kept-alive connections (for tests and shutdown). */
  destroy(): void {
    this.#agent.destroy();
  }
}

/**
 * A configured value as the bytes to send: UTF-8. Node writes header strings one byte per character
 * (Latin-1), and axios drops characters above U+00FF, so a non-ASCII value is handed over as its
 * UTF-8 bytes, one character each (the same encoding targets are read with, outcome.ts headerText).
 */
function toWire(value: string): string {
  return /^[\x20-\x7e\t]*$/.test(value) ? value : Buffer.from(value, "utf8").toString("latin1");
}

/** Reads the answer's body up to one byte past the output limit: enough to know it is too large. */
async function readAnswer(response: AxiosResponse<unknown>, signal: AbortSignal): Promise<TargetResult> {
  const stream = response.data;
  if (!(stream instanceof IncomingMessage)) {
    // Cannot happen with the options above (no decompression, progress or length wrapper).
    throw new TypeError("axios did not hand over the response stream");
  }
  const limit = AWS_LIMITS.outputBytes + 1;
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  // axios destroys the stream on abort too, but only while its own listener is attached.
  const onAbort = (): void => {
    stream.destroy(new Error("the call was aborted"));
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of stream) {
      const buffer = chunk as Buffer;
      chunks.push(buffer);
      size += buffer.length;
      if (size > limit) {
        truncated = true;
        break; // leaving the loop destroys the stream: the rest is discarded, the socket not reused
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  return {
    kind: "response",
    status: response.status,
    statusText: response.statusText ?? "",
    // Node's own header object: values as received, one character per byte (see headerText).
    headers: stream.headers,
    body: Buffer.concat(chunks, Math.min(size, limit)),
    bodyTruncated: truncated,
  };
}

/**
 * The code and message of a failed call. axios copies the system error's code (ECONNREFUSED,
 * ECONNRESET, ENOTFOUND, ...) onto its AxiosError; a connection that closes in the middle of a body
 * ends the stream with ECONNRESET ("aborted") or, if it closes without an error, as a premature close,
 * which is the same thing to the caller: a reset. Our timeout and abandonment never get here (post()
 * answers them from its own flag), so axios's ECONNABORTED / ETIMEDOUT (its `timeout`, unused) and
 * ERR_CANCELED (the signal) can only come from the OS or a bug and are reported as they are.
 */
function describeConnectionError(error: unknown): { code: string; message: string } {
  const e = error as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
  let code =
    typeof e.code === "string" ? e.code : typeof e.cause?.code === "string" ? e.cause.code : "UNKNOWN";
  if (code === "ERR_STREAM_PREMATURE_CLOSE") code = "ECONNRESET";
  const message = typeof e.message === "string" && e.message ? e.message : "connection failed";
  return { code, message };
}
