/**
 * The operator's work queue, with the semantics of client-go's `util/workqueue` rate-limited
 * delaying queue (what controller-runtime uses), keyed by `namespace/name` strings.
 *
 * Invariants (each is what keeps reconciling correct, not only fast):
 * - A key is handed to at most one worker at a time: from `get()` until `done(key)` it is in
 *   `processing`, and an `add` meanwhile only marks it dirty; `done` puts a dirty key back in the
 *   queue. So two reconciles of one object never race each other.
 * - A key waits in the queue at most once: adds of a key that is waiting (or dirty while processing)
 *   coalesce into that one entry. Ten events for one object while it waits make one reconcile.
 * - Keys are handed out in the order they were queued (FIFO).
 * - `addAfter(key, ms)`: the key is added once the delay is over; of several pending delays for one
 *   key the earliest wins, and a later one never postpones it.
 * - `addRateLimited(key)`: `addAfter` by the rate limiter's delay: per key `baseDelay * 2^failures`
 *   (capped), and an overall token bucket for all keys together; the larger of the two wins.
 *   `forget(key)` after a success starts the key's backoff over.
 * - After `shutDown()` nothing is added, nothing more is handed out (`get()` resolves `undefined`,
 *   also for the workers already waiting), pending delays are dropped. Unlike client-go, keys still
 *   waiting are not handed out any more: a stopping operator must stop taking work (it is
 *   level-triggered: the next leader lists everything anyway). `shutDownWithDrain()` also waits until
 *   every key handed out is `done`.
 *
 * Times are milliseconds from an injectable monotonic clock, so tests run on a fake one.
 */
import type { ControllerMetrics, InFlightSampler } from "./controller-metrics.ts";

/** A monotonic clock and its timers; injectable for tests. */
export interface Clock {
  /** Milliseconds, monotonic (not wall time). */
  now(): number;
  /** Calls `callback` after `ms`; returns a function that cancels it. */
  setTimer(callback: () => void, ms: number): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(callback, ms) {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  },
};

/** Decides how long a key waits before it is retried (client-go's `RateLimiter`). */
export interface RateLimiter {
  /** The delay for this retry of `key` (counts one more failure of it). */
  when(key: string): number;
  /** Stops tracking `key`: its next failure starts from the first delay again. */
  forget(key: string): void;
  /** Failures of `key` since it was last forgotten. */
  numRequeues(key: string): number;
}

/** Per-key exponential backoff: `baseMs * 2^failures`, at most `maxMs`. */
export class ItemExponentialRateLimiter implements RateLimiter {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly #failures = new Map<string, number>();

  constructor(baseMs: number, maxMs: number) {
    if (!(baseMs > 0) || !(maxMs >= baseMs))
      throw new Error(`backoff needs 0 < baseMs <= maxMs, got ${baseMs} and ${maxMs}`);
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    // 2^failures becomes Infinity for large counts; Math.min keeps the cap.
    return Math.min(this.maxMs, this.baseMs * 2 ** failures);
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

/**
 * An overall token bucket (golang.org/x/time/rate's reservations, as client-go's
 * `BucketRateLimiter`): `burst` retries at once, then `perSecond`. Every `when` takes a token, and
 * when none is left it reserves the next one in the future, so a storm of failures is spread out
 * instead of retried together.
 */
export class TokenBucketRateLimiter implements RateLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  constructor(perSecond: number, burst: number, clock: Clock = realClock) {
    if (!(perSecond > 0) || !(burst >= 1))
      throw new Error(`token bucket needs perSecond > 0 and burst >= 1, got ${perSecond} and ${burst}`);
    this.perSecond = perSecond;
    this.burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  when(_key: string): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.perSecond) / 1000);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.perSecond) * 1000;
  }

  forget(_key: string): void {}

  numRequeues(_key: string): number {
    return 0;
  }
}

/** The largest delay of several limiters (each is asked, so each counts the failure). */
export class MaxOfRateLimiter implements RateLimiter {
  readonly #limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.#limiters = limiters;
  }

  when(key: string): number {
    return this.#limiters.reduce((delay, limiter) => Math.max(delay, limiter.when(key)), 0);
  }

  forget(key: string): void {
    for (const limiter of this.#limiters) limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.#limiters.reduce((n, limiter) => Math.max(n, limiter.numRequeues(key)), 0);
  }
}

export interface RateLimiterOptions {
  /** First retry delay of a key, ms (default 5). */
  baseDelayMs?: number;
  /** Largest retry delay of a key, ms (default 1 000 000: about 16 minutes, as client-go). */
  maxDelayMs?: number;
  /** Overall retries per second once the burst is spent (default 10). */
  perSecond?: number;
  /** Overall retries allowed at once (default 100). */
  burst?: number;
}

/** client-go's `DefaultControllerRateLimiter`: max(per-key 5 ms..1000 s, bucket 10/s burst 100). */
export function defaultControllerRateLimiter(
  options: RateLimiterOptions = {},
  clock: Clock = realClock,
): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialRateLimiter(options.baseDelayMs ?? 5, options.maxDelayMs ?? 1_000_000),
    new TokenBucketRateLimiter(options.perSecond ?? 10, options.burst ?? 100, clock),
  );
}

/** The queue key of an object: `namespace/name`, or `name` for a cluster-scoped one. */
export function objectKey(object: { metadata?: { namespace?: string; name?: string } }): string {
  const name = object.metadata?.name ?? "";
  const namespace = object.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

/** The parts of a key made by {@link objectKey}. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf("/");
  return slash < 0
    ? { namespace: undefined, name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export interface WorkQueueOptions {
  /** Label of the queue's metrics (default "default"). */
  name?: string;
  /** Default: {@link defaultControllerRateLimiter} on the queue's clock. */
  rateLimiter?: RateLimiter;
  clock?: Clock;
  metrics?: ControllerMetrics;
}

/** Keys in FIFO order; shift is O(1) amortised (a plain array's shift is O(n)). */
class KeyFifo {
  #items: string[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(key: string): void {
    this.#items.push(key);
  }

  shift(): string | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const key = this.#items[this.#head];
    this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return key;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

interface Delayed {
  key: string;
  at: number;
}

/** A binary min-heap of delayed adds by time. */
class DelayHeap {
  readonly #items: Delayed[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Delayed | undefined {
    return this.#items[0];
  }

  push(entry: Delayed): void {
    const items = this.#items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as Delayed).at <= entry.at) break;
      items[i] = items[parent] as Delayed;
      i = parent;
    }
    items[i] = entry;
  }

  pop(): Delayed | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child =
        right < items.length && (items[right] as Delayed).at < (items[left] as Delayed).at ? right : left;
      if ((items[child] as Delayed).at >= last.at) break;
      items[i] = items[child] as Delayed;
      i = child;
    }
    items[i] = last;
    return top;
  }

  clear(): void {
    this.#items.length = 0;
  }
}

export class WorkQueue implements InFlightSampler {
  readonly name: string;
  readonly #clock: Clock;
  readonly #rateLimiter: RateLimiter;
  readonly #metrics: ControllerMetrics | undefined;
  /** Keys waiting for a worker; each is also in #dirty and not in #processing. */
  readonly #queue = new KeyFifo();
  /** Keys that need processing: waiting in #queue, or processing and to be re-queued on done. */
  readonly #dirty = new Set<string>();
  /** Keys handed to a worker and not done yet, with the time they were handed out. */
  readonly #processing = new Map<string, number>();
  /** When each dirty key was added (for the queue duration metric). */
  readonly #addedAt = new Map<string, number>();
  /** Workers waiting in get(), first come first served. */
  #waiters: Array<(key: string | undefined) => void> = [];
  /** Delayed adds: the earliest time of each key (the heap may hold stale, later entries). */
  readonly #delayed = new Map<string, number>();
  readonly #heap = new DelayHeap();
  #cancelTimer: (() => void) | undefined;
  #timerAt: number | undefined;
  #shuttingDown = false;
  #drainWaiters: Array<() => void> = [];

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name ?? "default";
    this.#clock = options.clock ?? realClock;
    this.#rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter({}, this.#clock);
    this.#metrics = options.metrics;
    this.#metrics?.addInFlightSampler(this);
    this.#updateDepth();
  }

  /** Marks `key` as needing processing (coalesced with a pending add of it). */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#addedAt.set(key, this.#clock.now());
    this.#metrics?.queueAdds.inc({ name: this.name });
    // A key being processed is re-queued by done(), never handed to a second worker.
    if (this.#processing.has(key)) return;
    this.#enqueue(key);
  }

  /** Adds `key` after `ms` (at once when `ms <= 0`); the earliest of pending delays wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = this.#clock.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending !== undefined && pending <= at) return;
    this.#delayed.set(key, at);
    this.#heap.push({ key, at });
    this.#schedule();
  }

  /** Adds `key` after its rate-limited delay (a failure: its backoff grows). */
  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    this.#metrics?.queueRetries.inc({ name: this.name });
    this.addAfter(key, this.#rateLimiter.when(key));
  }

  /** Starts `key`'s backoff over (call after it was processed successfully). */
  forget(key: string): void {
    this.#rateLimiter.forget(key);
  }

  /** Failures of `key` since it was last forgotten. */
  numRequeues(key: string): number {
    return this.#rateLimiter.numRequeues(key);
  }

  /**
   * The next key to process, waiting (without polling) until there is one; `undefined` once the
   * queue shuts down. The caller owns the key until it calls `done(key)`.
   */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    if (this.#waiters.length === 0 && this.#queue.length > 0) {
      return Promise.resolve(this.#handOut(this.#queue.shift() as string));
    }
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
    });
  }

  /** Ends the processing of `key`; a key added meanwhile goes back in the queue. */
  done(key: string): void {
    if (!this.#processing.delete(key)) return;
    if (this.#shuttingDown) {
      if (this.#processing.size === 0) this.#resolveDrain();
      return;
    }
    if (this.#dirty.has(key)) this.#enqueue(key);
  }

  /** Keys waiting for a worker (not counting delayed adds nor keys being processed). */
  len(): number {
    return this.#queue.length;
  }

  /** Keys handed out and not done yet. */
  processingCount(): number {
    return this.#processing.size;
  }

  /** Keys with a delayed add pending. */
  delayedCount(): number {
    return this.#delayed.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Stops the queue: no more adds, `get()` resolves `undefined`, waiting and delayed keys dropped. */
  shutDown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#timerAt = undefined;
    this.#delayed.clear();
    this.#heap.clear();
    this.#queue.clear();
    this.#dirty.clear();
    this.#addedAt.clear();
    this.#updateDepth();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter(undefined);
    if (this.#processing.size === 0) this.#resolveDrain();
  }

  /** {@link shutDown}, then resolves once every key handed out is `done`. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drainWaiters.push(resolve);
    });
  }

  inFlightSeconds(): number[] {
    const now = this.#clock.now();
    return [...this.#processing.values()].map((started) => (now - started) / 1000);
  }

  #enqueue(key: string): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      // The queue is empty whenever a worker waits, so handing the key over directly keeps FIFO.
      waiter(this.#handOut(key));
      return;
    }
    this.#queue.push(key);
    this.#updateDepth();
  }

  #handOut(key: string): string {
    const now = this.#clock.now();
    this.#processing.set(key, now);
    this.#dirty.delete(key);
    const added = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (added !== undefined) this.#metrics?.queueDuration.observe({ name: this.name }, (now - added) / 1000);
    this.#updateDepth();
    return key;
  }

  #updateDepth(): void {
    this.#metrics?.queueDepth.set({ name: this.name }, this.#queue.length);
  }

  #resolveDrain(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Keeps one timer, for the earliest pending delayed add. */
  #schedule(): void {
    let top = this.#heap.peek();
    while (top && this.#delayed.get(top.key) !== top.at) {
      this.#heap.pop();
      top = this.#heap.peek();
    }
    if (!top) {
      this.#cancelTimer?.();
      this.#cancelTimer = undefined;
      this.#timerAt = undefined;
      return;
    }
    if (this.#cancelTimer && this.#timerAt === top.at) return;
    this.#cancelTimer?.();
    this.#timerAt = top.at;
    this.#cancelTimer = this.#clock.setTimer(() => this.#fire(), Math.max(0, top.at - this.#clock.now()));
  }

  #fire(): void {
    this.#cancelTimer = undefined;
    this.#timerAt = undefined;
    if (this.#shuttingDown) return;
    const now = this.#clock.now();
    for (let top = this.#heap.peek(); top && top.at <= now; top = this.#heap.peek()) {
      this.#heap.pop();
      // Skip a stale entry: an earlier delay for this key replaced it, or it was already added.
      if (this.#delayed.get(top.key) !== top.at) continue;
      this.#delayed.delete(top.key);
      this.add(top.key);
    }
    this.#schedule();
  }
}
