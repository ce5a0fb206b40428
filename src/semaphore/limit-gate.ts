/**
 * A semaphore whose limit comes from outside (a poller started with SFN_LIMIT_FROM_REDIS: the
 * operator writes the limit to Redis, source-state.ts's LimitFollower reads it), and which hands out
 * no permit while no limit is known.
 *
 * Invariants:
 * - No permit while the limit is unknown: not before the first one is known (the real semaphore is
 *   only created then, with it: a semaphore needs a limit, and none is made up), and not while it is
 *   withheld later (the key went missing, or the connection dropped and the key was not read again).
 *   `acquire` waits at the gate; a permit the real semaphore grants to a loop that was already
 *   waiting inside it when the gate closed is given back, not returned; and `health()` is not ready
 *   while the gate is closed, which a poll loop checks between acquiring and polling.
 * - Nothing here counts permits: the real semaphore (the Redis one) keeps the limit, unchanged.
 *   Withholding does not touch the permits held: their tasks run on and are reported.
 */
import { abortError, checkLimit, type Permit, type Semaphore, type SemaphoreHealth } from "./semaphore.ts";
import { WaiterQueue } from "./waiter-queue.ts";

export class LimitGate implements Semaphore {
  readonly #create: (limit: number) => Semaphore;
  #inner: Semaphore | undefined;
  /** The limit in force; undefined while the gate is closed. */
  #limit: number | undefined;
  #reason: string;
  readonly #gate = new WaiterQueue<void>();
  #closed = false;

  /**
   * `create` makes the real semaphore with the first limit (it is called once); `reason` says why
   * the gate is closed until then.
   */
  constructor(create: (limit: number) => Semaphore, reason: string) {
    this.#create = create;
    this.#reason = reason;
  }

  async acquire(signal: AbortSignal): Promise<Permit> {
    for (;;) {
      if (signal.aborted) throw abortError(signal);
      if (this.#closed) throw new Error("semaphore closed");
      const inner = this.#limit !== undefined ? this.#inner : undefined;
      if (inner === undefined) {
        await this.#gate.wait(signal);
        continue;
      }
      const permit = await inner.acquire(signal);
      if (this.#limit !== undefined) return permit;
      // The gate closed while this loop waited inside: no permit to poll with.
      await permit.release();
    }
  }

  /** A known limit: the real semaphore takes it (made now if this is the first) and the gate opens. */
  setLimit(limit: number): void {
    checkLimit(limit);
    if (this.#closed) return;
    if (this.#inner) this.#inner.setLimit(limit);
    else this.#inner = this.#create(limit);
    this.#limit = limit;
    for (const waiter of this.#gate.head(this.#gate.length)) this.#gate.resolve(waiter, undefined);
  }

  /** No limit known any more: no new permit until setLimit. */
  withhold(reason: string): void {
    this.#limit = undefined;
    this.#reason = reason;
  }

  /** The limit in force; 0 while none is known. */
  get limit(): number {
    return this.#limit ?? 0;
  }

  health(): SemaphoreHealth {
    if (this.#closed) return { ready: false, reason: "semaphore closed" };
    // The real semaphore's problem first: Redis unreachable is the cause when both say no.
    const inner = this.#inner?.health();
    if (inner && !inner.ready) return inner;
    if (this.#limit === undefined) return { ready: false, reason: this.#reason };
    return inner ?? { ready: true };
  }

  held(): number {
    return this.#inner?.held() ?? 0;
  }

  waiting(): number {
    return this.#gate.length + (this.#inner?.waiting() ?? 0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#gate.rejectAll("semaphore closed");
    await this.#inner?.close();
  }
}
