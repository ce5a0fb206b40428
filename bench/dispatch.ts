/**
 * The dispatch benchmark: tasks per second through one process over the emulator (its own process)
 * to an instant target (its own process), for
 *
 * - `bare`: bench/bare-loop.ts, the SDK alone (the yardstick);
 * - `poller`: `sfn-operator local -f <file>`, the real CLI as users run it, in-process semaphore;
 * - `poller-redis`: the same with `redis:` in the file (the Redis semaphore).
 *
 * The processes (`processes` of each variant) run side by side for the whole benchmark, each on its
 * own activity, and take turns: in each cycle one process of every variant in turn gets a batch of
 * tasks while the others have none (they sit in long polls, as idle pods do). A slice is measured
 * from the emulator's closed-task count of the process's activity once it has had `settleMs` to ramp
 * up, for `sliceMs`, with tasks still queued at the end (else the slice is rejected: the batch, not
 * the process, set the pace); the rest of the batch drains before the next turn, so no two
 * processes ever work at once. The cycles go through every order of the variants, and each block of
 * orders goes to the next process of each variant.
 *
 * Why slices and not one long window per variant: this machine is shared and its speed drifts by
 * ±10% over minutes. A variant's slice and the bare loop's in the same cycle are seconds apart, so
 * each cycle's ratio compares like with like, and the median over many cycles shrugs off a slice
 * disturbed by other work. Starving the idle variants (rather than stopping them with SIGSTOP) keeps
 * every process's timers honest: a stopped process would, on resuming, see its command and socket
 * timeouts fire before the answers waiting in its sockets are read.
 *
 * Afterwards every process gets SIGTERM, must exit 0, and every task taken must be closed as
 * SUCCEEDED: nothing failed, nothing left STARTED.
 */
import fs from "node:fs";
import path from "node:path";
import { EmulatorClient } from "../src/emulator/client.ts";
import type { EmulatorStats } from "../src/emulator/types.ts";
import { BENCH_DIST, BIN, Child, cpuMs, vmBytes } from "./proc.ts";

export type DispatchVariant = "bare" | "poller" | "poller-redis";

/** The processes the measured ones talk to. */
export interface DispatchSetup {
  emulatorUrl: string;
  emulatorPid: number | undefined;
  targetUrl: string;
  targetPid: number | undefined;
  redisUrl: string;
  redisPid: number | undefined;
  /** Where the sources files go. */
  workDir: string;
}

export interface DispatchPlan {
  variants: DispatchVariant[];
  /**
   * Processes per variant. Each takes every `processes`-th block of cycles: two processes running
   * the same code can differ by several per cent for their whole life (JIT decisions, heap layout),
   * and one process per variant would make that luck part of the figure.
   */
  processes: number;
  /** Concurrent loops (the poller's maxConcurrency and concurrencyPerPoller). */
  loops: number;
  /** One unmeasured turn of each process before the first cycle (JIT, heap sizing, connection pools). */
  warmupMs: number;
  /** A multiple of 6 × processes keeps the orders and the processes balanced. */
  cycles: number;
  /** From a turn's first tasks to the start of its measurement. */
  settleMs: number;
  /** The measured part of a turn. */
  sliceMs: number;
}

/** CPU used during a slice, in cores (1 = one core busy the whole time). */
export interface CpuShare {
  measured: number;
  emulator: number;
  target: number;
  redis: number;
}

/** One measured slice: one variant's turn in one cycle. */
export interface DispatchSlice {
  variant: DispatchVariant;
  /** Which of the variant's processes (1-based). */
  process: number;
  cycle: number;
  tasksPerSecond: number;
  measuredTasks: number;
  measuredMs: number;
  cpu: CpuShare;
  /** CPU ms of the measured process per task. */
  cpuMsPerTask: number;
  /** VmHWM of the measured process at the end of the slice. */
  peakRssBytes: number | undefined;
  /** Tasks of the batch still queued when the slice ended (must be above 0). */
  backlogAtEnd: number;
}

export interface DispatchRun {
  /** How each variant's process was started, with its environment. */
  commands: Partial<Record<DispatchVariant, string>>;
  /** The Redis variant's sources file (the in-process one is the same without `redis:`). */
  sourcesFile: string | undefined;
  slices: DispatchSlice[];
  /** Tasks closed over the whole run, warm-up and drains included. */
  tasksClosed: number;
  /** Problems found by the checks; empty when the run is valid. */
  problems: string[];
}

/**
 * A batch is sized for the variant's best rate so far (at least this) times the headroom: too small
 * and the slice is rejected, too large and only the drain after the slice takes longer.
 */
export const MIN_RATE_PER_S = 1_000;
export const BATCH_HEADROOM = 1.3;
const DRAIN_POLL_MS = 20;
/** After a batch has drained, for the last tasks in flight to be reported. */
const DRAIN_TAIL_MS = 100;
export const ACTIVITY_REGION = "us-east-1";

export function awsEnv(emulatorUrl: string): NodeJS.ProcessEnv {
  return {
    AWS_ENDPOINT_URL_SFN: emulatorUrl,
    AWS_REGION: ACTIVITY_REGION,
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

export function sourcesYaml(
  activityName: string,
  targetUrl: string,
  loops: number,
  redisUrl: string | undefined,
): string {
  return [
    ...(redisUrl ? [`redis: ${redisUrl}`] : []),
    `region: ${ACTIVITY_REGION}`,
    "sources:",
    `  - activityName: ${activityName}`,
    `    target: ${targetUrl}`,
    "    path: /task",
    `    maxConcurrency: ${loops}`,
    `    concurrencyPerPoller: ${loops}`,
    "    requestTimeout: 30s",
    "    heartbeatInterval: 10s",
    "",
  ].join("\n");
}

/** One process of a variant, and its activity. */
interface Contestant {
  variant: DispatchVariant;
  /** 1-based, among the variant's processes. */
  process: number;
  child: Child;
  activityName: string;
  /** Known from the first batch enqueued (the process created the activity by name). */
  activityArn: string | undefined;
  /** Its best measured rate so far, to size its next batch. */
  bestRate: number;
}

export async function runDispatchBench(setup: DispatchSetup, plan: DispatchPlan): Promise<DispatchRun> {
  const side = new EmulatorClient(setup.emulatorUrl);
  await side.reset();
  const problems: string[] = [];
  const commands: Partial<Record<DispatchVariant, string>> = {};
  let sourcesFile: string | undefined;
  const contestants: Contestant[] = [];
  try {
    for (let process = 1; process <= plan.processes; process++) {
      for (const variant of plan.variants) {
        const started = await startVariant(setup, variant, process, plan.loops);
        commands[variant] ??= started.command;
        sourcesFile ??= started.sourcesFile;
        contestants.push(started.contestant);
      }
    }

    /** One turn of one process; its slice (cycle 0 for the warm-up) also sizes its next batch. */
    const turn = async (
      contestant: Contestant,
      cycle: number,
      settleMs: number,
      sliceMs: number,
    ): Promise<DispatchSlice> => {
      const batch = Math.ceil((contestant.bestRate * BATCH_HEADROOM * (settleMs + sliceMs)) / 1000);
      const { activityArn } = await side.enqueue({
        activityName: contestant.activityName,
        count: batch,
        input: { n: 1 },
      });
      contestant.activityArn = activityArn;
      await sleep(settleMs);
      const first = await sample(side, setup, contestant);
      await sleep(sliceMs);
      const last = await sample(side, setup, contestant);
      await drain(side, contestant);
      const slice = sliceOf(contestant, cycle, first, last);
      contestant.bestRate = Math.max(contestant.bestRate, slice.tasksPerSecond);
      return slice;
    };

    for (const contestant of contestants) await turn(contestant, 0, 0, plan.warmupMs);

    const orders = permutations(plan.variants);
    const slices: DispatchSlice[] = [];
    for (let cycle = 1; cycle <= plan.cycles; cycle++) {
      // Every order in turn: each variant goes first, last, and right after each other variant
      // equally often over a multiple of orders.length cycles (rotations alone would keep one
      // variant always right after the same other one, and the work that one leaves behind in the
      // emulator and the machine would weigh on it alone). Each block of orders.length cycles is
      // run by the next process of each variant.
      const process = (Math.floor((cycle - 1) / orders.length) % plan.processes) + 1;
      for (const variant of orders[(cycle - 1) % orders.length] as DispatchVariant[]) {
        const contestant = contestants.find((c) => c.variant === variant && c.process === process);
        if (!contestant) throw new Error(`no process ${process} of ${variant}`);
        const slice = await turn(contestant, cycle, plan.settleMs, plan.sliceMs);
        if (slice.backlogAtEnd === 0) {
          problems.push(
            `${contestant.variant} cycle ${cycle}: its batch ran out before the slice ended: the batch, not the process, set the pace`,
          );
        }
        if (slice.measuredTasks <= 0)
          problems.push(`${contestant.variant} cycle ${cycle}: no task completed`);
        slices.push(slice);
      }
    }

    await stopAll(contestants, problems);
    const stats = await side.stats();
    checkTasks(stats, problems);
    // Per activity: the emulator forgets old closed tasks, but these counts keep every one.
    const tasksClosed = Object.values(stats.activityTasks).reduce((sum, counts) => sum + counts.closed, 0);
    return { commands, sourcesFile, slices, tasksClosed, problems };
  } finally {
    for (const { child } of contestants) if (child.running) child.process.kill("SIGKILL");
  }
}

async function startVariant(
  setup: DispatchSetup,
  variant: DispatchVariant,
  process: number,
  loops: number,
): Promise<{ contestant: Contestant; command: string; sourcesFile?: string }> {
  const activityName = `bench-${variant}-${process}`;
  const env = awsEnv(setup.emulatorUrl);
  const envText = Object.entries(env)
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");
  if (variant === "bare") {
    const child = new Child(
      `bare loop #${process}`,
      [path.join(BENCH_DIST, "bare-loop.js"), activityName, `${setup.targetUrl}/task`, String(loops)],
      env,
    );
    await child.waitFor(/^ready /m);
    return {
      contestant: contestantOf(variant, process, child, activityName),
      command: `${envText} ${child.command}`,
    };
  }
  const sourcesFile = path.join(setup.workDir, `${activityName}.yaml`);
  const redisUrl = variant === "poller-redis" ? setup.redisUrl : undefined;
  const yaml = sourcesYaml(activityName, setup.targetUrl, loops, redisUrl);
  fs.writeFileSync(sourcesFile, yaml);
  const child = new Child(`${variant} #${process}`, [BIN, "local", "-f", sourcesFile], {
    ...env,
    SFN_LOG_FORMAT: "json",
  });
  await child.waitFor(/"message":"polling"/);
  return {
    contestant: contestantOf(variant, process, child, activityName),
    command: `${envText} ${child.command}`,
    ...(redisUrl ? { sourcesFile: yaml } : {}),
  };
}

function contestantOf(
  variant: DispatchVariant,
  process: number,
  child: Child,
  activityName: string,
): Contestant {
  return { variant, process, child, activityName, activityArn: undefined, bestRate: MIN_RATE_PER_S };
}

interface Sample {
  at: number;
  closed: number;
  scheduled: number;
  cpu: CpuShare;
}

async function sample(side: EmulatorClient, setup: DispatchSetup, contestant: Contestant): Promise<Sample> {
  const cpu: CpuShare = {
    measured: cpuMs(contestant.child.pid) ?? Number.NaN,
    emulator: cpuMs(setup.emulatorPid) ?? Number.NaN,
    target: cpuMs(setup.targetPid) ?? Number.NaN,
    redis: cpuMs(setup.redisPid) ?? Number.NaN,
  };
  const before = performance.now();
  const counts = (await side.stats()).activityTasks[contestant.activityArn ?? ""];
  // The counters were read somewhere during the call: take its middle.
  return {
    at: (before + performance.now()) / 2,
    closed: counts?.closed ?? 0,
    scheduled: counts?.scheduled ?? 0,
    cpu,
  };
}

function sliceOf(contestant: Contestant, cycle: number, first: Sample, last: Sample): DispatchSlice {
  const measuredMs = last.at - first.at;
  const measuredTasks = last.closed - first.closed;
  const share = (key: keyof CpuShare): number => (last.cpu[key] - first.cpu[key]) / measuredMs;
  return {
    variant: contestant.variant,
    process: contestant.process,
    cycle,
    tasksPerSecond: (measuredTasks * 1000) / measuredMs,
    measuredTasks,
    measuredMs,
    cpu: {
      measured: share("measured"),
      emulator: share("emulator"),
      target: share("target"),
      redis: share("redis"),
    },
    cpuMsPerTask: (last.cpu.measured - first.cpu.measured) / measuredTasks,
    peakRssBytes: vmBytes(contestant.child.pid, "VmHWM"),
    backlogAtEnd: last.scheduled,
  };
}

/** Waits until the contestant's batch is all handed out, then for its last tasks to be reported. */
async function drain(side: EmulatorClient, contestant: Contestant): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (((await side.stats()).activityTasks[contestant.activityArn ?? ""]?.scheduled ?? 0) > 0) {
    if (!contestant.child.running)
      throw new Error(`${contestant.child.name} exited:\n${contestant.child.tail()}`);
    if (Date.now() > deadline)
      throw new Error(`${contestant.child.name} did not drain its batch within 60 s`);
    await sleep(DRAIN_POLL_MS);
  }
  await sleep(DRAIN_TAIL_MS);
}

/** SIGTERM to every process at once; each must exit 0, the bare loop without errors. */
async function stopAll(contestants: Contestant[], problems: string[]): Promise<void> {
  const exits = await Promise.all(contestants.map(({ child }) => child.stop(60_000)));
  contestants.forEach(({ child, variant }, i) => {
    const exit = exits[i];
    if (exit?.code !== 0)
      problems.push(`${child.name} exited with ${exit?.code ?? exit?.signal}:\n${child.tail()}`);
    if (variant !== "bare") return;
    const done = /^done (\{.*\})$/m.exec(child.stdout);
    if (!done) problems.push(`${child.name} printed no summary`);
    else if ((JSON.parse(done[1] as string) as { errors: number }).errors > 0) {
      problems.push(`${child.name} errors: ${done[1]}`);
    }
  });
}

/** Every task taken was reported, and every report was a success the emulator accepted. */
function checkTasks(stats: EmulatorStats, problems: string[]): void {
  if (stats.tasks.STARTED > 0) problems.push(`${stats.tasks.STARTED} task(s) taken but never reported`);
  if (stats.tasks.FAILED + stats.tasks.TIMED_OUT > 0) {
    problems.push(`${stats.tasks.FAILED} failed and ${stats.tasks.TIMED_OUT} timed-out task(s)`);
  }
  if (Object.keys(stats.errors).length > 0)
    problems.push(`AWS error answers: ${JSON.stringify(stats.errors)}`);
}

/** Every ordering of `items`: the cycles go through these in turn (see `runDispatchBench`). */
export function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
