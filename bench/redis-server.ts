/**
 * A throwaway redis-server for the benchmarks, on a free loopback port, without persistence.
 *
 * Copied (start and stop only) from test/support/redis.ts rather than imported: the build
 * (tsconfig.build.json) compiles src, bench and demo, and a test harness pulled into it would tie
 * the benchmark's build to test-only code. Keep the two in step when the way we run Redis changes.
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
    await server.#waitUntilUp();
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

  async #waitUntilUp(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = new Redis(this.url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on("error", () => {}); // refused while starting: expected
      try {
        await client.connect();
        if ((await client.ping()) === "PONG") return;
      } catch {
        // not yet
      } finally {
        client.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not start on ${this.url}:\n${this.#log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
