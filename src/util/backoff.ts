/**
 * Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog):
 * the delay before retry n is uniform in [0, min(cap, base * 2^n)). Full jitter spreads retries of
 * many pollers that failed together (a Redis or AWS outage) so they do not come back in lockstep.
 *
 * The AWS SDK applies the same strategy to each API call; this one is for our own loops around it:
 * a poll that failed after the SDK's retries, a report that must still reach AWS.
 */
export interface BackoffOptions {
  /** Delay scale of the first retry, in ms. */
  baseMs: number;
  /** Upper bound of any delay, in ms. */
  capMs: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

/** The delay before retry number `attempt` (0 for the first retry). */
export function fullJitterDelay(attempt: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  // 2^attempt overflows to Infinity for large attempts; Math.min keeps the cap.
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * Tracks consecutive failures of one loop and hands out the next delay; `reset()` after a success so
 * the next failure starts small again.
 */
export class Backoff {
  readonly #options: BackoffOptions;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    this.#options = options;
  }

  /** The delay to wait now; each call counts one more consecutive failure. */
  next(): number {
    const delay = fullJitterDelay(this.#attempt, this.#options);
    this.#attempt += 1;
    return delay;
  }

  reset(): void {
    this.#attempt = 0;
  }

  get failures(): number {
    return this.#attempt;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects: callers check the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
