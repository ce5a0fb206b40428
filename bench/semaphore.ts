/**
 * The semaphore benchmark: our Redis semaphore against `redis-semaphore` 5.x (its counting
 * `Semaphore`), on the same redis-server, in the same process, one after the other.
 *
 * `contenders` loops each repeat: acquire -> hold `holdMs` -> release. Every loop runs in this one
 * process so that release and acquisition times come from one clock. Figures:
 *
 * - cycles/s: acquisitions completed inside the measuring window, per second (each is followed by
 *   its release).
 * - hand-off latency: release calls and completed acquisitions are paired first in, first out: the
 *   n-th acquisition that did not find a never-used permit is paired with the oldest release call
 *   not yet paired, and its hand-off is (acquisition resolved) - (release called). Under saturation
 *   (more contenders than permits) the sum of these is exactly the time permits spent between two
 *   holders, so the distribution says how long a freed permit sits unused. The release call's own
 *   round trip is part of it, as it is of what a waiting loop sees.
 * - cross-instance hand-offs: each release call records its instance, and a paired hand-off is
 *   cross-instance when the acquiring loop's instance differs from the releasing one's. The pairing
 *   is first in, first out, not the permit's real path (neither implementation reports which release
 *   an acquisition got), so this is an approximation: with local hand-over, a permit that goes
 *   straight to a waiter of the same instance is not necessarily the oldest release not yet paired.
 * - instances served: instances whose loops completed at least one acquisition in the window.
 * - Redis commands per acquisition: `INFO commandstats` calls summed over every command (Redis
 *   counts the commands a Lua script runs too) from before the first acquisition to after the last
 *   release, divided by the acquisitions of the whole run; also the client round trips alone.
 */
import { Redis } from "ioredis";
import { Semaphore as LibrarySemaphore } from "redis-semaphore";
import { RedisConnection } from "../src/semaphore/redis/connection.ts";
import { semaphoreKeys } from "../src/semaphore/redis/keys.ts";
import { RedisSemaphore } from "../src/semaphore/redis/redis-semaphore.ts";

/** What is measured, and for how long. */
export interface SemaphoreBenchOptions {
  redisUrl: string;
  /** Loops in all. */
  contenders: number;
  limit: number;
  /**
   * Separate semaphore objects with their own Redis connections, the contenders spread evenly over
   * them: 1 is one poller process with all the loops; more stand for several processes (pods).
   */
  instances: number;
  holdMs: number;
  warmupMs: number;
  windowMs: number;
}

/** redis-semaphore's options as the benchmark sets them (documented in BENCHMARKS.md). */
export const LIBRARY_OPTIONS = {
  /** The library's default: a waiter re-runs its acquire script every 10 ms. */
  retryInterval: 10,
  /** The library's default lease (ms). */
  lockTimeout: 10_000,
  /** The library's default: 0.8 x lockTimeout. */
  refreshInterval: 8_000,
  /** Longer than any run, so no contender is dropped for waiting (the default is 10 s). */
  acquireTimeout: 600_000,
} as const;

export type Implementation = "sfn-operator" | "redis-semaphore";

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface SemaphoreResult {
  implementation: Implementation;
  instances: number;
  contenders: number;
  limit: number;
  holdMs: number;
  windowMs: number;
  cyclesPerSecond: number;
  windowAcquisitions: number;
  totalAcquisitions: number;
  /** Hand-off latencies in ms of acquisitions completed in the window. */
  handoffMs: Percentiles;
  /**
   * Share of the window's hand-offs whose acquiring instance differs from the releasing one (NaN
   * when there was none). An approximation: release calls and acquisitions are paired first in,
   * first out, not by the permit that really passed (see the file's comment).
   */
  crossInstanceShare: number;
  /** Hand-off latencies in ms of the window's cross-instance hand-offs only (count 0, NaN when none). */
  crossInstanceHandoffMs: Percentiles;
  /**
   * Instances of which at least one loop completed an acquisition in the window: fewer than
   * `instances` means permits stayed with some processes while others got none.
   */
  instancesServed: number;
  /** Every Redis command, including those run inside scripts, per acquisition. */
  commandsPerAcquisition: number;
  /** Commands the clients sent (round trips), per acquisition. */
  roundTripsPerAcquisition: number;
  /** Every Redis command, per second of the whole run (warm-up included). */
  commandsPerSecond: number;
  /** Per command name, calls per acquisition. */
  commandBreakdown: Record<string, number>;
  /**
   * Mean time a permit was actually held, in ms (window): the hold timer fires late when this process
   * is short of CPU, which lowers cycles/s without touching the hand-off latency.
   */
  meanHoldMs: number;
  /** Most permits held at once, as the contenders saw it (must not exceed the limit). */
  maxHeld: number;
  /** Acquisitions that failed for another reason than the end of the run. */
  errors: number;
}

/** One semaphore object; `acquire` resolves to the release function. */
interface Handle {
  acquire(signal: AbortSignal): Promise<() => Promise<void>>;
}

interface Contestant {
  handles: Handle[];
  /** Commands the clients send themselves (the rest run inside scripts). */
  clientCommands: readonly string[];
  close(): Promise<void>;
}

const BENCH_ARN = "arn:aws:states:us-east-1:123456789012:activity:bench-semaphore";

async function ours(options: SemaphoreBenchOptions): Promise<Contestant> {
  // The steady state is measured: the semaphore already exists, so its one-time window after Redis
  // had no record of it (no grants for one lease TTL) is long over, written by this Redis process.
  const admin = new Redis(options.redisUrl, { connectionName: "bench-ours-setup" });
  const run = /^run_id:(\w+)/m.exec(await admin.info("server"))?.[1] ?? "";
  await admin.hset(semaphoreKeys(BENCH_ARN).epoch, { since: 0, until: 0, run });
  admin.disconnect();
  const connections: RedisConnection[] = [];
  const semaphores: RedisSemaphore[] = [];
  for (let i = 0; i < options.instances; i++) {
    const connection = new RedisConnection({ url: options.redisUrl, connectionName: `bench-ours-${i}` });
    connections.push(connection);
    semaphores.push(
      new RedisSemaphore({
        connection,
        activityArn: BENCH_ARN,
        limit: options.limit,
        holderName: `bench-${i}`,
      }),
    );
  }
  // Both connections of each instance ready (the subscription too), so no acquisition waits on them.
  await waitUntil(() =>
    connections.every((c) => c.client.status === "ready" && c.subscriber.status === "ready"),
  );
  await new Promise((resolve) => setTimeout(resolve, 100)); // SUBSCRIBE answered
  return {
    handles: semaphores.map((semaphore) => ({
      acquire: async (signal) => {
        const permit = await semaphore.acquire(signal);
        return () => permit.release();
      },
    })),
    clientCommands: ["evalsha", "eval"],
    close: async () => {
      for (const semaphore of semaphores) await semaphore.close();
      for (const connection of connections) await connection.close();
    },
  };
}

async function library(options: SemaphoreBenchOptions, onLockLost: () => void): Promise<Contestant> {
  const clients: Redis[] = [];
  for (let i = 0; i < options.instances; i++) {
    clients.push(new Redis(options.redisUrl, { connectionName: `bench-lib-${i}` }));
  }
  await waitUntil(() => clients.every((client) => client.status === "ready"));
  return {
    handles: clients.map((client) => ({
      acquire: async (signal) => {
        // The library's model: one object per acquisition (it holds that acquisition's identifier).
        const semaphore = new LibrarySemaphore(client, "bench", options.limit, {
          ...LIBRARY_OPTIONS,
          // The default throws from a timer; count it instead (it would be a benchmark error).
          onLockLost,
        });
        await semaphore.acquire(signal);
        return () => semaphore.release();
      },
    })),
    clientCommands: ["evalsha", "eval", "zrem"],
    close: async () => {
      for (const client of clients) await client.quit();
    },
  };
}

export async function runSemaphoreBench(
  implementation: Implementation,
  options: SemaphoreBenchOptions,
): Promise<SemaphoreResult> {
  const admin = new Redis(options.redisUrl, { connectionName: "bench-admin" });
  await admin.flushall();
  let errors = 0;
  const contestant =
    implementation === "sfn-operator"
      ? await ours(options)
      : await library(options, () => {
          errors += 1;
        });

  const stop = new AbortController();
  const releases: number[] = [];
  /** The instance (handle index) of each release call, in the order of `releases`. */
  const releasedBy: number[] = [];
  let paired = 0;
  const handoffs: number[] = [];
  const crossInstanceHandoffs: number[] = [];
  const served = new Set<number>();
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  let windowAcquisitions = 0;
  let totalAcquisitions = 0;
  let held = 0;
  let maxHeld = 0;
  let holdTotalMs = 0;
  let holds = 0;

  const contender = async (handle: Handle, instance: number): Promise<void> => {
    while (!stop.signal.aborted) {
      let release: () => Promise<void>;
      try {
        release = await handle.acquire(stop.signal);
      } catch (error) {
        if (stop.signal.aborted) return;
        errors += 1;
        process.stderr.write(`semaphore bench: acquire failed: ${String(error)}\n`);
        continue;
      }
      const acquiredAt = performance.now();
      held += 1;
      maxHeld = Math.max(maxHeld, held);
      totalAcquisitions += 1;
      const inWindow = acquiredAt >= windowStart && acquiredAt < windowEnd;
      if (inWindow) {
        windowAcquisitions += 1;
        served.add(instance);
      }
      if (paired < releases.length) {
        const releasedAt = releases[paired] as number;
        const releaser = releasedBy[paired] as number;
        paired += 1;
        if (inWindow) {
          handoffs.push(acquiredAt - releasedAt);
          if (releaser !== instance) crossInstanceHandoffs.push(acquiredAt - releasedAt);
        }
      }
      // A timer alone can fire early: Node schedules it from the event loop's cached clock, which
      // lags more the busier the loop is, and a shorter hold would flatter the busier implementation.
      // So finish the hold on the real clock.
      if (options.holdMs > 0) await new Promise((resolve) => setTimeout(resolve, options.holdMs));
      while (performance.now() - acquiredAt < options.holdMs)
        await new Promise((resolve) => setImmediate(resolve));
      if (options.holdMs <= 0) await new Promise((resolve) => setImmediate(resolve));
      held -= 1;
      const releasingAt = performance.now();
      if (inWindow) {
        holdTotalMs += releasingAt - acquiredAt;
        holds += 1;
      }
      releases.push(releasingAt);
      releasedBy.push(instance);
      await release();
    }
  };

  const before = await commandCalls(admin);
  const started = performance.now();
  windowStart = started + options.warmupMs;
  windowEnd = windowStart + options.windowMs;
  const loops = Array.from({ length: options.contenders }, (_, i) => {
    const instance = i % contestant.handles.length;
    return contender(contestant.handles[instance] as Handle, instance);
  });
  await new Promise((resolve) => setTimeout(resolve, windowEnd - performance.now()));
  stop.abort();
  await Promise.all(loops);
  const after = await commandCalls(admin);
  const runSeconds = (performance.now() - started) / 1000;
  await contestant.close();
  admin.disconnect();

  const breakdown: Record<string, number> = {};
  let commands = 0;
  let roundTrips = 0;
  for (const [name, calls] of after) {
    const delta = calls - (before.get(name) ?? 0);
    if (name === "info" || delta === 0) continue; // the benchmark's own INFO calls
    breakdown[name] = delta / totalAcquisitions;
    commands += delta;
    if (contestant.clientCommands.includes(name)) roundTrips += delta;
  }
  return {
    implementation,
    instances: options.instances,
    contenders: options.contenders,
    limit: options.limit,
    holdMs: options.holdMs,
    windowMs: options.windowMs,
    cyclesPerSecond: windowAcquisitions / (options.windowMs / 1000),
    windowAcquisitions,
    totalAcquisitions,
    handoffMs: percentiles(handoffs),
    crossInstanceShare: handoffs.length > 0 ? crossInstanceHandoffs.length / handoffs.length : Number.NaN,
    crossInstanceHandoffMs: percentiles(crossInstanceHandoffs),
    instancesServed: served.size,
    commandsPerAcquisition: commands / totalAcquisitions,
    roundTripsPerAcquisition: roundTrips / totalAcquisitions,
    commandsPerSecond: commands / runSeconds,
    commandBreakdown: breakdown,
    meanHoldMs: holds > 0 ? holdTotalMs / holds : Number.NaN,
    maxHeld,
    errors,
  };
}

/** Calls per command name since the server started (`INFO commandstats`). */
async function commandCalls(client: Redis): Promise<Map<string, number>> {
  const info = await client.info("commandstats");
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0)
    return { count: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const sorted = values.toSorted((a, b) => a - b);
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  const at = (p: number): number =>
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
  return {
    count: sorted.length,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: sorted[sorted.length - 1] as number,
    mean: sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
  };
}

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("Redis connections not ready in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
