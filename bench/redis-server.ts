/**
 * A throwaway redis-server for the benchmarks, on a free loopback port, without persistence.
 *
 * The test harness (test/support/redis.ts) builds on this module's `freePort` and `waitForRedis`;
 * the dependency goes that way because the build compiles bench/ but not test/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class RedisServer {
  readonly url: string;
  readonly #dir: string;
  readonly #process: ChildProcess;
  #log = "";

  private constructor(url: string, dir: string, child: ChildProcess) {
    this.url = url;
    this.#dir = dir;
    this.#process = child;
    const keep = (chunk: Buffer): void => {
      this.#log = (this.#log + chunk.toString()).slice(-8192);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("error", (error) => {
      this.#log += `\nspawn failed: ${error.message} (is redis-server installed? apt-get install redis-server)`;
    });
  }

  /** Starts redis-server on a free loopback port and waits until it answers PING. */
  static async start(): Promise<RedisServer> {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sfn-bench-redis-"));
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    args.push("--dir", dir, "--protected-mode", "no");
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    const server = new RedisServer(`redis://127.0.0.1:${port}`, dir, child);
    await waitForRedis(server.url, () => server.#log);
    return server;
  }

  /** The server's process id (for its CPU time). */
  get pid(): number | undefined {
    return this.#process.pid;
  }

  /** A plain client (remember to disconnect). */
  client(): Redis {
    return new Redis(this.url);
  }

  async stop(): Promise<void> {
    if (this.#process.exitCode === null && this.#process.signalCode === null) {
      const exited = once(this.#process, "exit");
      this.#process.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Waits until the Redis at `url` answers PING; the error carries `log()` (the server's output). */
export async function waitForRedis(url: string, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => {}); // refused while starting: expected
    try {
      await client.connect();
      if ((await client.ping()) === "PONG") return;
    } catch {
      // not yet
    } finally {
      client.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server did not start on ${url}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
