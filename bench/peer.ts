/**
 * The peer comparison: sfn-operator against the library teams pick today, npm `step-function-worker`
 * 2.1.0 (aws-sdk v2), and the bare v3 SDK loop, at concurrency 10, over the same emulator to the same
 * target, once with an instant target and once with one that takes 20 ms.
 *
 * Busy: the processes run side by side and take turns as in the dispatch benchmark (bench/dispatch.ts
 * says why): a turn enqueues a batch for one process, whose input tells the target how long to take,
 * lets it settle, measures a slice (tasks closed at the emulator, CPU and memory from /proc), then lets
 * the batch drain. Each cycle gives every variant a turn at each delay, in an order rotated per cycle.
 *
 * Resilience, on an emulator of its own (long polls of `longPollSeconds`): sfn-operator and the peer
 * idle, every GetActivityTask fails (HTTP 500, the emulator's fault injection) for `faultMs`, then the
 * faults stop; each must poll again with all its loops and complete a batch. Then both get SIGTERM
 * while their polls are out, and the time to exit is measured.
 */
import fs from "node:fs";
import path from "node:path";
import { EmulatorClient } from "../src/emulator/client.ts";
import { awsEnv, sourcesYaml } from "./dispatch.ts";
import { BENCH_DIST, BIN, Child, cpuMs, EMULATOR_ENV, type ProcessMemory, processMemory } from "./proc.ts";

export type PeerVariant =
  | "sfn-operator"
  | "sfn-operator-v8-defaults"
  | "sfn-operator-semi2"
  | "sfn-operator-lite-mode"
  | "sfn-operator-growth100"
  | "peer"
  | "bare"
  | "bare-axios";

export const PEER_VARIANT_NAMES: Record<PeerVariant, string> = {
  "sfn-operator": "`sfn-operator local`, as shipped",
  "sfn-operator-v8-defaults": "`sfn-operator local`, V8 defaults (`SFN_OPTIMIZE_FOR_SIZE=false`)",
  "sfn-operator-lite-mode":
    "`node --lite-mode bin/sfn-operator.js local` (as shipped, no optimizing compiler)",
  "sfn-operator-growth100":
    "`node --heap-growing-percent=100 bin/sfn-operator.js local` (as shipped, the old generation may double between full GCs)",
  "sfn-operator-semi2":
    "`sfn-operator local`, V8 defaults + `NODE_OPTIONS=--max-semi-space-size=2` (`SFN_OPTIMIZE_FOR_SIZE=false`)",
  peer: "step-function-worker 2.1.0",
  bare: "bare v3 SDK loop",
  "bare-axios": "bare v3 SDK loop, target through axios",
};

/** The variants that run one of the benchmark's own worker scripts (which print `ready` and `done`). */
function runsWorkerScript(variant: PeerVariant): boolean {
  return variant === "peer" || variant === "bare" || variant === "bare-axios";
}

export interface PeerPlan {
  concurrency: number;
  variants: PeerVariant[];
  delaysMs: number[];
  warmupMs: number;
  cycles: number;
  settleMs: number;
  sliceMs: number;
  /**
   * Whether a slice whose batch ran out before its end fails the run (the full run); the quick run,
   * without a warm-up to size its batches, only checks the machinery.
   */
  strictSlices: boolean;
  /** After start, before any task: how long to wait before reading idle memory. */
  idleSettleMs: number;
  resilience: {
    longPollSeconds: number;
    faultMs: number;
    /** How long each may take to have all its loops polling again. */
    recoveryTimeoutMs: number;
    batch: number;
    /** How long the batch after the faults is given. */
    batchTimeoutMs: number;
    /** Whose SIGTERM-to-exit is timed (the quick run skips the peer's, which takes many polls). */
    shutdownVariants: PeerVariant[];
  };
}

export interface PeerSlice {
  variant: PeerVariant;
  delayMs: number;
  cycle: number;
  tasksPerSecond: number;
  cpuMsPerTask: number;
  /** VmRSS at the end of the slice. */
  rss: number;
  peakRss: number;
  backlogAtEnd: number;
  /** sfn-operator's own heap figures at the end of the slice (from its /metrics); not for the others. */
  heap: HeapFigures | undefined;
}

/** V8's heap as prom-client's default metrics report it, in bytes. */
export interface HeapFigures {
  /** Committed size of the young generation (its semi-spaces) and of the old generation. */
  newSpace: number;
  oldSpace: number;
  total: number;
  used: number;
  /** Memory held by JS objects outside the heap (Buffers). */
  external: number;
}

export interface ResilienceResult {
  variant: PeerVariant;
  /** Failed GetActivityTask answers it received while the faults lasted. */
  failedPolls: number;
  /** Loops polling again after the faults stopped (the emulator's waiting polls of its activity). */
  loopsPolling: number;
  /** Seconds from the end of the faults until all its loops polled again (NaN: never within the timeout). */
  recoveredAfterS: number;
  /** Tasks of the batch enqueued after the faults that were completed. */
  tasksCompleted: number;
  batch: number;
  /** SIGTERM to exit, with its polls out. */
  shutdownS: number;
  exitCode: number | null;
}

export interface PeerRun {
  commands: Partial<Record<PeerVariant, string>>;
  sourcesFile: string;
  /** Memory once started, before any task. */
  idle: Partial<Record<PeerVariant, ProcessMemory>>;
  slices: PeerSlice[];
  resilience: ResilienceResult[];
  resilienceEmulatorCommand: string;
  problems: string[];
}

interface Contestant {
  variant: PeerVariant;
  child: Child;
  activityName: string;
  activityArn: string;
  bestRate: Map<number, number>;
  /** Where sfn-operator serves /metrics (undefined for the others). */
  metricsUrl: string | undefined;
}

/** Least rate a batch is sized for, per delay: a batch too small makes the slice invalid. */
const MIN_RATE = (delayMs: number): number => (delayMs === 0 ? 1_000 : 500);
const HEADROOM = 1.5;

export async function runPeerBench(
  setup: { emulatorUrl: string; targetUrl: string; workDir: string; say: (line: string) => void },
  plan: PeerPlan,
): Promise<PeerRun> {
  const side = new EmulatorClient(setup.emulatorUrl);
  await side.reset();
  const problems: string[] = [];
  const commands: Partial<Record<PeerVariant, string>> = {};
  const contestants: Contestant[] = [];
  let sourcesFile = "";
  try {
    for (const variant of plan.variants) {
      const started = await startContestant(variant, setup.emulatorUrl, setup, plan.concurrency, "busy");
      commands[variant] = started.command;
      if (started.sourcesFile) sourcesFile = started.sourcesFile;
      contestants.push(started.contestant);
    }
    await sleep(plan.idleSettleMs);
    const idle: Partial<Record<PeerVariant, ProcessMemory>> = {};
    for (const c of contestants) {
      const memory = processMemory(c.child.pid);
      if (memory) idle[c.variant] = memory;
    }

    const turn = async (c: Contestant, delayMs: number, cycle: number, settleMs: number, sliceMs: number) => {
      // After a warm-up, its best rate sizes the batch (a slow variant, --lite-mode, must not get a
      // batch that takes a minute to drain); without one, the floor.
      const rate = c.bestRate.get(delayMs) ?? MIN_RATE(delayMs);
      const batch = Math.ceil((rate * HEADROOM * (settleMs + sliceMs)) / 1000);
      await side.enqueue({ activityName: c.activityName, count: batch, input: { n: 1, delayMs } });
      await sleep(settleMs);
      const first = await sample(side, c);
      await sleep(sliceMs);
      const last = await sample(side, c);
      await drain(side, c);
      const tasks = last.closed - first.closed;
      const memory = processMemory(c.child.pid);
      const heap = c.metricsUrl ? await heapFigures(c.metricsUrl) : undefined;
      const slice: PeerSlice = {
        variant: c.variant,
        delayMs,
        cycle,
        tasksPerSecond: (tasks * 1000) / (last.at - first.at),
        cpuMsPerTask: (last.cpu - first.cpu) / tasks,
        rss: memory?.rss ?? Number.NaN,
        peakRss: memory?.peakRss ?? Number.NaN,
        backlogAtEnd: last.scheduled,
        heap,
      };
      c.bestRate.set(delayMs, Math.max(c.bestRate.get(delayMs) ?? 0, slice.tasksPerSecond));
      return slice;
    };

    /**
     * The warm-up tops the queue up every half second to what the process has shown it can take,
     * since its rate is not known yet; the best half-second rate then sizes its batches.
     */
    const warmUp = async (c: Contestant, delayMs: number): Promise<void> => {
      const end = performance.now() + plan.warmupMs;
      let rate = MIN_RATE(delayMs) / 4;
      let last = await sample(side, c);
      await side.enqueue({ activityName: c.activityName, count: Math.ceil(rate), input: { n: 1, delayMs } });
      while (performance.now() < end) {
        await sleep(500);
        const now = await sample(side, c);
        rate = Math.max(rate, ((now.closed - last.closed) * 1000) / (now.at - last.at));
        last = now;
        if (now.scheduled < rate) {
          const count = Math.ceil(rate - now.scheduled);
          await side.enqueue({ activityName: c.activityName, count, input: { n: 1, delayMs } });
        }
      }
      await drain(side, c);
      c.bestRate.set(delayMs, rate);
    };
    if (plan.warmupMs > 0) {
      for (const c of contestants) for (const delayMs of plan.delaysMs) await warmUp(c, delayMs);
    }
    const slices: PeerSlice[] = [];
    for (let cycle = 1; cycle <= plan.cycles; cycle++) {
      // Rotate the order every cycle, so that no variant always follows the same one.
      const shift = (cycle - 1) % contestants.length;
      const order = [...contestants.slice(shift), ...contestants.slice(0, shift)];
      const delays = cycle % 2 === 1 ? plan.delaysMs : plan.delaysMs.toReversed();
      for (const delayMs of delays) {
        for (const c of order) {
          const slice = await turn(c, delayMs, cycle, plan.settleMs, plan.sliceMs);
          if (slice.backlogAtEnd === 0 && plan.strictSlices)
            problems.push(
              `${c.variant} ${delayMs} ms cycle ${cycle}: the batch ran out before the slice ended`,
            );
          if (!(slice.tasksPerSecond > 0))
            problems.push(`${c.variant} ${delayMs} ms cycle ${cycle}: no task completed`);
          setup.say(
            `  cycle ${cycle} ${c.variant} ${delayMs} ms: ${slice.tasksPerSecond.toFixed(0)} tasks/s, ${slice.cpuMsPerTask.toFixed(3)} CPU ms/task, RSS ${(slice.rss / 2 ** 20).toFixed(0)} MiB`,
          );
          slices.push(slice);
        }
      }
    }

    const exits = await Promise.all(contestants.map(({ child }) => child.stop(60_000)));
    contestants.forEach((c, i) => {
      if (exits[i]?.code !== 0)
        problems.push(`${c.child.name} exited with ${exits[i]?.code ?? exits[i]?.signal}`);
      const done = /^done (\{.*\})$/m.exec(c.child.stdout);
      if (runsWorkerScript(c.variant) && !done) problems.push(`${c.child.name} printed no summary`);
      if (done && (JSON.parse(done[1] as string) as { errors: number }).errors > 0)
        problems.push(`${c.child.name}: ${done[1]}`);
    });
    const stats = await side.stats();
    if (stats.tasks.STARTED > 0) problems.push(`${stats.tasks.STARTED} task(s) taken but never reported`);
    if (stats.tasks.FAILED + stats.tasks.TIMED_OUT > 0)
      problems.push(`${stats.tasks.FAILED} failed and ${stats.tasks.TIMED_OUT} timed-out task(s)`);
    if (Object.keys(stats.errors).length > 0)
      problems.push(`AWS error answers: ${JSON.stringify(stats.errors)}`);

    const { results, emulatorCommand } = await runResilience(setup, plan, problems);
    return {
      commands,
      sourcesFile,
      idle,
      slices,
      resilience: results,
      resilienceEmulatorCommand: emulatorCommand,
      problems,
    };
  } finally {
    for (const { child } of contestants) if (child.running) child.process.kill("SIGKILL");
  }
}

async function runResilience(
  setup: { targetUrl: string; workDir: string; say: (line: string) => void },
  plan: PeerPlan,
  problems: string[],
): Promise<{ results: ResilienceResult[]; emulatorCommand: string }> {
  const r = plan.resilience;
  const emulatorArgs = [BIN, "emulator", "--port", "0", "--long-poll-seconds", String(r.longPollSeconds)];
  const emulator = new Child("resilience emulator", emulatorArgs, EMULATOR_ENV);
  const contestants: Contestant[] = [];
  try {
    const emulatorUrl = (await emulator.waitFor(/listening on (http:\/\/\S+)/))[1] as string;
    const side = new EmulatorClient(emulatorUrl);
    for (const variant of ["sfn-operator", "peer"] as PeerVariant[]) {
      contestants.push(
        (await startContestant(variant, emulatorUrl, setup, plan.concurrency, "faults")).contestant,
      );
    }
    const pollsOf = async (c: Contestant): Promise<number> =>
      (await side.stats()).waitingPollers[c.activityArn] ?? 0;
    for (const c of contestants) {
      await waitUntil(
        async () => (await pollsOf(c)) >= plan.concurrency,
        10_000,
        `${c.variant}: loops polling`,
      );
    }
    const failedBefore = (await side.stats()).errors.InternalFailure ?? 0;
    setup.say(`  resilience: every GetActivityTask fails with HTTP 500 for ${r.faultMs / 1000} s...`);
    await side.setFaults([{ actions: ["GetActivityTask"], errorRate: 1, errorStatus: 500 }]);
    await sleep(r.faultMs);
    await side.clearFaults();
    const faultsEnded = performance.now();
    const failedPolls = ((await side.stats()).errors.InternalFailure ?? 0) - failedBefore;

    // Each process is watched on its own, all at once: one that never recovers costs only its timeout.
    const results: ResilienceResult[] = await Promise.all(
      contestants.map(async (c): Promise<ResilienceResult> => {
        let recoveredAt = Number.NaN;
        try {
          await waitUntil(async () => (await pollsOf(c)) >= plan.concurrency, r.recoveryTimeoutMs, "");
          recoveredAt = performance.now();
        } catch {
          // reported as not recovered
        }
        const loopsPolling = await pollsOf(c);
        const before = (await side.stats()).activityTasks[c.activityArn]?.closed ?? 0;
        await side.enqueue({ activityName: c.activityName, count: r.batch, input: { n: 1 } });
        const done = async (): Promise<number> =>
          ((await side.stats()).activityTasks[c.activityArn]?.closed ?? 0) - before;
        await waitUntil(async () => (await done()) >= r.batch, r.batchTimeoutMs, "").catch(() => {});
        return {
          variant: c.variant,
          failedPolls: Number.NaN,
          loopsPolling,
          recoveredAfterS: (recoveredAt - faultsEnded) / 1000,
          tasksCompleted: await done(),
          batch: r.batch,
          shutdownS: Number.NaN,
          exitCode: null,
        };
      }),
    );
    // Failed polls per contestant are not told apart by the emulator: both got every poll failed.
    for (const result of results) result.failedPolls = failedPolls;

    // The faulted processes are stopped (the peer's may have no loop left, which would make its
    // shutdown look instant); the shutdown is timed on fresh ones with every loop in a long poll.
    const faulted = contestants.splice(0);
    await Promise.all(faulted.map((c) => c.child.stop(15 * r.longPollSeconds * 1000)));
    const oursFaulted = faulted.find((c) => c.variant === "sfn-operator");
    if (oursFaulted && oursFaulted.child.process.exitCode !== 0)
      problems.push(`resilience: sfn-operator exited with ${oursFaulted.child.process.exitCode}`);
    for (const variant of r.shutdownVariants) {
      const fresh = (await startContestant(variant, emulatorUrl, setup, plan.concurrency, "shutdown"))
        .contestant;
      contestants.push(fresh);
      await waitUntil(
        async () => (await pollsOf(fresh)) >= plan.concurrency,
        10_000,
        `${variant}: loops polling`,
      );
    }
    // A second for every loop to be well inside its long poll, then SIGTERM to both at once.
    await sleep(1_000);
    const stopped = performance.now();
    const exits = await Promise.all(
      contestants.map(async (c) => {
        const exit = await c.child.stop(15 * r.longPollSeconds * 1000);
        return { exit, at: performance.now() };
      }),
    );
    contestants.forEach((c, i) => {
      const result = results.find((x) => x.variant === c.variant);
      const exit = exits[i];
      if (result && exit) {
        result.shutdownS = (exit.at - stopped) / 1000;
        result.exitCode = exit.exit.code;
      }
    });
    const ours = results.find((x) => x.variant === "sfn-operator");
    if (ours && ours.loopsPolling < plan.concurrency)
      problems.push(
        `resilience: only ${ours.loopsPolling} of sfn-operator's loops polled again after the faults`,
      );
    if (!ours || ours.tasksCompleted < ours.batch)
      problems.push(`resilience: sfn-operator did not complete its batch after the faults`);
    if (ours?.exitCode !== 0) problems.push(`resilience: sfn-operator exited with ${ours?.exitCode}`);
    const oursArn = oursFaulted?.activityArn;
    if (oursArn) {
      const open = await side.listTasks({ activityArn: oursArn, status: "STARTED" });
      if (open.length > 0)
        problems.push(`resilience: sfn-operator left ${open.length} task(s) taken but never reported`);
    }
    return { results, emulatorCommand: emulator.command };
  } finally {
    for (const { child } of contestants) if (child.running) child.process.kill("SIGKILL");
    await emulator.stop();
  }
}

async function startContestant(
  variant: PeerVariant,
  emulatorUrl: string,
  setup: { targetUrl: string; workDir: string },
  concurrency: number,
  phase: string,
): Promise<{ contestant: Contestant; command: string; sourcesFile?: string }> {
  const activityName = `peer-${phase}-${variant}`;
  const env: NodeJS.ProcessEnv = { ...awsEnv(emulatorUrl) };
  let extra: Record<string, string> = {};
  if (variant === "sfn-operator-v8-defaults") extra = { SFN_OPTIMIZE_FOR_SIZE: "false" };
  if (variant === "sfn-operator-semi2")
    extra = { SFN_OPTIMIZE_FOR_SIZE: "false", NODE_OPTIONS: "--max-semi-space-size=2" };
  if (variant === "peer")
    extra = { AWS_NODEJS_CONNECTION_REUSE_ENABLED: "1", AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: "1" };
  Object.assign(env, extra);
  const envText = Object.entries({ ...awsEnv("<emulator>"), ...extra })
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");
  let child: Child;
  let activityArn: string;
  let sourcesFile: string | undefined;
  let metricsUrl: string | undefined;
  if (runsWorkerScript(variant)) {
    const script = variant === "peer" ? "peer-worker.js" : "bare-loop.js";
    child = new Child(
      `${variant} (${phase})`,
      [
        path.join(BENCH_DIST, script),
        activityName,
        `${setup.targetUrl}/task`,
        String(concurrency),
        ...(variant === "bare-axios" ? ["axios"] : []),
      ],
      env,
    );
    activityArn = (await child.waitFor(/^ready (\S+)/m))[1] as string;
  } else {
    sourcesFile = sourcesYaml(activityName, setup.targetUrl, concurrency, undefined);
    const file = path.join(setup.workDir, `${activityName}.yaml`);
    fs.writeFileSync(file, sourcesFile);
    // Neither V8 flag is allowed in NODE_OPTIONS: they go on the node command line.
    const nodeArgs =
      variant === "sfn-operator-lite-mode"
        ? ["--lite-mode"]
        : variant === "sfn-operator-growth100"
          ? ["--heap-growing-percent=100"]
          : [];
    child = new Child(
      `${variant} (${phase})`,
      [...nodeArgs, BIN, "local", "-f", file, "--metrics-port", "0"],
      {
        ...env,
        SFN_LOG_FORMAT: "json",
      },
    );
    await child.waitFor(/"message":"polling"/);
    activityArn = (await child.waitFor(/"activityArn":"([^"]+)"/))[1] as string;
    metricsUrl = `http://127.0.0.1:${(await child.waitFor(/serving \/metrics[^\n]*"port":(\d+)/))[1]}/metrics`;
  }
  return {
    contestant: { variant, child, activityName, activityArn, bestRate: new Map(), metricsUrl },
    command: `${envText} ${child.command}`.replace(setup.workDir, "<tmp>"),
    ...(sourcesFile ? { sourcesFile } : {}),
  };
}

/** Reads the heap figures from sfn-operator's /metrics (prom-client's default Node.js metrics). */
async function heapFigures(metricsUrl: string): Promise<HeapFigures | undefined> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    return {
      newSpace: value(/^\w*nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/m),
      oldSpace: value(/^\w*nodejs_heap_space_size_total_bytes\{space="old"\} (\S+)/m),
      total: value(/^\w*nodejs_heap_size_total_bytes (\S+)/m),
      used: value(/^\w*nodejs_heap_size_used_bytes (\S+)/m),
      external: value(/^\w*nodejs_external_memory_bytes (\S+)/m),
    };
  } catch {
    return undefined;
  }
}

interface Sample {
  at: number;
  closed: number;
  scheduled: number;
  cpu: number;
}

async function sample(side: EmulatorClient, c: Contestant): Promise<Sample> {
  const cpu = cpuMs(c.child.pid) ?? Number.NaN;
  const before = performance.now();
  const counts = (await side.stats()).activityTasks[c.activityArn];
  return {
    at: (before + performance.now()) / 2,
    closed: counts?.closed ?? 0,
    scheduled: counts?.scheduled ?? 0,
    cpu,
  };
}

async function drain(side: EmulatorClient, c: Contestant): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (((await side.stats()).activityTasks[c.activityArn]?.scheduled ?? 0) > 0) {
    if (!c.child.running) throw new Error(`${c.child.name} exited:\n${c.child.tail()}`);
    if (Date.now() > deadline) throw new Error(`${c.child.name} did not drain its batch within 120 s`);
    await sleep(20);
  }
  // The last tasks handed out still have to be reported (the 20 ms target's plus a round trip).
  await sleep(150);
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
