/**
 * The dispatch benchmark: tasks per second through one process over the emulator (its own process)
 * to an instant target (its own process), for
 *
 * - `bare`: bench/bare-loop.ts, the SDK alone (the yardstick);
 * - `poller`: `sfn-operator local -f <file>`, the real CLI as users run it, in-process semaphore;
 * - `poller-redis`: the same with `redis:` in the file (the Redis semaphore).
 *
 * Full mode keeps a backlog of SCHEDULED tasks in the emulator (a feeder tops it up through the side
 * API), lets the process warm up, then counts tasks closed during a steady window from the
 * emulator's own counters; it checks the backlog never ran dry, so the window measures the process
 * and not the feeder. Quick mode enqueues a fixed number of tasks and waits for all of them.
 * Either way, afterwards every task the process took must be closed as SUCCEEDED: nothing failed,
 * nothing left STARTED after the process exited on SIGTERM.
 */
import fs from "node:fs";
import path from "node:path";
import { EmulatorClient } from "../src/emulator/client.ts";
import type { EmulatorStats } from "../src/emulator/types.ts";
import { BENCH_DIST, BIN, Child, cpuMs, vmBytes } from "./proc.ts";

export type DispatchVariant = "bare" | "poller" | "poller-redis";

/** The processes the measured one talks to. */
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

export interface DispatchOptions {
  variant: DispatchVariant;
  round: number;
  /** Concurrent loops (the poller's maxConcurrency and concurrencyPerPoller). */
  loops: number;
  /** Full mode: warm-up and window; quick mode: a fixed number of tasks. */
  mode: { kind: "window"; warmupMs: number; windowMs: number } | { kind: "fixed"; tasks: number };
}

/** CPU used during the measurement, in cores (1 = one core busy the whole time). */
export interface CpuShare {
  measured: number;
  emulator: number;
  target: number;
  redis: number;
}

export interface DispatchResult {
  variant: DispatchVariant;
  round: number;
  /** How the measured process was started, with its environment. */
  command: string;
  /** The sources file (pollers only). */
  sourcesFile?: string;
  tasksPerSecond: number;
  measuredTasks: number;
  measuredMs: number;
  cpu: CpuShare;
  /** CPU ms of the measured process per task. */
  cpuMsPerTask: number;
  /** VmHWM of the measured process at the end of the measurement. */
  peakRssBytes: number | undefined;
  /** Smallest SCHEDULED backlog seen during the window (full mode; must stay above 0). */
  minBacklog: number | undefined;
  tasksClosed: number;
  exitCode: number | null;
  /** Problems found by the checks; empty when the run is valid. */
  problems: string[];
}

const BACKLOG_LOW = 2_000;
const BACKLOG_BATCH = 2_000;
const FEED_INTERVAL_MS = 100;
/** The emulator forgets closed tasks beyond this (its default retainClosedTasks); counts must stay below. */
const EMULATOR_RETAINED = 100_000;
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

function closedOf(stats: EmulatorStats): number {
  return stats.tasks.SUCCEEDED + stats.tasks.FAILED + stats.tasks.TIMED_OUT;
}

export async function runDispatchBench(
  setup: DispatchSetup,
  options: DispatchOptions,
): Promise<DispatchResult> {
  const side = new EmulatorClient(setup.emulatorUrl);
  await side.reset();
  const activityName = `bench-${options.variant}-${options.round}`;
  const problems: string[] = [];
  let enqueued = 0;
  const enqueue = async (count: number): Promise<void> => {
    if (enqueued + count >= EMULATOR_RETAINED) throw new Error("too many tasks for the emulator's retention");
    await side.enqueue({ activityName, count, input: { n: enqueued } });
    enqueued += count;
  };
  await enqueue(options.mode.kind === "fixed" ? options.mode.tasks : 2 * BACKLOG_BATCH);

  const env = awsEnv(setup.emulatorUrl);
  const envText = Object.entries(env)
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");
  let child: Child;
  let command: string;
  let sourcesFile: string | undefined;
  if (options.variant === "bare") {
    child = new Child(
      "bare loop",
      [path.join(BENCH_DIST, "bare-loop.js"), activityName, `${setup.targetUrl}/task`, String(options.loops)],
      env,
    );
    command = `${envText} ${child.command}`;
    await child.waitFor(/^ready /m);
  } else {
    sourcesFile = path.join(setup.workDir, `${activityName}.yaml`);
    const redisUrl = options.variant === "poller-redis" ? setup.redisUrl : undefined;
    fs.writeFileSync(sourcesFile, sourcesYaml(activityName, setup.targetUrl, options.loops, redisUrl));
    child = new Child("poller", [BIN, "local", "-f", sourcesFile], { ...env, SFN_LOG_FORMAT: "json" });
    command = `${envText} ${child.command}`;
    await child.waitFor(/"message":"polling"/);
  }
  const pid = child.pid;

  const cpuNow = (): CpuShare => ({
    measured: cpuMs(pid) ?? Number.NaN,
    emulator: cpuMs(setup.emulatorPid) ?? Number.NaN,
    target: cpuMs(setup.targetPid) ?? Number.NaN,
    redis: cpuMs(setup.redisPid) ?? Number.NaN,
  });
  const sample = async (): Promise<{ at: number; closed: number; cpu: CpuShare }> => {
    const cpu = cpuNow();
    const before = performance.now();
    const stats = await side.stats();
    // The counters were read somewhere during the call: take its middle.
    return { at: (before + performance.now()) / 2, closed: closedOf(stats), cpu };
  };

  let first: { at: number; closed: number; cpu: CpuShare };
  let last: { at: number; closed: number; cpu: CpuShare };
  let minBacklog: number | undefined;
  if (options.mode.kind === "fixed") {
    first = { at: performance.now(), closed: 0, cpu: cpuNow() };
    const deadline = Date.now() + 60_000;
    for (;;) {
      last = await sample();
      if (last.closed >= enqueued) break;
      if (Date.now() > deadline)
        throw new Error(`${child.name}: ${last.closed}/${enqueued} tasks closed after 60 s`);
      if (child.process.exitCode !== null) throw new Error(`${child.name} exited early:\n${child.tail()}`);
      await sleep(20);
    }
  } else {
    const { warmupMs, windowMs } = options.mode;
    const windowStart = performance.now() + warmupMs;
    const windowEnd = windowStart + windowMs;
    let feeding = true;
    // Keeps the backlog between BACKLOG_LOW and BACKLOG_LOW + BACKLOG_BATCH.
    const feeder = (async () => {
      while (feeding) {
        const stats = await side.stats();
        const now = performance.now();
        if (now >= windowStart && now <= windowEnd) {
          minBacklog = Math.min(minBacklog ?? Number.POSITIVE_INFINITY, stats.tasks.SCHEDULED);
        }
        if (stats.tasks.SCHEDULED < BACKLOG_LOW) await enqueue(BACKLOG_BATCH);
        await sleep(FEED_INTERVAL_MS);
      }
    })();
    await sleep(windowStart - performance.now());
    first = await sample();
    await sleep(windowEnd - performance.now());
    last = await sample();
    feeding = false;
    await feeder;
    if (minBacklog === 0)
      problems.push("the backlog ran dry during the window: the feeder, not the process, set the pace");
  }
  const peakRssBytes = vmBytes(pid, "VmHWM");

  // Quick mode drained the queue: check now, then end the waiting long polls at once (reset) rather
  // than after their window. Full mode leaves a backlog: polls end at once, check after the exit.
  if (options.mode.kind === "fixed") {
    checkTasks(await side.stats(), problems);
    if (last.closed !== enqueued) problems.push(`${last.closed} of ${enqueued} tasks closed`);
  }
  const exiting = child.stop(60_000);
  if (options.mode.kind === "fixed") await side.reset({ keepActivities: true }).catch(() => {});
  const exit = await exiting;
  if (exit.code !== 0)
    problems.push(`${child.name} exited with ${exit.code ?? exit.signal}:\n${child.tail()}`);
  if (options.mode.kind === "window") checkTasks(await side.stats(), problems);
  if (options.variant === "bare") {
    const done = /^done (\{.*\})$/m.exec(child.stdout);
    if (!done) problems.push("the bare loop printed no summary");
    else if ((JSON.parse(done[1] as string) as { errors: number }).errors > 0) {
      problems.push(`bare loop errors: ${done[1]}`);
    }
  }

  const measuredMs = last.at - first.at;
  const measuredTasks = last.closed - first.closed;
  const seconds = measuredMs / 1000;
  const share = (key: keyof CpuShare): number => (last.cpu[key] - first.cpu[key]) / measuredMs;
  if (measuredTasks <= 0) problems.push("no task was completed in the measurement");
  return {
    variant: options.variant,
    round: options.round,
    command,
    ...(sourcesFile ? { sourcesFile: fs.readFileSync(sourcesFile, "utf8") } : {}),
    tasksPerSecond: measuredTasks / seconds,
    measuredTasks,
    measuredMs,
    cpu: {
      measured: share("measured"),
      emulator: share("emulator"),
      target: share("target"),
      redis: share("redis"),
    },
    cpuMsPerTask: (last.cpu.measured - first.cpu.measured) / measuredTasks,
    peakRssBytes,
    minBacklog,
    tasksClosed: last.closed,
    exitCode: exit.code,
    problems,
  };
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
