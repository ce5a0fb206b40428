/**
 * A timeout of our own on each Kubernetes API call. client-node 2.x sets none: a request to an API
 * server that stopped answering (or over a half-open connection) would wait for ever.
 *
 * How: the generated clients take per-call `ConfigurationOptions` whose middleware run on the
 * `RequestContext` before it is sent, and `RequestContext.setSignal()` hands an AbortSignal to
 * fetch (undici), which aborts the request and closes its connection. The call is also raced against
 * the timer, so the caller is answered on time even by a transport that ignored the signal.
 */
import {
  ApiException,
  type ConfigurationOptions,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from "@kubernetes/client-node";

import { describeError } from "../observability/logger.ts";

/**
 * A short description of a Kubernetes API error: status and message, never a whole response
 * (client-node's ApiException message holds the body and every header, over several lines). The
 * message is what tells the user what to fix ("deployments.apps is forbidden: User ... cannot list
 * ..."); client-node's typed calls put the Status in the ApiException's body as JSON text for any
 * code they do not know (403 among them), as an object otherwise.
 */
export function describeApiError(error: unknown): string {
  if (error instanceof ApiException) {
    let body: unknown = error.body;
    if (typeof body === "string") {
      try {
        body = JSON.parse(body);
      } catch {
        body = undefined;
      }
    }
    const message = (body as { message?: unknown } | undefined)?.message;
    return `HTTP ${error.code}${typeof message === "string" && message ? `: ${message}` : ""}`;
  }
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode;
  const cause = error instanceof Error && error.cause !== undefined ? `: ${describeError(error.cause)}` : "";
  return `${typeof status === "number" ? `HTTP ${status} ` : ""}${describeError(error)}${cause}`;
}

/** The timer functions used (a fake clock's in tests). */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class KubeCallTimeoutError extends Error {
  override readonly name = "KubeCallTimeoutError";
  constructor(what: string, timeoutMs: number) {
    super(`${what}: no answer from the API server within ${timeoutMs} ms`);
  }
}

/**
 * Per-call options that attach `signal` to the request, added to `options` (combine with
 * `setHeaderOptions` the same way). The middleware is appended, so the client's own (the User-Agent
 * header) still runs. The object-parameter API (what `makeApiClient` returns) runs Observable-style
 * middleware (client-node's own small Observable, not rxjs).
 */
export function signalOptions(
  signal: AbortSignal,
  options?: ConfigurationOptions<ObservableMiddleware>,
): ConfigurationOptions<ObservableMiddleware> {
  const attachSignal: ObservableMiddleware = {
    pre: (context: RequestContext) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
  };
  return {
    ...options,
    middleware: [...(options?.middleware ?? []), attachSignal],
    middlewareMergeStrategy: "append",
  };
}

/**
 * Runs `call` with a signal that aborts after `timeoutMs`, and rejects with a
 * {@link KubeCallTimeoutError} naming `what` at that moment even if the call ignores its signal.
 * For calls that are not a single request (an informer's list function), or that pass the signal on
 * themselves with {@link signalOptions}.
 */
export async function withDeadline<T>(
  what: string,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
  timers: Timers = realTimers,
): Promise<T> {
  const controller = new AbortController();
  let timer: unknown;
  const timedOut = new Promise<never>((_, reject) => {
    timer = timers.setTimeout(() => {
      const error = new KubeCallTimeoutError(what, timeoutMs);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  const answer = Promise.resolve().then(() => call(controller.signal));
  // After a timeout the aborted request still rejects; that failure is already reported.
  answer.catch(() => {});
  try {
    return await Promise.race([answer, timedOut]);
  } finally {
    timers.clearTimeout(timer);
  }
}

/**
 * Runs `call` (one API request, given the options to pass to it) with a timeout: after `timeoutMs`
 * the request is aborted and the promise rejects with a {@link KubeCallTimeoutError} naming `what`.
 * Example: `withTimeout("read Lease ns/x", 5000, (o) => api.readNamespacedLease({ name, namespace }, o))`.
 */
export function withTimeout<T>(
  what: string,
  timeoutMs: number,
  call: (options: ConfigurationOptions) => Promise<T>,
  timers: Timers = realTimers,
): Promise<T> {
  return withDeadline(what, timeoutMs, (signal) => call(signalOptions(signal)), timers);
}
