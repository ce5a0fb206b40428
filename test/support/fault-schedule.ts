/**
 * The fault test's schedule, drawn from its seed alone: the same seed gives the same workers (TTL,
 * loops, hold pattern, seed of their own draws), the same faults in the same order with the same
 * parameters, and the same liveness victims. Only the timing of the processes varies between runs.
 */
import { Prng } from "./prng.ts";

export interface ScheduleOptions {
  /** Worker processes running at once (slots; a killed one is replaced in its slot). */
  slots: number;
  ttlRangeMs: [number, number];
  /** Limits drawn for changes (the initial one too). */
  limitRange: [number, number];
  /** Roughly how long the faults go on (the schedule is drawn until their estimated time). */
  chaosMs: number;
  /** How long Redis stays down in a restart; undefined: no Redis faults (see the test). */
  redisDownMs: [number, number] | undefined;
  /** Redis restarts are drawn only in this first part of the chaos (0..1). */
  redisFaultsUntil: number;
}

export interface WorkerSpec {
  slot: number;
  /** 0 for the first process of the slot, then one more per replacement. */
  incarnation: number;
  ttlMs: number;
  loops: number;
  holdMs: [number, number];
  thinkMs: [number, number];
  seed: number;
}

export type Fault =
  /** SIGKILL the slot's process (once it holds a permit, if it does soon), start `replacement` after a pause. */
  | { kind: "kill"; slot: number; restartAfterMs: number; replacement: WorkerSpec }
  /**
   * SIGKILL redis-server, start it again `downMs` later, keeping its data (it ran with an fsynced
   * append-only file) or not. With `replacement`, that slot's process is killed with Redis and its
   * replacement started while Redis is down, so that it connects for the first time as Redis comes
   * back (a pod started during the outage).
   */
  | { kind: "redis"; keepData: boolean; downMs: number; persistentAfter: boolean; replacement?: WorkerSpec }
  | { kind: "limit"; limit: number }
  /**
   * The target service slows down: every hold lasts `holdMs` from now on; `settleMs` later (long
   * holds have replaced the short ones) the slot's process is SIGKILLed while it holds and every
   * permit is taken (so that no grant follows soon), and
   * `durationMs` after that holds go back to normal and `replacement` starts. With every permit
   * held for long, nobody takes or refreshes a lease for seconds at a time: the holders key then
   * lives only as long as the last process that touched it set (the mixed-TTL defect).
   */
  | {
      kind: "slowdown";
      holdMs: [number, number];
      settleMs: number;
      slot: number;
      durationMs: number;
      replacement: WorkerSpec;
    };

export interface ScheduleStep {
  pauseMs: number;
  fault: Fault;
}

export interface Schedule {
  seed: number;
  limit: number;
  /** Whether Redis starts with persistence. */
  persistent: boolean;
  workers: WorkerSpec[];
  steps: ScheduleStep[];
  /** Slots killed (each while holding, if it does soon) at the start of the quiet liveness phase. */
  livenessVictims: number[];
}

/**
 * Hold patterns: short tasks keep permits moving; long ones (several seconds, more than the shortest
 * TTLs) leave gaps in which nobody refreshes or takes a lease, which is when a holders key given a
 * short expiry by another process vanishes (the mixed-TTL defect).
 */
const HOLD_PATTERNS: Array<[number, number]> = [
  [50, 1_500],
  [100, 6_000],
  [1_000, 15_000],
];
/** Pauses between holds: mostly short (demand above the limit), sometimes long (lulls). */
const THINK_PATTERNS: Array<[number, number]> = [
  [0, 200],
  [0, 1_000],
  [200, 4_000],
];

/**
 * TTLs are bimodal, as in a fleet where most pods run with a long TTL and a few (a canary, a
 * rollout of a new SFN_REDIS_LEASE_TTL) with a short one: each process's TTL is near the shortest
 * or in the upper half of the range. Slot 0 is always short and slot 1 always long, both with long
 * holds. The mixed-TTL defect shows when a short-TTL process was the last to touch the holders key
 * and then stops (killed, or done) while the holders left refresh less often than that TTL (a
 * process refreshes every TTL/3) and nobody is granted a permit: medium TTLs, refreshing often,
 * would hide it. Slot 0 is also the quiet phase's victim: its short TTL keeps that phase short.
 */
const SHORT_SLOT = 0;
const LONG_SLOT = 1;

export function makeSchedule(seed: number, options: ScheduleOptions): Schedule {
  const rng = new Prng(seed);
  const [minTtl, maxTtl] = options.ttlRangeMs;
  const incarnations = new Map<number, number>();
  const ttls: number[] = [];
  const worker = (slot: number, draw: { keepTtl?: boolean; loops?: [number, number] } = {}): WorkerSpec => {
    const incarnation = incarnations.get(slot) ?? 0;
    incarnations.set(slot, incarnation + 1);
    const short = slot === SHORT_SLOT || (slot !== LONG_SLOT && rng.chance(0.3));
    const [low, high] = short
      ? [minTtl, Math.min(maxTtl, minTtl * 1.5)]
      : [Math.max(minTtl, maxTtl / 2), maxTtl];
    const previous = ttls[slot];
    const ttlMs = draw.keepTtl && previous !== undefined ? previous : Math.round(rng.logUniform(low, high));
    ttls[slot] = ttlMs;
    // The long-TTL slot holds most permits when they are few (a slowdown), with its rare refreshes.
    const loops = draw.loops ?? (slot === LONG_SLOT ? [3, 4] : [1, 4]);
    return {
      slot,
      incarnation,
      ttlMs,
      loops: rng.int(loops[0], loops[1]),
      holdMs: slot === SHORT_SLOT || slot === LONG_SLOT ? [1_000, 15_000] : rng.pick(HOLD_PATTERNS),
      thinkMs: rng.pick(THINK_PATTERNS),
      seed: rng.fork(),
    };
  };
  let limit = rng.int(Math.max(2, options.limitRange[0]), Math.min(4, options.limitRange[1]));
  let persistent = rng.chance(0.5);
  const schedule: Schedule = { seed, limit, persistent, workers: [], steps: [], livenessVictims: [] };
  for (let slot = 0; slot < options.slots; slot++) schedule.workers.push(worker(slot));
  // A replacement keeps its slot's TTL or gets another: a rollout that changes SFN_REDIS_LEASE_TTL.
  const replacement = (slot: number, loops?: [number, number]): WorkerSpec =>
    worker(slot, { keepTtl: rng.chance(0.4), ...(loops ? { loops } : {}) });

  // Estimated elapsed time, to know when to stop drawing. The estimates include what the test waits
  // for (a victim to hold, a new process to start), so that the faults take about `chaosMs`.
  let elapsed = 0;
  let slowdowns = 0;
  while (elapsed < options.chaosMs) {
    let pauseMs = Math.round(rng.between(500, 3_000));
    elapsed += pauseMs;
    const roll = rng.next();
    const redisDownMs =
      elapsed < options.redisFaultsUntil * options.chaosMs ? options.redisDownMs : undefined;
    let fault: Fault;
    if (!redisDownMs && slowdowns < 2 && roll < 0.25) {
      slowdowns += 1;
      // Few permits: the fewer holders, the likelier none of them refreshes within the victim's TTL.
      if (limit > 3 && rng.chance(0.7)) {
        limit = 3;
        schedule.steps.push({ pauseMs, fault: { kind: "limit", limit } });
        pauseMs = 0;
      }
      const slot = SHORT_SLOT;
      // Long enough for the victim's leases to expire (and, today, the holders key with them).
      const durationMs = Math.min(15_000, (ttls[slot] ?? minTtl) + 4_000);
      // Most holds that started before the slowdown have ended by then.
      const settleMs = Math.round(rng.between(8_000, 10_000));
      fault = {
        kind: "slowdown",
        holdMs: [4_000, 20_000],
        settleMs,
        slot,
        durationMs,
        replacement: replacement(slot),
      };
      elapsed += settleMs + durationMs + 2_000;
    } else if (redisDownMs && roll < 0.6) {
      // Data kept only if the server that is killed wrote it.
      const keepData = persistent && rng.chance(0.3);
      const downMs = Math.round(rng.between(redisDownMs[0], redisDownMs[1]));
      // A server that kept its data keeps persisting: its next restart may keep it again.
      const persistentAfter = keepData || rng.chance(0.5);
      // After a data loss, a process connecting for the first time takes every free permit (all of
      // them, Redis being empty) before the old holders are counted again: with more loops than
      // the free permits, it exceeds the limit as soon as one old holder still runs.
      const rollout = rng.chance(keepData ? 0.4 : 0.85);
      fault = {
        kind: "redis",
        keepData,
        downMs,
        persistentAfter,
        ...(rollout ? { replacement: replacement(rng.int(0, options.slots - 1), [4, 6]) } : {}),
      };
      persistent = persistentAfter;
      elapsed += downMs + 4_000;
    } else if (roll < 0.8) {
      // Mostly short-TTL processes: their crash is what can take the holders key with it, and a
      // long-TTL one's leases keep permits taken for up to a minute (few would be left to use).
      const shortSlots = ttls.flatMap((ttl, index) => (ttl <= 1.5 * minTtl ? [index] : []));
      const slot =
        shortSlots.length > 0 && rng.chance(0.75) ? rng.pick(shortSlots) : rng.int(0, options.slots - 1);
      const restartAfterMs = Math.round(rng.between(0, 2_000));
      fault = { kind: "kill", slot, restartAfterMs, replacement: replacement(slot) };
      elapsed += restartAfterMs + 1_500;
    } else {
      fault = { kind: "limit", limit: otherLimit(rng, limit, options.limitRange) };
      limit = fault.limit;
      elapsed += 1_000;
    }
    schedule.steps.push({ pauseMs, fault });
  }

  // The short-TTL slot, and a second one if its TTL is short too: the quiet phase lasts their TTL.
  const second = ttls
    .map((ttl, slot) => ({ ttl, slot }))
    .filter((entry) => entry.slot !== SHORT_SLOT && entry.ttl <= 2 * minTtl)
    .sort((a, b) => a.ttl - b.ttl)[0];
  schedule.livenessVictims = second ? [SHORT_SLOT, second.slot] : [SHORT_SLOT];
  return schedule;
}

function otherLimit(rng: Prng, current: number, range: [number, number]): number {
  for (;;) {
    const limit = rng.int(range[0], range[1]);
    if (limit !== current) return limit;
  }
}

/** One line per worker and step, for the log of a run. */
export function describeSchedule(schedule: Schedule): string {
  const worker = (spec: WorkerSpec) =>
    `w${spec.slot}.${spec.incarnation} (ttl ${spec.ttlMs} ms, ${spec.loops} loop(s), hold ${spec.holdMs.join("-")} ms)`;
  const lines = [
    `seed ${schedule.seed}: limit ${schedule.limit}, Redis ${schedule.persistent ? "persistent" : "without persistence"}`,
    ...schedule.workers.map((spec) => `  start ${worker(spec)}`),
  ];
  for (const { pauseMs, fault } of schedule.steps) {
    const after = `  +${pauseMs} ms:`;
    if (fault.kind === "kill") {
      lines.push(
        `${after} kill w${fault.slot}, ${fault.restartAfterMs} ms later start ${worker(fault.replacement)}`,
      );
    } else if (fault.kind === "limit") {
      lines.push(`${after} limit -> ${fault.limit}`);
    } else if (fault.kind === "slowdown") {
      lines.push(
        `${after} tasks slow down (holds ${fault.holdMs.join("-")} ms), ${fault.settleMs} ms later kill` +
          ` w${fault.slot}, ${fault.durationMs} ms later back to normal and start ${worker(fault.replacement)}`,
      );
    } else {
      const replaced = fault.replacement
        ? `, replace w${fault.replacement.slot} by ${worker(fault.replacement)}`
        : "";
      lines.push(
        `${after} Redis killed, ${fault.keepData ? "keeps" : "LOSES"} its data, down ${fault.downMs} ms,` +
          ` then ${fault.persistentAfter ? "persistent" : "without persistence"}${replaced}`,
      );
    }
  }
  lines.push(`  liveness: kill ${schedule.livenessVictims.map((slot) => `w${slot}`).join(", ")}, then quiet`);
  return lines.join("\n");
}
