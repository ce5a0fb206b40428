/**
 * The memory benchmark: where an idle poller's resident memory goes.
 *
 * - Import costs: each library (and the project's command modules) imported alone in a fresh process
 *   (bench/memory-probe.ts), then all of them together: RSS (anonymous and file-backed), V8 heap used
 *   and committed, as loaded and after a full GC; with V8's defaults and with --optimize-for-size as
 *   bin/sfn-operator.js applies it.
 * - Idle processes: the real `sfn-operator poller` (4 loops, Redis semaphore) with the flag choices
 *   below and unbundled, the peer (step-function-worker, 4 loops), the bare v3 SDK loop (4 loops) and a bare Node
 *   process, all started together against their own emulator whose long polls last 60 s as AWS's do,
 *   sampled every second for the idle window.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { EmulatorClient } from "../src/emulator/client.ts";
import { awsEnv } from "./dispatch.ts";
import {
  BENCH_DIST,
  BIN,
  Child,
  EMULATOR_ENV,
  type MemorySnapshot,
  type ProcessMemory,
  processMemory,
} from "./proc.ts";

const run = promisify(execFile);

export interface ImportCase {
  label: string;
  specifiers: string[];
}

/** The libraries the poller uses, one by one, then together, then the project's command modules. */
/** Labels of the cases the findings compute from (bench/report-memory.ts). */
export const CASES = {
  bare: "nothing (bare Node)",
  seven: "the seven (SDK, ioredis, winston, prom-client, zod, commander, yaml)",
  sevenAxios: "the seven + axios",
  poller: "`poller` command, bundled (dist/bundle/run-poller.js, what runs)",
  pollerUnbundled: "`poller` command, unbundled (dist/src/poller/run-poller.js, tsc's output)",
} as const;

/** The `poller` command's entry chunk in the bundle that bin/sfn-operator.js runs (scripts/bundle.ts). */
const POLLER_BUNDLE = "./dist/bundle/run-poller.js";

export const IMPORT_CASES: ImportCase[] = [
  { label: CASES.bare, specifiers: [] },
  { label: "@aws-sdk/client-sfn", specifiers: ["@aws-sdk/client-sfn"] },
  { label: "@smithy/node-http-handler", specifiers: ["@smithy/node-http-handler"] },
  { label: "ioredis", specifiers: ["ioredis"] },
  { label: "winston", specifiers: ["winston"] },
  { label: "prom-client", specifiers: ["prom-client"] },
  { label: "zod", specifiers: ["zod"] },
  { label: "commander", specifiers: ["commander"] },
  { label: "yaml", specifiers: ["yaml"] },
  { label: "axios", specifiers: ["axios"] },
  {
    label: CASES.seven,
    specifiers: ["@aws-sdk/client-sfn", "ioredis", "winston", "prom-client", "zod", "commander", "yaml"],
  },
  {
    label: CASES.sevenAxios,
    specifiers: [
      "@aws-sdk/client-sfn",
      "ioredis",
      "winston",
      "prom-client",
      "zod",
      "commander",
      "yaml",
      "axios",
    ],
  },
  { label: CASES.poller, specifiers: [POLLER_BUNDLE] },
  { label: CASES.pollerUnbundled, specifiers: ["./dist/src/poller/run-poller.js"] },
  {
    label: "`local` command, bundled (dist/bundle/run-local.js)",
    specifiers: ["./dist/bundle/run-local.js"],
  },
];
/** The quick run checks the machinery only. */
const QUICK_IMPORT_LABELS = new Set(["nothing (bare Node)", "@aws-sdk/client-sfn"]);

export interface ImportCost {
  label: string;
  specifiers: string[];
  optimizeForSize: boolean;
  /** Medians over the repeats, field by field. */
  loaded: MemorySnapshot;
  collected: MemorySnapshot;
  repeats: number;
}

export interface MemoryPlan {
  importRepeats: number;
  /** How long the idle processes are watched after they are ready. */
  idleMs: number;
  /** Poll loops of each idle process. */
  idleLoops: number;
  quick: boolean;
}

/** A flag choice for the idle poller. */
export interface IdleVariant {
  name: string;
  /** What it is and how it is applied. */
  how: string;
  kind: "poller" | "peer" | "bare" | "node";
  /** For a poller: the script node runs (bin/sfn-operator.js unless given). */
  entry?: string;
  nodeArgs: string[];
  env: Record<string, string>;
}

export const IDLE_VARIANTS: IdleVariant[] = [
  {
    name: "sfn-operator poller, as shipped",
    how: "`node bin/sfn-operator.js poller`: the entry point applies --optimize-for-size",
    kind: "poller",
    nodeArgs: [],
    env: {},
  },
  {
    name: "sfn-operator poller, unbundled",
    how: "`node dist/bench/unbundled-cli.js poller`: as shipped, but tsc's output loading node_modules (bench/unbundled-cli.ts): what ran before the bundle",
    kind: "poller",
    entry: path.join(BENCH_DIST, "unbundled-cli.js"),
    nodeArgs: [],
    env: {},
  },
  {
    name: "sfn-operator poller, V8 defaults",
    how: "the same with `SFN_OPTIMIZE_FOR_SIZE=false`: what it was before",
    kind: "poller",
    nodeArgs: [],
    env: { SFN_OPTIMIZE_FOR_SIZE: "false" },
  },
  {
    name: "as shipped + semi-space 1 MB",
    how: "`NODE_OPTIONS=--max-semi-space-size=1` (a heap-sizing flag: only the command line or NODE_OPTIONS can set it)",
    kind: "poller",
    nodeArgs: [],
    env: { NODE_OPTIONS: "--max-semi-space-size=1" },
  },
  {
    name: "V8 defaults + semi-space 2 MB",
    how: "`SFN_OPTIMIZE_FOR_SIZE=false NODE_OPTIONS=--max-semi-space-size=2`: the young generation capped, nothing else",
    kind: "poller",
    nodeArgs: [],
    env: { SFN_OPTIMIZE_FOR_SIZE: "false", NODE_OPTIONS: "--max-semi-space-size=2" },
  },
  {
    name: "as shipped + --max-opt=2",
    how: "`node --max-opt=2 bin/sfn-operator.js`: Maglev but no TurboFan (not allowed in NODE_OPTIONS)",
    kind: "poller",
    nodeArgs: ["--max-opt=2"],
    env: {},
  },
  {
    name: "as shipped + --lite-mode",
    how: "`node --lite-mode bin/sfn-operator.js`: no optimizing compiler at all (not allowed in NODE_OPTIONS)",
    kind: "poller",
    nodeArgs: ["--lite-mode"],
    env: {},
  },
  {
    name: "as shipped + --jitless",
    how: "`node --jitless bin/sfn-operator.js`: interpreter only, no executable memory",
    kind: "poller",
    nodeArgs: ["--jitless"],
    env: {},
  },
  {
    name: "step-function-worker 2.1.0",
    how: "bench/peer-worker.ts, aws-sdk v2, `AWS_NODEJS_CONNECTION_REUSE_ENABLED=1`",
    kind: "peer",
    nodeArgs: [],
    env: { AWS_NODEJS_CONNECTION_REUSE_ENABLED: "1", AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: "1" },
  },
  {
    name: "bare v3 SDK loop",
    how: "bench/bare-loop.ts: @aws-sdk/client-sfn and node:http alone",
    kind: "bare",
    nodeArgs: [],
    env: {},
  },
  {
    name: "bare Node process",
    how: "`node -e 'setInterval(() => {}, 1000)'`",
    kind: "node",
    nodeArgs: [],
    env: {},
  },
];
const QUICK_IDLE_NAMES = new Set(["sfn-operator poller, as shipped", "bare Node process"]);

export interface IdleResult {
  variant: IdleVariant;
  command: string;
  /** Right after it was ready (its polls out). */
  atReady: ProcessMemory;
  /** At the end of the idle window. */
  settled: ProcessMemory;
  /** Seconds after ready when RSS first came within 1 MiB of its settled value. */
  settledAfterS: number;
}

/** One way of applying V8 flags, probed with the `poller` command's modules. */
export interface FlagProbe {
  /** How the flags were given. */
  how: string;
  nodeArgs: string[];
  runtimeFlags: string;
  loaded: MemorySnapshot;
}

/**
 * Which flags the entry point can apply: each flag set at run time with v8.setFlagsFromString (as
 * bin/sfn-operator.js could, before importing anything) against the same flag on the node command
 * line. A flag that takes effect changes the heap committed or the RSS.
 */
const FLAG_PROBES: Array<Omit<FlagProbe, "loaded">> = [
  { how: "no flags", nodeArgs: [], runtimeFlags: "" },
  {
    how: "`--optimize-for-size` at run time (what bin/sfn-operator.js does)",
    nodeArgs: [],
    runtimeFlags: "--optimize-for-size",
  },
  { how: "`--optimize-for-size` on the command line", nodeArgs: ["--optimize-for-size"], runtimeFlags: "" },
  { how: "`--max-semi-space-size=1` at run time", nodeArgs: [], runtimeFlags: "--max-semi-space-size=1" },
  {
    how: "`--max-semi-space-size=1` on the command line (or NODE_OPTIONS)",
    nodeArgs: ["--max-semi-space-size=1"],
    runtimeFlags: "",
  },
  { how: "`--lite-mode` at run time", nodeArgs: [], runtimeFlags: "--lite-mode" },
  { how: "`--lite-mode` on the command line", nodeArgs: ["--lite-mode"], runtimeFlags: "" },
];

export interface MemoryRun {
  imports: ImportCost[];
  flagProbes: FlagProbe[];
  idle: IdleResult[];
  idleLoops: number;
  idleMs: number;
  emulatorCommand: string;
  problems: string[];
}

export async function runMemoryBench(
  setup: { targetUrl: string; redisUrl: string; say: (line: string) => void },
  plan: MemoryPlan,
): Promise<MemoryRun> {
  const problems: string[] = [];
  const imports: ImportCost[] = [];
  const cases = plan.quick ? IMPORT_CASES.filter((c) => QUICK_IMPORT_LABELS.has(c.label)) : IMPORT_CASES;
  for (const optimizeForSize of plan.quick ? [true] : [false, true]) {
    for (const c of cases) {
      const samples: Array<{ loaded: MemorySnapshot; collected: MemorySnapshot }> = [];
      for (let i = 0; i < plan.importRepeats; i++) samples.push(await probe(c.specifiers, optimizeForSize));
      imports.push({
        label: c.label,
        specifiers: c.specifiers,
        optimizeForSize,
        loaded: medianSnapshot(samples.map((s) => s.loaded)),
        collected: medianSnapshot(samples.map((s) => s.collected)),
        repeats: plan.importRepeats,
      });
    }
  }
  setup.say(`  import costs: ${imports.length} cases x ${plan.importRepeats}`);
  const flagProbes: FlagProbe[] = [];
  for (const probeCase of plan.quick ? FLAG_PROBES.slice(0, 2) : FLAG_PROBES) {
    const samples: MemorySnapshot[] = [];
    for (let i = 0; i < plan.importRepeats; i++) {
      const sample = await probe([POLLER_BUNDLE], false, probeCase.nodeArgs, probeCase.runtimeFlags);
      samples.push(sample.loaded);
    }
    flagProbes.push({ ...probeCase, loaded: medianSnapshot(samples) });
  }

  // Its own emulator with AWS's 60 s long polls: an idle poller then waits as in production.
  const emulatorArgs = [BIN, "emulator", "--port", "0", "--long-poll-seconds", "60"];
  const emulator = new Child("idle emulator", emulatorArgs, EMULATOR_ENV);
  const children: Child[] = [];
  try {
    const emulatorUrl = (await emulator.waitFor(/listening on (http:\/\/\S+)/))[1] as string;
    const variants = plan.quick ? IDLE_VARIANTS.filter((v) => QUICK_IDLE_NAMES.has(v.name)) : IDLE_VARIANTS;
    const started = await Promise.all(
      variants.map(async (variant, index) => {
        const child = startIdle(variant, index, emulatorUrl, setup, plan.idleLoops);
        children.push(child.child);
        await child.ready;
        return { variant, child: child.child, command: child.command, readyAt: performance.now() };
      }),
    );
    // Every one is ready: from now on nothing runs but their long polls.
    const series = started.map(() => [] as Array<{ atS: number; memory: ProcessMemory }>);
    const begin = performance.now();
    for (;;) {
      started.forEach(({ child }, i) => {
        const memory = processMemory(child.pid);
        if (memory) series[i]?.push({ atS: (performance.now() - begin) / 1000, memory });
      });
      if (performance.now() - begin >= plan.idleMs) break;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    const idle: IdleResult[] = [];
    started.forEach(({ variant, child, command }, i) => {
      const points = series[i] ?? [];
      const first = points[0]?.memory;
      const last = points.at(-1)?.memory;
      if (!first || !last || !child.running) {
        problems.push(`idle ${variant.name}: exited or unreadable:\n${child.tail()}`);
        return;
      }
      const settledAt = points.find((p) => Math.abs(p.memory.rss - last.rss) <= 2 ** 20)?.atS ?? 0;
      idle.push({ variant, command, atReady: first, settled: last, settledAfterS: settledAt });
    });
    const stats = await new EmulatorClient(emulatorUrl).stats();
    if (stats.tasks.STARTED + stats.tasks.FAILED > 0) problems.push("idle: a task appeared");
    return {
      imports,
      flagProbes,
      idle,
      idleLoops: plan.idleLoops,
      idleMs: plan.idleMs,
      emulatorCommand: emulator.command,
      problems,
    };
  } finally {
    // SIGKILL: nothing was handed out, and a graceful stop would wait out the 60 s polls.
    for (const child of children) if (child.running) child.process.kill("SIGKILL");
    await Promise.all(children.map((child) => child.exited));
    await emulator.stop();
  }
}

async function probe(
  specifiers: string[],
  optimizeForSize: boolean,
  nodeArgs: string[] = [],
  runtimeFlags = "",
): Promise<{ loaded: MemorySnapshot; collected: MemorySnapshot }> {
  const { stdout } = await run(
    process.execPath,
    [...nodeArgs, "--expose-gc", path.join(BENCH_DIST, "memory-probe.js"), ...specifiers],
    {
      cwd: path.resolve(BENCH_DIST, "../.."),
      env: {
        PATH: process.env.PATH,
        SFN_OPTIMIZE_FOR_SIZE: String(optimizeForSize),
        ...(runtimeFlags ? { PROBE_RUNTIME_FLAGS: runtimeFlags } : {}),
      },
    },
  );
  return JSON.parse(stdout) as { loaded: MemorySnapshot; collected: MemorySnapshot };
}

function medianSnapshot(samples: MemorySnapshot[]): MemorySnapshot {
  const med = (key: keyof MemorySnapshot): number => {
    const sorted = samples.map((s) => s[key]).toSorted((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] as number;
  };
  return {
    rss: med("rss"),
    rssAnon: med("rssAnon"),
    rssFile: med("rssFile"),
    peakRss: med("peakRss"),
    heapUsed: med("heapUsed"),
    heapTotal: med("heapTotal"),
    external: med("external"),
  };
}

function startIdle(
  variant: IdleVariant,
  index: number,
  emulatorUrl: string,
  setup: { targetUrl: string; redisUrl: string },
  loops: number,
): { child: Child; ready: Promise<unknown>; command: string } {
  const activityName = `idle-${index}`;
  const aws = awsEnv(emulatorUrl);
  const env = { ...aws, ...variant.env };
  const envText = Object.entries(variant.env)
    .map(([key, value]) => `${key}=${value} `)
    .join("");
  if (variant.kind === "poller") {
    const child = new Child(variant.name, [...variant.nodeArgs, variant.entry ?? BIN, "poller"], {
      ...env,
      SFN_ACTIVITY_NAME: activityName,
      SFN_TARGET_URL: setup.targetUrl,
      SFN_TARGET_PATH: "/task",
      SFN_MAX_CONCURRENCY: String(loops),
      SFN_CONCURRENCY_PER_POLLER: String(loops),
      SFN_REDIS_URL: setup.redisUrl,
      SFN_METRICS_PORT: "0",
      SFN_LOG_FORMAT: "json",
    });
    return { child, ready: child.waitFor(/"message":"polling"/), command: `${envText}${child.command}` };
  }
  if (variant.kind === "node") {
    const child = new Child(variant.name, ["-e", "setInterval(() => {}, 1000); console.log('ready')"]);
    return { child, ready: child.waitFor(/^ready/m), command: variant.how.replaceAll("`", "") };
  }
  const script = variant.kind === "peer" ? "peer-worker.js" : "bare-loop.js";
  const child = new Child(
    variant.name,
    [path.join(BENCH_DIST, script), activityName, `${setup.targetUrl}/task`, String(loops)],
    env,
  );
  return { child, ready: child.waitFor(/^ready /m), command: `${envText}${child.command}` };
}
