/**
 * The bundle (dist/bundle, scripts/bundle.ts) keeps what it was made for: an idle poller, and the
 * commands' modules as they load, do not load Node's own fetch implementation (undici) or http2,
 * which nothing in them uses and which cost megabytes in every process (BENCHMARKS.md, "Memory").
 * Both came in through library details: the ES-module import of `node:http` reads its lazy
 * WebSocket getter, and the SDK's CommonJS build of its HTTP handler requires http2 on first use.
 * (axios, imported on a poller's first task, brings both: a working poller holds them, an idle one
 * does not. The operator's client-node uses the npm undici, which requires http2 as it loads.)
 * Which built-in modules a process loaded is Node's own record, `process.moduleLoadList`, written
 * at exit by a module preloaded with `--import`.
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { EmulatorClient, type RunningEmulator, startEmulator } from "../../src/emulator/index.ts";
import { awsEnvFor, CliProcess, REPO_ROOT } from "../support/cli.ts";
import { RedisServer } from "../support/redis.ts";
import { TestTarget } from "../support/target-server.ts";
import { until } from "../support/waiting.ts";

/** Node's fetch implementation, and http2. */
const NODE_FETCH = "internal/deps/undici/undici";
const UNWANTED = [NODE_FETCH, "http2"];

/** Preloaded into a process: writes the built-in modules it loaded to $LOADED_MODULES_FILE at exit. */
const RECORDER = `
import { writeFileSync } from "node:fs";
process.on("exit", () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice(13));
  writeFileSync(process.env.LOADED_MODULES_FILE, builtins.join("\\n"));
});
`;

describe("bundle: what the commands load", function () {
  this.timeout(60_000);
  let work: string;
  let recorder: string;

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-bundle-"));
    recorder = path.join(work, "record-modules.mjs");
    await fs.writeFile(recorder, RECORDER);
  });

  after(async () => {
    await fs.rm(work, { recursive: true, force: true });
  });

  /** NODE_OPTIONS that record the process's built-in modules into a new file, and that file. */
  async function recording(name: string): Promise<{ env: NodeJS.ProcessEnv; read: () => Promise<string[]> }> {
    const file = path.join(work, `${name}.txt`);
    return {
      env: { NODE_OPTIONS: `--import ${recorder}`, LOADED_MODULES_FILE: file },
      read: async () => (await fs.readFile(file, "utf8")).split("\n"),
    };
  }

  it("an idle poller that polled and stopped loaded neither undici nor http2", async () => {
    const redis = await RedisServer.start();
    const emulator: RunningEmulator = await startEmulator({ port: 0, longPollSeconds: 1 });
    const target = await new TestTarget().start();
    const record = await recording("poller");
    const cli = new CliProcess(["poller"], {
      ...awsEnvFor(emulator.url),
      ...record.env,
      SFN_ACTIVITY_NAME: "bundle-modules",
      SFN_TARGET_URL: target.url,
      SFN_TARGET_PATH: "/work",
      SFN_MAX_CONCURRENCY: "2",
      SFN_CONCURRENCY_PER_POLLER: "2",
      SFN_REDIS_URL: redis.url,
      SFN_METRICS_PORT: "0",
    });
    try {
      await cli.waitForLog((r) => r.message === "polling");
      // Long polls of 1 s: a few of them ended empty and started again.
      const client = new EmulatorClient(emulator.url);
      await until(
        async () => ((await client.stats()).requests.GetActivityTask ?? 0) >= 6,
        30_000,
        "six polls",
      );
      expect((await cli.stop()).code, cli.tail()).to.equal(0);
      const loaded = await record.read();
      // The recorder ran (its list holds what every poller loads) ...
      expect(loaded).to.include.members(["https", "net"]);
      // ... and the unwanted ones are not in it.
      expect(loaded.filter((m) => UNWANTED.includes(m))).to.deep.equal([]);
    } finally {
      await cli.stop();
      await target.close();
      await emulator.close();
      await redis.stop();
    }
  });

  const commands: Array<[string, string[]]> = [
    ["run-poller", UNWANTED],
    ["run-local", UNWANTED],
    ["run-operator", [NODE_FETCH]],
  ];
  for (const [command, unwanted] of commands) {
    it(`dist/bundle/${command}.js does not load ${unwanted.join(" or ")} when imported`, async () => {
      const record = await recording(command);
      const child = spawn(
        process.execPath,
        ["--input-type=module", "-e", `await import("./${command}.js");`],
        {
          cwd: path.join(REPO_ROOT, "dist/bundle"),
          env: { PATH: process.env.PATH, ...record.env },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(code, stderr).to.equal(0);
      const loaded = await record.read();
      expect(loaded).to.include("net");
      expect(loaded.filter((m) => unwanted.includes(m))).to.deep.equal([]);
    });
  }
});
