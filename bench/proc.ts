/**
 * Child processes and what Linux tells about them: the benchmark runs every measured part (poller,
 * emulator, target) as its own process, so each one's CPU time and memory can be read from /proc
 * without the benchmark's own work mixed in.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file runs from dist/bench/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = path.join(REPO_ROOT, "bin/sfn-operator.js");
/** Compiled scripts beside this module (dist/bench/). */
export const BENCH_DIST = path.dirname(fileURLToPath(import.meta.url));

/**
 * The emulator's environment in every benchmark: quiet, and with V8's defaults (the entry point
 * would apply --optimize-for-size, bin/sfn-operator.js), so that the emulator every measured process
 * talks to runs as it did before that flag and costs the measured processes the same CPU.
 */
export const EMULATOR_ENV: NodeJS.ProcessEnv = { SFN_LOG_LEVEL: "warn", SFN_OPTIMIZE_FOR_SIZE: "false" };

/** Clock ticks per second of /proc/<pid>/stat times (100 on every common Linux, asked anyway). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process so far, in ms; undefined once it is gone. */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** A `Vm*` line of /proc/<pid>/status in bytes (VmHWM: peak resident set; VmRSS: now). */
export function vmBytes(pid: number | undefined, field: "VmHWM" | "VmRSS"): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resident memory of a process from /proc/<pid>/status, in bytes: all of it (VmRSS, as `ps` and
 * Kubernetes' container metrics show it), its anonymous part (heap, stacks, malloc: what each
 * additional process adds) and its file-backed part (mostly the node binary's pages that ran: page
 * cache, shared by every process of the same binary, and in Kubernetes by every pod of the same
 * image on a node), and the peak (VmHWM).
 */
export interface ProcessMemory {
  rss: number;
  rssAnon: number;
  rssFile: number;
  peakRss: number;
}

export function processMemory(pid: number | "self" | undefined): ProcessMemory | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string): number => {
      const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
      return match ? Number(match[1]) * 1024 : Number.NaN;
    };
    return {
      rss: field("VmRSS"),
      rssAnon: field("RssAnon"),
      rssFile: field("RssFile"),
      peakRss: field("VmHWM"),
    };
  } catch {
    return undefined;
  }
}

/** This process's memory as Linux and V8 see it (the import-cost probe reports this). */
export interface MemorySnapshot extends ProcessMemory {
  heapUsed: number;
  heapTotal: number;
  /** Memory of JS objects held outside the V8 heap (Buffers, external strings). */
  external: number;
}

export function memorySnapshot(): MemorySnapshot {
  const usage = process.memoryUsage();
  const own = processMemory("self");
  if (!own) throw new Error("/proc/self/status is not readable (not Linux?)");
  return { ...own, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external };
}

/** What the report says about the machine. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  redis: string;
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? "unknown";
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"));
    if (match?.[1]) cpuModel = match[1].trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  let redis = "unknown";
  try {
    redis = execFileSync("redis-server", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    // reported as unknown
  }
  return {
    cpus: availableCpus(),
    cpuModel,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    redis,
  };
}

/** What `nproc` prints: the CPUs this process may run on. */
function availableCpus(): number {
  try {
    return Number(execFileSync("nproc", { encoding: "utf8" }).trim());
  } catch {
    return os.availableParallelism();
  }
}

/** `uptime`'s load averages (1, 5, 15 min), formatted. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(", ");
}

/**
 * A child process whose output is kept (the tail only: a poller under load logs little, but a
 * failing one may log a lot) and whose stdout lines can be waited for.
 */
export class Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly command: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #output = "";
  #stdout = "";
  readonly #lineWaiters = new Set<() => void>();

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.name = name;
    this.command = [
      "node",
      ...args.map((arg) => (arg.startsWith(`${REPO_ROOT}/`) ? path.relative(REPO_ROOT, arg) : arg)),
    ].join(" ");
    this.process = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.process.stdout?.on("data", (chunk: Buffer) => {
      this.#keep(chunk);
      this.#stdout = (this.#stdout + chunk.toString()).slice(-65_536);
      for (const wake of this.#lineWaiters) wake();
    });
    this.process.stderr?.on("data", (chunk: Buffer) => {
      this.#keep(chunk);
      for (const wake of this.#lineWaiters) wake();
    });
    this.exited = once(this.process, "exit").then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Everything printed to stdout so far (the last 64 KiB). */
  get stdout(): string {
    return this.#stdout;
  }

  /** Waits until stdout or stderr (the tail kept) matches; throws with the output when it exits first. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.#output);
      if (match) return match;
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`${this.name} exited before printing ${pattern}:\n${this.tail()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#lineWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 100));
        this.#lineWaiters.add(wake);
      });
    }
  }

  /** Whether it is still running (not exited). */
  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves to how it exited. */
  async stop(timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.process.kill("SIGTERM");
    const timer = setTimeout(() => this.process.kill("SIGKILL"), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  tail(lines = 30): string {
    return this.#output.split("\n").slice(-lines).join("\n");
  }

  #keep(chunk: Buffer): void {
    this.#output = (this.#output + chunk.toString()).slice(-65_536);
  }
}
