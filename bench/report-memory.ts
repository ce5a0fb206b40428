/**
 * BENCHMARKS.md sections of the memory benchmark (bench/memory.ts) and the peer comparison
 * (bench/peer.ts): rendering, verdicts against the issue's targets, and the checks that fail a run.
 */
import { CASES, type IdleResult, type ImportCost, type MemoryPlan, type MemoryRun } from "./memory.ts";
import { PEER_VARIANT_NAMES, type PeerPlan, type PeerRun, type PeerSlice, type PeerVariant } from "./peer.ts";

export interface MemoryReport {
  settings: MemoryPlan;
  run: MemoryRun;
}

export interface PeerReport {
  settings: PeerPlan;
  emulatorCommand: string;
  targetCommand: string;
  run: PeerRun;
}

/** Targets of issue 10, item 8. */
export const MEMORY_TARGETS = {
  /** An idle poller's RSS, in MiB. */
  idleRssMiB: 64,
  /** CPU per task at the instant target, at most this multiple of the bare v3 loop's. */
  cpuOfBare: 1.1,
};

const mib = (bytes: number | undefined): string =>
  bytes !== undefined && Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : "-";
const int = (value: number): string =>
  Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "-";
const yes = (met: boolean): string => (met ? "**met**" : "**not met**");

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).toSorted((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface PeerFigures {
  variant: PeerVariant;
  delayMs: number;
  tasksPerSecond: number;
  cpuMsPerTask: number;
  /** Largest VmRSS at the end of a slice at this delay. */
  busyRss: number;
  /** VmHWM at the end of the run (over both delays). */
  peakRss: number;
  idleRss: number;
  /** sfn-operator only (its /metrics), medians over the slices: committed young and old generation, heap used. */
  heapNew: number;
  heapOld: number;
  heapUsed: number;
}

export function peerFigures(peer: PeerReport): PeerFigures[] {
  const out: PeerFigures[] = [];
  for (const delayMs of peer.settings.delaysMs) {
    for (const variant of peer.settings.variants) {
      const slices = peer.run.slices.filter((s) => s.variant === variant && s.delayMs === delayMs);
      if (slices.length === 0) continue;
      const all = peer.run.slices.filter((s) => s.variant === variant);
      out.push({
        variant,
        delayMs,
        tasksPerSecond: median(slices.map((s) => s.tasksPerSecond)),
        cpuMsPerTask: median(slices.map((s) => s.cpuMsPerTask)),
        busyRss: Math.max(...slices.map((s) => s.rss)),
        peakRss: Math.max(...all.map((s) => s.peakRss)),
        idleRss: peer.run.idle[variant]?.rss ?? Number.NaN,
        heapNew: median(slices.map((s) => s.heap?.newSpace ?? Number.NaN)),
        heapOld: median(slices.map((s) => s.heap?.oldSpace ?? Number.NaN)),
        heapUsed: median(slices.map((s) => s.heap?.used ?? Number.NaN)),
      });
    }
  }
  return out;
}

/** Median over cycles of each cycle's own ratio of `variant` to `base` at one delay. */
function cycleRatio(
  slices: PeerSlice[],
  variant: PeerVariant,
  base: PeerVariant,
  delayMs: number,
  field: "tasksPerSecond" | "cpuMsPerTask",
): number {
  const of = (v: PeerVariant) =>
    new Map(slices.filter((s) => s.variant === v && s.delayMs === delayMs).map((s) => [s.cycle, s[field]]));
  const a = of(variant);
  const b = of(base);
  return median(
    [...a].filter(([cycle]) => b.has(cycle)).map(([cycle, value]) => value / (b.get(cycle) as number)),
  );
}

export interface PeerVerdicts {
  /** Ours at the 20 ms target against the peer's tasks/s (median of cycles' ratios). */
  slowTargetRatio: number;
  slowTargetMet: boolean;
  /** Our peak busy RSS against the peer's. */
  ours: PeerFigures | undefined;
  peer: PeerFigures | undefined;
  rssMet: boolean;
  /**
   * Our CPU per task at the instant target over the bare loop's on the same HTTP client (the one
   * whose target call goes through axios, as ours does; the node:http one when that did not run):
   * median of the cycles' ratios.
   */
  cpuRatio: number;
  cpuBase: PeerVariant;
  cpuMet: boolean;
}

/**
 * The bare loop the CPU aim is measured against: the one whose target call goes through axios, as
 * ours does; the node:http one when that did not run.
 */
function cpuBaseline(peer: PeerReport): PeerVariant {
  return peer.settings.variants.includes("bare-axios") ? "bare-axios" : "bare";
}

export function peerVerdicts(peer: PeerReport): PeerVerdicts {
  const figures = peerFigures(peer);
  const slow = Math.max(...peer.settings.delaysMs);
  const fast = Math.min(...peer.settings.delaysMs);
  const find = (variant: PeerVariant, delayMs: number) =>
    figures.find((f) => f.variant === variant && f.delayMs === delayMs);
  const slowTargetRatio = cycleRatio(peer.run.slices, "sfn-operator", "peer", slow, "tasksPerSecond");
  const cpuBase = cpuBaseline(peer);
  const cpuRatio = cycleRatio(peer.run.slices, "sfn-operator", cpuBase, fast, "cpuMsPerTask");
  const ours = find("sfn-operator", fast);
  const other = find("peer", fast);
  return {
    slowTargetRatio,
    slowTargetMet: slowTargetRatio >= 1,
    ours,
    peer: other,
    rssMet: ours !== undefined && other !== undefined && ours.peakRss <= other.peakRss,
    cpuRatio,
    cpuBase,
    cpuMet: cpuRatio <= MEMORY_TARGETS.cpuOfBare,
  };
}

function idleOf(memory: MemoryReport, name: string): IdleResult | undefined {
  return memory.run.idle.find((r) => r.variant.name === name);
}

/** Summary rows (figure | sfn-operator | baseline | target | verdict). */
export function memorySummaryRows(memory: MemoryReport | undefined, peer: PeerReport | undefined): string[] {
  const rows: string[] = [];
  if (memory) {
    const shipped = idleOf(memory, "sfn-operator poller, as shipped");
    const defaults = idleOf(memory, "sfn-operator poller, V8 defaults");
    const node = idleOf(memory, "bare Node process");
    const peerIdle = idleOf(memory, "step-function-worker 2.1.0");
    if (shipped) {
      rows.push(
        `| idle RSS, \`sfn-operator poller\` (${memory.run.idleLoops} loops, Redis), after ${memory.run.idleMs / 1000} s | ${mib(shipped.settled.rss)} (anonymous ${mib(shipped.settled.rssAnon)}, file ${mib(shipped.settled.rssFile)}) | ${defaults ? `${mib(defaults.settled.rss)} with V8 defaults; ` : ""}${peerIdle ? `${mib(peerIdle.settled.rss)} step-function-worker; ` : ""}${node ? `${mib(node.settled.rss)} bare Node` : ""} | under ${MEMORY_TARGETS.idleRssMiB} MiB | ${yes(shipped.settled.rss < MEMORY_TARGETS.idleRssMiB * 2 ** 20)} |`,
      );
    }
  }
  if (peer) {
    const v = peerVerdicts(peer);
    const figures = peerFigures(peer);
    const slow = Math.max(...peer.settings.delaysMs);
    const fast = Math.min(...peer.settings.delaysMs);
    const f = (variant: PeerVariant, delayMs: number) =>
      figures.find((x) => x.variant === variant && x.delayMs === delayMs);
    rows.push(
      `| tasks/s at a ${slow} ms target, concurrency ${peer.settings.concurrency} | ${int(f("sfn-operator", slow)?.tasksPerSecond ?? Number.NaN)} (${v.slowTargetRatio.toFixed(3)} of the peer's: median of the cycles' ratios) | ${int(f("peer", slow)?.tasksPerSecond ?? Number.NaN)} (step-function-worker) | at least the peer's | ${yes(v.slowTargetMet)} |`,
      `| peak RSS busy, concurrency ${peer.settings.concurrency} | ${mib(v.ours?.peakRss)} | ${mib(v.peer?.peakRss)} (step-function-worker) | at most the peer's | ${yes(v.rssMet)} |`,
      `| CPU per task at a ${fast} ms target | ${(f("sfn-operator", fast)?.cpuMsPerTask ?? Number.NaN).toFixed(3)} ms (${v.cpuRatio.toFixed(2)} of the ${PEER_VARIANT_NAMES[v.cpuBase]}'s: median of the cycles' ratios) | ${f("bare-axios", fast) ? `${(f("bare-axios", fast)?.cpuMsPerTask ?? Number.NaN).toFixed(3)} ms (bare v3 SDK loop, target through axios); ` : ""}${(f("bare", fast)?.cpuMsPerTask ?? Number.NaN).toFixed(3)} ms (bare v3 SDK loop, target through node:http); ${(f("peer", fast)?.cpuMsPerTask ?? Number.NaN).toFixed(3)} ms (step-function-worker) | at most ${MEMORY_TARGETS.cpuOfBare}x the bare v3 loop's on the same HTTP client | ${yes(v.cpuMet)} |`,
    );
    for (const r of peer.run.resilience) {
      rows.push(
        `| after ${peer.settings.resilience.faultMs / 1000} s of failed polls, ${PEER_VARIANT_NAMES[r.variant]} | ${r.loopsPolling} of ${peer.settings.concurrency} loops polling again, ${r.tasksCompleted} of ${r.batch} tasks done; SIGTERM to exit ${r.shutdownS.toFixed(1)} s | | (reported) | |`,
      );
    }
  }
  return rows;
}

export function memorySummaryLines(memory: MemoryReport | undefined, peer: PeerReport | undefined): string[] {
  const lines: string[] = [];
  for (const r of memory?.run.idle ?? []) {
    lines.push(`idle ${r.variant.name}: ${mib(r.settled.rss)} (anonymous ${mib(r.settled.rssAnon)})`);
  }
  if (peer) {
    for (const f of peerFigures(peer)) {
      lines.push(
        `peer ${f.variant} ${f.delayMs} ms: ${int(f.tasksPerSecond)} tasks/s, ${f.cpuMsPerTask.toFixed(3)} CPU ms/task, busy RSS ${mib(f.busyRss)}, peak ${mib(f.peakRss)}, idle ${mib(f.idleRss)}`,
      );
    }
    for (const r of peer.run.resilience) {
      lines.push(
        `resilience ${r.variant}: ${r.loopsPolling} loops polling, ${r.tasksCompleted}/${r.batch} tasks, shutdown ${r.shutdownS.toFixed(1)} s`,
      );
    }
  }
  return lines;
}

export function memoryProblems(memory: MemoryReport | undefined, peer: PeerReport | undefined): string[] {
  return [
    ...(memory?.run.problems ?? []).map((p) => `memory: ${p}`),
    ...(peer?.run.problems ?? []).map((p) => `peer: ${p}`),
  ];
}

function importRow(c: ImportCost, base: ImportCost | undefined): string {
  const delta = (value: number, baseValue: number | undefined): string =>
    baseValue === undefined || c === base ? "" : ` (+${((value - baseValue) / 2 ** 20).toFixed(1)})`;
  return `| ${c.label} | ${mib(c.loaded.rss)}${delta(c.loaded.rss, base?.loaded.rss)} | ${mib(c.loaded.rssAnon)} | ${mib(c.loaded.rssFile)} | ${mib(c.loaded.heapTotal)} | ${mib(c.loaded.heapUsed)} | ${mib(c.collected.heapUsed)}${delta(c.collected.heapUsed, base?.collected.heapUsed)} | ${mib(c.collected.rss)} |`;
}

export function renderMemory(memory: MemoryReport, push: (...lines: string[]) => void): void {
  const { run, settings } = memory;
  push(
    "## Memory: what an idle poller holds, and why",
    "",
    "Command: `npm run bench` (this section alone: `npm run bench -- --only memory`, printed instead of written here). Source: bench/memory.ts, bench/memory-probe.ts.",
    "",
    "**RSS, anonymous and file-backed.** RSS is VmRSS of /proc/<pid>/status, what `ps` and the container's memory metrics show. It has two parts (RssAnon, RssFile): anonymous memory (the V8 heap, malloc, stacks) is the process's own, and every further pod adds it again; file-backed memory is mostly the pages of the `node` binary that have run (V8's compilers, OpenSSL, the HTTP parser...). Those are page cache: shared by every process of the same binary, and in Kubernetes by every pod of the same image layer on a node, so they are counted in each pod's RSS but paid for once per node.",
    "",
    `### Import costs`,
    "",
    `Each row is a fresh \`node --expose-gc dist/bench/memory-probe.js <modules>\` that imports the modules, waits 200 ms and reads its memory (*as loaded*), then runs a full GC and reads again (*after GC*); the median of ${settings.importRepeats} process(es) per row, field by field. The figure in parentheses is the increase over the bare process of the same table. *heap committed* is V8's heapTotal: the young generation's semi-spaces are part of it, and V8 grows them while the modules load. *Heap used* against *heap used after GC* is the garbage that loading left; *RSS after GC* against *RSS as loaded* says whether collecting it (an idle-time GC after start-up) would give memory back.`,
    "",
  );
  for (const optimizeForSize of [false, true]) {
    const rows = run.imports.filter((c) => c.optimizeForSize === optimizeForSize);
    if (rows.length === 0) continue;
    const base = rows.find((c) => c.specifiers.length === 0);
    push(
      optimizeForSize
        ? "With `--optimize-for-size` applied first, as bin/sfn-operator.js does (`SFN_OPTIMIZE_FOR_SIZE=true` for the probe):"
        : "With V8's defaults:",
      "",
      "| imported | RSS as loaded | anonymous | file | heap committed | heap used | heap used after GC | RSS after GC |",
      "|---|---|---|---|---|---|---|---|",
      ...rows.map((c) => importRow(c, base)),
      "",
    );
  }
  if (run.flagProbes.length > 0) {
    push(
      "### Which flags the entry point can apply",
      "",
      `The \`poller\` command's modules, bundled (dist/bundle/run-poller.js) in a fresh probe as above, with a V8 flag given on the node command line or set with \`v8.setFlagsFromString\` before any import (as bin/sfn-operator.js can; \`PROBE_RUNTIME_FLAGS\` for the probe). A flag that takes effect changes the heap committed (the young generation) or the RSS; median of ${settings.importRepeats} process(es).`,
      "",
      "| flags | RSS as loaded | anonymous | file | heap committed | heap used |",
      "|---|---|---|---|---|---|",
      ...run.flagProbes.map(
        (f) =>
          `| ${f.how} | ${mib(f.loaded.rss)} | ${mib(f.loaded.rssAnon)} | ${mib(f.loaded.rssFile)} | ${mib(f.loaded.heapTotal)} | ${mib(f.loaded.heapUsed)} |`,
      ),
      "",
    );
  }
  push(
    "### Idle processes",
    "",
    `Started together, each with ${run.idleLoops} poll loops on its own activity of one emulator (\`SFN_OPTIMIZE_FOR_SIZE=false ${run.emulatorCommand}\`: long polls of 60 s, as AWS's), the pollers with the Redis semaphore (SFN_REDIS_URL, SFN_MAX_CONCURRENCY = SFN_CONCURRENCY_PER_POLLER = ${run.idleLoops}), and watched for ${run.idleMs / 1000} s once all were polling; no task is ever enqueued. *At ready* is the first reading once every process polls; *settled* the last; *settled after* is when RSS first came within 1 MiB of its settled value (V8's memory reducer shrinks the heap some seconds after a process goes quiet).`,
    "",
    "| process | how | RSS at ready | RSS settled | anonymous | file | settled after |",
    "|---|---|---|---|---|---|---|",
  );
  for (const r of run.idle) {
    push(
      `| ${r.variant.name} | ${r.variant.how} | ${mib(r.atReady.rss)} | ${mib(r.settled.rss)} | ${mib(r.settled.rssAnon)} | ${mib(r.settled.rssFile)} | ${r.settledAfterS.toFixed(0)} s |`,
    );
  }
  push(
    "",
    `Commands (AWS_* as in the dispatch section; the pollers also have SFN_ACTIVITY_NAME=idle-<n>, SFN_TARGET_URL=<the benchmark's target>, SFN_TARGET_PATH=/task, SFN_MAX_CONCURRENCY=${run.idleLoops}, SFN_CONCURRENCY_PER_POLLER=${run.idleLoops}, SFN_REDIS_URL=<the benchmark's Redis>, SFN_METRICS_PORT=0, SFN_LOG_FORMAT=json):`,
    "",
  );
  for (const r of run.idle) push(`- ${r.variant.name}: \`${r.command}\``);
  push("");
}

export function renderPeer(peer: PeerReport, push: (...lines: string[]) => void, quick: boolean): void {
  const { run, settings: s } = peer;
  const r = s.resilience;
  push(
    "## Against the peer: step-function-worker 2.1.0 (aws-sdk v2)",
    "",
    "Command: `npm run bench` (this section alone: `npm run bench -- --only peer`, printed instead of written here). Source: bench/peer.ts, bench/peer-worker.ts, bench/bare-loop.ts, bench/target-server.ts.",
    "",
    `**What runs.** One emulator (\`SFN_OPTIMIZE_FOR_SIZE=false ${peer.emulatorCommand}\`) and one target (\`${peer.targetCommand}\`, which answers after the \`delayMs\` in the task's input) serve every process, each on its own activity, at concurrency ${s.concurrency}:`,
    "",
  );
  for (const variant of s.variants)
    push(`- ${PEER_VARIANT_NAMES[variant]}: \`${run.commands[variant] ?? "(not run)"}\``);
  push(
    "",
    "The sources file of `sfn-operator local` (in-process semaphore, as the peer has none):",
    "",
    "```yaml",
    run.sourcesFile.trimEnd(),
    "```",
    "",
    "step-function-worker is used as its README shows (`new StepFunctionWorker({ activityArn, workerName, fn, concurrency, awsConfig })`), with `AWS_NODEJS_CONNECTION_REUSE_ENABLED=1` as AWS recommends for aws-sdk v2 (keep-alive sockets), and its task function POSTs the input to the target with node:http and a keep-alive agent, as the bare loop does. aws-sdk v2 does not read AWS_ENDPOINT_URL_SFN, so the worker passes it as `awsConfig.endpoint`.",
    "",
    `**How measured.** As the dispatch benchmark: the processes start once and take turns; a turn enqueues a batch (sized at 1.5 × the process's best rate so far at that delay; the warm-up keeps its queue topped up every half second and gives the first rate) whose input sets the target's delay, waits ${s.settleMs / 1000} s, measures a ${s.sliceMs / 1000} s slice (tasks closed at the emulator; CPU from /proc/<pid>/stat; VmRSS and VmHWM from /proc/<pid>/status at its end), then lets the batch drain before the next turn. ${s.warmupMs > 0 ? `After a warm-up turn of ${s.warmupMs / 1000} s per process and delay, ` : ""}${s.cycles} cycle(s) give every process a turn at each delay (${s.delaysMs.join(" ms and ")} ms), in an order rotated every cycle. Figures are medians over the slices; the ratios are medians of each cycle's own ratio. *Idle RSS* is read ${s.idleSettleMs / 1000} s after all processes started, before any task; *busy RSS* is the largest VmRSS at the end of a slice at that delay; *peak RSS* is VmHWM at the end of the run (both delays). For sfn-operator (started with \`--metrics-port 0\`), the heap columns are prom-client's \`nodejs_heap_space_size_total_bytes\` (space new and old: what V8 has committed to the young and the old generation) and \`nodejs_heap_size_used_bytes\`, scraped from its /metrics at the end of each slice (medians): they show where the busy RSS goes.${quick ? " Quick mode (CI): short slices, one cycle; its figures mean nothing." : ""}`,
    "",
    "| target | process | tasks/s | CPU ms / task | idle RSS | busy RSS | peak RSS | heap busy: young / old committed, used |",
    "|---|---|---|---|---|---|---|---|",
  );
  for (const f of peerFigures(peer)) {
    const heap = Number.isFinite(f.heapNew)
      ? `${mib(f.heapNew)} / ${mib(f.heapOld)}, ${mib(f.heapUsed)}`
      : "-";
    push(
      `| ${f.delayMs} ms | ${PEER_VARIANT_NAMES[f.variant]} | ${int(f.tasksPerSecond)} | ${f.cpuMsPerTask.toFixed(3)} | ${mib(f.idleRss)} | ${mib(f.busyRss)} | ${mib(f.peakRss)} | ${heap} |`,
    );
  }
  push(
    "",
    "Every slice (tasks/s, CPU ms per task, VmRSS at its end):",
    "",
    `| cycle | target | ${s.variants.map((v) => PEER_VARIANT_NAMES[v]).join(" | ")} |`,
    `|---|---|${s.variants.map(() => "---").join("|")}|`,
  );
  for (let cycle = 1; cycle <= s.cycles; cycle++) {
    for (const delayMs of s.delaysMs) {
      const cells = s.variants.map((variant) => {
        const x = run.slices.find((y) => y.variant === variant && y.cycle === cycle && y.delayMs === delayMs);
        return x ? `${int(x.tasksPerSecond)}/s, ${x.cpuMsPerTask.toFixed(3)} ms, ${mib(x.rss)}` : "-";
      });
      push(`| ${cycle} | ${delayMs} ms | ${cells.join(" | ")} |`);
    }
  }
  push(
    "",
    "### Failed polls and shutdown",
    "",
    `On an emulator of its own (\`SFN_OPTIMIZE_FOR_SIZE=false ${run.resilienceEmulatorCommand}\`: long polls of ${r.longPollSeconds} s, so that the shutdown figures do not wait out AWS's 60 s), \`sfn-operator local\` (as shipped) and step-function-worker idle with all ${s.concurrency} loops polling. Then every GetActivityTask is answered HTTP 500 InternalFailure (the emulator's fault injection: \`PUT /_emulator/faults\` with \`{"actions":["GetActivityTask"],"errorRate":1,"errorStatus":500}\`) for ${r.faultMs / 1000} s, and the faults are cleared. *Loops polling* is the emulator's count of waiting polls on the process's activity, once it reached ${s.concurrency} or after ${r.recoveryTimeoutMs / 1000} s; then a batch of ${r.batch} tasks is enqueued for each and given ${r.batchTimeoutMs / 1000} s. Then both are stopped, and two fresh processes (the same commands) start on the same emulator; once all their loops poll, a second later both get SIGTERM at once: *SIGTERM to exit* is until each exited, with its polls out (a process that lost its loops to the faults would stop at once, so the faulted ones are not used for this).`,
    "",
    "| process | failed polls (both together) | loops polling afterwards | all polling again after | tasks completed | SIGTERM to exit | exit code |",
    "|---|---|---|---|---|---|---|",
  );
  for (const x of run.resilience) {
    push(
      `| ${PEER_VARIANT_NAMES[x.variant]} | ${int(x.failedPolls)} | ${x.loopsPolling} of ${s.concurrency} | ${Number.isFinite(x.recoveredAfterS) ? `${x.recoveredAfterS.toFixed(1)} s` : "never (within the timeout)"} | ${x.tasksCompleted} of ${x.batch} | ${Number.isFinite(x.shutdownS) ? `${x.shutdownS.toFixed(1)} s` : "(not measured)"} | ${x.exitCode ?? "-"} |`,
    );
  }
  push(
    "",
    `Why (from the code): step-function-worker's loop (lib/pooler.js) emits \`error\` when a GetActivityTask call fails after aws-sdk v2's own retries and never polls again, so a few seconds of 5xx or throttling leave the process running with fewer (or no) loops; and \`close()\` (lib/worker.js) stops the loops one after another, each after its outstanding poll ends, so shutdown takes up to concurrency × one long poll (with AWS's 60 s polls, up to ${s.concurrency} minutes at concurrency ${s.concurrency}). sfn-operator backs off and polls again for as long as it runs, and on SIGTERM stops every loop at once and waits for the outstanding polls together: at most one long poll (60 s at AWS; size terminationGracePeriodSeconds for it).`,
    "",
  );
}

/**
 * What each part costs, computed from this run's tables, and the decisions they support. Rendered
 * only when both the memory and the peer parts ran.
 */
export function renderFindings(
  memory: MemoryReport | undefined,
  peer: PeerReport | undefined,
  push: (...lines: string[]) => void,
): void {
  if (!memory || !peer) return;
  const imports = (ofs: boolean) => memory.run.imports.filter((c) => c.optimizeForSize === ofs);
  const find = (ofs: boolean, label: string) => imports(ofs).find((c) => c.label === label);
  const base = find(false, CASES.bare);
  const seven = find(false, CASES.seven);
  const sevenOfs = find(true, CASES.seven);
  const sevenAxiosOfs = find(true, CASES.sevenAxios);
  const pollerDefaults = find(false, CASES.poller);
  const pollerOfs = find(true, CASES.poller);
  const unbundledOfs = find(true, CASES.pollerUnbundled);
  const singles = imports(false)
    .filter((c) => c.specifiers.length === 1 && !c.specifiers[0]?.startsWith("."))
    .toSorted((a, b) => b.loaded.rss - a.loaded.rss);
  const idle = (name: string) => idleOf(memory, name)?.settled;
  const shipped = idle("sfn-operator poller, as shipped");
  const unbundled = idle("sfn-operator poller, unbundled");
  const defaults = idle("sfn-operator poller, V8 defaults");
  const semi2 = idle("V8 defaults + semi-space 2 MB");
  const lite = idle("as shipped + --lite-mode");
  const node = idle("bare Node process");
  const peerIdle = idle("step-function-worker 2.1.0");
  const figures = peerFigures(peer);
  const fig = (variant: PeerVariant, delayMs: number) =>
    figures.find((f) => f.variant === variant && f.delayMs === delayMs);
  const d = (a: number | undefined, b: number | undefined): string =>
    a !== undefined && b !== undefined ? `${((a - b) / 2 ** 20).toFixed(1)} MiB` : "-";
  const ratio = (a: number | undefined, b: number | undefined): string =>
    a !== undefined && b !== undefined ? `${(a / b).toFixed(2)}x` : "-";
  const cpuTrade = peer.settings.delaysMs
    .map(
      (delayMs) =>
        `${ratio(fig("sfn-operator", delayMs)?.cpuMsPerTask, fig("sfn-operator-v8-defaults", delayMs)?.cpuMsPerTask)} at ${delayMs} ms`,
    )
    .join(", ");
  const semiTrade = peer.settings.delaysMs
    .map(
      (delayMs) =>
        `${ratio(fig("sfn-operator-semi2", delayMs)?.cpuMsPerTask, fig("sfn-operator-v8-defaults", delayMs)?.cpuMsPerTask)} at ${delayMs} ms`,
    )
    .join(", ");
  const fast = Math.min(...peer.settings.delaysMs);
  // The one knob found that trades along the curve rather than off it: the old generation's growth
  // between full GCs (--optimize-for-size keeps it minimal, hence frequent full GCs under load).
  // Whether any heap setting of ours meets both aims is read from this run, not assumed.
  const cpuBase = cpuBaseline(peer);
  const peerPeak = fig("peer", fast)?.peakRss;
  const both = peer.settings.variants.filter(
    (variant) =>
      variant.startsWith("sfn-operator") &&
      cycleRatio(peer.run.slices, variant, cpuBase, fast, "cpuMsPerTask") <= MEMORY_TARGETS.cpuOfBare &&
      peerPeak !== undefined &&
      (fig(variant, fast)?.peakRss ?? Number.POSITIVE_INFINITY) <= peerPeak,
  );
  const growthTrade = fig("sfn-operator-growth100", fast)
    ? `Letting the old generation double between full GCs (\`node --heap-growing-percent=100\`, with --optimize-for-size kept): CPU per task ${peer.settings.delaysMs
        .map(
          (delayMs) =>
            `${ratio(fig("sfn-operator-growth100", delayMs)?.cpuMsPerTask, fig("sfn-operator", delayMs)?.cpuMsPerTask)} at ${delayMs} ms`,
        )
        .join(
          ", ",
        )} of as shipped, for a busy peak RSS of ${mib(fig("sfn-operator-growth100", fast)?.peakRss)} against ${mib(fig("sfn-operator", fast)?.peakRss)} (step-function-worker ${mib(peerPeak)}). ${
        both.length === 0
          ? `The heap settings measured here trade CPU for busy memory along one curve: none of them has both a CPU per task within ${MEMORY_TARGETS.cpuOfBare}x of the ${PEER_VARIANT_NAMES[cpuBase]} (median of the cycles' ratios) and a busy peak RSS at most the peer's.`
          : `Both a CPU per task within ${MEMORY_TARGETS.cpuOfBare}x of the ${PEER_VARIANT_NAMES[cpuBase]} (median of the cycles' ratios) and a busy peak RSS at most the peer's: ${both.map((variant) => PEER_VARIANT_NAMES[variant]).join("; ")}.`
      }`
    : "";
  push(
    "## Memory and speed: what each part costs, and what was decided",
    "",
    "Computed from the tables of this run (Memory, Against the peer).",
    "",
    `- **Node itself**: a bare process holds ${mib(node?.rss)} (anonymous ${mib(node?.rssAnon)}, file ${mib(node?.rssFile)}). Nothing of ours can go below that.`,
    `- **The libraries**: imported together (SDK, ioredis, winston, prom-client, zod, commander, yaml) they add ${d(seven?.loaded.rss, base?.loaded.rss)} RSS with V8's defaults; the heap V8 committed grows by ${d(seven?.loaded.heapTotal, base?.loaded.heapTotal)}, but only ${d(seven?.collected.heapUsed, base?.collected.heapUsed)} of it is in use after a GC: the rest is the young generation V8 grew while they loaded. Alone, the heaviest are ${singles
      .slice(0, 4)
      .map((c) => `${c.label} (+${((c.loaded.rss - (base?.loaded.rss ?? 0)) / 2 ** 20).toFixed(1)} MiB)`)
      .join(
        ", ",
      )}; each alone also pays its share of the binary's pages and the loader, so the single costs add up to more than the total.`,
    `- **axios**, which makes the target calls, adds ${d(sevenAxiosOfs?.loaded.rss, sevenOfs?.loaded.rss)} RSS (${d(sevenAxiosOfs?.collected.heapUsed, sevenOfs?.collected.heapUsed)} heap in use) on top of the seven with --optimize-for-size: it loads its whole Node adapter (http2, follow-redirects, form-data with mime-db, proxy agents) at import. An idle poller never calls its target, so the poller imports axios on its first task, not at start-up: idle pollers do not hold it.`,
    `- **The bundle** (scripts/bundle.ts: esbuild, whitespace and syntax minified, one chunk per command): the \`poller\` command's modules as loaded with --optimize-for-size ${mib(pollerOfs?.loaded.rss)} bundled against ${mib(unbundledOfs?.loaded.rss)} from tsc's output and node_modules (heap in use after GC ${mib(pollerOfs?.collected.heapUsed)} against ${mib(unbundledOfs?.collected.heapUsed)}, file-backed ${mib(pollerOfs?.loaded.rssFile)} against ${mib(unbundledOfs?.loaded.rssFile)}); idle poller ${mib(shipped?.rss)} against ${mib(unbundled?.rss)} (file-backed ${mib(shipped?.rssFile)} against ${mib(unbundled?.rssFile)}). Fewer bytes of source text for V8 to keep, and one module loader pass over a few files instead of hundreds (the loader's own code is pages of the binary).`,
    `- **The young generation**: the \`poller\` command's modules leave ${mib(pollerDefaults?.loaded.heapTotal)} heap committed with V8's defaults and ${mib(pollerOfs?.loaded.heapTotal)} with --optimize-for-size, for ${mib(pollerDefaults?.collected.heapUsed)} in use. Under load the difference is larger: the heap columns of the peer table show the young generation committed by V8's defaults against the others.`,
    `- **Start-up garbage**: a full GC right after loading frees ${d(pollerDefaults?.loaded.heapUsed, pollerDefaults?.collected.heapUsed)} of heap and gives no RSS back (RSS after GC ${mib(pollerDefaults?.collected.rss)} against ${mib(pollerDefaults?.loaded.rss)} as loaded): an idle-time GC after start-up would not help. What does shrink an idle poller is V8's own memory reducer, which --optimize-for-size lets run (the *settled after* column).`,
    `- **The node binary's pages** (file-backed): ${mib(shipped?.rssFile)} of an idle poller's RSS against ${mib(node?.rssFile)} for a bare process; --lite-mode (no optimizing compiler, so fewer of the binary's pages run) takes the poller to ${mib(lite?.rss)} at a large CPU cost. These pages are shared by every pod of the image on a node.`,
    `- **Idle poller**: ${mib(defaults?.rss)} with V8's defaults, ${mib(shipped?.rss)} as shipped (--optimize-for-size), ${mib(semi2?.rss)} with V8's defaults and a 2 MB semi-space; step-function-worker ${mib(peerIdle?.rss)}. ${shipped !== undefined && shipped.rss < MEMORY_TARGETS.idleRssMiB * 2 ** 20 ? `Under ${MEMORY_TARGETS.idleRssMiB} MiB is reached` : `Under ${MEMORY_TARGETS.idleRssMiB} MiB is not reached with these libraries and an optimizing JIT`}: of the ${mib(shipped?.rss)}, ${mib(shipped?.rssFile)} are pages of the node binary (a bare process: ${mib(node?.rssFile)}; shared by the pods of a node), and the anonymous ${mib(shipped?.rssAnon)} hold the libraries' heap in use (${mib(pollerOfs?.collected.heapUsed)} after a GC as loaded) besides Node's own (a bare process: ${mib(node?.rssAnon)}). The SDK alone, unbundled, in the bare loop holds ${mib(idle("bare v3 SDK loop")?.rss)}.`,
    `- **Busy poller, concurrency ${peer.settings.concurrency}**: peak RSS ${mib(fig("sfn-operator-v8-defaults", fast)?.peakRss)} with V8's defaults, ${mib(fig("sfn-operator", fast)?.peakRss)} as shipped, ${mib(fig("sfn-operator-semi2", fast)?.peakRss)} with a 2 MB semi-space; step-function-worker ${mib(fig("peer", fast)?.peakRss)}. The RSS of every process stays flat from slice to slice (the slice table), so nothing is retained per task: the busy RSS is heap sizing, not a leak.`,
    `- **What --optimize-for-size costs**: CPU per task as shipped over V8's defaults: ${cpuTrade}; a 2 MB semi-space alone: ${semiTrade}. The turns of this benchmark leave each process idle between bursts, as a poller's load comes; with --optimize-for-size the memory reducer shrinks the heap in those pauses and the next burst runs with a small young generation (more scavenges, more promoted objects). ${lite ? `Without an optimizing compiler: --lite-mode ${peer.settings.delaysMs.map((delayMs) => `${ratio(fig("sfn-operator-lite-mode", delayMs)?.cpuMsPerTask, fig("sfn-operator", delayMs)?.cpuMsPerTask)} at ${delayMs} ms`).join(", ")} of the CPU per task as shipped, for ${d(shipped?.rss, lite.rss)} less idle RSS.` : ""} ${growthTrade}`,
    "",
    `**Decided.** bin/sfn-operator.js applies --optimize-for-size to every command (of the flags that save memory, it is the only one V8 honours when set at run time, so it travels with the entry point into the image and the operator's Deployments; \`SFN_OPTIMIZE_FOR_SIZE=false\` turns it off). Memory is what one Deployment per source multiplies; the CPU it costs matters only to a poller that is CPU-bound, and such a poller can turn it off (and cap the young generation with \`NODE_OPTIONS=--max-semi-space-size=2\` in its Deployment for most of the busy saving at little CPU). --max-semi-space-size on top of it saves nothing; --lite-mode costs the CPU above for its idle saving, and neither it nor --jitless (idle only) can be set from the entry point or NODE_OPTIONS (nor can --max-opt=2, between them, measured idle only). --heap-growing-percent is read while the process runs, so the entry point could set it (not NODE_OPTIONS); it does not, for the busy RSS it costs (above). Re-executing node with flags from the entry point was not taken: Node cannot replace its own process image, so a re-exec leaves a parent process running to pass signals on, another ${mib(node?.rss)}. bin/sfn-operator.js runs the bundle (dist/bundle), and the image ships it instead of node_modules: the same libraries, less memory in every process (the bundle row above), and the operator's share is larger still (client-node is the largest library; the Operator section).`,
    "",
  );
}
