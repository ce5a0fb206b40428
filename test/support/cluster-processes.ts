/**
 * Process plumbing of the test cluster harness: free loopback ports, starting a component with its
 * output in a log file, and stopping components by pid, also from another process (`cluster:down`),
 * which is why a pid is only signalled after /proc says it still runs the binary we started.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";

/** One started component, as recorded in the cluster's state file. */
export interface ProcessRecord {
  component: string;
  pid: number;
  bin: string;
  log: string;
}

/** A free TCP port on 127.0.0.1 (the kernel picks one; the tiny race before use is accepted). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

/**
 * A free TCP port on 127.0.0.1 below the kernel's ephemeral range, for a server that is stopped and
 * started again on the same port (the API server in robustness tests). A port from the ephemeral
 * range can be taken, while its server is down, as the local end of any outgoing connection, and the
 * restart then fails with "address already in use".
 */
export async function freeStablePort(): Promise<number> {
  let low = 32768;
  try {
    low =
      Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || low;
  } catch {
    // Not Linux: the usual default.
  }
  const first = 10_000;
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = first + Math.floor(Math.random() * Math.max(1, low - first));
    if (await canListen(port)) return port;
  }
  return freePort();
}

/** Whether a server could listen on `port` of 127.0.0.1 now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A started component and the child process handle (kept to notice an early exit). */
export interface Started {
  record: ProcessRecord;
  child: ChildProcess;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/**
 * Starts `bin args` with stdout and stderr appended to `log`. The process gets its own process group
 * and is unref'd, so `cluster:up` can exit and leave it running, and a Ctrl-C in the terminal does
 * not kill etcd before the apiserver: stopping is always done by {@link stopProcesses}.
 */
export async function startProcess(
  component: string,
  bin: string,
  args: string[],
  log: string,
): Promise<Started> {
  const out = await fs.open(log, "a");
  try {
    const child = spawn(bin, args, { detached: true, stdio: ["ignore", out.fd, out.fd] });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`${component} did not start`);
    const started: Started = { record: { component, pid: child.pid, bin, log }, child, exit: undefined };
    child.once("exit", (code, signal) => {
      started.exit = { code, signal };
    });
    return started;
  } finally {
    await out.close();
  }
}

/** Whether `pid` is alive (not a zombie) and runs `bin`. */
export function isRunning(record: Pick<ProcessRecord, "pid" | "bin">): boolean {
  try {
    // /proc/PID/stat: "pid (comm) STATE ..."; comm may contain spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${record.pid}/stat`, "utf8");
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return false;
    const argv0 = readFileSync(`/proc/${record.pid}/cmdline`, "utf8").split("\0")[0];
    return argv0 === record.bin;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

async function stopGroup(records: ProcessRecord[], graceMs: number): Promise<void> {
  const running = records.filter(isRunning);
  for (const record of running) signal(record.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (running.some(isRunning) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const record of running.filter(isRunning)) signal(record.pid, "SIGKILL");
  while (running.some(isRunning) && Date.now() < deadline + 5_000)
    await new Promise((r) => setTimeout(r, 50));
}

/**
 * Stops the recorded processes, clients before servers: kwok, scheduler and controller-manager
 * together, then the apiserver, then etcd. SIGTERM first, SIGKILL after `graceMs` (the cluster's
 * data is thrown away, so a clean shutdown buys nothing but a shorter log).
 */
export async function stopProcesses(records: ProcessRecord[], graceMs = 5_000): Promise<void> {
  const servers = ["kube-apiserver", "etcd"];
  await stopGroup(
    records.filter((r) => !servers.includes(r.component)),
    graceMs,
  );
  for (const server of servers) {
    await stopGroup(
      records.filter((r) => r.component === server),
      graceMs,
    );
  }
}

/** SIGKILLs the recorded processes at once; for process exit handlers, which cannot wait. */
export function killProcessesSync(records: ProcessRecord[]): void {
  for (const record of records) if (isRunning(record)) signal(record.pid, "SIGKILL");
}

/** The last `lines` lines of a log file ("" when it cannot be read). */
export function tail(file: string, lines: number): string {
  try {
    const text = readFileSync(file, "utf8");
    return text
      .split("\n")
      .slice(-lines - 1)
      .join("\n");
  } catch {
    return "";
  }
}
