/**
 * A deadline of our own for Kubernetes API calls: client-node sets none on ordinary requests, so a
 * call to an API server that accepted the connection and then hung would wait for ever (and with it
 * an informer's list, or a reconcile holding its key).
 */
import {
  type ConfigurationOptions,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from "@kubernetes/client-node";

/**
 * Runs `call` with a signal that aborts after `timeoutMs`, and rejects with a `TimeoutError` naming
 * `what` at that moment even if the call ignores its signal. Pass the signal on to client-node with
 * {@link signalOptions} so the request itself is aborted too.
 */
export function withTimeout<T>(
  what: string,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`${what} timed out after ${timeoutMs} ms`);
      error.name = "TimeoutError";
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  // An async wrapper, so that a call throwing synchronously still clears the timer.
  const result = (async () => call(controller.signal))();
  return Promise.race([result, deadline]).finally(() => clearTimeout(timer));
}

/**
 * client-node request options that abort the request when `signal` aborts (a middleware setting the
 * request's signal); combine with others as `setHeaderOptions` does, e.g.
 * `api.listNamespacedConfigMap({ namespace }, signalOptions(signal))`.
 */
export function signalOptions(
  signal: AbortSignal,
  options?: ConfigurationOptions<ObservableMiddleware>,
): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre: (context: RequestContext) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return {
    ...options,
    middleware: [...(options?.middleware ?? []), middleware],
    middlewareMergeStrategy: "append",
  };
}
