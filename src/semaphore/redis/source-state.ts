/**
 * What the operator and the pollers of one activity share in Redis besides the semaphore: the live
 * limit (the source's maxConcurrency) and the task figures its status shows. Keys in keys.ts
 * (`sourceStateKeys`), under the semaphore's hash tag, so one activity's keys share a Cluster slot.
 *
 * Invariants (the product's promises: the limit is never exceeded, no task is lost):
 * - A poller that follows the limit (`LimitFollower`, env SFN_LIMIT_FROM_REDIS) takes no task while
 *   it knows no limit: the key is missing (a new source before the operator wrote it, Redis lost its
 *   data, the source was deleted) or holds no positive integer, or its connection dropped and the key
 *   has not been read again since (a lowered limit published meanwhile was missed). Fail closed; it
 *   resumes when a read finds a limit.
 * - A read of the key is never applied out of order: reads are serialized, and every change message
 *   (and every reconnect) is followed by a read that starts after it.
 * - The figures never delay, fail or lose a task: recording is fire-and-forget from the task's point
 *   of view; what could not be sent is kept and sent with the next call (at least once: a call that
 *   timed out but ran is counted twice, which a status figure can afford).
 * - Tasks in flight are counted only for processes whose report has not expired (Redis server time,
 *   never a pod's clock): a crashed poller's figure disappears by itself within its report TTL.
 */
import { randomUUID } from "node:crypto";
import { Cluster } from "ioredis";
import { describeError, getLogger, type Logger } from "../../observability/logger.ts";
import type { TaskOutcomeLabel } from "../../observability/metrics.ts";
import { checkLimit } from "../semaphore.ts";
import { LuaScript, type RedisClient, RedisConnection } from "./connection.ts";
import { allActivityKeys, type SourceStateKeys, sourceStateKeys } from "./keys.ts";

/** A client, or a RedisConnection (its command client is used). */
export type RedisTarget = RedisClient | RedisConnection;

function clientOf(target: RedisTarget): RedisClient {
  return target instanceof RedisConnection ? target.client : target;
}

/** How often a LimitFollower reads the limit key even without a change message. */
export const DEFAULT_LIMIT_REFRESH_MS = 5_000;
/** How often a process reports its tasks in flight (also sent with every recorded task). */
export const DEFAULT_FIGURES_REPORT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// The limit
// ---------------------------------------------------------------------------------------------

/**
 * Sets the key and, when the value changed, announces it on the channel, atomically: a follower that
 * gets the message reads the new value. Returns 1 when it changed, 0 when it was already set so (the
 * operator may call writeLimit on every reconcile without waking every poller).
 */
const WRITE_LIMIT = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
`);

/**
 * The operator's side: makes `limit` the activity's limit (no TTL: it must outlive any quiet spell)
 * and tells its pollers at once. Resolves to whether the value changed. Throws RangeError for a limit
 * that is not a positive integer, and the Redis error when the write fails.
 */
export async function writeLimit(target: RedisTarget, activityArn: string, limit: number): Promise<boolean> {
  checkLimit(limit);
  const keys = sourceStateKeys(activityArn);
  try {
    const changed = await WRITE_LIMIT.run(clientOf(target), [keys.limit], [String(limit), keys.limitChanged]);
    return changed === 1;
  } catch (error) {
    throw new Error(
      `cannot write the concurrency limit of ${activityArn} to Redis: ${describeError(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** The limit a key holds, or undefined for anything but a positive integer. */
export function parseLimit(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || !/^[0-9]{1,9}$/.test(value)) return undefined;
  const limit = Number(value);
  return limit >= 1 ? limit : undefined;
}

export interface LimitFollowerOptions {
  connection: RedisConnection;
  activityArn: string;
  /**
   * Called when a limit becomes known (also again after a spell without one) or changes; a poller
   * calls its semaphore's setLimit (and lets its loops acquire again).
   */
  onLimit: (limit: number) => void;
  /** Called when no limit is known any more, with the reason: the poller takes no new task. */
  onNoLimit: (reason: string) => void;
  /** Period of the read that catches a missed message (DEFAULT_LIMIT_REFRESH_MS). */
  refreshMs?: number;
  /** Name for logs (the source). */
  name?: string;
}

/**
 * The poller's side: follows the activity's limit key. Reads it at start, on every message on its
 * channel, after every reconnect (of the command connection, and of the subscriber, which may have
 * missed a message) and every `refreshMs`. See the file's invariants for when it knows no limit.
 */
export class LimitFollower {
  readonly keys: SourceStateKeys;
  readonly #connection: RedisConnection;
  readonly #onLimit: (limit: number) => void;
  readonly #onNoLimit: (reason: string) => void;
  readonly #refreshMs: number;
  readonly #log: Logger;
  readonly #disposers: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;
  /** The limit in force; undefined while none is known (no task may be taken). */
  #limit: number | undefined;
  /** Why no limit is known, while none is. */
  #problem: string;
  /** The last limit read (logged when it changes). */
  #lastRead: number | undefined;
  /** The problem last warned about, so a missing key is logged once, not at every read. */
  #warned: string | undefined;
  #reading = false;
  #readAgain = false;
  #started = false;
  #closed = false;

  constructor(options: LimitFollowerOptions) {
    this.#connection = options.connection;
    this.keys = sourceStateKeys(options.activityArn);
    this.#onLimit = options.onLimit;
    this.#onNoLimit = options.onNoLimit;
    this.#refreshMs = options.refreshMs ?? DEFAULT_LIMIT_REFRESH_MS;
    this.#log = getLogger("limit", { source: options.name ?? options.activityArn });
    this.#problem = `reading the concurrency limit from Redis (key ${this.keys.limit})`;
  }

  /** The limit in force, or undefined while none is known. */
  get limit(): number | undefined {
    return this.#limit;
  }

  /** Why no limit is known (undefined while one is). */
  get problem(): string | undefined {
    return this.#limit === undefined ? this.#problem : undefined;
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#disposers.push(
      // The message carries the new value, but the key is the truth: reading it keeps the order of
      // changes whatever the order of messages and periodic reads ("" after a resubscribe too).
      this.#connection.subscribe(
        this.keys.limitChanged,
        () => void this.#read(),
        // A change announced before the subscription took effect was not heard: read once more.
        () => void this.#read(),
      ),
      this.#connection.onReady(() => void this.#read()),
      // A lowered limit announced while this process cannot hear it must not be missed: no limit
      // until the key is read again. Quietly: the connection logs the outage itself.
      this.#connection.onDown(() =>
        this.#unknown("Redis unreachable: the concurrency limit is read again once it is back", false),
      ),
    );
    this.#timer = setInterval(() => void this.#read(), this.#refreshMs);
    this.#timer.unref();
    void this.#read();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const dispose of this.#disposers.splice(0)) dispose();
  }

  /** Reads the key (one read at a time; a request during a read makes one more read after it). */
  async #read(): Promise<void> {
    if (this.#closed) return;
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = true;
    try {
      do {
        this.#readAgain = false;
        let value: string | null;
        try {
          value = await this.#connection.client.get(this.keys.limit);
        } catch (error) {
          this.#connection.recordError("limit", error);
          this.#log.debug("reading the concurrency limit failed", { error: describeError(error) });
          // A limit already known stays (the semaphore fails closed on its own while Redis is away,
          // and `onDown` withdraws it when the connection drops); none known: say why.
          if (this.#limit === undefined) {
            this.#unknown(`cannot read the concurrency limit from Redis: ${describeError(error)}`, false);
          }
          return; // the next period, message or reconnect reads again
        }
        if (this.#closed) return;
        this.#apply(value);
      } while (this.#readAgain && !this.#closed);
    } finally {
      this.#reading = false;
    }
  }

  #apply(value: string | null): void {
    const limit = parseLimit(value);
    if (limit === undefined) {
      this.#unknown(
        value === null
          ? `no concurrency limit in Redis (key ${this.keys.limit} is missing: the operator writes it; a new source, or Redis lost its data): taking no tasks until it is there`
          : `invalid concurrency limit in Redis (key ${this.keys.limit} holds ${JSON.stringify(value.slice(0, 40))}, not a positive integer): taking no tasks until it is fixed`,
        true,
      );
      return;
    }
    const reopening = this.#limit === undefined;
    const changed = limit !== this.#lastRead;
    if (changed || this.#warned !== undefined) {
      this.#log.info("concurrency limit from Redis", {
        maxConcurrency: limit,
        ...(this.#lastRead !== undefined && changed ? { previous: this.#lastRead } : {}),
      });
    }
    this.#limit = limit;
    this.#lastRead = limit;
    this.#warned = undefined;
    if (reopening || changed) this.#call(() => this.#onLimit(limit));
  }

  /** No limit known from now on, for `reason`; warned about once per reason when `warn`. */
  #unknown(reason: string, warn: boolean): void {
    if (this.#closed) return;
    const changed = this.#limit !== undefined || this.#problem !== reason;
    this.#limit = undefined;
    this.#problem = reason;
    if (warn && this.#warned !== reason) {
      this.#warned = reason;
      this.#log.warn(reason, { key: this.keys.limit });
    }
    if (changed) this.#call(() => this.#onNoLimit(reason));
  }

  /** A callback that throws is a bug of the caller: logged, never an unhandled rejection. */
  #call(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.#log.error("applying the concurrency limit failed (a bug; please report it)", {
        error: describeError(error),
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Task figures
// ---------------------------------------------------------------------------------------------

const OUTCOMES: readonly TaskOutcomeLabel[] = ["succeeded", "failed", "gone", "unreported"];

/**
 * One process's report, in one call (one per task at most; fewer under load, as calls are
 * coalesced): adds the outcome counts ARGV[4..7] (succeeded, failed, gone, unreported) to the totals
 * hash KEYS[1] and, if any, sets its `last` to the server time (never backwards); sets the process
 * ARGV[1]'s tasks in flight to ARGV[2] in KEYS[3] with an entry in KEYS[2] that expires ARGV[3] ms
 * from now (server time), or with ARGV[2] = -1 takes it out (a clean stop); drops every expired
 * entry from both; and lets both expire with their latest entry, so that an activity nobody reports
 * for keeps nothing but its totals.
 *
 * Why a sorted set of reporters plus a hash, and not one key with a TTL per process: the reader then
 * needs two commands per activity whatever the number of pods (no SCAN, no list of names to keep),
 * expiry is judged by Redis's clock for everyone, and a crashed process's entry is dropped by the
 * next report of any other (or the keys expire): nobody has to clean up after it. (Per-field hash
 * TTLs would do it in one key, but need Redis 7.4 or Valkey 9.)
 */
const REPORT = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = {'succeeded', 'failed', 'gone', 'unreported'}
local ended = 0
for i = 1, 4 do
  local n = tonumber(ARGV[3 + i])
  if n > 0 then
    redis.call('HINCRBY', KEYS[1], fields[i], n)
    ended = ended + n
  end
end
if ended > 0 then
  local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0') or 0
  if now > last then redis.call('HSET', KEYS[1], 'last', now) end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
local inFlight = tonumber(ARGV[2])
if inFlight < 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], inFlight)
end
local latest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #latest == 2 then
  redis.call('PEXPIREAT', KEYS[2], latest[2])
  redis.call('PEXPIREAT', KEYS[3], latest[2])
end
return ended
`);

export interface TaskFiguresOptions {
  connection: RedisConnection;
  activityArn: string;
  /** Prefix of this process's reporter id (the worker name); a random suffix makes it unique. */
  reporterName: string;
  /** This process's tasks in flight now (received and not yet reported). */
  inFlight: () => number;
  /** How often the tasks in flight are reported without a task ending (DEFAULT_FIGURES_REPORT_MS). */
  reportIntervalMs?: number;
  /** How long a report counts (3 x the interval by default): a crashed process's figure lasts that long. */
  reportTtlMs?: number;
}

/**
 * The poller's side of the figures: `taskEnded` per finished task, a report of the tasks in flight
 * every `reportIntervalMs`, and `close` at the end (takes this process's entry out).
 */
export class TaskFiguresRecorder {
  readonly keys: SourceStateKeys;
  /** This process's member in the reporters set. */
  readonly reporterId: string;
  readonly #connection: RedisConnection;
  readonly #inFlight: () => number;
  readonly #intervalMs: number;
  readonly #ttlMs: number;
  /** Task ends not yet acknowledged by Redis. */
  readonly #pending: Record<TaskOutcomeLabel, number> = { succeeded: 0, failed: 0, gone: 0, unreported: 0 };
  readonly #disposers: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;
  #scheduled: NodeJS.Immediate | undefined;
  #sending: Promise<void> | undefined;
  #sendAgain = false;
  #leaving = false;

  constructor(options: TaskFiguresOptions) {
    this.#connection = options.connection;
    this.keys = sourceStateKeys(options.activityArn);
    this.reporterId = `${options.reporterName}:${randomUUID().slice(0, 8)}`;
    this.#inFlight = options.inFlight;
    this.#intervalMs = options.reportIntervalMs ?? DEFAULT_FIGURES_REPORT_MS;
    this.#ttlMs = options.reportTtlMs ?? 3 * this.#intervalMs;
    if (this.#ttlMs <= this.#intervalMs) {
      throw new RangeError(
        `TaskFiguresRecorder: reportTtlMs (${this.#ttlMs}) must be above reportIntervalMs (${this.#intervalMs})`,
      );
    }
  }

  start(): void {
    if (this.#timer || this.#leaving) return;
    this.#timer = setInterval(() => void this.#flush(), this.#intervalMs);
    this.#timer.unref();
    this.#disposers.push(this.#connection.onReady(() => void this.#flush()));
    void this.#flush();
  }

  /**
   * Records one finished task. Sent at the end of this event-loop turn with whatever else ended by
   * then, and never more than one call at a time: at most one Redis command per task.
   */
  taskEnded(outcome: TaskOutcomeLabel): void {
    this.#pending[outcome] += 1;
    if (this.#leaving) return;
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = undefined;
      void this.#flush();
    });
  }

  /** Task ends recorded here and not yet acknowledged by Redis. */
  pending(): number {
    return OUTCOMES.reduce((sum, outcome) => sum + this.#pending[outcome], 0);
  }

  /** Sends what is pending and takes this process's in-flight entry out (once; best effort). */
  async close(): Promise<void> {
    if (this.#leaving) return this.#sending;
    this.#leaving = true;
    clearInterval(this.#timer);
    clearImmediate(this.#scheduled);
    for (const dispose of this.#disposers.splice(0)) dispose();
    await this.#flush();
  }

  #flush(): Promise<void> {
    if (this.#sending) {
      this.#sendAgain = true;
      return this.#sending;
    }
    this.#sending = (async () => {
      try {
        do {
          this.#sendAgain = false;
          await this.#send(this.#leaving);
        } while (this.#sendAgain);
      } finally {
        this.#sending = undefined;
      }
    })();
    return this.#sending;
  }

  async #send(leave: boolean): Promise<void> {
    // While Redis is away, nothing is sent per task (each call would only fail); the reconnect sends.
    if (!this.#connection.ready && !leave) return;
    const sent = { ...this.#pending };
    try {
      await REPORT.run(
        this.#connection.client,
        [this.keys.tasks, this.keys.reporters, this.keys.inFlight],
        [
          this.reporterId,
          leave ? -1 : Math.max(0, this.#inFlight()),
          this.#ttlMs,
          ...OUTCOMES.map((outcome) => sent[outcome]),
        ],
      );
      for (const outcome of OUTCOMES) this.#pending[outcome] -= sent[outcome];
    } catch (error) {
      // Kept pending, sent with the next call (a timed-out call that ran is counted twice).
      this.#connection.recordError("figures", error);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The operator's reads and clean-up
// ---------------------------------------------------------------------------------------------

/** One activity's figures, as the operator shows them in the source's status. */
export interface SourceStats {
  /** Tasks in flight now, summed over the processes whose report has not expired. */
  inFlight: number;
  /** Tasks reported succeeded. */
  succeeded: number;
  /**
   * Tasks that ended without success: reported failed, gone at AWS (timed out or deleted while they
   * ran) or whose outcome could not be reported (AWS times them out).
   */
  failed: number;
  /** When the latest task ended (Redis server time), RFC 3339 UTC in whole seconds; absent before the first. */
  lastTaskTime?: string;
  /**
   * The limit in Redis now, absent when the key is missing or invalid (its pollers then take no
   * task: the operator should write it again, e.g. after Redis lost its data).
   */
  limit?: number;
}

/** Commands per activity in readSourceStats's pipeline, after the pipeline's one TIME. */
export const STATS_COMMANDS_PER_ACTIVITY = 4;

/**
 * The figures of many activities in one round trip: one pipeline (one per master in a Redis Cluster,
 * sent at once) of `TIME` plus four reads per activity (HMGET, ZRANGE, HGETALL, GET), read-only.
 * Resolves to a map in the order of `activityArns` (duplicates read once). Rejects when any read
 * fails (naming it): partial figures would show as drops.
 */
export async function readSourceStats(
  target: RedisTarget,
  activityArns: readonly string[],
): Promise<Map<string, SourceStats>> {
  const client = clientOf(target);
  const arns = [...new Set(activityArns)];
  if (arns.length === 0) return new Map();
  const groups = client instanceof Cluster ? groupBySlotOwner(client, arns) : [arns];
  const found = new Map<string, SourceStats>();
  await Promise.all(
    groups.map(async (group) => {
      for (const [arn, stats] of await readGroup(client, group)) found.set(arn, stats);
    }),
  );
  return new Map(arns.map((arn) => [arn, found.get(arn) as SourceStats]));
}

/**
 * ioredis runs a Cluster pipeline only when all its keys' slots are served by the same nodes (it
 * rejects the pipeline otherwise): group the activities by the nodes serving their slot, as the
 * client's slot map says. Before the map is known, each activity gets its own group (its keys share
 * one slot, so its pipeline is always valid).
 */
function groupBySlotOwner(cluster: Cluster, arns: string[]): string[][] {
  const groups = new Map<string, string[]>();
  for (const arn of arns) {
    const slot = clusterKeySlot(sourceStateKeys(arn).limit);
    const nodes = cluster.slots[slot];
    const id = nodes && nodes.length > 0 ? nodes.join(";") : `slot ${slot}`;
    const group = groups.get(id);
    if (group) group.push(arn);
    else groups.set(id, [arn]);
  }
  return [...groups.values()];
}

async function readGroup(client: RedisClient, arns: string[]): Promise<Array<[string, SourceStats]>> {
  try {
    return await readPipeline(client, arns);
  } catch (error) {
    // A slot moved between the grouping and the call (resharding, failover): each activity alone,
    // which ioredis redirects as needed.
    if (!(client instanceof Cluster) || arns.length === 1) throw error;
    const single = await Promise.all(arns.map((arn) => readPipeline(client, [arn])));
    return single.flat();
  }
}

async function readPipeline(client: RedisClient, arns: string[]): Promise<Array<[string, SourceStats]>> {
  const pipeline = client.pipeline();
  // The expiry of in-flight reports is judged by the clock of the Redis that holds them.
  pipeline.time();
  for (const arn of arns) {
    const keys = sourceStateKeys(arn);
    pipeline.hmget(keys.tasks, ...OUTCOMES, "last");
    pipeline.zrange(keys.reporters, "0", "-1", "WITHSCORES");
    pipeline.hgetall(keys.inFlight);
    pipeline.get(keys.limit);
  }
  let replies: Array<[Error | null, unknown]> | null;
  try {
    replies = await pipeline.exec();
  } catch (error) {
    throw new Error(`cannot read task figures from Redis: ${describeError(error)}`, { cause: error });
  }
  if (!replies) throw new Error("cannot read task figures from Redis: the pipeline was discarded");
  const reply = (index: number): unknown => {
    const [error, value] = replies[index] ?? [new Error("missing reply"), null];
    if (error) {
      const arn = index === 0 ? undefined : arns[Math.floor((index - 1) / STATS_COMMANDS_PER_ACTIVITY)];
      throw new Error(
        `cannot read task figures from Redis${arn ? ` (${arn})` : ""}: ${describeError(error)}`,
        { cause: error },
      );
    }
    return value;
  };
  const [seconds, micros] = reply(0) as [string, string];
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  return arns.map((arn, index) => {
    const base = 1 + index * STATS_COMMANDS_PER_ACTIVITY;
    const [succeeded, failed, gone, unreported, last] = (reply(base) as Array<string | null>).map(count);
    const reporters = reply(base + 1) as string[];
    const inFlightBy = reply(base + 2) as Record<string, string>;
    let inFlight = 0;
    for (let i = 0; i + 1 < reporters.length; i += 2) {
      if (Number(reporters[i + 1]) > now) inFlight += count(inFlightBy[reporters[i] as string]);
    }
    const limit = parseLimit(reply(base + 3) as string | null);
    const stats: SourceStats = {
      inFlight,
      succeeded: succeeded ?? 0,
      failed: (failed ?? 0) + (gone ?? 0) + (unreported ?? 0),
      ...(last ? { lastTaskTime: rfc3339Seconds(last) } : {}),
      ...(limit !== undefined ? { limit } : {}),
    };
    return [arn, stats];
  });
}

/** A counter's text as a number (0 for missing or garbage). */
function count(value: string | null | undefined): number {
  const n = Number(value ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** `2026-11-30T01:02:03Z`: what Kubernetes shows for a date-time, without sub-seconds. */
function rfc3339Seconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The operator's finalizer: deletes every key of the activity (the semaphore's and these), in one
 * command (they share a slot), and announces the limit's removal, so that pollers still running
 * stop taking tasks at once (they find no limit). Resolves to how many keys existed.
 */
const DELETE_STATE = new LuaScript(`
local deleted = redis.call('DEL', unpack(KEYS))
redis.call('PUBLISH', ARGV[1], '')
return deleted
`);

export async function deleteSourceState(target: RedisTarget, activityArn: string): Promise<number> {
  try {
    return (await DELETE_STATE.run(clientOf(target), allActivityKeys(activityArn), [
      sourceStateKeys(activityArn).limitChanged,
    ])) as number;
  } catch (error) {
    throw new Error(`cannot delete the Redis keys of ${activityArn}: ${describeError(error)}`, {
      cause: error,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Redis Cluster slots
// ---------------------------------------------------------------------------------------------

/**
 * The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag (the text between the first `{`
 * and the next `}`, when not empty) or of the whole key, modulo 16384 (Redis Cluster specification).
 */
export function clusterKeySlot(key: string): number {
  let bytes = Buffer.from(key, "utf8");
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc & 16383;
}
