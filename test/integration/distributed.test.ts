/**
 * maxConcurrency across processes: several real `sfn-operator local` processes sharing one real
 * redis-server and one emulator, measured where it matters, at the target. Faults are real too:
 * SIGKILL of a poller, a restart of the redis-server process, SIGTERM to everyone.
 */
import fs from "node:fs/promises";
import { expect } from "chai";
import {
  EmulatorClient,
  type RunningEmulator,
  startEmulator,
  type TaskRecord,
} from "../../src/emulator/index.ts";
import { MIN_LEASE_TTL_MS } from "../../src/semaphore/redis/limits.ts";
import { awsEnvFor, CliProcess, writeTempFile } from "../support/cli.ts";
import { RedisServer } from "../support/redis.ts";
import { type TargetInstruction, TestTarget } from "../support/target-server.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LEASE_TTL_MS = MIN_LEASE_TTL_MS;

describe("distributed maxConcurrency (3 local-mode processes, real Redis)", function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let emulator: RunningEmulator;
  let client: EmulatorClient;
  let target: TestTarget;
  let processes: CliProcess[] = [];
  let sourcesFile: string;
  /** Target concurrency sampled every 10 ms: [time, inFlight]. */
  let samples: Array<[number, number]> = [];
  let sampler: NodeJS.Timeout | undefined;

  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.stop();
  });

  beforeEach(async () => {
    const flush = redis.client();
    await flush.flushall();
    flush.disconnect();
    emulator = await startEmulator({ port: 0, longPollSeconds: 1 });
    client = new EmulatorClient(emulator.url);
    target = await new TestTarget().start();
    samples = [];
    sampler = setInterval(() => samples.push([Date.now(), target.inFlight]), 10);
  });

  afterEach(async function () {
    clearInterval(sampler);
    const failed = this.currentTest?.state === "failed";
    for (const [index, cli] of processes.entries()) {
      await cli.stop();
      if (failed) console.log(`--- process ${index} ---\n${cli.tail(30)}`);
    }
    processes = [];
    await target.close();
    await emulator.close();
  });

  async function writeSources(maxConcurrency: number, concurrencyPerPoller: number): Promise<void> {
    const yaml = [
      `redis: ${redis.url}`,
      "sources:",
      "  - activityName: shared",
      `    target: ${target.url}`,
      "    path: /work",
      `    maxConcurrency: ${maxConcurrency}`,
      `    concurrencyPerPoller: ${concurrencyPerPoller}`,
      "",
    ].join("\n");
    if (sourcesFile) await fs.writeFile(sourcesFile, yaml);
    else sourcesFile = await writeTempFile("sources.yaml", yaml);
  }

  async function startProcesses(count: number): Promise<void> {
    const env = { ...awsEnvFor(emulator.url), SFN_REDIS_LEASE_TTL: `${LEASE_TTL_MS}ms` };
    processes = Array.from({ length: count }, () => new CliProcess(["local", "-f", sourcesFile], env));
    await Promise.all(processes.map((p) => p.waitForLog((r) => r.message === "polling")));
  }

  async function enqueue(input: TargetInstruction, count: number): Promise<string[]> {
    return (await client.enqueue({ activityName: "shared", input, count })).tasks.map((t) => t.taskId);
  }

  async function allClosed(ids: string[], timeoutMs: number): Promise<TaskRecord[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const tasks = (await client.listTasks()).filter((t) => ids.includes(t.taskId));
      if (tasks.every((t) => t.closedAt)) return tasks;
      if (Date.now() > deadline) {
        const open = tasks.filter((t) => !t.closedAt).length;
        throw new Error(`${open} of ${ids.length} tasks still open after ${timeoutMs} ms`);
      }
      await sleep(100);
    }
  }

  function peakBetween(from: number, to: number): number {
    return Math.max(0, ...samples.filter(([t]) => t >= from && t <= to).map(([, n]) => n));
  }

  it("never exceeds maxConcurrency across processes with loops well above it, and reaches it", async () => {
    sourcesFile = "";
    await writeSources(6, 4); // 8 loops per process, 24 in all, for 6 permits
    await startProcesses(3);
    const ids = await enqueue({ delayMs: 40 }, 300);
    const tasks = await allClosed(ids, 60_000);
    expect(tasks.every((t) => t.status === "SUCCEEDED")).to.equal(true);
    expect(target.requests).to.have.length(300);
    expect(target.peak).to.equal(6);
    const workers = new Set(tasks.map((t) => t.workerName));
    expect(workers.size, "every process took part").to.equal(3);
  });

  it("applies a changed maxConcurrency without a restart, within one task", async () => {
    sourcesFile = "";
    await writeSources(6, 2);
    await startProcesses(3);
    const ids = await enqueue({ delayMs: 300 }, 200);
    while (target.peak < 6) await sleep(20);
    const changedAt = Date.now();
    await writeSources(2, 2);
    // The file is checked every 500 ms; one 300 ms task later, the new limit holds.
    const settledAt = changedAt + 500 + 300 + 400;
    await sleep(settledAt - Date.now() + 2000);
    expect(peakBetween(settledAt, Date.now())).to.equal(2);
    await writeSources(6, 2);
    await allClosed(ids, 60_000);
    expect(target.peak).to.equal(6);
  });

  it("gives a SIGKILLed process's permits to the others within the lease TTL, keeping the limit", async () => {
    sourcesFile = "";
    await writeSources(4, 4);
    await startProcesses(3);
    const ids = await enqueue({ delayMs: 250 }, 150);
    // Wait until the victim holds permits, then kill it without warning.
    const victim = processes[0] as CliProcess;
    const victimWorker = `-${victim.child.pid}`;
    for (;;) {
      const running = (await client.listTasks({ status: "STARTED" })).filter((t) =>
        t.workerName?.endsWith(victimWorker),
      );
      if (running.length > 0) break;
      await sleep(20);
    }
    victim.child.kill("SIGKILL");
    await victim.exited;
    const killedAt = Date.now();
    // Its leases expire within the TTL; then the survivors run at the full limit again.
    await sleep(LEASE_TTL_MS + 1500);
    expect(peakBetween(killedAt + LEASE_TTL_MS + 300, Date.now())).to.equal(4);
    expect(target.peak).to.be.at.most(4);
    processes = processes.slice(1);
    const tasks = await client.listTasks();
    const stranded = tasks.filter((t) => t.status === "STARTED" && t.workerName?.endsWith(victimWorker));
    const others = ids.length - stranded.length;
    expect(others).to.be.greaterThan(100);
    const closed = await allClosed(
      tasks.filter((t) => !stranded.includes(t)).map((t) => t.taskId),
      60_000,
    );
    expect(closed.every((t) => t.status === "SUCCEEDED")).to.equal(true);
  });

  it("takes no task while Redis is down, never exceeds the limit, and resumes when it is back", async function () {
    if (!redis.restartable) this.skip();
    sourcesFile = "";
    await writeSources(4, 2);
    await startProcesses(3);
    const ids = await enqueue({ delayMs: 150 }, 250);
    while (target.requests.length < 40) await sleep(10);
    await redis.stopProcess("SIGKILL");
    const downAt = Date.now();
    await sleep(4000);
    const upAt = Date.now();
    await redis.startProcess();
    const tasks = await allClosed(ids, 60_000);
    // Tasks already taken when Redis died finish (150 ms); after that, nothing new starts.
    const startedWhileDown = target.requests.filter((r) => r.at > downAt + 500 && r.at < upAt);
    expect(startedWhileDown, "requests started while Redis was down").to.deep.equal([]);
    // Redis came back empty: no new permit for one lease TTL while running tasks re-register (none
    // run here: they finished while it was down), then work resumes.
    const startedInWindow = target.requests.filter((r) => r.at >= upAt && r.at < upAt + LEASE_TTL_MS - 200);
    expect(startedInWindow, "requests started in the data-loss window").to.deep.equal([]);
    const firstAfter = Math.min(...target.requests.filter((r) => r.at >= upAt).map((r) => r.at));
    expect(firstAfter - upAt, "work resumes within a few seconds of the window's end").to.be.below(
      LEASE_TTL_MS + 5000,
    );
    expect(target.peak).to.be.at.most(4);
    expect(
      tasks.every((t) => t.status === "SUCCEEDED"),
      "nothing lost",
    ).to.equal(true);
    expect(target.requests).to.have.length(250);
  });

  it("SIGTERM to every process during a burst: every task taken is reported", async () => {
    sourcesFile = "";
    await writeSources(6, 3);
    await startProcesses(3);
    await enqueue({ delayMs: 200 }, 400);
    while (target.requests.length < 50) await sleep(10);
    const results = await Promise.all(processes.map((p) => p.stop()));
    expect(results.map((r) => r.code)).to.deep.equal([0, 0, 0]);
    const tasks = await client.listTasks();
    expect(
      tasks.filter((t) => t.status === "STARTED"),
      "taken but never reported",
    ).to.deep.equal([]);
    const succeeded = tasks.filter((t) => t.status === "SUCCEEDED").length;
    expect(succeeded).to.equal(target.requests.length);
    expect(tasks.filter((t) => t.status === "SCHEDULED").length).to.equal(400 - succeeded);
    expect(target.peak).to.be.at.most(6);
  });
});
