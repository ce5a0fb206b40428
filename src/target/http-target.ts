/**
 * The HTTP call to a target service: POST the task input, read the answer up to the output limit.
 * Its result is data for the outcome rules (outcome.ts); it never throws for what the target does.
 */
import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import axios, { type AxiosInstance } from "axios";
import { AWS_LIMITS } from "../api/defaults.ts";
import { VERSION } from "../version.ts";
import type { TargetResult } from "./outcome.ts";

const USER_AGENT = `sfn-operator/${VERSION}`;

/** Thrown into the request's signal when `requestTimeout` passes. */
class RequestTimeout extends Error {
  override name = "RequestTimeout";
}

export interface TargetRequest {
  /** The task input, sent as is. */
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /**
   * Aborts the call from outside (the task is gone at AWS). The result is then irrelevant;
   * callers check their own signal.
   */
  signal: AbortSignal;
}

export class HttpTarget {
  readonly url: string;
  readonly #client: AxiosInstance;

  /** `maxSockets`: the most calls this target gets at once from this process (its loops). */
  constructor(url: string, maxSockets: number) {
    this.url = url;
    const agentOptions = { keepAlive: true, maxSockets };
    this.#client = axios.create({
      httpAgent: new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
      // Every status is an answer for the outcome rules, not an exception.
      validateStatus: () => true,
      // A redirect of a POST would become a GET elsewhere: report it instead.
      maxRedirects: 0,
      responseType: "stream",
      // Send the input byte for byte; axios would otherwise re-serialise it.
      transformRequest: [(data: unknown) => data],
    });
  }

  async post(request: TargetRequest): Promise<TargetResult> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new RequestTimeout()), request.timeoutMs);
    const signal = AbortSignal.any([timeout.signal, request.signal]);
    try {
      const response = await this.#client.post<Readable>(this.url, request.body, {
        headers: { "content-type": "application/json", "user-agent": USER_AGENT, ...request.headers },
        signal,
      });
      const { body, truncated } = await readAtMost(response.data, AWS_LIMITS.outputBytes + 1, signal);
      return {
        kind: "response",
        status: response.status,
        statusText: response.statusText,
        headers: response.headers as Record<string, string | string[] | undefined>,
        body,
        bodyTruncated: truncated,
      };
    } catch (error) {
      if (timeout.signal.aborted) return { kind: "timeout", timeoutMs: request.timeoutMs };
      return { kind: "connection-error", ...describeConnectionError(error, request.signal) };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Reads a response stream up to `limit` bytes; stops (and discards the rest) past it. */
function readAtMost(
  stream: Readable,
  limit: number,
  signal: AbortSignal,
): Promise<{ body: Buffer; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onAbort = (): void => {
      stream.destroy();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    const finish = (truncated: boolean): void => {
      signal.removeEventListener("abort", onAbort);
      resolve({ body: Buffer.concat(chunks, Math.min(size, limit)), truncated });
    };
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) {
        stream.destroy();
        finish(true);
      }
    });
    stream.on("end", () => finish(false));
    stream.on("error", (error) => {
      signal.removeEventListener("abort", onAbort);
      if (size > limit) return; // destroyed on purpose after the limit
      reject(error);
    });
  });
}

function describeConnectionError(error: unknown, external: AbortSignal): { code: string; message: string } {
  if (external.aborted) return { code: "ABORTED", message: "the call was aborted" };
  const e = error as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
  const code =
    typeof e.code === "string" ? e.code : typeof e.cause?.code === "string" ? e.cause.code : "UNKNOWN";
  const message = typeof e.message === "string" && e.message ? e.message : "connection failed";
  return { code, message };
}
