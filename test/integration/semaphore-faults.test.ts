/**
 * Issue 10, item 9: a seeded, randomized fault test of the Redis semaphore with real processes and a
 * real redis-server. Several worker processes (test/support/fault-worker.ts), each with its own lease
 * TTL, run loops of acquire / hold / release on one activity while the test SIGKILLs and restarts
 * them, kills Redis and starts it again with and without its data (with a rollout during the
 * outage), changes the limit up and down, and slows every task down. An independent witness
 * (test/support/fault-witness.ts) counts what is in flight from what the workers tell it over TCP and
 * checks the limit at every new hold; a quiet phase at the end kills holders and checks that their
 * permits come back within their TTL.
 *
 * The schedule comes from a seed (test/support/fault-schedule.ts): `SFN_FAULT_SEED=<n>` replays the
 * same workers and faults (the processes' timing differs from run to run); without it a random seed
 * is drawn and printed. `SFN_FAULT_SECONDS` sets the length: about two thirds of it are faults, then
 * the quiet phase waits until a Redis restart can no longer excuse idle permits (a TTL after it) and
 * for its victims' TTL, so a default run takes 70-100 s.
 *
 * What the test must never do is make a correct semaphore exceed the limit. The semaphore cannot
 * keep the limit, by design, when a holder's lease expires while its task keeps running: its
 * refreshes failed for longer than what was left of its TTL (Redis away for that long, a partition,
 * an event loop stalled for seconds), and another process then took the permit. So Redis is never
 * down for long: REDIS_DOWN_MS is derived from the shortest TTL, and with TTLs too short for that,
 * Redis faults are left out. Workers note event-loop stalls in the witness's log, to tell such a
 * run (an overloaded machine) apart from a defect.
 *
 * A scenario the test does create, on purpose, because a semaphore can keep the limit through it:
 * Redis loses its data while a lowered limit drains (more holders than the new limit). Holders must
 * then be counted again all of them, above the limit, or permits are granted while the drain is not
 * over (today's REFRESH re-registers a lease only while the count is under the limit).
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import {
  type FaultWorkerConfig,
  isWorkerMessage,
  type ParentMessage,
  WORKER_CONFIG_ENV,
} from "../support/fault-protocol.ts";
import {
  describeSchedule,
  type Fault,
  makeSchedule,
  type Schedule,
  type WorkerSpec,
} from "../support/fault-schedule.ts";
import { type Violation, Witness } from "../support/fault-witness.ts";
import { RedisServer } from "../support/redis.ts";

/**
 * Lease TTLs of the workers, drawn log-uniformly (as many below 19 s as above). The range the
 * semaphore allows is 6 s (3 x the Redis command timeout) to 10 min; 60 s keeps the quiet phase,
 * which waits out the longest TTL after a Redis restart, short enough for a run of about a minute and
 * a half. `SFN_FAULT_TTL_RANGE=min-max` (ms) overrides it for experiments (today's code accepts
 * 500 ms; with a minimum below 3.15 s Redis faults are left out, see REDIS_DOWN_MS).
 */
const TTL_RANGE_MS = ttlRange(process.env.SFN_FAULT_TTL_RANGE) ?? [6_000, 60_000];
/** Worker processes running at once. */
const SLOTS = 5;
/** Limits drawn for changes (the initial limit is 2 to 4). */
const LIMIT_RANGE: [number, number] = [1, 6];
const SECONDS = Number(process.env.SFN_FAULT_SECONDS ?? 60);
/** Share of the run spent on faults; the rest is the quiet liveness phase (it may take longer). */
const CHAOS_SHARE = 0.65;
/**
 * How long Redis stays down. A holder's lease has at least 2/3 of its TTL left when Redis goes
 * (refreshes run every TTL/3) and the holder needs up to about 1 s after Redis is back to reconnect
 * (ioredis's retry delay) and refresh: with 1.5 s to spare for a loaded machine, the lease outlives
 * the outage. Longer outages would let a correct semaphore exceed the limit (see the file's comment).
 * `SFN_FAULT_NO_REDIS=1` leaves Redis faults out: with equal TTLs (`SFN_FAULT_TTL_RANGE=10000-10000`)
 * neither known defect can show, which checks the test itself against today's code.
 */
const REDIS_DOWN_MAX_MS = Math.min(1_600, (2 * TTL_RANGE_MS[0]) / 3 - 1_500);
const REDIS_DOWN_MS: [number, number] | undefined =
  REDIS_DOWN_MAX_MS >= 600 && !process.env.SFN_FAULT_NO_REDIS ? [600, REDIS_DOWN_MAX_MS] : undefined;
/**
 * Redis restarts only in this first part of the faults: after one, a correct semaphore may grant
 * nothing for a TTL, and the quiet phase waits for that to pass.
 */
const REDIS_FAULTS_UNTIL = 0.3;
/**
 * Liveness slack past what excuses under-use (a killed holder's TTL, a Redis restart's allowance): a
 * waiting process re-checks at least every 1 s (`recheckMs`); the rest is for a loaded 2-core machine.
 */
const LIVENESS_SLACK_MS = 5_000;
/** How long the quiet phase goes on after the last horizon and slack, still checking. */
const OBSERVE_MS = 4_000;
/** How long the old process of a rollout during a Redis outage runs beside its replacement. */
const ROLLOUT_OVERLAP_MS = 1_500;
/**
 * Between the last acknowledgement of a limit change and telling the workers it is settled: a grant
 * decided under the old limit by a script already on its way to Redis when its process acknowledged
 * has run by then, so a hold asked for after "settled" is never one of them.
 */
const SETTLE_MARGIN_MS = 500;
/** A kill waits this long for its victim to hold a permit (a crash that takes leases with it). */
const WAIT_FOR_HOLD_MS = 3_000;

const ARN = "arn:aws:states:us-east-1:123456789012:activity:semaphore-faults";
const WORKER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "../support/fault-worker.ts");
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function ttlRange(text: string | undefined): [number, number] | undefined {
  const match = text?.match(/^(\d+)-(\d+)$/);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

interface WorkerProcess {
  spec: WorkerSpec;
  name: string;
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<void>;
  killed: boolean;
  acks: Map<number, () => void>;
}

/**
 * Worker processes of the run, and its Redis, for the last-resort handlers below: a test that
 * crashes or is interrupted must not leave processes behind (workers also exit when the test
 * process's IPC channel closes).
 */
const livePids = new Set<number>();
let liveRedis: RedisServer | undefined;
function killEverything(): void {
  for (const pid of [...livePids, liveRedis?.pid]) {
    if (pid === undefined) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
function interrupted(): void {
  killEverything();
  process.exit(130);
}

class FaultRun {
  readonly problems: string[] = [];
  readonly logDir: string;
  readonly #schedule: Schedule;
  readonly #redis: RedisServer;
  readonly #witness: Witness;
  readonly #workers = new Map<number, WorkerProcess>();
  #limit: number;
  #epoch = 0;
  #settledEpoch = 0;
  #stopping = false;

  constructor(schedule: Schedule, redis: RedisServer, witness: Witness) {
    this.#schedule = schedule;
    this.#redis = redis;
    this.#witness = witness;
    this.#limit = schedule.limit;
    this.logDir = fs.mkdtempSync(path.join(os.tmpdir(), `sfn-faults-${schedule.seed}-`));
  }

  async run(): Promise<void> {
    const witness = this.#witness;
    witness.fault(
      `start: limit ${this.#limit}, Redis ${this.#schedule.persistent ? "persistent" : "not persistent"}`,
    );
    await Promise.all(this.#schedule.workers.map((spec) => this.#spawn(spec)));
    // A brand-new semaphore may grant nothing for a TTL (as after a data loss).
    witness.excuseUntil(witness.now() + this.#maxLiveTtl(), "a new semaphore");
    for (const { pauseMs, fault } of this.#schedule.steps) {
      await sleep(pauseMs);
      await this.#apply(fault);
      if (this.problems.length > 0) return;
    }
    await this.#quietPhase();
  }

  /** Kills every process of the run; safe to call more than once. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const workers = [...this.#workers.values()];
    this.#workers.clear();
    for (const worker of workers) worker.child.kill("SIGKILL");
    await Promise.all(workers.map((worker) => worker.exited));
  }

  async #apply(fault: Fault): Promise<void> {
    if (fault.kind === "kill") {
      await this.#kill(fault.slot, "");
      await sleep(fault.restartAfterMs);
      await this.#spawn(fault.replacement);
    } else if (fault.kind === "limit") {
      await this.#setLimit(fault.limit);
    } else if (fault.kind === "slowdown") {
      await this.#slowdown(fault);
    } else {
      await this.#restartRedis(fault);
    }
  }

  async #quietPhase(): Promise<void> {
    const witness = this.#witness;
    witness.fault("quiet phase: no faults but the kills below");
    witness.arm(true, LIVENESS_SLACK_MS);
    // The Redis faults' allowance first, so that it cannot hide what the kills below do.
    while (witness.now() < witness.horizon) await sleep(200);
    let victimsGone = 0;
    for (const slot of this.#schedule.livenessVictims) {
      const ttl = this.#workers.get(slot)?.spec.ttlMs ?? 0;
      await this.#kill(slot, "(quiet phase)");
      victimsGone = Math.max(victimsGone, witness.now() + ttl);
    }
    // Processes killed earlier may still tie permits: the witness counts them out of what must be
    // used, and the check is no weaker for them once the victims' leases are gone.
    while (witness.now() < Math.max(witness.horizon, victimsGone) + LIVENESS_SLACK_MS + OBSERVE_MS) {
      await sleep(200);
    }
    witness.arm(false);
  }

  async #spawn(spec: WorkerSpec): Promise<WorkerProcess> {
    const name = `w${spec.slot}.${spec.incarnation}`;
    const config: FaultWorkerConfig = {
      name,
      redisUrl: this.#redis.url,
      activityArn: ARN,
      limit: this.#limit,
      epoch: this.#settledEpoch,
      ttlMs: spec.ttlMs,
      loops: spec.loops,
      holdMs: spec.holdMs,
      thinkMs: spec.thinkMs,
      seed: spec.seed,
      witnessPort: this.#witness.port,
    };
    const child = spawn(process.execPath, [WORKER_SCRIPT], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, [WORKER_CONFIG_ENV]: JSON.stringify(config) },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    if (child.pid !== undefined) livePids.add(child.pid);
    const log = fs.createWriteStream(path.join(this.logDir, `${name}.log`));
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    let markReady = (): void => {};
    const worker: WorkerProcess = {
      spec,
      name,
      child,
      ready: new Promise<void>((resolve) => {
        markReady = resolve;
      }),
      exited: new Promise<void>((resolve) => {
        child.on("exit", (code, signal) => {
          if (child.pid !== undefined) livePids.delete(child.pid);
          log.end(`\n[exit code ${code} signal ${signal}]\n`);
          if (!worker.killed && !this.#stopping) {
            this.problems.push(`${name} exited by itself (code ${code}, signal ${signal}); see ${log.path}`);
          }
          markReady();
          for (const ack of worker.acks.values()) ack();
          resolve();
        });
      }),
      killed: false,
      acks: new Map(),
    };
    child.on("message", (message: unknown) => {
      if (!isWorkerMessage(message)) return;
      if (message.type === "ready") markReady();
      else worker.acks.get(message.epoch)?.();
    });
    this.#workers.set(spec.slot, worker);
    this.#witness.fault(`start ${name} (ttl ${spec.ttlMs} ms, ${spec.loops} loop(s))`);
    if (!(await within(worker.ready, 30_000))) this.problems.push(`${name} did not start within 30 s`);
    return worker;
  }

  async #kill(slot: number, why: string, waitForHoldMs = WAIT_FOR_HOLD_MS): Promise<void> {
    const worker = this.#workers.get(slot);
    if (worker) await this.#killProcess(worker, why, waitForHoldMs);
  }

  async #killProcess(worker: WorkerProcess, why: string, waitForHoldMs = WAIT_FOR_HOLD_MS): Promise<void> {
    const witness = this.#witness;
    const deadline = performance.now() + waitForHoldMs;
    while (witness.holdingOf(worker.name) === 0 && performance.now() < deadline) await sleep(20);
    const holding = witness.holdingOf(worker.name);
    worker.killed = true;
    if (this.#workers.get(worker.spec.slot) === worker) this.#workers.delete(worker.spec.slot);
    witness.fault(`SIGKILL ${worker.name} (ttl ${worker.spec.ttlMs} ms) holding ${holding} ${why}`);
    worker.child.kill("SIGKILL");
    await worker.exited;
    await witness.gone(worker.name);
    // Its leases stay until its TTL ends: nobody else may take those permits before.
    witness.processKilled(worker.name, worker.spec.loops, worker.spec.ttlMs);
  }

  async #setLimit(limit: number): Promise<void> {
    this.#epoch += 1;
    const epoch = this.#epoch;
    this.#limit = limit;
    this.#witness.limitChanged(epoch, limit);
    const acked = [...this.#workers.values()].map(
      (worker) =>
        new Promise<void>((resolve) => {
          worker.acks.set(epoch, resolve);
          if (worker.killed) resolve();
          else this.#send(worker, { type: "limit", limit, epoch });
        }),
    );
    if (!(await within(Promise.all(acked), 15_000))) {
      this.problems.push(`limit change to ${limit} not acknowledged by every worker within 15 s`);
    }
    await sleep(SETTLE_MARGIN_MS);
    this.#settledEpoch = epoch;
    for (const worker of this.#workers.values()) this.#send(worker, { type: "settled", epoch });
    this.#witness.fault(`limit ${limit} settled (epoch ${epoch})`);
  }

  async #slowdown(fault: Extract<Fault, { kind: "slowdown" }>): Promise<void> {
    const witness = this.#witness;
    witness.fault(`tasks slow down: holds of ${fault.holdMs.join("-")} ms`);
    for (const worker of this.#workers.values()) this.#send(worker, { type: "hold", holdMs: fault.holdMs });
    await sleep(fault.settleMs);
    // The moment a crash of the victim is most telling (holds are long now, so waiting for it may
    // take a while): it holds beside another live process, every permit is taken (no grant follows
    // its death until a long hold ends), and every other holder refreshes less often than the
    // victim's TTL.
    const victim = this.#workers.get(fault.slot);
    const telling = (): boolean => {
      if (!victim || witness.holdingOf(victim.name) === 0 || witness.count < witness.available) return false;
      const others = [...this.#workers.values()].filter(
        (other) => other !== victim && witness.holdingOf(other.name) > 0,
      );
      return others.length > 0 && others.every((other) => other.spec.ttlMs / 3 > victim.spec.ttlMs);
    };
    const deadline = performance.now() + 5 * WAIT_FOR_HOLD_MS;
    while (!telling() && performance.now() < deadline) await sleep(20);
    await this.#kill(fault.slot, "(tasks slow)", 0);
    await sleep(fault.durationMs);
    for (const worker of this.#workers.values()) this.#send(worker, { type: "hold", holdMs: null });
    witness.fault("tasks back to normal");
    await this.#spawn(fault.replacement);
  }

  async #restartRedis(fault: Extract<Fault, { kind: "redis" }>): Promise<void> {
    const witness = this.#witness;
    // Holders at the limit when Redis goes: after a data loss, any permit granted before they are
    // counted again is one too many.
    const deadline = performance.now() + WAIT_FOR_HOLD_MS;
    while (witness.count < witness.limit && performance.now() < deadline) await sleep(20);
    witness.fault(
      `SIGKILL Redis with ${witness.count} in flight: it ${fault.keepData ? "keeps" : "LOSES"} its data,` +
        ` down ${fault.downMs} ms`,
    );
    await this.#redis.stopProcess("SIGKILL");
    const ttlAllowance = Math.max(this.#maxLiveTtl(), fault.replacement?.ttlMs ?? 0);
    // A rollout during the outage: the new process, started while Redis is down, connects for the
    // first time as Redis comes back, while the old one still runs its tasks; the old one goes after.
    const old = fault.replacement ? this.#workers.get(fault.replacement.slot) : undefined;
    const replacement = fault.replacement ? this.#spawn(fault.replacement) : undefined;
    await sleep(fault.downMs);
    if (!fault.keepData) this.#redis.wipeData();
    await this.#redis.startProcess({ persistent: fault.persistentAfter });
    witness.fault(`Redis up (${fault.persistentAfter ? "persistent" : "not persistent"})`);
    // Grants may wait a TTL after a data loss; after a restart with the data, a grant whose answer
    // was lost in the crash leaves a lease nobody holds until its TTL ends.
    witness.excuseUntil(witness.now() + ttlAllowance, "Redis restarted");
    await replacement;
    if (old) {
      await sleep(ROLLOUT_OVERLAP_MS);
      await this.#killProcess(old, "(replaced during the Redis outage)");
    }
  }

  #send(worker: WorkerProcess, message: ParentMessage): void {
    if (!worker.child.connected) return;
    worker.child.send(message, () => {}); // a worker dying meanwhile is reported by its exit
  }

  #maxLiveTtl(): number {
    return Math.max(0, ...[...this.#workers.values()].map((worker) => worker.spec.ttlMs));
  }
}

async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function formatViolation(violation: Violation): string {
  return [
    `[${violation.kind}] at ${violation.at}s: ${violation.count} in flight, limit ${violation.limit}: ${violation.detail}`,
    ...violation.recent.map((line) => `      ${line}`),
  ].join("\n");
}

describe("RedisSemaphore under faults (worker processes, a real redis-server, a seeded schedule)", () => {
  const seed = process.env.SFN_FAULT_SEED
    ? Number(process.env.SFN_FAULT_SEED)
    : Math.floor(Math.random() * 2 ** 31);
  const schedule = makeSchedule(seed, {
    slots: SLOTS,
    ttlRangeMs: TTL_RANGE_MS,
    limitRange: LIMIT_RANGE,
    chaosMs: SECONDS * 1000 * CHAOS_SHARE,
    redisDownMs: REDIS_DOWN_MS,
    redisFaultsUntil: REDIS_FAULTS_UNTIL,
  });
  let redis: RedisServer | undefined;
  let witness: Witness | undefined;
  let run: FaultRun | undefined;

  before(() => {
    process.on("exit", killEverything);
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
  });

  after(async () => {
    await run?.stop();
    await witness?.close();
    await redis?.stop();
    process.off("exit", killEverything);
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  });

  it(`never exceeds the limit and gives a crashed holder's permits back within its TTL (seed ${seed})`, async function () {
    // Generous: the quiet phase waits out the TTLs of the last faults.
    this.timeout(SECONDS * 1000 * 3 + TTL_RANGE_MS[1] * 3 + 120_000);
    redis = await RedisServer.start();
    liveRedis = redis;
    if (!redis.restartable) this.skip(); // REDIS_URL: a server this test cannot kill
    await redis.stopProcess();
    await redis.startProcess({ persistent: schedule.persistent });
    witness = await Witness.start(schedule.limit);
    run = new FaultRun(schedule, redis, witness);
    const events = fs.createWriteStream(path.join(run.logDir, "events.log"));
    events.write(`${describeSchedule(schedule)}\n`);
    witness.logTo((line) => events.write(`${line}\n`));
    const startedAt = performance.now();
    try {
      await run.run();
    } finally {
      await run.stop();
    }
    events.end();
    const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
    const summary =
      `seed ${seed}: ${seconds} s, ${witness.holds} holds, peak ${witness.peak} in flight,` +
      ` ${witness.violationCount} violation(s); longest under-use in the quiet phase` +
      ` ${Math.round(witness.longestUnderuseMs)} ms${witness.sawDemandWhileArmed ? "" : " (no loop waited: unchecked)"}`;
    console.log(`      ${summary}`);
    const failed = witness.violationCount > 0 || run.problems.length > 0;
    if (!failed && !process.env.SFN_FAULT_KEEP_LOGS) fs.rmSync(run.logDir, { recursive: true, force: true });
    const settings = Object.entries(process.env)
      .filter(
        ([name]) => name.startsWith("SFN_FAULT_") && !["SFN_FAULT_SEED", "SFN_FAULT_SECONDS"].includes(name),
      )
      .map(([name, value]) => `${name}=${value}`);
    const reproduce = [`SFN_FAULT_SEED=${seed}`, `SFN_FAULT_SECONDS=${SECONDS}`, ...settings].join(" ");
    const report = [
      `semaphore fault test failed with seed ${seed}; the same schedule again:`,
      `  ${reproduce} npx mocha --timeout 300000 test/integration/semaphore-faults.test.ts`,
      summary,
      ...run.problems,
      ...witness.violations.slice(0, 3).map(formatViolation),
      witness.violations.length > 3
        ? `... and ${witness.violationCount - 3} more: ${witness.violations
            .slice(3, 20)
            .map((v) => `[${v.kind}] ${v.at}s ${v.count}/${v.limit}`)
            .join(", ")}`
        : "",
      `worker logs and every event: ${run.logDir}`,
      "schedule:",
      describeSchedule(schedule),
    ].join("\n");
    expect(failed, report).to.equal(false);
  });
});
