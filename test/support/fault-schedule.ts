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
  | { kind: "limit"; limit: number };

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
const THINK_PATTERNS: Array<[number, number]> = [
  [0, 200],
  [0, 1_000],
];

export function makeSchedule(seed: number, options: ScheduleOptions): Schedule {
  const rng = new Prng(seed);
  const incarnations = new Map<number, number>();
  const worker = (slot: number, ttlMs?: number): WorkerSpec => {
    const incarnation = incarnations.get(slot) ?? 0;
    incarnations.set(slot, incarnation + 1);
    return {
      slot,
      incarnation,
      ttlMs: ttlMs ?? Math.round(rng.logUniform(options.ttlRangeMs[0], options.ttlRangeMs[1])),
      loops: rng.int(1, 4),
      holdMs: rng.pick(HOLD_PATTERNS),
      thinkMs: rng.pick(THINK_PATTERNS),
      seed: rng.fork(),
    };
  };
  let limit = rng.int(Math.max(2, options.limitRange[0]), Math.min(4, options.limitRange[1]));
  let persistent = rng.chance(0.5);
  const schedule: Schedule = {
    seed,
    limit,
    persistent,
    workers: [],
    steps: [],
    livenessVictims: [],
  };
  const ttls: number[] = [];
  const [minTtl, maxTtl] = options.ttlRangeMs;
  for (let slot = 0; slot < options.slots; slot++) {
    // A very short TTL beside long ones in every run: the mixed-TTL defect needs both.
    const ttlMs =
      slot === 0
        ? Math.round(rng.logUniform(minTtl, Math.min(maxTtl, minTtl * 1.5)))
        : slot === 1
          ? Math.round(rng.logUniform(Math.max(minTtl, maxTtl / 2), maxTtl))
          : undefined;
    const spec = worker(slot, ttlMs);
    schedule.workers.push(spec);
    ttls[slot] = spec.ttlMs;
  }
  // A replacement keeps its slot's TTL or gets another: a rollout that changes SFN_REDIS_LEASE_TTL.
  const replacement = (slot: number): WorkerSpec => {
    const spec = worker(slot, rng.chance(0.4) ? ttls[slot] : undefined);
    ttls[slot] = spec.ttlMs;
    return spec;
  };

  // Estimated elapsed time, to know when to stop drawing; each fault's own duration is rough.
  let elapsed = 0;
  while (elapsed < options.chaosMs) {
    const pauseMs = Math.round(rng.between(500, 3_500));
    elapsed += pauseMs;
    const roll = rng.next();
    const redisDownMs =
      elapsed < options.redisFaultsUntil * options.chaosMs ? options.redisDownMs : undefined;
    let fault: Fault;
    if (redisDownMs && roll < 0.35) {
      // Data kept only if the server that is killed wrote it.
      const keepData = persistent && rng.chance(0.4);
      const downMs = Math.round(rng.between(redisDownMs[0], redisDownMs[1]));
      // A server that kept its data keeps persisting: its next restart may keep it again.
      const persistentAfter = keepData || rng.chance(0.5);
      fault = {
        kind: "redis",
        keepData,
        downMs,
        persistentAfter,
        // After a data loss, a process connecting for the first time is what takes permits while the
        // old holders have not re-registered yet: make that likely.
        ...(rng.chance(keepData ? 0.4 : 0.8)
          ? { replacement: replacement(rng.int(0, options.slots - 1)) }
          : {}),
      };
      persistent = persistentAfter;
      elapsed += downMs + 2_500;
    } else if (roll < 0.75) {
      const slot = rng.int(0, options.slots - 1);
      const restartAfterMs = Math.round(rng.between(0, 2_000));
      fault = { kind: "kill", slot, restartAfterMs, replacement: replacement(slot) };
      elapsed += restartAfterMs + 1_000;
    } else {
      fault = { kind: "limit", limit: otherLimit(rng, limit, options.limitRange) };
      elapsed += 500;
    }
    if (fault.kind === "limit") limit = fault.limit;
    schedule.steps.push({ pauseMs, fault });
  }

  // The slots with the shortest TTLs, so that the quiet phase after their kill stays short.
  const bySlotTtl = ttls.map((ttl, slot) => ({ ttl, slot })).sort((a, b) => a.ttl - b.ttl);
  const victims = rng.int(1, 2);
  schedule.livenessVictims = bySlotTtl.slice(0, victims).map((entry) => entry.slot);
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
