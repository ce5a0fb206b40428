/**
 * A real redis-server for tests, started on a free loopback port (the Debian package
 * `redis-server`; `.ci/run` installs it). `REDIS_URL` uses an existing server instead, in which case
 * tests that restart Redis are skipped. Stop and start keep the port and the data directory, so
 * clients reconnect to the "same" Redis, as they would after a real restart; with `persistence`,
 * it keeps its data across them (AOF, fsynced on every write: a SIGKILL loses nothing).
 *
 * With SFN_TEST_USE_DOCKER=1, or when redis-server is not on the PATH and a Docker engine answers
 * (test/support/harness-selection.ts), each server is a container of the pinned REDIS_IMAGE
 * (test/cluster/versions.env) instead; like REDIS_URL's, it is not `restartable`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import type { StartedTestContainer } from "testcontainers";
import { freePort, waitForRedis } from "../../bench/redis-server.ts";
import { pinnedVersions } from "./cluster.ts";
import { selectRedisBackend } from "./harness-selection.ts";

export { freePort };

export interface RedisServerOptions {
  /** Append-only file, fsynced on every write (`--appendonly yes --appendfsync always`). */
  persistence?: boolean;
  /** More `redis-server` arguments (e.g. `--maxmemory-policy`). */
  args?: string[];
}

/** The `run_id` of the Redis process a client is connected to (what the semaphore's epoch records). */
export async function serverRunId(client: Pick<Redis, "info">): Promise<string> {
  const runId = /^run_id:(\w+)/m.exec(await client.info("server"))?.[1];
  if (!runId) throw new Error("INFO server shows no run_id");
  return runId;
}

export class RedisServer {
  readonly url: string;
  /** False when REDIS_URL names a server the harness does not control, or for a container. */
  readonly restartable: boolean;
  readonly #port: number;
  readonly #dir: string;
  readonly #options: RedisServerOptions;
  #process: ChildProcess | undefined;
  #container: StartedTestContainer | undefined;
  #log = "";

  private constructor(url: string, port: number, restartable: boolean, options: RedisServerOptions) {
    this.url = url;
    this.#options = options;
    this.#port = port;
    this.restartable = restartable;
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), "sfn-redis-"));
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const { backend } = await selectRedisBackend();
    if (backend === "existing" && process.env.REDIS_URL) {
      return new RedisServer(process.env.REDIS_URL, 0, false, options);
    }
    if (backend === "docker") return RedisServer.startContainer(options);
    const port = await freePort();
    const server = new RedisServer(`redis://127.0.0.1:${port}`, port, true, options);
    await server.startProcess();
    return server;
  }

  /** A container of the pinned image, with the same arguments as {@link startProcess}'s first start. */
  private static async startContainer(options: RedisServerOptions): Promise<RedisServer> {
    const image = pinnedVersions().REDIS_IMAGE;
    if (!image) throw new Error("test/cluster/versions.env names no REDIS_IMAGE");
    const { RedisContainer } = await import("@testcontainers/redis");
    const args = ["--save", ""];
    if (options.persistence) args.push("--appendonly", "yes", "--appendfsync", "always");
    else args.push("--appendonly", "no");
    args.push(...(options.args ?? []));
    const container = await new RedisContainer(image).withCommand(["redis-server", ...args]).start();
    const server = new RedisServer(container.getConnectionUrl(), 0, false, options);
    server.#container = container;
    return server;
  }

  /**
   * (Re)starts redis-server on the same port and directory. Without persistence (the server's
   * `persistence` option, or `persistent` for this start), none, as a cache-style Redis would run: a
   * restart loses everything. With it, an append-only file fsynced before every reply
   * (`--appendfsync always`) in the server's own directory: what a client was told is written
   * survives a SIGKILL, and the next persistent start loads it.
   */
  async startProcess(options: { persistent?: boolean } = {}): Promise<void> {
    if (!this.restartable)
      throw new Error(`${this.url} is not the harness's redis-server: check restartable`);
    const persistent = options.persistent ?? this.#options.persistence ?? false;
    const args = ["--port", String(this.#port), "--bind", "127.0.0.1", "--save", ""];
    if (persistent) args.push("--appendonly", "yes", "--appendfsync", "always");
    else args.push("--appendonly", "no");
    args.push("--dir", this.#dir, "--protected-mode", "no", ...(this.#options.args ?? []));
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
    await this.#container?.stop();
    this.#container = undefined;
    await this.stopProcess("SIGTERM");
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}
