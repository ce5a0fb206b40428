/**
 * The contract between a poller and whatever bounds its concurrency. A loop acquires a permit BEFORE
 * it calls GetActivityTask and releases it after the task's outcome is reported, so the number of
 * tasks in flight (and of outstanding polls) never exceeds the limit.
 *
 * Implementations: `InProcessSemaphore` (one process, local mode without Redis) and the Redis-backed
 * distributed one, which makes the limit hold across every pod.
 */
import { abortErrorFor } from "../util/abort.ts";

export interface Permit {
  /** Gives the permit back. Idempotent; never rejects (a failed release is the lease TTL's to clean). */
  release(): Promise<void>;
}

export interface SemaphoreHealth {
  /** False while the semaphore cannot hand out permits safely (fail closed), with the reason. */
  ready: boolean;
  reason?: string;
}

export interface Semaphore {
  /**
   * Waits for a permit. Rejects with an `AbortError` when `signal` aborts first (shutdown); waiting
   * is event-driven, never a busy loop.
   */
  acquire(signal: AbortSignal): Promise<Permit>;
  /** Changes the limit without a restart; holders above a lowered limit finish normally. */
  setLimit(limit: number): void;
  /** The limit in force; 0 while none is known (no permit is handed out then: limit-gate.ts). */
  readonly limit: number;
  health(): SemaphoreHealth;
  /** Permits currently held through this instance. */
  held(): number;
  /** Loops currently waiting on this instance. */
  waiting(): number;
  close(): Promise<void>;
}

/** The error `acquire` rejects with when its signal aborts. */
export function abortError(signal: AbortSignal): Error {
  return abortErrorFor(signal, "waiting for a permit was aborted");
}

/** A semaphore limit: a positive integer. */
export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`);
  }
  return limit;
}
