/**
 * `npm run bench`: the benchmarks of the semaphore and of dispatch, written to BENCHMARKS.md with the
 * machine, the commands, the targets and how each figure was measured.
 *
 *   node dist/bench/run.js                      full run (a few minutes), writes BENCHMARKS.md
 *   node dist/bench/run.js --quick              every benchmark briefly, checks the machinery works
 *                                               (no speed asserted); report to a temp file
 *   node dist/bench/run.js --only semaphore     some parts (semaphore, dispatch, memory, peer, operator;
 *                                               comma-separated); report to a temp file
 *   node dist/bench/run.js --only operator --operator-sources 100 --operator-workers 16
 *                                               the operator benchmark with another number of sources
 *                                               or of workers (SFN_WORKERS; else its default)
 *   node dist/bench/run.js --out <file>         write the report there instead
 *
 * The operator part starts a control plane of its own from the binaries of test/cluster/build.sh
 * (`npm run cluster:build`; `npm test` builds them before `bench:smoke`). Without them it is skipped
 * with a message: a quick run passes, a full run fails its checks (BENCHMARKS.md would lack it).
 *
 * Exits 1 when a check fails (no throughput, a task not reported, the limit exceeded, a process
 * that did not exit cleanly); missing a speed target is reported, not an error.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { configureLogging } from "../src/observability/logger.ts";
import { type DispatchVariant, runDispatchBench } from "./dispatch.ts";
import { runMemoryBench } from "./memory.ts";
import { type OperatorPlan, runOperatorBench } from "./operator.ts";
import { type PeerPlan, runPeerBench } from "./peer.ts";
import { BENCH_DIST, BIN, Child, EMULATOR_ENV, loadAverage, machineInfo, REPO_ROOT } from "./proc.ts";
import { RedisServer } from "./redis-server.ts";
import { type BenchReport, checkProblems, renderReport, summaryLines } from "./report.ts";
import { type Implementation, runSemaphoreBench, type SemaphoreResult } from "./semaphore.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    "operator-sources": { type: "string" },
    "operator-workers": { type: "string" },
  },
});
const quick = values.quick ?? false;
const only = values.only;
const PARTS = ["semaphore", "dispatch", "memory", "peer", "operator"] as const;
type Part = (typeof PARTS)[number];
const onlyParts = only?.split(",");
if (onlyParts?.some((part) => !(PARTS as readonly string[]).includes(part))) {
  process.stderr.write(`--only takes ${PARTS.join(", ")}\n`);
  process.exit(2);
}
// The in-process semaphores log through the project's logger: keep the benchmark's output clean.
configureLogging({ level: "warn", format: "text" });

const SEMAPHORE = {
  contenders: 50,
  limit: 10,
  holdMs: 1,
  /** 1: one process with all the loops; 10: ten processes (pods) of five loops each. */
  instanceCounts: [1, 10],
  warmupMs: quick ? 200 : 1_000,
  windowMs: quick ? 500 : 10_000,
  /**
   * Not a target: one more run of each where hand-offs cross processes: this many instances with one
   * loop each (contenders = instances), so a releasing instance never has a waiter of its own and
   * every permit goes back through Redis (the releasing loop may still take it back); limit, hold,
   * warm-up and window as above.
   */
  crossingInstances: 20,
  /**
   * Not a target: one more run of each, one instance, with permits held this long, where waiting
   * dominates: what waiting costs Redis (polling against events).
   */
  longHoldMs: 100,
  longHoldWindowMs: quick ? 500 : 5_000,
};
const DISPATCH = {
  loops: 64,
  variants: ["bare", "poller", "poller-redis"] as DispatchVariant[],
  // The variants take turns (bench/dispatch.ts): many short slices, each cycle's ratio against the
  // bare loop's slice seconds before or after it, and the median over the cycles. The warm-up is
  // long because CPU per task keeps falling for the first ~20,000 tasks, by a third for the bare loop
  // and the poller alike (JIT, heap sizing): the benchmark measures processes that have been running,
  // as a pod's poller has.
  warmupMs: quick ? 500 : 20_000,
  // Two processes of each variant: each runs two blocks of the six orders of the three variants.
  processes: quick ? 1 : 2,
  cycles: quick ? 1 : 24,
  settleMs: quick ? 200 : 500,
  sliceMs: quick ? 500 : 2_000,
  longPollSeconds: 1,
};

const MEMORY = {
  importRepeats: quick ? 1 : 3,
  idleMs: quick ? 2_000 : 30_000,
  idleLoops: 4,
  quick,
};
const PEER: PeerPlan = {
  concurrency: 10,
  variants: quick
    ? ["sfn-operator", "peer", "bare", "bare-axios"]
    : [
        "sfn-operator",
        "sfn-operator-v8-defaults",
        "sfn-operator-semi2",
        "sfn-operator-lite-mode",
        "sfn-operator-growth100",
        "peer",
        "bare",
        "bare-axios",
      ],
  // The quick run checks the machinery with the instant target only.
  delaysMs: quick ? [0] : [0, 20],
  warmupMs: quick ? 0 : 8_000,
  cycles: quick ? 1 : 8,
  settleMs: quick ? 200 : 500,
  sliceMs: quick ? 500 : 2_000,
  strictSlices: !quick,
  idleSettleMs: quick ? 500 : 5_000,
  resilience: {
    // Short long polls, so that the shutdown measurement does not wait out AWS's 60 s ones (the
    // report says how the figures scale); the quick run shortens everything.
    longPollSeconds: quick ? 1 : 5,
    // Longer than a long poll plus aws-sdk v2's retries (3, from 100 ms doubling), so that every
    // loop of each process meets the faults whatever the phase of its poll.
    faultMs: quick ? 3_000 : 12_000,
    // The poll loops' error backoff is capped at 30 s (src/poller/poller.ts): a loop may sleep that
    // long after the last failure however short the faults were. The wait ends when all poll again.
    recoveryTimeoutMs: 30_000,
    batch: 50,
    batchTimeoutMs: quick ? 3_000 : 10_000,
    shutdownVariants: quick ? ["sfn-operator"] : ["sfn-operator", "peer"],
  },
};
/** A `--<name> <n>` option that must be a positive integer when given; exits 2 otherwise. */
function positiveIntegerOption(name: "operator-sources" | "operator-workers"): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!(Number.isInteger(value) && value > 0)) {
    process.stderr.write(`--${name} takes a positive integer\n`);
    process.exit(2);
  }
  return value;
}
const operatorSources = positiveIntegerOption("operator-sources");
const operatorWorkers = positiveIntegerOption("operator-workers");
const OPERATOR: OperatorPlan = {
  // The quick run (CI) checks the machinery in well under a minute, control plane start included.
  sources: operatorSources ?? (quick ? 20 : 500),
  ...(operatorWorkers !== undefined && { workers: operatorWorkers }),
  changes: quick ? 5 : 50,
  idleMs: quick ? 20_000 : 60_000,
  settleMs: quick ? 2_000 : 10_000,
  controllerQps: 300,
  createConcurrency: 16,
  changeGapMs: quick ? 100 : 500,
  burstTimeoutMs: 600_000,
  changeTimeoutMs: 60_000,
  settleTimeoutMs: 120_000,
};
const runs = (part: Part): boolean => onlyParts === undefined || onlyParts.includes(part);

async function main(): Promise<number> {
  const startedAt = new Date();
  const started = performance.now();
  const loadStart = loadAverage();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "sfn-operator-bench-"));
  const redis = await RedisServer.start();
  const cleanups: Array<() => Promise<unknown>> = [() => redis.stop()];
  const report: BenchReport = {
    quick,
    only,
    startedAt,
    durationS: 0,
    machine: machineInfo(),
    loadStart,
    loadEnd: "",
    semaphore: undefined,
    dispatch: undefined,
    memory: undefined,
    peer: undefined,
    operator: undefined,
  };
  try {
    if (runs("semaphore")) {
      const results: SemaphoreResult[] = [];
      const runs = [
        ...SEMAPHORE.instanceCounts.map((instances) => ({
          instances,
          contenders: SEMAPHORE.contenders,
          holdMs: SEMAPHORE.holdMs,
          windowMs: SEMAPHORE.windowMs,
        })),
        {
          instances: SEMAPHORE.crossingInstances,
          contenders: SEMAPHORE.crossingInstances,
          holdMs: SEMAPHORE.holdMs,
          windowMs: SEMAPHORE.windowMs,
        },
        {
          instances: 1,
          contenders: SEMAPHORE.contenders,
          holdMs: SEMAPHORE.longHoldMs,
          windowMs: SEMAPHORE.longHoldWindowMs,
        },
      ];
      for (const run of runs) {
        for (const implementation of ["redis-semaphore", "sfn-operator"] as Implementation[]) {
          say(
            `semaphore: ${implementation}, ${run.contenders} loops on ${run.instances} instance(s), hold ${run.holdMs} ms...`,
          );
          const result = await runSemaphoreBench(implementation, {
            redisUrl: redis.url,
            ...SEMAPHORE,
            ...run,
          });
          say(
            `  ${result.cyclesPerSecond.toFixed(0)} cycles/s, hand-off p50 ${result.handoffMs.p50.toFixed(3)} ms p99 ${result.handoffMs.p99.toFixed(3)} ms, ${Number.isFinite(result.crossInstanceShare) ? Math.round(result.crossInstanceShare * 100) : "-"}% of hand-offs cross instances, ${result.commandsPerAcquisition.toFixed(1)} commands/acquisition`,
          );
          results.push(result);
        }
      }
      report.semaphore = { settings: SEMAPHORE, results };
    }

    // The emulator (short long polls, see DISPATCH) and the target are shared by dispatch and peer.
    interface Services {
      emulator: Child;
      target: Child;
      emulatorUrl: string;
      targetUrl: string;
    }
    let services: Promise<Services> | undefined;
    const startServices = async (): Promise<Services> => {
      const emulatorArgs = [
        BIN,
        "emulator",
        "--port",
        "0",
        "--long-poll-seconds",
        String(DISPATCH.longPollSeconds),
      ];
      const emulator = new Child("emulator", emulatorArgs, EMULATOR_ENV);
      cleanups.push(() => emulator.stop());
      const target = new Child("target", [path.join(BENCH_DIST, "target-server.js")]);
      cleanups.push(() => target.stop());
      return {
        emulator,
        target,
        emulatorUrl: (await emulator.waitFor(/listening on (http:\/\/\S+)/))[1] as string,
        targetUrl: (await target.waitFor(/listening (http:\/\/\S+)/))[1] as string,
      };
    };
    const getServices = (): Promise<Services> => {
      services ??= startServices();
      return services;
    };

    if (runs("dispatch")) {
      const { emulator, target, emulatorUrl, targetUrl } = await getServices();
      say(
        `dispatch: ${DISPATCH.variants.join(", ")} (${DISPATCH.processes} process(es) each) taking turns, ${DISPATCH.cycles} cycle(s) of ${DISPATCH.sliceMs / 1000} s slices...`,
      );
      const run = await runDispatchBench(
        {
          emulatorUrl,
          emulatorPid: emulator.pid,
          targetUrl,
          targetPid: target.pid,
          redisUrl: redis.url,
          redisPid: redis.pid,
          workDir,
        },
        DISPATCH,
      );
      for (const slice of run.slices) {
        say(
          `  cycle ${slice.cycle} ${slice.variant} #${slice.process}: ${slice.tasksPerSecond.toFixed(0)} tasks/s, ${slice.cpuMsPerTask.toFixed(3)} CPU ms/task`,
        );
      }
      for (const problem of run.problems) say(`  PROBLEM: ${problem}`);
      report.dispatch = {
        settings: DISPATCH,
        emulatorCommand: `${emulator.command}`,
        targetCommand: target.command,
        run,
      };
    }

    if (runs("memory")) {
      const { targetUrl } = await getServices();
      say(`memory: import costs, then idle processes for ${MEMORY.idleMs / 1000} s...`);
      const run = await runMemoryBench({ targetUrl, redisUrl: redis.url, say }, MEMORY);
      for (const r of run.idle) {
        say(
          `  idle ${r.variant.name}: RSS ${mibOf(r.atReady.rss)} at ready, ${mibOf(r.settled.rss)} settled (anonymous ${mibOf(r.settled.rssAnon)}, file ${mibOf(r.settled.rssFile)})`,
        );
      }
      for (const problem of run.problems) say(`  PROBLEM: ${problem}`);
      report.memory = { settings: MEMORY, run };
    }

    if (runs("peer")) {
      const { emulator, target, emulatorUrl, targetUrl } = await getServices();
      say(
        `peer: ${PEER.variants.join(", ")} at concurrency ${PEER.concurrency}, targets of ${PEER.delaysMs.join(" and ")} ms, ${PEER.cycles} cycle(s)...`,
      );
      const run = await runPeerBench({ emulatorUrl, targetUrl, workDir, say }, PEER);
      for (const r of run.resilience) {
        say(
          `  ${r.variant}: ${r.loopsPolling} loops polling after the faults, ${r.tasksCompleted}/${r.batch} tasks completed, SIGTERM to exit ${r.shutdownS.toFixed(1)} s`,
        );
      }
      for (const problem of run.problems) say(`  PROBLEM: ${problem}`);
      report.peer = {
        settings: PEER,
        emulatorCommand: emulator.command,
        targetCommand: target.command,
        run,
      };
    }

    if (runs("operator")) {
      say(
        `operator: ${OPERATOR.sources} sources at once, ${OPERATOR.changes} spec changes, ${OPERATOR.idleMs / 1000} s idle, on a control plane of its own...`,
      );
      try {
        const run = await runOperatorBench(OPERATOR, say);
        if ("skipped" in run) {
          say(`  SKIPPED: ${run.skipped}`);
          report.operator = { settings: OPERATOR, skipped: run.skipped };
        } else {
          for (const problem of run.problems) say(`  PROBLEM: ${problem}`);
          report.operator = { settings: OPERATOR, run };
        }
      } catch (error) {
        // The other parts' figures are still written; the run fails (checkProblems).
        const message = error instanceof Error ? error.message : String(error);
        say(`  FAILED: ${message}`);
        report.operator = { settings: OPERATOR, error: message };
      }
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    fs.rmSync(workDir, { recursive: true, force: true });
  }

  report.loadEnd = loadAverage();
  report.durationS = (performance.now() - started) / 1000;
  const markdown = renderReport(report);
  const out =
    values.out ??
    (quick || only
      ? path.join(os.tmpdir(), `sfn-operator-bench-${quick ? "quick" : only?.replaceAll(",", "-")}.md`)
      : path.join(REPO_ROOT, "BENCHMARKS.md"));
  fs.writeFileSync(out, markdown);
  say("");
  for (const line of summaryLines(report)) say(line);
  say(`report: ${out} (${report.durationS.toFixed(1)} s)`);
  const problems = checkProblems(report);
  for (const problem of problems) say(`CHECK FAILED: ${problem}`);
  return problems.length > 0 ? 1 : 0;
}

function mibOf(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
