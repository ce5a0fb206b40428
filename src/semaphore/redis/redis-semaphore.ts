/**
 * A counting semaphore shared by every process that uses the same Redis and activity: the one that
 * makes `maxConcurrency` hold across all poller pods.
 *
 * Why our own and not the `redis-semaphore` package: it scores leases with client clocks (skewed
 * pods break the limit), waits by polling Redis at a fixed interval (latency and load), and its
 * refresh failures surface as unhandled errors. Here:
 *
 * - A permit is a lease (sorted-set member, score = expiry in Redis server time), refreshed every
 *   `leaseTtl / 3` for all permits of the process in one call. A crashed holder's permits come back
 *   when its leases expire.
 * - Acquire, refresh and release are atomic Lua scripts (scripts.ts). The limit is an argument of
 *   acquire, so `setLimit` applies at the next acquisition; holders above a lowered limit finish.
 * - Waiting is event-driven: a release publishes on a channel and waiters in every process try at
 *   once; a timer re-checks when the earliest lease could expire (crashed holders publish nothing)
 *   and at least every `recheckMs`, so a lost message costs little. Waiters of one process are
 *   served first come first served, in batches (one script call can grant several permits).
 * - Fail closed: no new permit while Redis is unreachable, while any held lease has not been
 *   confirmed within its TTL, or while a lease that was lost (and could not be taken again) is still
 *   held by a running task. After a reconnect, held leases are re-registered at once and new
 *   acquisitions wait `reconnectGraceMs`, so that every process's running tasks are counted again
 *   before anyone takes more (Redis restarted without persistence loses all leases).
 * - Every Redis failure is caught and counted; none becomes an unhandled rejection.
 */
import { randomUUID } from "node:crypto";
import { describeError, getLogger, type Logger } from "../../observability/logger.ts";
import { abortError, checkLimit, type Permit, type Semaphore, type SemaphoreHealth } from "../semaphore.ts";
import { WaiterQueue } from "../waiter-queue.ts";
import { LuaScript, type RedisConnection } from "./connection.ts";
import { type SemaphoreKeys, semaphoreKeys } from "./keys.ts";
import { ACQUIRE, REFRESH, RELEASE, TRANSFER } from "./scripts.ts";

const acquireScript = new LuaScript(ACQUIRE);
const refreshScript = new LuaScript(REFRESH);
const releaseScript = new LuaScript(RELEASE);
const transferScript = new LuaScript(TRANSFER);

/** Defaults, documented in the README. */
export const DEFAULT_LEASE_TTL_MS = 15_000;
export const DEFAULT_RECHECK_MS = 1_000;
export const DEFAULT_RECONNECT_GRACE_MS = 2_000;

export interface RedisSemaphoreOptions {
  connection: RedisConnection;
  /** Identifies the semaphore: every poller of the activity shares it. */
  activityArn: string;
  limit: number;
  /** Name for logs (the source). */
  name?: string;
  /** Prefix of the permit ids (the worker name), so `ZRANGE` shows which pod holds what. */
  holderName?: string;
  leaseTtlMs?: number;
  recheckMs?: number;
  reconnectGraceMs?: number;
  /** Called with the number of leases found lost by a refresh. */
  onLeasesLost?: (count: number) => void;
}

interface Lease {
  id: string;
  /** Monotonic time of the last grant or refresh Redis confirmed. */
  confirmedAt: number;
  /** Redis no longer counts it and there was no room to take it again. */
  lost: boolean;
}

export class RedisSemaphore implements Semaphore {
  readonly keys: SemaphoreKeys;
  readonly #connection: RedisConnection;
  readonly #ttlMs: number;
  readonly #recheckMs: number;
  readonly #graceMs: number;
  readonly #holderName: string;
  readonly #publisherId = randomUUID();
  readonly #onLeasesLost: ((count: number) => void) | undefined;
  readonly #log: Logger;
  readonly #waiters = new WaiterQueue<Permit>();
  readonly #held = new Map<string, Lease>();
  /** Releases that could not reach Redis; sent again when it is back (else their TTL cleans up). */
  readonly #pendingReleases = new Set<string>();
  readonly #unsubscribe: Array<() => void> = [];
  #limit: number;
  #pumping = false;
  #pumpAgain = false;
  #recheckTimer: NodeJS.Timeout | undefined;
  #recheckAt = Number.POSITIVE_INFINITY;
  #refreshTimer: NodeJS.Timeout | undefined;
  #graceUntil = 0;
  #everReady: boolean;
  #closed = false;

  constructor(options: RedisSemaphoreOptions) {
    this.#connection = options.connection;
    this.keys = semaphoreKeys(options.activityArn);
    this.#limit = checkLimit(options.limit);
    this.#ttlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.#recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
    this.#graceMs = options.reconnectGraceMs ?? DEFAULT_RECONNECT_GRACE_MS;
    this.#holderName = options.holderName ?? "holder";
    this.#onLeasesLost = options.onLeasesLost;
    this.#log = getLogger("semaphore", { source: options.name ?? options.activityArn });
    this.#everReady = this.#connection.ready;

    this.#unsubscribe.push(
      this.#connection.subscribe(this.keys.released, (publisher) => {
        if (publisher !== this.#publisherId) void this.#pump();
      }),
      this.#connection.onReady(() => this.#onReconnect()),
      this.#connection.onDown(() => this.#scheduleRecheck(this.#recheckMs)),
    );
    this.#refreshTimer = setInterval(() => void this.#refresh(), Math.max(50, Math.floor(this.#ttlMs / 3)));
    this.#refreshTimer.unref();
  }

  acquire(signal: AbortSignal): Promise<Permit> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    if (this.#closed) return Promise.reject(new Error("semaphore closed"));
    const permit = this.#waiters.wait(signal);
    void this.#pump();
    return permit;
  }

  setLimit(limit: number): void {
    const previous = this.#limit;
    this.#limit = checkLimit(limit);
    if (previous !== limit) this.#log.info("limit changed", { from: previous, to: limit });
    void this.#pump();
  }

  get limit(): number {
    return this.#limit;
  }

  health(): SemaphoreHealth {
    const reason = this.#blockedReason();
    return reason ? { ready: false, reason } : { ready: true };
  }

  held(): number {
    return this.#held.size;
  }

  waiting(): number {
    return this.#waiters.length;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#refreshTimer);
    clearTimeout(this.#recheckTimer);
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#waiters.rejectAll("semaphore closed");
    const leftovers = [...this.#held.keys(), ...this.#pendingReleases];
    this.#held.clear();
    this.#pendingReleases.clear();
    if (leftovers.length > 0) await this.#releaseIds(leftovers);
  }

  /** Why no permit can be handed out right now, if anything blocks it. */
  #blockedReason(): string | undefined {
    if (this.#closed) return "semaphore closed";
    const problem = this.#connection.problem;
    if (problem) return problem;
    const lost = [...this.#held.values()].filter((lease) => lease.lost).length;
    if (lost > 0) return `${lost} lease(s) lost while their tasks run; waiting for them to finish`;
    const now = performance.now();
    if ([...this.#held.values()].some((lease) => now - lease.confirmedAt > this.#ttlMs)) {
      return "leases not confirmed by Redis within their TTL";
    }
    if (now < this.#graceUntil) return "re-registering leases after reconnecting to Redis";
    return undefined;
  }

  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        while (this.#waiters.length > 0 && !this.#closed) {
          if (this.#blockedReason()) {
            const graceLeft = this.#graceUntil - performance.now();
            this.#scheduleRecheck(graceLeft > 0 ? graceLeft + 1 : this.#recheckMs);
            break;
          }
          const batch = this.#waiters.head(this.#limit);
          const ids = batch.map(() => this.#newId());
          const [granted, earliestExpiryMs] = (await acquireScript.run(
            this.#connection.client,
            [this.keys.holders],
            [this.#limit, this.#ttlMs, ...ids],
          )) as [number, number];
          const confirmedAt = performance.now();
          const orphans: string[] = [];
          for (let i = 0; i < granted; i++) {
            const id = ids[i] as string;
            this.#held.set(id, { id, confirmedAt, lost: false });
            // A waiter aborted while the script ran leaves its permit to be given back.
            if (!this.#waiters.resolve(batch[i] as (typeof batch)[number], this.#permit(id))) {
              this.#held.delete(id);
              orphans.push(id);
            }
          }
          if (orphans.length > 0) await this.#releaseIds(orphans);
          if (granted < batch.length) {
            this.#scheduleRecheck(earliestExpiryMs >= 0 ? earliestExpiryMs + 5 : this.#recheckMs);
            break;
          }
        }
      } while (this.#pumpAgain && !this.#closed);
    } catch (error) {
      this.#connection.recordError("acquire", error);
      this.#log.debug("acquire failed; will retry", { error: describeError(error) });
      this.#scheduleRecheck(this.#recheckMs);
    } finally {
      this.#pumping = false;
    }
  }

  #permit(id: string): Permit {
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        this.#held.delete(id);
        const next = this.#blockedReason() ? undefined : this.#waiters.head(1)[0];
        if (next && (await this.#transfer(id, next))) return;
        await this.#releaseIds([id]);
        void this.#pump();
      },
    };
  }

  /**
   * Gives a released permit straight to a local waiter (one round trip instead of a release and an
   * acquire). Returns false when it could not (Redis refused for the limit, or failed); the caller
   * then releases as usual. A process with waiters of its own thus serves them first; other
   * processes get permits when it has none waiting.
   */
  async #transfer(id: string, waiter: Parameters<WaiterQueue<Permit>["resolve"]>[0]): Promise<boolean> {
    const nextId = this.#newId();
    let moved: unknown;
    try {
      moved = await transferScript.run(
        this.#connection.client,
        [this.keys.holders],
        [this.#limit, this.#ttlMs, this.keys.released, this.#publisherId, id, nextId],
      );
    } catch (error) {
      this.#connection.recordError("release", error);
      return false;
    }
    if (moved !== 1) return true; // released (and announced) by the script
    this.#held.set(nextId, { id: nextId, confirmedAt: performance.now(), lost: false });
    if (!this.#waiters.resolve(waiter, this.#permit(nextId))) {
      // The waiter was served by the pump or aborted meanwhile: give the new lease back.
      this.#held.delete(nextId);
      await this.#releaseIds([nextId]);
      void this.#pump();
    }
    // A hand-over frees no capacity: no pump (it would only try, and fail, to acquire).
    return true;
  }

  #newId(): string {
    return `${this.#holderName}:${randomUUID()}`;
  }

  async #releaseIds(ids: string[]): Promise<void> {
    try {
      await releaseScript.run(
        this.#connection.client,
        [this.keys.holders],
        [this.keys.released, this.#publisherId, ...ids],
      );
      for (const id of ids) this.#pendingReleases.delete(id);
    } catch (error) {
      for (const id of ids) this.#pendingReleases.add(id);
      this.#connection.recordError("release", error);
    }
  }

  async #refresh(): Promise<void> {
    if (this.#closed || !this.#connection.ready) return;
    if (this.#pendingReleases.size > 0) await this.#releaseIds([...this.#pendingReleases]);
    const leases = [...this.#held.values()];
    if (leases.length === 0) return;
    try {
      const started = performance.now();
      const result = (await refreshScript.run(
        this.#connection.client,
        [this.keys.holders],
        [this.#limit, this.#ttlMs, ...leases.map((lease) => lease.id)],
      )) as [number, ...string[]];
      const [reacquiredCount, ...rest] = result;
      const reacquired = rest.slice(0, reacquiredCount);
      const lostIds = rest.slice(reacquiredCount);
      // A lease released while this refresh was on its way was re-taken by it: give it back.
      const stale = reacquired.filter((id) => !this.#held.has(id));
      if (stale.length > 0) await this.#releaseIds(stale);
      const lost = new Set(lostIds);
      let newlyLost = 0;
      for (const lease of leases) {
        if (!this.#held.has(lease.id)) continue; // released meanwhile
        if (lost.has(lease.id)) {
          if (!lease.lost) newlyLost += 1;
          lease.lost = true;
        } else {
          lease.lost = false;
          lease.confirmedAt = started;
        }
      }
      if (this.#waiters.length > 0) void this.#pump();
      if (reacquired.length > stale.length) {
        this.#log.info("re-registered leases that Redis had lost", {
          count: reacquired.length - stale.length,
        });
      }
      if (newlyLost > 0) {
        this.#onLeasesLost?.(newlyLost);
        this.#log.warn(
          "leases lost (others took their permits); not taking new tasks until their tasks finish",
          {
            count: newlyLost,
          },
        );
      }
    } catch (error) {
      this.#connection.recordError("refresh", error);
      this.#log.debug("lease refresh failed", { error: describeError(error) });
    }
  }

  #onReconnect(): void {
    if (this.#everReady) this.#graceUntil = performance.now() + this.#graceMs;
    this.#everReady = true;
    void this.#refresh().finally(() =>
      this.#scheduleRecheck(Math.max(10, this.#graceUntil - performance.now())),
    );
  }

  #scheduleRecheck(delayMs: number): void {
    if (this.#closed) return;
    const delay = Math.min(Math.max(0, delayMs), this.#recheckMs);
    const at = performance.now() + delay;
    if (this.#recheckTimer && at >= this.#recheckAt) return;
    clearTimeout(this.#recheckTimer);
    this.#recheckAt = at;
    this.#recheckTimer = setTimeout(() => {
      this.#recheckTimer = undefined;
      this.#recheckAt = Number.POSITIVE_INFINITY;
      void this.#pump();
    }, delay);
  }
}
