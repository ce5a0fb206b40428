/**
 * Long polls waiting for a task, first come first served per activity, as GetActivityTask does at
 * AWS. Each waiter ends exactly once: with a value when something is handed to it, or with
 * `undefined` when its long-poll window ends or the emulator closes.
 */

/** One waiting long poll. */
export interface Waiter<T> {
  readonly key: string;
  readonly workerName: string | undefined;
  /** Settles with the handed-out value, or undefined when the poll ends empty. */
  readonly result: Promise<T | undefined>;
  /** Set when the poll's client went away before the answer (the poll may still get a task). */
  disconnected: boolean;
}

interface Entry<T> {
  waiter: Waiter<T>;
  settle: (value: T | undefined) => void;
  timer: NodeJS.Timeout;
}

/** The waiting long polls of all activities. */
export class WaiterQueues<T> {
  readonly #queues = new Map<string, Entry<T>[]>();

  /** Start waiting on `key` for at most `timeoutMs`. */
  add(key: string, workerName: string | undefined, timeoutMs: number): Waiter<T> {
    let settle: (value: T | undefined) => void = () => {};
    const result = new Promise<T | undefined>((resolve) => {
      settle = resolve;
    });
    const waiter: Waiter<T> = { key, workerName, result, disconnected: false };
    const entry: Entry<T> = {
      waiter,
      settle,
      timer: setTimeout(() => this.#end(entry, undefined), timeoutMs),
    };
    const queue = this.#queues.get(key) ?? [];
    queue.push(entry);
    this.#queues.set(key, queue);
    return waiter;
  }

  /**
   * Hand `value` to the longest-waiting poll on `key` and return that poll; undefined when nobody
   * waits. Polls whose client went away are skipped when `skipDisconnected` is set, and receive the
   * value otherwise.
   */
  handOut(key: string, value: T, skipDisconnected: boolean): Waiter<T> | undefined {
    for (const entry of this.#queues.get(key) ?? []) {
      if (skipDisconnected && entry.waiter.disconnected) continue;
      this.#end(entry, value);
      return entry.waiter;
    }
    return undefined;
  }

  /** Stop waiting with an empty answer (the poll's client left and must not receive tasks). */
  cancel(waiter: Waiter<T>): void {
    const entry = this.#queues.get(waiter.key)?.find((candidate) => candidate.waiter === waiter);
    if (entry) this.#end(entry, undefined);
  }

  /** Polls waiting on `key`. */
  count(key: string): number {
    return this.#queues.get(key)?.length ?? 0;
  }

  /** Polls waiting, per key (keys with none are left out). */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [key, queue] of this.#queues) counts[key] = queue.length;
    return counts;
  }

  /** End the polls on `key` (all keys when absent) with empty answers. */
  endAll(key?: string): void {
    const keys = key === undefined ? [...this.#queues.keys()] : [key];
    for (const k of keys) {
      for (const entry of [...(this.#queues.get(k) ?? [])]) this.#end(entry, undefined);
    }
  }

  #end(entry: Entry<T>, value: T | undefined): void {
    clearTimeout(entry.timer);
    const queue = this.#queues.get(entry.waiter.key);
    if (queue) {
      const index = queue.indexOf(entry);
      if (index >= 0) queue.splice(index, 1);
      if (queue.length === 0) this.#queues.delete(entry.waiter.key);
    }
    entry.settle(value);
  }
}
