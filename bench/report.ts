/**
 * BENCHMARKS.md: machine, commands, figures, targets and how each figure was measured, rendered from
 * the results of one run; plus the checks that make a run (quick or full) fail.
 */
import { DEFAULT_LEASE_TTL_MS, DEFAULT_RECHECK_MS } from "../src/semaphore/redis/redis-semaphore.ts";
import {
  BATCH_HEADROOM,
  type DispatchRun,
  type DispatchSlice,
  type DispatchVariant,
  MIN_RATE_PER_S,
  permutations,
} from "./dispatch.ts";
import type { MachineInfo } from "./proc.ts";
import {
  type MemoryReport,
  memoryProblems,
  memorySummaryLines,
  memorySummaryRows,
  type PeerReport,
  renderFindings,
  renderMemory,
  renderPeer,
} from "./report-memory.ts";
import {
  type OperatorReport,
  operatorProblems,
  operatorSummaryLines,
  operatorSummaryRows,
  renderOperator,
} from "./report-operator.ts";
import { type Implementation, LIBRARY_OPTIONS, type SemaphoreResult } from "./semaphore.ts";

export interface BenchReport {
  quick: boolean;
  only: string | undefined;
  startedAt: Date;
  durationS: number;
  machine: MachineInfo;
  loadStart: string;
  loadEnd: string;
  semaphore:
    | {
        settings: {
          contenders: number;
          limit: number;
          holdMs: number;
          instanceCounts: number[];
          crossingInstances: number;
          warmupMs: number;
          windowMs: number;
          longHoldMs: number;
          longHoldWindowMs: number;
        };
        results: SemaphoreResult[];
      }
    | undefined;
  dispatch:
    | {
        settings: {
          loops: number;
          variants: DispatchVariant[];
          processes: number;
          warmupMs: number;
          cycles: number;
          settleMs: number;
          sliceMs: number;
          longPollSeconds: number;
        };
        emulatorCommand: string;
        targetCommand: string;
        run: DispatchRun;
      }
    | undefined;
  memory: MemoryReport | undefined;
  peer: PeerReport | undefined;
  operator: OperatorReport | undefined;
}

/** Targets of the issue. */
export const TARGETS = {
  /** Our cycles/s at least the library's. */
  throughputRatio: 1,
  /** Our hand-off p99 at most this share of the library's. */
  handoffP99Share: 1 / 5,
  /** The poller's tasks/s at least this share of the bare loop's. */
  dispatchRatio: 0.9,
  /** And at least this many tasks/s (GetActivityTask's per-account refill rate in the largest regions). */
  dispatchMin: 500,
};

const VARIANT_NAMES: Record<DispatchVariant, string> = {
  bare: "bare SDK loop",
  poller: "`sfn-operator local`, in-process semaphore",
  "poller-redis": "`sfn-operator local`, Redis semaphore",
};

interface SemaphoreVerdict {
  instances: number;
  ours: SemaphoreResult;
  library: SemaphoreResult;
  throughputMet: boolean;
  handoffMet: boolean;
}

interface DispatchVerdict {
  variant: DispatchVariant;
  median: number;
  /** Median of the per-cycle ratios against the bare loop. */
  ratio: number;
  /** The per-cycle ratios, lowest and highest: how much the machine's drift moved them. */
  ratioRange: [number, number];
  ratioMet: boolean;
  minMet: boolean;
  peakRssBytes: number;
  /** Median CPU ms of the measured process per task. */
  cpuMsPerTask: number;
}

/** The result of a run at the target settings (hold, contenders) with this many instances. */
function findSemaphoreRun(
  report: BenchReport,
  implementation: Implementation,
  instances: number,
  contenders: number | undefined = report.semaphore?.settings.contenders,
): SemaphoreResult | undefined {
  const holdMs = report.semaphore?.settings.holdMs;
  return (report.semaphore?.results ?? []).find(
    (r) =>
      r.implementation === implementation &&
      r.instances === instances &&
      r.contenders === contenders &&
      r.holdMs === holdMs,
  );
}

/** The run of one loop per instance, ours and the library's. */
function crossingRuns(report: BenchReport): { ours: SemaphoreResult; library: SemaphoreResult } | undefined {
  const instances = report.semaphore?.settings.crossingInstances;
  if (instances === undefined) return undefined;
  const ours = findSemaphoreRun(report, "sfn-operator", instances, instances);
  const library = findSemaphoreRun(report, "redis-semaphore", instances, instances);
  return ours && library ? { ours, library } : undefined;
}

function semaphoreVerdicts(report: BenchReport): SemaphoreVerdict[] {
  const verdicts: SemaphoreVerdict[] = [];
  for (const instances of report.semaphore?.settings.instanceCounts ?? []) {
    const ours = findSemaphoreRun(report, "sfn-operator", instances);
    const library = findSemaphoreRun(report, "redis-semaphore", instances);
    if (!ours || !library) continue;
    verdicts.push({
      instances,
      ours,
      library,
      throughputMet: ours.cyclesPerSecond >= TARGETS.throughputRatio * library.cyclesPerSecond,
      handoffMet: ours.handoffMs.p99 <= TARGETS.handoffP99Share * library.handoffMs.p99,
    });
  }
  return verdicts;
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function slicesOf(report: BenchReport, variant: DispatchVariant): DispatchSlice[] {
  return (report.dispatch?.run.slices ?? []).filter((r) => r.variant === variant);
}

function dispatchVerdicts(report: BenchReport): DispatchVerdict[] {
  const bare = slicesOf(report, "bare");
  if (bare.length === 0) return [];
  const bareByCycle = new Map(bare.map((r) => [r.cycle, r.tasksPerSecond]));
  return (["bare", "poller", "poller-redis"] as DispatchVariant[])
    .map((variant) => ({ variant, slices: slicesOf(report, variant) }))
    .filter(({ slices }) => slices.length > 0)
    .map(({ variant, slices }) => {
      const value = median(slices.map((r) => r.tasksPerSecond));
      // Each cycle's own ratio (the variant against the bare loop's slice seconds away), then the
      // median: the machine's speed drifts over a run, and a ratio of two medians would mix cycles.
      const ratios = slices
        .filter((r) => bareByCycle.has(r.cycle))
        .map((r) => r.tasksPerSecond / (bareByCycle.get(r.cycle) as number));
      const ratio = median(ratios);
      return {
        variant,
        median: value,
        ratio,
        ratioRange: [Math.min(...ratios), Math.max(...ratios)] as [number, number],
        ratioMet: ratio >= TARGETS.dispatchRatio,
        minMet: value >= TARGETS.dispatchMin,
        peakRssBytes: Math.max(...slices.map((r) => r.peakRssBytes ?? 0)),
        cpuMsPerTask: median(slices.map((r) => r.cpuMsPerTask)),
      };
    });
}

/** What makes the run fail: broken machinery, never speed. */
export function checkProblems(report: BenchReport): string[] {
  const problems: string[] = [];
  for (const r of report.semaphore?.results ?? []) {
    const name = `semaphore ${r.implementation} x${r.instances}`;
    if (!(r.cyclesPerSecond > 0)) problems.push(`${name}: no cycle completed in the window`);
    if (r.handoffMs.count === 0) problems.push(`${name}: no hand-off measured`);
    if (r.maxHeld > r.limit) problems.push(`${name}: ${r.maxHeld} permits held at once, limit ${r.limit}`);
    if (r.errors > 0) problems.push(`${name}: ${r.errors} failed acquisition(s) or lost lock(s)`);
  }
  for (const r of report.dispatch?.run.slices ?? []) {
    if (!(r.tasksPerSecond > 0)) problems.push(`dispatch ${r.variant} cycle ${r.cycle}: no throughput`);
  }
  for (const problem of report.dispatch?.run.problems ?? []) problems.push(`dispatch: ${problem}`);
  problems.push(...memoryProblems(report.memory, report.peer));
  problems.push(...operatorProblems(report.operator, report.quick));
  return problems;
}

const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(3) : "-");
const int = (value: number): string =>
  Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "-";
const mib = (bytes: number | undefined): string => (bytes ? `${(bytes / 2 ** 20).toFixed(0)} MiB` : "-");
const yes = (met: boolean): string => (met ? "**met**" : "**not met**");
const pct = (share: number): string => (Number.isFinite(share) ? `${Math.round(share * 100)}%` : "-");
/** Share of hand-offs that crossed instances, their p50 / p99, and the instances served. */
const crossingCell = (r: SemaphoreResult): string =>
  `${pct(r.crossInstanceShare)} (p50 / p99 ${ms(r.crossInstanceHandoffMs.p50)} / ${ms(r.crossInstanceHandoffMs.p99)} ms); ${r.instancesServed} of ${r.instances} instances served`;

/** A few lines for the terminal. */
export function summaryLines(report: BenchReport): string[] {
  const lines: string[] = [];
  for (const v of semaphoreVerdicts(report)) {
    lines.push(
      `semaphore x${v.instances}: ${int(v.ours.cyclesPerSecond)} vs ${int(v.library.cyclesPerSecond)} cycles/s (${yes(v.throughputMet)}), hand-off p99 ${ms(v.ours.handoffMs.p99)} vs ${ms(v.library.handoffMs.p99)} ms (${yes(v.handoffMet)}), ${v.ours.commandsPerAcquisition.toFixed(1)} vs ${v.library.commandsPerAcquisition.toFixed(1)} commands/acquisition, ${pct(v.ours.crossInstanceShare)} vs ${pct(v.library.crossInstanceShare)} of hand-offs cross instances`,
    );
  }
  const crossing = crossingRuns(report);
  if (crossing) {
    const { ours, library } = crossing;
    lines.push(
      `semaphore ${ours.instances} x 1 loop (not a target): ${int(ours.cyclesPerSecond)} vs ${int(library.cyclesPerSecond)} cycles/s, hand-off p50 ${ms(ours.handoffMs.p50)} vs ${ms(library.handoffMs.p50)} ms, p99 ${ms(ours.handoffMs.p99)} vs ${ms(library.handoffMs.p99)} ms, ${pct(ours.crossInstanceShare)} vs ${pct(library.crossInstanceShare)} of hand-offs cross instances`,
    );
  }
  for (const v of dispatchVerdicts(report)) {
    lines.push(
      `dispatch ${v.variant}: ${int(v.median)} tasks/s (${v.ratio.toFixed(2)} of bare), peak RSS ${mib(v.peakRssBytes)}`,
    );
  }
  lines.push(...memorySummaryLines(report.memory, report.peer));
  lines.push(...operatorSummaryLines(report.operator));
  return lines;
}

export function renderReport(report: BenchReport): string {
  const out: string[] = [];
  const push = (...lines: string[]): void => {
    out.push(...lines);
  };
  const m = report.machine;
  const args = report.quick ? " -- --quick" : report.only ? ` -- --only ${report.only}` : "";
  push(
    "# Benchmarks",
    "",
    `Written by \`npm run bench${args}\` (bench/run.ts: \`npm run build\`, then \`node dist/bench/run.js\`) on ${report.startedAt.toISOString()}; the run took ${report.durationS.toFixed(0)} s.`,
    ...(report.quick
      ? [
          "",
          "**Quick mode**: every benchmark ran briefly to check that it works; these figures say nothing about speed.",
        ]
      : []),
    "",
    "## Machine",
    "",
    "| | |",
    "|---|---|",
    `| CPUs (\`nproc\`) | ${m.cpus} |`,
    `| CPU model | ${m.cpuModel} |`,
    `| memory | ${m.memoryGiB} GiB |`,
    `| Node.js | ${m.node} |`,
    `| kernel | ${m.kernel} |`,
    `| Redis | ${m.redis} |`,
    `| load average (1, 5, 15 min) at start | ${report.loadStart} |`,
    `| load average at end | ${report.loadEnd} |`,
    "",
    `Every process of a benchmark (Redis, emulator, target, the measured process and the benchmark itself) shares these ${m.cpus} CPUs, and the machine is shared with other work: a load average above ${m.cpus} at the start means something else was running too, and the absolute figures are then lower than on an idle machine (the comparisons within one run are less affected: both sides ran under the same conditions, alternately).`,
    "",
  );

  const sv = semaphoreVerdicts(report);
  const dv = dispatchVerdicts(report);
  push("## Summary", "", "| figure | sfn-operator | baseline | target | |", "|---|---|---|---|---|");
  for (const v of sv) {
    const label = v.instances === 1 ? "one process" : `${v.instances} processes`;
    push(
      `| semaphore cycles/s (${label}) | ${int(v.ours.cyclesPerSecond)} | ${int(v.library.cyclesPerSecond)} (redis-semaphore) | at least the library's | ${yes(v.throughputMet)} |`,
      `| semaphore hand-off p50 / p99 (${label}) | ${ms(v.ours.handoffMs.p50)} / ${ms(v.ours.handoffMs.p99)} ms | ${ms(v.library.handoffMs.p50)} / ${ms(v.library.handoffMs.p99)} ms | p99 at most a fifth of the library's (${ms(v.library.handoffMs.p99 * TARGETS.handoffP99Share)} ms) | ${yes(v.handoffMet)} |`,
      `| Redis commands per acquisition (${label}) | ${v.ours.commandsPerAcquisition.toFixed(1)} (${v.ours.roundTripsPerAcquisition.toFixed(2)} round trips) | ${v.library.commandsPerAcquisition.toFixed(1)} (${v.library.roundTripsPerAcquisition.toFixed(2)} round trips) | (reported) | |`,
    );
    if (v.instances > 1) {
      push(
        `| semaphore hand-offs crossing processes (${label}) | ${crossingCell(v.ours)} | ${crossingCell(v.library)} | (reported) | |`,
      );
    }
  }
  const crossing = crossingRuns(report);
  if (crossing) {
    const { ours, library } = crossing;
    const label = `${ours.instances} processes of one loop each`;
    push(
      `| semaphore cycles/s (${label}) | ${int(ours.cyclesPerSecond)} | ${int(library.cyclesPerSecond)} (redis-semaphore) | (reported, not a target) | |`,
      `| semaphore hand-off p50 / p99 (${label}) | ${ms(ours.handoffMs.p50)} / ${ms(ours.handoffMs.p99)} ms | ${ms(library.handoffMs.p50)} / ${ms(library.handoffMs.p99)} ms | (reported, not a target) | |`,
    );
  }
  const bare = dv.find((v) => v.variant === "bare");
  for (const v of dv.filter((d) => d.variant !== "bare")) {
    push(
      `| dispatch tasks/s, ${VARIANT_NAMES[v.variant]} | ${int(v.median)} (${v.ratio.toFixed(2)} of bare: median of the cycles' ratios, which ranged ${v.ratioRange[0].toFixed(2)}–${v.ratioRange[1].toFixed(2)}) | ${int(bare?.median ?? Number.NaN)} (bare SDK loop) | at least 0.9 of bare, and at least ${TARGETS.dispatchMin} | ratio ${yes(v.ratioMet)}; ${TARGETS.dispatchMin}/s ${yes(v.minMet)} |`,
    );
  }
  for (const v of dv.filter((d) => d.variant !== "bare")) {
    push(
      `| CPU per task, ${VARIANT_NAMES[v.variant]} | ${v.cpuMsPerTask.toFixed(3)} ms | ${bare ? `${bare.cpuMsPerTask.toFixed(3)} ms (bare SDK loop)` : ""} | (reported: explains the ratio) | |`,
    );
  }
  for (const v of dv) {
    push(`| peak RSS, ${VARIANT_NAMES[v.variant]} | ${mib(v.peakRssBytes)} | | (reported) | |`);
  }
  push(...memorySummaryRows(report.memory, report.peer));
  push(...operatorSummaryRows(report.operator));
  push("");

  if (report.semaphore) renderSemaphore(report, push);
  if (report.dispatch) renderDispatch(report, push);
  if (report.memory) renderMemory(report.memory, push);
  if (report.peer) renderPeer(report.peer, push, report.quick);
  renderFindings(report.memory, report.peer, push);
  if (report.operator) renderOperator(report.operator, push, report.quick, report.machine.cpus);
  return `${out.join("\n")}\n`;
}

function renderSemaphore(report: BenchReport, push: (...lines: string[]) => void): void {
  const semaphore = report.semaphore;
  if (!semaphore) return;
  const s = semaphore.settings;
  push(
    "## Semaphore: sfn-operator's Redis semaphore against redis-semaphore 5.x",
    "",
    "Command: `npm run bench` (this section alone: `npm run bench -- --only semaphore`, which prints its report instead of writing this file). Source: bench/semaphore.ts.",
    "",
    "**How measured.** One redis-server (started by the benchmark on a loopback port, no persistence) serves both implementations in the same run, one after the other, the keyspace flushed in between. " +
      `In the benchmark's own process, ${s.contenders} contenders (${s.crossingInstances} in the run of one loop per instance, below) each loop: acquire → hold ${s.holdMs} ms (a timer, finished on the real clock: a Node timer can fire early when the event loop is busy) → release, with a limit of ${s.limit}. ` +
      `Each run warms up for ${s.warmupMs / 1000} s, then measures a ${s.windowMs / 1000} s window. ` +
      `The contenders are spread evenly over ${s.instanceCounts.join(" or ")} *instances*: an instance is one semaphore object (ours) or one ioredis client (redis-semaphore) with its own Redis connections, so 1 instance is one poller process with all the loops and 10 instances stand for ten processes (pods) of ${s.contenders / 10} loops each. ` +
      "In the 10-instance run, a process that has waiters of its own serves them first: ours hands a released permit straight to the oldest waiter of the same instance (local hand-over, no Redis round trip). While another instance waits (refused acquisitions list and announce their instance), a lease passes locally for at most 1 s after Redis granted it; then it goes back to Redis and the releasing instance holds back its own loops for 10 ms, so that the instance whose turn it is (the one waiting longest, addressed by name on the pub/sub channel) takes it. So most of our hand-offs there stay inside an instance (about 10 leases cross per second), and that run does not measure crossing processes. redis-semaphore keeps nothing per instance: every release goes to Redis, and the first waiter to poll, of whichever instance, takes the permit. " +
      "The *cross-instance* columns show how many hand-offs crossed instances and how long those took; *instances served* shows how many instances completed at least one acquisition in the window (fewer than all: permits stayed with some processes while the others got none).",
    "",
    "- **cycles/s**: acquisitions completed in the window, per second (each is followed by its release).",
    "- **hand-off latency**: release calls and completed acquisitions are paired first in, first out: every acquisition that did not take one of the never-used permits is paired with the oldest release call not yet paired, and its hand-off is *acquire() resolved − release() called*. Under saturation (more contenders than permits, always true here) these add up exactly to the time permits spent between two holders, so they say how long a freed permit sits unused; the release call's own round trip is included, as a waiting loop sees it. Percentiles by nearest rank over the acquisitions completed in the window.",
    "- **mean hold**: how long a permit was really held (at least the hold; more when the benchmark's process is short of CPU); cycles/s ≈ limit / (mean hold + mean hand-off), so this tells a slow semaphore from a starved process. **Permits in circulation** = cycles/s × (mean hold + mean hand-off): the permits that really went from holder to holder; below the limit, some permits sat taken in Redis without a holder (leaked or stuck) for part of the window.",
    "- **cross-instance share**: each release call records its instance; a hand-off (paired as above) crosses instances when the acquiring loop's instance is not the releasing one's. The pairing is first in, first out, not the path the permit really took (neither implementation says which release an acquisition got), so this is an approximation: a permit handed over locally need not be the oldest release not yet paired. *cross-instance p50 / p99* are the percentiles of those hand-offs alone.",
    "- **Redis commands per acquisition**: the change of `INFO commandstats` (calls summed over every command, except the benchmark's own INFO) from before the first acquisition to after the last release, divided by the acquisitions of the whole run. Redis counts the commands a Lua script runs as well as the script call, so this is the work Redis does; *round trips* counts only the commands the clients sent (EVALSHA/EVAL, and redis-semaphore's ZREM release).",
    "",
    `**Options.** redis-semaphore \`Semaphore(client, "bench", ${s.limit}, options)\`, one object per acquisition (its model), with retryInterval ${LIBRARY_OPTIONS.retryInterval} ms, lockTimeout ${LIBRARY_OPTIONS.lockTimeout} ms and refreshInterval ${LIBRARY_OPTIONS.refreshInterval} ms (the library's defaults), and acquireTimeout ${LIBRARY_OPTIONS.acquireTimeout / 1000} s (longer than any run, so no contender is dropped for waiting; the default is 10 s). ` +
      `Ours: \`RedisSemaphore\` with its defaults (lease TTL ${DEFAULT_LEASE_TTL_MS / 1000} s refreshed every ${DEFAULT_LEASE_TTL_MS / 3000} s for all leases of the instance in one call, re-check at least every ${DEFAULT_RECHECK_MS / 1000} s), one object per instance shared by its contenders, as a poller process uses it.`,
    "",
    `The ${s.crossingInstances} × 1 rows (${s.crossingInstances} instances of one loop each; limit, hold, warm-up and window as above) are not a target figure: a releasing instance never has a waiter of its own there. redis-semaphore sends every release to Redis, and its waiters poll every retryInterval (${LIBRARY_OPTIONS.retryInterval} ms); the releasing loop asks again at once and often takes its permit back before a waiter of another instance polls. Ours keeps a released lease until the end of the event-loop turn for a loop of the same instance that asks again at once (as a poller loop does after reporting), so each loop keeps its permit without Redis round trips, for at most 1 s after Redis granted it while another instance waits (always, here); then the lease goes back to Redis (its release script publishes on the semaphore's channel a turn addressed to the instance that has waited longest, which runs its acquire script and takes that one permit) and the releasing instance holds back for 10 ms. So here most of our hand-offs are a loop taking its own permit back, and the cross-instance columns show the leases that moved between instances and how long that took. There are still more loops than permits, so permits are always wanted. All instances run in the benchmark's one process, so the work of every instance also takes CPU from that process.`,
    "",
    `The last two rows (hold ${s.longHoldMs} ms, one instance, a ${s.longHoldWindowMs / 1000} s window) are not a target figure: with permits held longer, waiting dominates, and they show what waiting costs Redis — redis-semaphore's waiters poll every retryInterval whether or not anything was released, ours wait for a release message.`,
    "",
    "| implementation | instances | loops | hold ms | cycles/s | hand-offs | p50 ms | p90 ms | p99 ms | max ms | mean ms | cross-instance share | cross-instance p50 / p99 ms | instances served | commands / acq. | round trips / acq. | commands / s | mean hold ms | permits in circulation | most held |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const r of semaphore.results) {
    push(
      `| ${r.implementation} | ${r.instances} | ${r.contenders} | ${r.holdMs} | ${int(r.cyclesPerSecond)} | ${int(r.handoffMs.count)} | ${ms(r.handoffMs.p50)} | ${ms(r.handoffMs.p90)} | ${ms(r.handoffMs.p99)} | ${ms(r.handoffMs.max)} | ${ms(r.handoffMs.mean)} | ${pct(r.crossInstanceShare)} | ${ms(r.crossInstanceHandoffMs.p50)} / ${ms(r.crossInstanceHandoffMs.p99)} | ${r.instancesServed} / ${r.instances} | ${r.commandsPerAcquisition.toFixed(2)} | ${r.roundTripsPerAcquisition.toFixed(2)} | ${int(r.commandsPerSecond)} | ${ms(r.meanHoldMs)} | ${((r.cyclesPerSecond * (r.meanHoldMs + r.handoffMs.mean)) / 1000).toFixed(1)} | ${r.maxHeld} / ${r.limit} |`,
    );
  }
  push(
    "",
    "Commands per acquisition, by command:",
    "",
    "| implementation | instances | loops | hold ms | commands |",
    "|---|---|---|---|---|",
  );
  for (const r of semaphore.results) {
    const parts = Object.entries(r.commandBreakdown)
      .toSorted((a, b) => b[1] - a[1])
      .map(([name, value]) => `${name} ${value.toFixed(2)}`);
    push(`| ${r.implementation} | ${r.instances} | ${r.contenders} | ${r.holdMs} | ${parts.join(", ")} |`);
  }
  push("");
}

function renderDispatch(report: BenchReport, push: (...lines: string[]) => void): void {
  const dispatch = report.dispatch;
  if (!dispatch) return;
  const s = dispatch.settings;
  const { run } = dispatch;
  push(
    "## Dispatch: one poller process against a bare SDK loop",
    "",
    "Command: `npm run bench` (this section alone: `npm run bench -- --only dispatch`, printed instead of written here). Source: bench/dispatch.ts, bench/bare-loop.ts, bench/target-server.ts.",
    "",
    "Processes, each its own (so the measured process's event loop is alone and its CPU and memory can be read from /proc):",
    "",
    `- emulator: \`SFN_OPTIMIZE_FOR_SIZE=false ${dispatch.emulatorCommand}\` (loopback; its long polls of ${s.longPollSeconds} s keep the idle variants' loops cheap while another variant has its turn);`,
    `- instant target: \`${dispatch.targetCommand}\`, a node:http server answering every POST 200 \`{}\` once the body is read;`,
    `- bare loop: \`${run.commands.bare ?? "(not run)"}\` — ${s.loops} concurrent loops of GetActivityTask → POST to the target (node:http, keep-alive) → SendTaskSuccess with the answer, one SFNClient (its socket pool raised to ${2 * s.loops}), nothing else: no semaphore, metrics, heartbeats, outcome rules or logging;`,
    `- poller: \`${run.commands["poller-redis"] ?? run.commands.poller ?? "(not run)"}\` — the real CLI as users run it; the same with and without the \`redis:\` line (Redis semaphore / in-process semaphore), each on its own activity (\`bench-<variant>\`). Sources file of the Redis variant:`,
    "",
    "```yaml",
    (run.sourcesFile ?? "").trimEnd(),
    "```",
    "",
    `**Why ${s.loops} loops.** With an instant target a task costs three loopback round trips (poll, POST, report); by Little's law 500 tasks/s at even 20 ms per task needs only 10 in flight, so ${s.loops} (one poller, maxConcurrency = concurrencyPerPoller = ${s.loops}) keeps the CPU, not the concurrency, as the limit for the poller and the bare loop alike, while staying a realistic size for one pod (and far below the emulator's 1000 waiting polls per activity).`,
    "",
    `**How measured.** ${s.processes === 1 ? "One process" : `${s.processes} processes`} of each variant start once and run side by side for the whole benchmark, each polling its own activity (\`bench-<variant>-<n>\`), and take turns: a turn enqueues a batch of tasks for one process only (the side API's \`POST /_emulator/tasks\` with a count), so the others sit in long polls as idle pods do. After one unmeasured turn of ${s.warmupMs / 1000} s each (CPU per task falls by about a third over a process's first ~20,000 tasks, for the bare loop and the poller alike: JIT, heap sizing; a pod's poller runs for days), there are ${s.cycles} cycles; in each, every variant has a turn. The cycles go through every order of the variants in turn, so each variant goes right after each other one equally often${s.processes > 1 ? `, and each block of ${permutations(s.variants).length} cycles (one per order) is run by the next process of each variant, because two processes of the same code can differ by several per cent for their whole life (JIT decisions, heap layout), which one process per variant would make part of the figure` : ""}. A turn lets the process work ${s.settleMs / 1000} s, then reads its activity's closed-task count (\`GET /_emulator/stats\`, \`activityTasks\`) at the start and end of a ${s.sliceMs / 1000} s slice: tasks/s = difference / elapsed time. The batch is sized at ${BATCH_HEADROOM} × the process's best rate so far (at least ${int(MIN_RATE_PER_S)} tasks/s), and a slice whose batch ran out before its end is rejected; the rest of the batch drains before the next turn, so two processes never work at once. The figure is the median over the slices. The ratio is the median over cycles of each cycle's own ratio (the variant's slice over the bare loop's slice of the same cycle, seconds apart): this machine is shared and its speed drifts by ±10% over minutes, which long windows run one after the other (as the previous version of this benchmark did) could not cancel. At the end every process gets SIGTERM and must exit 0, and the emulator must show no task left STARTED, none FAILED or TIMED_OUT, and no AWS error answer.${report.quick ? " Quick mode (CI): one process each, one cycle of short slices, to check that the machinery works; its figures mean nothing." : ""}`,
    "",
    "**Peak RSS** is VmHWM from /proc/<pid>/status of the measured process at the end of each slice; the tables give the largest.",
    "",
    "**CPU** is user + system time from /proc/<pid>/stat over the slice, as a share of one core (100% = one core busy all the time).",
    "",
    "| variant | median tasks/s | ratio to bare (median of cycles; range) | median CPU ms / task | median CPU: measured | emulator | target | Redis | peak RSS |",
    "|---|---|---|---|---|---|---|---|---|",
  );
  for (const v of dispatchVerdicts(report)) {
    const slices = slicesOf(report, v.variant);
    const cpu = (key: keyof DispatchSlice["cpu"]): string => pct(median(slices.map((r) => r.cpu[key])));
    push(
      `| ${VARIANT_NAMES[v.variant]} | ${int(v.median)} | ${v.variant === "bare" ? "-" : `${v.ratio.toFixed(2)} (${v.ratioRange[0].toFixed(2)}–${v.ratioRange[1].toFixed(2)})`} | ${v.cpuMsPerTask.toFixed(3)} | ${cpu("measured")} | ${cpu("emulator")} | ${cpu("target")} | ${cpu("redis")} | ${mib(v.peakRssBytes)} |`,
    );
  }
  if (s.processes > 1) {
    push(
      "",
      "Each process alone (medians over its slices), to show how far two processes of the same code differ:",
      "",
      "| variant | process | slices | median tasks/s | median CPU ms / task |",
      "|---|---|---|---|---|",
    );
    for (const variant of s.variants) {
      for (let process = 1; process <= s.processes; process++) {
        const own = run.slices.filter((r) => r.variant === variant && r.process === process);
        push(
          `| ${VARIANT_NAMES[variant]} | ${process} | ${own.length} | ${int(median(own.map((r) => r.tasksPerSecond)))} | ${median(own.map((r) => r.cpuMsPerTask)).toFixed(3)} |`,
        );
      }
    }
  }
  push(
    "",
    "Every slice (the process, tasks/s, CPU ms per task, tasks left in the batch at the slice's end):",
    "",
    `| cycle | ${s.variants.map((variant) => VARIANT_NAMES[variant]).join(" | ")} |`,
    `|---|${s.variants.map(() => "---").join("|")}|`,
  );
  for (let cycle = 1; cycle <= s.cycles; cycle++) {
    const cells = s.variants.map((variant) => {
      const r = run.slices.find((slice) => slice.variant === variant && slice.cycle === cycle);
      return r
        ? `#${r.process}: ${int(r.tasksPerSecond)}/s, ${r.cpuMsPerTask.toFixed(3)} ms, ${int(r.backlogAtEnd)} left`
        : "-";
    });
    push(`| ${cycle} | ${cells.join(" | ")} |`);
  }
  push("", `Tasks closed over the whole run, warm-up and drains included: ${int(run.tasksClosed)}.`, "");
}
