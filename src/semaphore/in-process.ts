/**
 * A counting semaphore for one process. It bounds concurrency only within this process: local mode
 * uses it when the sources file names no Redis, and says so in its log.
 */
import { abortError, type Permit, type Semaphore, type SemaphoreHealth } from "./semaphore.ts";

interface Waiter {
  resolve: (permit: Permit) => void;
  reject: (error: Error) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

export class InProcessSemaphore implements Semaphore {
  #limit: number;
  #held = 0;
  readonly #waiters: Waiter[] = [];

  constructor(limit: number) {
    this.#limit = checkLimit(limit);
  }

  acquire(signal: AbortSignal): Promise<Permit> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    if (this.#held < this.#limit && this.#waiters.length === 0) {
      this.#held += 1;
      return Promise.resolve(this.#newPermit());
    }
    return new Promise<Permit>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.#removeWaiter(waiter);
          reject(abortError(signal));
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  setLimit(limit: number): void {
    this.#limit = checkLimit(limit);
    this.#admitWaiters();
  }

  health(): SemaphoreHealth {
    return { ready: true };
  }

  held(): number {
    return this.#held;
  }

  waiting(): number {
    return this.#waiters.length;
  }

  async close(): Promise<void> {
    for (const waiter of this.#waiters.splice(0)) {
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      const error = new Error("semaphore closed");
      error.name = "AbortError";
      waiter.reject(error);
    }
  }

  #newPermit(): Permit {
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        this.#held -= 1;
        this.#admitWaiters();
      },
    };
  }

  #admitWaiters(): void {
    while (this.#held < this.#limit && this.#waiters.length > 0) {
      const waiter = this.#waiters.shift() as Waiter;
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      this.#held += 1;
      waiter.resolve(this.#newPermit());
    }
  }

  #removeWaiter(waiter: Waiter): void {
    const index = this.#waiters.indexOf(waiter);
    if (index >= 0) this.#waiters.splice(index, 1);
  }
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`);
  return limit;
}
