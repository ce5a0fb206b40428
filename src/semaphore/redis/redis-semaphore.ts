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
 * - Waiting is event-driven: a release publishes on a channel a turn addressed to the process that
 *   has waited longest (scripts.ts explains the queue), which tries at once; a timer re-checks when
 *   the earliest lease could expire (crashed holders publish nothing) and at least every
 *   `recheckMs`, so a lost message, or a turn given to a process that crashed, costs at most that.
 *   Waiters of one process are served first come first served, in batches (one script call can
 *   grant several permits).
 * - A permit released while a waiter of the same process is queued goes straight to that waiter
 *   with its lease unchanged: no Redis round trip, because the count Redis keeps does not change.
 *   This is only done while the limit is known to be respected (after a lowered limit, the hand-over
 *   goes through Redis until a grant confirms the count is under it) and never while failing
 *   closed. A permit released while nobody here waits is kept idle until the end of the event-loop
 *   turn: a poller loop releases after reporting and asks again at once, and takes its lease back
 *   without two round trips; idle leases nobody claimed are released together.
 * - Turns: so that one process cannot keep permits from the others for good, while another process
 *   waits a lease stays with this one for at most `localHandOverMs` after Redis granted it; then it
 *   is released and this process holds back its own loops for `yieldMs`, leaving that permit to the
 *   process whose turn it is. A refused acquisition lists its process as waiting for a few seconds
 *   (each refused retry extends it), queues it for a turn and announces it on the channel; releases
 *   and refreshes return the count, so holders learn when nobody waits any more. While nobody
 *   waits, leases stay: a busy pod sends Redis only refreshes. Turns go between processes in the
 *   order they started waiting, one permit per turn, a process going to the back when it is given a
 *   turn or granted a permit (back to the head if the permit of its turn was taken before it came).
 *   While this process is in line, a loop that starts waiting here does not ask Redis (it would be
 *   refused): the next turn, wake-up or re-check asks for all its waiters. A process leaves
 *   the line when all its waiters are served: through Redis, or by a local hand-over (then with one
 *   call at the end of the event-loop turn), or when it releases with nobody waiting; a turn it can
 *   no longer use (its waiters aborted, its own leases at the limit, failing closed) it passes on to
 *   the next process. Otherwise (e.g. its waiters aborted and no turn came) its entry expires.
 * - A process whose own leases already reach the limit does not ask Redis for more (it could not
 *   grant any): its waiters get the leases its loops release.
 * - Fail closed: no new permit while Redis is unreachable, while any held lease has not been
 *   confirmed within its TTL, or while a lease that was lost (and could not be taken again) is still
 *   held by a running task. After a reconnect, held leases are re-registered at once.
 * - No waiter is stranded: whenever the pump stops while waiters remain, something will run it
 *   again: a re-check timer (refused, failing closed, a data-loss window, holding back), or, when
 *   this process's own leases reach the limit (it does not ask Redis then), the release of one of
 *   them (handed over locally, or released to Redis and followed by a pump, also when a hand-over
 *   through Redis was refused under a lowered limit), the refresh (which pumps when waiters
 *   remain), or a raised limit.
 * - Data loss: when Redis has no record of the semaphore (it is new, or lost its data), or its record
 *   was written by another Redis process (a restart, even with persistence, or a failover: leases
 *   may have expired while it was away, or never reached the replica), the scripts grant no new
 *   permit for one lease TTL (the longest any process reports meanwhile) while running tasks
 *   re-register (scripts.ts, "Data loss", also for what it cannot cover: a holder cut off from Redis
 *   for longer than its TTL while its task runs, keys evicted by a `maxmemory` policy, processes of
 *   an older version during a rollout). Decided by Redis for every process alike, including one
 *   that connects for the first time. Redis announces the window on the channel, and every process
 *   refreshes its leases at once (and at once after its own reconnect). A refused acquisition says
 *   how long is left; this process logs it once and asks again when the window ends, without
 *   polling meanwhile. Local hand-overs go on: they take no new permit.
 * - Refresh timing: each tick of the refresh timer sends the REFRESH at once, whatever else is in
 *   flight (a previous refresh, pending releases, which are resent after it), so that a lease is
 *   extended within the bound limits.ts assumes.
 * - Retry-safe: lease ids are chosen here before a call. When an acquisition or a hand-over fails
 *   (a command timeout does not mean the script did not run), its new ids are released at once and
 *   kept pending until a release succeeds, so a lost reply costs no capacity until the leases' TTL.
 * - Every Redis failure is caught and counted; none becomes an unhandled rejection.
 */
import { randomUUID } from "node:crypto";
import { describeError, getLogger, type Logger } from "../../observability/logger.ts";
import { abortError, checkLimit, type Permit, type Semaphore, type SemaphoreHealth } from "../semaphore.ts";
import { WaiterQueue } from "../waiter-queue.ts";
import { LuaScript, type RedisConnection } from "./connection.ts";
import { type SemaphoreKeys, semaphoreKeys } from "./keys.ts";
import { leaseTtlProblem } from "./limits.ts";
import {
  ACQUIRE,
  REFRESH,
  RELEASE,
  REREGISTER_MESSAGE,
  TRANSFER,
  TURN_PREFIX,
  WAITING_PREFIX,
} from "./scripts.ts";

const acquireScript = new LuaScript(ACQUIRE);
const refreshScript = new LuaScript(REFRESH);
const releaseScript = new LuaScript(RELEASE);
const transferScript = new LuaScript(TRANSFER);

/** Defaults, documented in the README. */
export const DEFAULT_LEASE_TTL_MS = 15_000;
export const DEFAULT_RECHECK_MS = 1_000;
export const DEFAULT_LOCAL_HAND_OVER_MS = 1_000;
/** Long enough for a woken process to run its acquire script; short enough not to idle a permit. */
export const DEFAULT_YIELD_MS = 10;

export interface RedisSemaphoreOptions {
  connection: RedisConnection;
  /** Identifies the semaphore: every poller of the activity shares it. */
  activityArn: string;
  limit: number;
  /** Name for logs (the source). */
  name?: string;
  /** Prefix of the permit ids (the worker name), so `ZRANGE` shows which pod holds what. */
  holderName?: string;
  /** From MIN_LEASE_TTL_MS to MAX_LEASE_TTL_MS (limits.ts); the constructor throws otherwise. */
  leaseTtlMs?: number;
  recheckMs?: number;
  /** How long a lease may pass between this process's own loops before it goes back to Redis. */
  localHandOverMs?: number;
  /** How long this process's waiters hold back after it gave a permit back to a waiting process. */
  yieldMs?: number;
  /** Called with the number of leases found lost by a refresh. */
  onLeasesLost?: (count: number) => void;
}

interface Lease {
  id: string;
  /** Monotonic time Redis granted it (passing it on locally does not change this). */
  grantedAt: number;
  /** Monotonic time of the last grant or refresh Redis confirmed. */
  confirmedAt: number;
  /** Redis no longer counts it and there was no room to take it again. */
  lost: boolean;
}

export class RedisSemaphore implements Semaphore {
  readonly keys: SemaphoreKeys;
  /** Every script gets these keys, in this order. */
  readonly #scriptKeys: string[];
  readonly #connection: RedisConnection;
  readonly #ttlMs: number;
  readonly #recheckMs: number;
  readonly #localHandOverMs: number;
  readonly #yieldMs: number;
  /** Held above `recheckMs` so that a waiting process never drops out of the waiting set. */
  readonly #waitingTtlMs: number;
  readonly #holderName: string;
  readonly #publisherId = randomUUID();
  readonly #onLeasesLost: ((count: number) => void) | undefined;
  readonly #log: Logger;
  readonly #waiters = new WaiterQueue<Permit>();
  readonly #held = new Map<string, Lease>();
  /**
   * Releases that could not reach Redis, and ids of failed acquisitions and hand-overs that Redis may
   * still have granted; sent again by each refresh and by close (else their TTL cleans up).
   */
  readonly #pendingReleases = new Set<string>();
  readonly #unsubscribe: Array<() => void> = [];
  #limit: number;
  /**
   * Bumped when the limit is lowered: holders above the new limit must not pass their permits on
   * locally until a grant made under it (which Redis checks against the whole count) confirms it.
   */
  #limitGeneration = 0;
  #limitConfirmed = true;
  #pumping = false;
  #pumpAgain = false;
  #recheckTimer: NodeJS.Timeout | undefined;
  #recheckAt = Number.POSITIVE_INFINITY;
  #refreshTimer: NodeJS.Timeout | undefined;
  /**
   * Until then (monotonic ms, no earlier than Redis's own end), Redis grants no new permit: it had no
   * record of the semaphore (see "Data loss"). Pumps do not ask before then.
   */
  #windowUntil = 0;
  /** Whether the last acquisition was refused for that window (it is logged once per window). */
  #inWindow = false;
  /** Released leases kept for the rest of this event-loop turn (see `#keepIdle`). */
  readonly #idle: string[] = [];
  #idleFlush: NodeJS.Immediate | undefined;
  /**
   * Whether another process waits for a permit, as last heard (its announcement, or the count a
   * release or refresh returned). Only then do leases go back to Redis after `localHandOverMs`.
   */
  #othersWaiting = false;
  readonly #waitingMessage: string;
  /** Until then, this process's waiters leave a permit it gave back to a waiting process. */
  #yieldUntil = 0;
  /** Whether Redis lists this process as waiting, as far as it knows (its last acquisition was refused). */
  #listed = false;
  /**
   * Turns addressed to this process that its next acquire script answers: it takes no more permits
   * than that (another free permit is another process's turn), and refused, it keeps its place at
   * the head of the line. Cleared when the pump stops for another reason than holding back, so that
   * a later, unrelated acquisition neither is capped nor claims the head.
   */
  #turns = 0;
  /** Pending check that takes this process off the waiting list (see `#unlistWhenServed`). */
  #unlistCheck: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(options: RedisSemaphoreOptions) {
    this.#connection = options.connection;
    this.keys = semaphoreKeys(options.activityArn);
    this.#scriptKeys = [this.keys.holders, this.keys.waiting, this.keys.queue, this.keys.epoch];
    this.#limit = checkLimit(options.limit);
    this.#ttlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    const ttlProblem = leaseTtlProblem(this.#ttlMs, `${this.#ttlMs}ms`);
    if (ttlProblem) throw new RangeError(`RedisSemaphore leaseTtlMs: ${ttlProblem}`);
    this.#recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
    this.#localHandOverMs = options.localHandOverMs ?? DEFAULT_LOCAL_HAND_OVER_MS;
    this.#yieldMs = options.yieldMs ?? DEFAULT_YIELD_MS;
    this.#waitingTtlMs = 3 * this.#recheckMs;
    this.#waitingMessage = `${WAITING_PREFIX}${this.#publisherId}`;
    this.#holderName = options.holderName ?? "holder";
    this.#onLeasesLost = options.onLeasesLost;
    this.#log = getLogger("semaphore", { source: options.name ?? options.activityArn });

    this.#unsubscribe.push(
      this.#connection.subscribe(this.keys.released, (message) => {
        if (message.startsWith(WAITING_PREFIX)) {
          if (message !== this.#waitingMessage) this.#othersWaiting = true;
        } else if (message.startsWith(TURN_PREFIX)) {
          // A turn for another process is not ours to take: the re-check timer covers a turn that
          // nobody takes (its addressee crashed) and a lost message.
          let turns = 0;
          for (const id of message.slice(TURN_PREFIX.length).split(" ")) {
            if (id === this.#publisherId) turns += 1;
          }
          if (turns > 0) this.#takeTurns(turns);
        } else if (message === REREGISTER_MESSAGE) {
          // Redis had no record of the semaphore: count this process's running tasks again now,
          // not at the next refresh (which may come after the window that holds new grants back).
          void this.#refresh();
        } else if (message !== this.#publisherId) {
          // An unaddressed wake-up: nobody was queued, a version without turns released, or the
          // subscriber reconnected ("") and may have missed a turn.
          void this.#pump();
        }
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
    const idle = this.#waiters.length === 0 ? this.#takeIdle() : undefined;
    if (idle) return Promise.resolve(this.#permit(idle));
    const permit = this.#waiters.wait(signal);
    // Already in line in Redis, with a re-check armed: asking again now would only be refused (no
    // turn came since) and cost a round trip per loop that queues here, which under contention is
    // every loop after every task. The new waiter is asked for at the next turn, wake-up or re-check.
    if (!this.#listed || this.#recheckTimer === undefined) void this.#pump();
    return permit;
  }

  setLimit(limit: number): void {
    const previous = this.#limit;
    this.#limit = checkLimit(limit);
    if (limit < previous) {
      this.#limitGeneration += 1;
      this.#limitConfirmed = false;
    }
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
    return this.#held.size - this.#idle.length;
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
    clearImmediate(this.#idleFlush);
    clearImmediate(this.#unlistCheck);
    this.#idle.length = 0;
    const leftovers = [...this.#held.keys(), ...this.#pendingReleases];
    this.#held.clear();
    this.#pendingReleases.clear();
    // With no waiter left, this also takes the process off the waiting list.
    if (leftovers.length > 0 || this.#listed) await this.#releaseIds(leftovers);
  }

  /** Why no permit can be handed out right now, if anything blocks it. */
  #blockedReason(): string | undefined {
    if (this.#closed) return "semaphore closed";
    const problem = this.#connection.problem;
    if (problem) return problem;
    // Plain loops: this runs on every release.
    const now = performance.now();
    let lost = 0;
    let unconfirmed = false;
    for (const lease of this.#held.values()) {
      if (lease.lost) lost += 1;
      else if (now - lease.confirmedAt > this.#ttlMs) unconfirmed = true;
    }
    if (lost > 0) return `${lost} lease(s) lost while their tasks run; waiting for them to finish`;
    if (unconfirmed) return "leases not confirmed by Redis within their TTL";
    return undefined;
  }

  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    // Only holding back (`yieldMs`) keeps a turn for the acquisition that follows; any other way out
    // of this pump means the turns were answered, or cannot be (see `#turns`).
    let holdingBack = false;
    /** Ids of an acquisition on its way: if it fails, Redis may still have granted them. */
    let asked: string[] = [];
    try {
      do {
        this.#pumpAgain = false;
        while (this.#waiters.length > 0 && !this.#closed) {
          if (this.#blockedReason()) {
            this.#scheduleRecheck(this.#recheckMs);
            break;
          }
          // Nothing can be granted before the window ends: no turn or wake-up asks sooner.
          const windowLeft = this.#windowUntil - performance.now();
          if (windowLeft > 0) {
            this.#scheduleRecheck(windowLeft + 1, { uncapped: true });
            break;
          }
          const yieldLeft = this.#yieldUntil - performance.now();
          if (yieldLeft > 0) {
            this.#scheduleRecheck(yieldLeft);
            holdingBack = true;
            break;
          }
          // Redis counts these leases too, so it could grant nothing: wait for a release here (it is
          // handed over locally) or a raised limit, without asking.
          if (this.#held.size >= this.#limit) break;
          const batch = this.#waiters.head(this.#limit);
          const ids = batch.map(() => this.#newId());
          const generation = this.#limitGeneration;
          // Taken before the call: Redis starts the lease's TTL no earlier than this.
          const confirmedAt = performance.now();
          const turns = this.#turns;
          this.#turns = 0;
          asked = ids;
          const [granted, earliestExpiryMs, windowMs] = (await acquireScript.run(
            this.#connection.client,
            this.#scriptKeys,
            [
              this.#limit,
              this.#ttlMs,
              this.#publisherId,
              this.#waitingTtlMs,
              this.keys.released,
              turns,
              ...ids,
            ],
          )) as [number, number, number];
          asked = [];
          if (windowMs > 0) {
            // Measured from the answer, so it ends no earlier than Redis's window.
            this.#windowUntil = performance.now() + windowMs;
            this.#listed = false; // the script took this process off the waiting sets
            if (!this.#inWindow) {
              this.#inWindow = true;
              this.#log.info(
                `Redis has no record of this semaphore from its current process (new, or Redis restarted, failed over or lost its data): granting no new permits for ${Math.ceil(windowMs / 1000)}s while running tasks re-register`,
                { windowMs },
              );
            }
            this.#scheduleRecheck(windowMs + 1, { uncapped: true });
            break;
          }
          this.#inWindow = false;
          this.#listed = granted < batch.length;
          if (granted > 0) this.#confirmLimit(generation);
          const orphans: string[] = [];
          for (let i = 0; i < granted; i++) {
            const id = ids[i] as string;
            this.#held.set(id, { id, grantedAt: confirmedAt, confirmedAt, lost: false });
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
      // A timeout does not say the script did not run: leases it granted would be held by nobody
      // until their TTL. Give the ids back at once, and keep them in the pending releases (sent again
      // by each refresh, and by close) until a release of them succeeds.
      for (const id of asked) this.#pendingReleases.add(id);
      if (asked.length > 0) void this.#releaseIds(asked);
      this.#scheduleRecheck(this.#recheckMs);
    } finally {
      this.#pumping = false;
      if (!holdingBack) this.#turns = 0;
    }
  }

  #permit(id: string): Permit {
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        const lease = this.#held.get(id);
        if (lease && this.#keepable(lease)) {
          // Aborted waiters leave the queue synchronously, so the head is a live waiter.
          const next = this.#waiters.head(1)[0];
          if (next && this.#waiters.resolve(next, this.#permit(id))) return this.#unlistWhenServed();
          if (!next) return this.#keepIdle(id);
        }
        this.#held.delete(id);
        const yielding = lease !== undefined && this.#handOverExpired(lease);
        const next = yielding || this.#blockedReason() ? undefined : this.#waiters.head(1)[0];
        const giveBack = next ? await this.#transfer(id, next) : [id];
        if (giveBack.length === 0) return;
        const othersWaiting = await this.#releaseIds(giveBack);
        // Also holds back a loop of this process that asks again right after this release.
        if (yielding && othersWaiting > 0) this.#yieldUntil = performance.now() + this.#yieldMs;
        void this.#pump();
      },
    };
  }

  /**
   * Whether a released lease may stay with this process, for a local waiter or a loop that asks
   * again at once, without telling Redis (the number of leases it counts stays the same). Only while
   * that is known to keep the limit: the limit confirmed since it was last lowered, this process
   * within it, the lease confirmed and nothing failing closed; and only within `localHandOverMs` of
   * the grant, so that waiting processes get their turn.
   */
  #keepable(lease: Lease): boolean {
    if (lease.lost || !this.#limitConfirmed || this.#held.size > this.#limit) return false;
    return !this.#handOverExpired(lease) && this.#blockedReason() === undefined;
  }

  /**
   * Keeps a released lease nobody here waits for until the end of this event-loop turn: a loop
   * releases its permit after reporting and asks for one again right away, and that loop then takes
   * it back without two Redis round trips. Whatever is still idle then is released in one call.
   */
  #keepIdle(id: string): void {
    this.#idle.push(id);
    this.#idleFlush ??= setImmediate(() => {
      this.#idleFlush = undefined;
      const ids = this.#idle.splice(0);
      for (const idle of ids) this.#held.delete(idle);
      if (ids.length > 0) void this.#releaseIds(ids).then(() => this.#pump());
    });
  }

  /** An idle lease that may still be kept (see `#keepable`), taken out of the idle list. */
  #takeIdle(): string | undefined {
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const id = this.#idle[i] as string;
      const lease = this.#held.get(id);
      if (lease && this.#keepable(lease)) {
        this.#idle.splice(i, 1);
        return id;
      }
    }
    return undefined;
  }

  /**
   * A release addressed turns to this process (one per permit; several when fewer processes wait
   * than permits were freed). It takes them if it can ask Redis for permits now; otherwise (its
   * waiters were served by a local hand-over or aborted, its own leases reach the limit, or it is
   * failing closed) it leaves the line and passes them on to the next processes, so that the freed
   * permits do not wait for someone's re-check timer. A process that is only holding its loops back
   * (`yieldMs`) keeps them: its pump asks when that ends.
   */
  #takeTurns(count: number): void {
    if (this.#waiters.length > 0 && this.#held.size < this.#limit && this.#blockedReason() === undefined) {
      this.#turns += count;
      void this.#pump();
    } else {
      void this.#releaseIds([], { passTurns: count });
    }
  }

  /**
   * A local hand-over served this process's last waiter while Redis still lists it as waiting: take
   * it off the list, or releases would keep giving it turns it cannot use (it would pass them on, a
   * round trip each) and holders elsewhere would keep giving leases back for nobody. Done at the end
   * of the event-loop turn, and only if no loop asked again meanwhile (a poller loop asks again right
   * after releasing): one round trip, only when a listed process runs out of waiters this way.
   */
  #unlistWhenServed(): void {
    if (!this.#listed || this.#waiters.length > 0 || this.#unlistCheck) return;
    this.#unlistCheck = setImmediate(() => {
      this.#unlistCheck = undefined;
      if (this.#listed && this.#waiters.length === 0 && !this.#closed) void this.#releaseIds([]);
    });
  }

  /** A lease that has had its turn here while another process waits. */
  #handOverExpired(lease: Lease): boolean {
    return this.#othersWaiting && performance.now() - lease.grantedAt >= this.#localHandOverMs;
  }

  #confirmLimit(generation: number): void {
    if (generation === this.#limitGeneration) this.#limitConfirmed = true;
  }

  /**
   * Gives a released permit to a local waiter through Redis, which checks the limit (one round trip
   * instead of a release and an acquire): used while a lowered limit is not yet confirmed. Resolves
   * to the ids the caller must still release: none when done, or when the call failed, the released
   * lease and the new one (a timed-out call may still have run and added it, held by nobody).
   */
  async #transfer(id: string, waiter: Parameters<WaiterQueue<Permit>["resolve"]>[0]): Promise<string[]> {
    const nextId = this.#newId();
    const generation = this.#limitGeneration;
    const confirmedAt = performance.now();
    let moved: unknown;
    try {
      moved = await transferScript.run(this.#connection.client, this.#scriptKeys, [
        this.#limit,
        this.#ttlMs,
        this.keys.released,
        this.#publisherId,
        id,
        nextId,
      ]);
    } catch (error) {
      this.#connection.recordError("release", error);
      this.#pendingReleases.add(nextId); // until a release of it succeeds, as for a failed acquire
      return [id, nextId];
    }
    if (moved !== 1) {
      // Only released (and announced) by the script: a lowered limit left no room. The waiter is
      // still queued here, and nobody would ask Redis for it: the pump stopped at this process's own
      // leases without asking (so Redis does not list it, and no re-check is armed), and a release
      // elsewhere would publish this process's own id when nobody else is queued, which it ignores.
      // Ask now: Redis refuses (or grants, if a lease expired meanwhile), lists it and arms a re-check.
      void this.#pump();
      return [];
    }
    this.#confirmLimit(generation);
    this.#held.set(nextId, { id: nextId, grantedAt: confirmedAt, confirmedAt, lost: false });
    if (!this.#waiters.resolve(waiter, this.#permit(nextId))) {
      // The waiter was served by the pump or aborted meanwhile: give the new lease back.
      this.#held.delete(nextId);
      await this.#releaseIds([nextId]);
      void this.#pump();
    }
    // A hand-over frees no capacity: no pump (it would only try, and fail, to acquire).
    return [];
  }

  #newId(): string {
    return `${this.#holderName}:${randomUUID()}`;
  }

  /**
   * Releases leases, giving a turn to the next waiting process for each; resolves to how many other
   * processes are waiting (0 when Redis failed). A process without waiters leaves the waiting list
   * in the same call; `passTurns` (turns it was given and cannot use) makes it leave in any case and
   * pass that many more turns on.
   */
  async #releaseIds(ids: string[], { passTurns = 0 } = {}): Promise<number> {
    const stillWaiting = passTurns === 0 && this.#waiters.length > 0;
    try {
      const [, othersWaiting] = (await releaseScript.run(this.#connection.client, this.#scriptKeys, [
        this.keys.released,
        this.#publisherId,
        stillWaiting ? 1 : 0,
        passTurns,
        ...ids,
      ])) as [number, number];
      for (const id of ids) this.#pendingReleases.delete(id);
      if (!stillWaiting) this.#listed = false;
      this.#othersWaiting = othersWaiting > 0;
      return othersWaiting;
    } catch (error) {
      for (const id of ids) this.#pendingReleases.add(id);
      this.#connection.recordError("release", error);
      return 0;
    }
  }

  /**
   * Extends every held lease (one REFRESH), then resends the pending releases. The REFRESH is written
   * first and nothing is awaited before it: each tick of the refresh timer sends it at once, even
   * while a previous refresh or a release is still waiting for its answer (up to the command
   * timeout), which is what limits.ts's lower bound on the TTL counts on. Also sent while the
   * connection is not ready: it then fails at once (no offline queue) in plain mode, and in cluster
   * mode, where one lost node makes the whole connection not ready, it still reaches the master of
   * this activity's slot, whose leases would otherwise expire under running tasks.
   */
  async #refresh(): Promise<void> {
    if (this.#closed) return;
    const leases = [...this.#held.values()];
    const refreshed = leases.length > 0 ? this.#refreshLeases(leases) : undefined;
    if (this.#pendingReleases.size > 0 && this.#connection.ready) {
      void this.#releaseIds([...this.#pendingReleases]);
    }
    await refreshed;
  }

  async #refreshLeases(leases: Lease[]): Promise<void> {
    try {
      const started = performance.now();
      const result = (await refreshScript.run(this.#connection.client, this.#scriptKeys, [
        this.#limit,
        this.#ttlMs,
        this.#publisherId,
        this.keys.released,
        ...leases.map((lease) => lease.id),
      ])) as [number, number, number, ...string[]];
      const [othersWaiting, over, reacquiredCount, ...rest] = result;
      this.#othersWaiting = othersWaiting > 0;
      // More leases than the limit (re-registered in a data-loss window while a lowered limit
      // drained): like a lowered limit, no local hand-over until a grant shows the count under it.
      if (over > 0) {
        this.#limitGeneration += 1;
        this.#limitConfirmed = false;
      }
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
          // Refreshes may overlap (one per tick, each up to the command timeout): never go back.
          lease.confirmedAt = Math.max(lease.confirmedAt, started);
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
      // While the connection is down, that is the problem to report, not this refresh's failure.
      if (this.#connection.ready) this.#connection.recordError("refresh", error);
      this.#log.debug("lease refresh failed", { error: describeError(error) });
    }
  }

  /**
   * Re-registers held leases at once (a Redis that restarted empty has lost them; its scripts hold
   * new grants back meanwhile, see "Data loss"), then lets waiters ask.
   */
  #onReconnect(): void {
    void this.#refresh().finally(() => this.#scheduleRecheck(0));
  }

  /**
   * Runs the pump after `delayMs`, or sooner if already due sooner. Capped at `recheckMs` (a lost
   * message or an expired lease costs at most that) unless `uncapped`: a data-loss window, during
   * which nothing can be granted.
   */
  #scheduleRecheck(delayMs: number, { uncapped = false } = {}): void {
    if (this.#closed) return;
    const delay = Math.max(0, uncapped ? delayMs : Math.min(delayMs, this.#recheckMs));
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
