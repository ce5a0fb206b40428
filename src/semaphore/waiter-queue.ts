/**
 * A first-come-first-served queue of callers waiting for a permit, each with an AbortSignal: an
 * aborted waiter leaves the queue at once and its promise rejects with an AbortError. Shared by the
 * in-process and the Redis semaphore.
 */
import { abortError } from "./semaphore.ts";

/** A queued caller; pass it back to `resolve`. */
export interface Waiter<T> {
  readonly signal: AbortSignal;
  /** Resolved, rejected or aborted. */
  settled: boolean;
  fulfil: (value: T) => void;
  fail: (error: Error) => void;
  onAbort: () => void;
}

export class WaiterQueue<T> {
  readonly #waiters: Waiter<T>[] = [];

  get length(): number {
    return this.#waiters.length;
  }

  /** Queues a caller; the promise settles through `resolve`, `rejectAll` or the signal. */
  wait(signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    return new Promise<T>((fulfil, fail) => {
      const waiter: Waiter<T> = {
        signal,
        settled: false,
        fulfil,
        fail,
        onAbort: () => {
          if (waiter.settled) return;
          waiter.settled = true;
          this.#remove(waiter);
          fail(abortError(signal));
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** The first `count` waiters, oldest first (still queued until resolved). */
  head(count: number): Waiter<T>[] {
    return this.#waiters.slice(0, count);
  }

  /**
   * Hands `value` to `waiter` and dequeues it. Returns false when the waiter has meanwhile been
   * aborted (the caller then still owns `value`, e.g. must give a permit back).
   */
  resolve(waiter: Waiter<T>, value: T): boolean {
    if (waiter.settled) return false;
    waiter.settled = true;
    this.#remove(waiter);
    waiter.signal.removeEventListener("abort", waiter.onAbort);
    waiter.fulfil(value);
    return true;
  }

  /** Rejects every waiter (the semaphore is closing). */
  rejectAll(message: string): void {
    for (const waiter of this.#waiters.splice(0)) {
      waiter.settled = true;
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      const error = new Error(message);
      error.name = "AbortError";
      waiter.fail(error);
    }
  }

  #remove(waiter: Waiter<T>): void {
    const index = this.#waiters.indexOf(waiter);
    if (index >= 0) this.#waiters.splice(index, 1);
  }
}
