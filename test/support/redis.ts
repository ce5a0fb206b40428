/**
 * A real redis-server for tests, started on a free loopback port (the Debian package
 * `redis-server`; `.ci/run` installs it). `REDIS_URL` uses an existing server instead, in which case
 * tests that restart Redis are skipped. Stop and start keep the port, so clients reconnect to the
 * "same" Redis, as they would after a real restart.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort, waitForRedis } from "../../bench/redis-server.ts";

export { freePort };

export class RedisServer {
  readonly url: string;
  /** False when REDIS_URL names a server the harness does not control. */
  readonly restartable: boolean;
  readonly #port: number;
  readonly #dir: string;
  #process: ChildProcess | undefined;
  #log = "";

  private constructor(url: string, port: number, restartable: boolean) {
    this.url = url;
    this.#port = port;
    this.restartable = restartable;
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), "sfn-redis-"));
  }

  static async start(): Promise<RedisServer> {
    if (process.env.REDIS_URL) return new RedisServer(process.env.REDIS_URL, 0, false);
    const port = await freePort();
    const server = new RedisServer(`redis://127.0.0.1:${port}`, port, true);
    await server.startProcess();
    return server;
  }

  /**
   * (Re)starts redis-server on the same port. By default without persistence, as a cache-style Redis
   * would run: a restart loses everything. With `persistent`, an append-only file fsynced before
   * every reply (`--appendfsync always`) in the server's own directory: what a client was told is
   * written survives a SIGKILL, and the next `startProcess({ persistent: true })` loads it.
   */
  async startProcess(options: { persistent?: boolean } = {}): Promise<void> {
    const appendOnly = options.persistent
      ? ["--appendonly", "yes", "--appendfsync", "always"]
      : ["--appendonly", "no"];
    const args = ["--port", String(this.#port), "--bind", "127.0.0.1", "--save", "", ...appendOnly];
    args.push("--dir", this.#dir, "--protected-mode", "no");
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (chunk: Buffer) => {
      this.#log += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#log += chunk.toString();
    });
    child.on("error", (error) => {
      this.#log += `\nspawn failed: ${error.message} (is redis-server installed? apt-get install redis-server)`;
    });
    this.#process = child;
    await this.waitUntilUp();
  }

  /** Stops the server process (SIGKILL by default: a crash, nothing flushed). */
  async stopProcess(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.#process;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill(signal);
      await exited;
    }
    this.#process = undefined;
  }

  /**
   * Deletes what a persistent server wrote (call it while the process is stopped): the next start
   * then begins empty, as a Redis whose disk was lost would, and never loads a stale file from an
   * earlier persistent run.
   */
  wipeData(): void {
    if (this.#process) throw new Error("wipeData: stop the server first");
    for (const entry of fs.readdirSync(this.#dir)) {
      fs.rmSync(path.join(this.#dir, entry), { recursive: true, force: true });
    }
  }

  /** The server's process id while it runs (to kill it from an exit handler, synchronously). */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  async waitUntilUp(timeoutMs = 10_000): Promise<void> {
    await waitForRedis(this.url, () => this.#log, timeoutMs);
  }

  /** A plain client for assertions (remember to disconnect). */
  client(): Redis {
    return new Redis(this.url);
  }

  async stop(): Promise<void> {
    await this.stopProcess("SIGTERM");
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}
