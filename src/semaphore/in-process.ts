/**
 * A counting semaphore for one process. It bounds concurrency only within this process: local mode
 * uses it when the sources file names no Redis, and says so in its log.
 */
import { abortError, checkLimit, type Permit, type Semaphore, type SemaphoreHealth } from "./semaphore.ts";
import { WaiterQueue } from "./waiter-queue.ts";

export class InProcessSemaphore implements Semaphore {
  #limit: number;
  #held = 0;
  readonly #waiters = new WaiterQueue<Permit>();

  constructor(limit: number) {
    this.#limit = checkLimit(limit);
  }

  acquire(signal: AbortSignal): Promise<Permit> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    if (this.#held < this.#limit && this.#waiters.length === 0) {
      this.#held += 1;
      return Promise.resolve(this.#newPermit());
    }
    return this.#waiters.wait(signal);
  }

  setLimit(limit: number): void {
    this.#limit = checkLimit(limit);
    this.#admitWaiters();
  }

  get limit(): number {
    return this.#limit;
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
    this.#waiters.rejectAll("semaphore closed");
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
    // Aborted waiters leave the queue synchronously, so the head is always a live waiter.
    for (const waiter of this.#waiters.head(Math.max(0, this.#limit - this.#held))) {
      this.#held += 1;
      this.#waiters.resolve(waiter, this.#newPermit());
    }
  }
}
