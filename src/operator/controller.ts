/**
 * Workers that take keys from a {@link WorkQueue} and reconcile them, with controller-runtime's
 * rules for what happens after a reconcile:
 * - it returned `{ requeueAfterMs > 0 }`: the key's backoff is forgotten and it comes back after
 *   that delay (result `requeue_after`);
 * - it returned nothing (or no delay): the key's backoff is forgotten (result `success`);
 * - it threw a conflict (HTTP 409 from client-node's `ApiException`: our read was stale): retried
 *   rate-limited, whose first delay is the per-key base (5 ms), so at once, and logged at debug
 *   only, as cert-manager does: a conflict is the normal outcome of optimistic concurrency, not an
 *   error to page anyone about (result `requeue`). The backoff still grows if conflicts repeat;
 * - it threw anything else: logged as an error and retried with the key's exponential backoff
 *   under the queue's overall rate limit (result `error`).
 *
 * Invariant: the queue hands a key to one worker at a time, and every key a worker takes is `done`
 * in a `finally`, so a throwing reconcile can neither lose a key nor block it for ever.
 */
import { ApiException } from "@kubernetes/client-node";
import { getLogger, type Logger } from "../observability/logger.ts";
import type { ControllerMetrics, ReconcileResultLabel } from "./controller-metrics.ts";
import { describeApiError } from "./kube-call.ts";
import { splitKey, type WorkQueue } from "./work-queue.ts";

/** What a reconcile returns: nothing when done, or a delay after which to reconcile again. */
// biome-ignore lint/suspicious/noConfusingVoidType: a reconcile may simply return (or `return;`).
export type ReconcileResult = { requeueAfterMs?: number } | void;

/** Reconciles one key; `signal` aborts only when the workers are stopped with `abortInFlight`. */
export type Reconcile = (key: string, signal: AbortSignal) => Promise<ReconcileResult>;

export interface RunWorkersOptions {
  queue: WorkQueue;
  /** Number of reconciles that may run at once (distinct keys). */
  workers: number;
  reconcile: Reconcile;
  metrics?: ControllerMetrics;
  log?: Logger;
  /** Label of the metrics and logs (default: the queue's name). */
  name?: string;
}

export interface Workers {
  /**
   * Stops taking keys (shuts the queue down), waits for the reconciles in flight, resolves. With
   * `abortInFlight` their signal aborts first (a leader that lost its lease must stop writing).
   */
  stop(options?: { abortInFlight?: boolean }): Promise<void>;
  /** Resolves once every worker has ended (after `stop`, or when the queue was shut down). */
  readonly done: Promise<void>;
}

/** Whether `error` (or an error in its `cause` chain) is an HTTP 409 Conflict from the API. */
export function isConflict(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth += 1) {
    if (e instanceof ApiException && e.code === 409) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}

/** Starts `workers` loops taking keys from `queue` and reconciling them. */
export function runWorkers(options: RunWorkersOptions): Workers {
  const { queue, reconcile, metrics } = options;
  if (!Number.isInteger(options.workers) || options.workers < 1)
    throw new Error(`workers must be a positive integer, got ${options.workers}`);
  const name = options.name ?? queue.name;
  const log = options.log ?? getLogger("controller", { controller: name });
  const abort = new AbortController();

  const reconcileOne = async (key: string): Promise<void> => {
    const { namespace, name: objectName } = splitKey(key);
    const started = performance.now();
    let result: ReconcileResultLabel;
    metrics?.activeWorkers.inc({ controller: name });
    try {
      const outcome = await reconcile(key, abort.signal);
      const after = outcome?.requeueAfterMs;
      queue.forget(key);
      if (after !== undefined && after > 0) {
        queue.addAfter(key, after);
        result = "requeue_after";
      } else {
        result = "success";
      }
    } catch (error) {
      queue.addRateLimited(key);
      if (abort.signal.aborted) {
        result = "error";
        log.debug("reconcile aborted", { namespace, name: objectName, error: describeApiError(error) });
      } else if (isConflict(error)) {
        result = "requeue";
        log.debug("conflict: requeued", { namespace, name: objectName });
      } else if (error instanceof Error && error.name === "RetryLater") {
        // Something outside the cluster is not there yet (AWS refused, Redis down): the condition
        // says it; a warning per retry, with the growing backoff, is enough.
        result = "error";
        log.warn("reconcile will be retried", {
          namespace,
          name: objectName,
          error: error.message,
          retries: queue.numRequeues(key),
        });
      } else {
        result = "error";
        log.error("reconcile failed", {
          namespace,
          name: objectName,
          error: describeApiError(error),
          retries: queue.numRequeues(key),
        });
      }
    } finally {
      queue.done(key);
      metrics?.activeWorkers.dec({ controller: name });
    }
    const seconds = (performance.now() - started) / 1000;
    // Every reconcile, for `SFN_LOG_LEVEL=debug` (what controller-runtime logs at its verbose level).
    log.debug("reconciled", { namespace, name: objectName, result, durationMs: Math.round(seconds * 1000) });
    metrics?.reconciles.inc({ controller: name, result });
    metrics?.reconcileDuration.observe({ controller: name, result }, seconds);
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      await reconcileOne(key);
    }
  };

  const done = Promise.all(Array.from({ length: options.workers }, worker)).then(() => {});
  return {
    done,
    async stop(stopOptions = {}) {
      if (stopOptions.abortInFlight) abort.abort(new Error(`controller ${name} stopped`));
      queue.shutDown();
      await done;
    },
  };
}
