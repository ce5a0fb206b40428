/**
 * `sfn-operator poller` with SFN_LIMIT_FROM_REDIS=true, as the operator runs it: real poller
 * processes (bin/sfn-operator.js, built by `npm run build`), a real redis-server, the emulator and a
 * slow real target. The limit is changed in Redis (writeLimit, as the operator does) while they run;
 * what counts is measured at the target, and the figures they publish are compared with the tasks.
 */
import { expect } from "chai";
import type { Redis } from "ioredis";
import { EmulatorClient, type RunningEmulator, startEmulator } from "../../src/emulator/index.ts";
import { semaphoreKeys } from "../../src/semaphore/redis/keys.ts";
import { readSourceStats, writeLimit } from "../../src/semaphore/redis/source-state.ts";
import { awsEnvFor, CliProcess } from "../support/cli.ts";
import { freePort, RedisServer, serverRunId } from "../support/redis.ts";
import { type TargetInstruction, TestTarget } from "../support/target-server.ts";
import { until } from "../support/waiting.ts";

const NAME = "live-limit";
const ARN = `arn:aws:states:us-east-1:123456789012:activity:${NAME}`;

interface RunningPoller {
  cli: CliProcess;
  port: number;
}

describe("poller with SFN_LIMIT_FROM_REDIS (real processes, Redis, emulator, slow target)", function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let admin: Redis;
  let emulator: RunningEmulator;
  let client: EmulatorClient;
  let target: TestTarget;
  let pollers: RunningPoller[] = [];

  before(async () => {
    redis = await RedisServer.start();
    admin = redis.client();
  });

  after(async () => {
    admin.disconnect();
    await redis.stop();
  });

  beforeEach(async () => {
    await admin.flushall();
    // The semaphore already exists, recorded by this Redis process: a new one grants nothing for a
    // lease TTL (redis-semaphore.test.ts covers that window), which would only slow these tests.
    await admin.hset(semaphoreKeys(ARN).epoch, { since: 0, until: 0, run: await serverRunId(admin) });
    emulator = await startEmulator({ port: 0, longPollSeconds: 1 });
    client = new EmulatorClient(emulator.url);
    target = await new TestTarget().start();
    // The activity exists before the pollers ask for its tasks by ARN (as the operator creates it).
    expect(emulator.state.activities.create(NAME).arn).to.equal(ARN);
  });

  afterEach(async function () {
    const failed = this.currentTest?.state === "failed";
    for (const [index, { cli }] of pollers.entries()) {
      await cli.stop();
      if (failed) console.log(`--- poller ${index} ---\n${cli.tail(40)}`);
    }
    pollers = [];
    await target.close();
    await emulator.close();
  });

  async function startPoller(index: number, loops: number): Promise<RunningPoller> {
    const port = await freePort();
    const cli = new CliProcess(["poller"], {
      ...awsEnvFor(emulator.url),
      SFN_ACTIVITY_ARN: ARN,
      SFN_TARGET_URL: target.url,
      SFN_TARGET_PATH: "/work",
      SFN_CONCURRENCY_PER_POLLER: String(loops),
      SFN_REDIS_URL: redis.url,
      SFN_LIMIT_FROM_REDIS: "true",
      SFN_METRICS_PORT: String(port),
      SFN_WORKER_NAME: `poller-${index}`,
    });
    const poller = { cli, port };
    pollers.push(poller);
    return poller;
  }

  /** Both processes applied `limit` (they log each limit they read). */
  async function applied(limit: number): Promise<void> {
    await Promise.all(
      pollers.map(({ cli }) =>
        cli.waitForLog((r) => r.message === "concurrency limit from Redis" && r.maxConcurrency === limit),
      ),
    );
  }

  async function enqueue(count: number, input: (i: number) => TargetInstruction): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const { tasks } = await client.enqueue({ activityName: NAME, input: input(i) });
      ids.push(...tasks.map((task) => task.taskId));
    }
    return ids;
  }

  async function allClosed(ids: string[]): Promise<void> {
    await until(
      async () => {
        const tasks = await client.listTasks();
        return ids.every((id) => tasks.find((task) => task.taskId === id)?.closedAt !== undefined);
      },
      90_000,
      `${ids.length} tasks closed`,
      100,
    );
  }

  async function get(port: number, path: string): Promise<{ status: number; body: string }> {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: response.status, body: await response.text() };
  }

  function limitGauge(metrics: string): number | undefined {
    const match = /^sfn_operator_concurrency_limit\{source="live-limit"\} (\d+)$/m.exec(metrics);
    return match ? Number(match[1]) : undefined;
  }

  async function figures() {
    const stats = (await readSourceStats(admin, [ARN])).get(ARN);
    if (!stats) throw new Error("no figures");
    return stats;
  }

  it("follows a raised and a lowered limit without a restart, and its figures match the tasks", async () => {
    await writeLimit(admin, ARN, 2);
    // 8 loops in all: more than any limit below, so the limit is what bounds the target.
    await startPoller(0, 4);
    await startPoller(1, 4);
    const pids = pollers.map(({ cli }) => cli.child.pid);
    await applied(2);
    // Every tenth task fails (the target answers 500): figures by outcome.
    const slow = (i: number): TargetInstruction =>
      i % 10 === 9 ? { reply: "status", status: 500, delayMs: 150 } : { delayMs: 150 };
    const ids = await enqueue(60, slow);

    await until(() => target.requests.length >= 20, 60_000, "20 requests at limit 2");
    expect(target.peak, "limit 2, reached and never exceeded").to.equal(2);

    await writeLimit(admin, ARN, 6);
    await applied(6);
    target.resetCounters();
    ids.push(...(await enqueue(100, slow)));
    await until(() => target.peak === 6, 60_000, "the raised limit reached");
    const raisedAt = target.requests.length;
    await until(() => target.requests.length >= raisedAt + 30, 60_000, "30 more requests at limit 6");
    expect(target.peak, "limit 6 never exceeded").to.equal(6);

    await writeLimit(admin, ARN, 3);
    await applied(3);
    // Tasks taken under 6 finish; once Redis counts no more than 3 permits (polls included), every
    // new grant keeps it so.
    await until(async () => (await admin.zcard(semaphoreKeys(ARN).holders)) <= 3, 60_000, "drained to 3");
    target.resetCounters();
    const loweredAt = target.requests.length;
    await until(() => target.requests.length >= loweredAt + 30, 60_000, "30 requests at limit 3");
    await until(() => target.peak === 3, 60_000, "the lowered limit reached");
    expect(target.peak, "limit 3 never exceeded").to.equal(3);

    // The same processes all along.
    expect(pollers.map(({ cli }) => cli.child.pid)).to.deep.equal(pids);
    for (const { cli } of pollers) expect(cli.child.exitCode, "still running").to.equal(null);
    for (const { port } of pollers) expect(limitGauge((await get(port, "/metrics")).body)).to.equal(3);

    // Figures: what the emulator says happened to every task.
    await allClosed(ids);
    const tasks = (await client.listTasks()).filter((task) => ids.includes(task.taskId));
    const succeeded = tasks.filter((task) => task.status === "SUCCEEDED").length;
    const failed = tasks.filter((task) => task.status === "FAILED").length;
    expect(succeeded + failed).to.equal(160);
    expect(failed).to.equal(16);
    await until(
      async () => {
        const stats = await figures();
        return stats.succeeded === succeeded && stats.failed === failed && stats.inFlight === 0;
      },
      15_000,
      "figures matching the tasks",
      100,
    );
    const stats = await figures();
    expect(stats).to.deep.include({ inFlight: 0, succeeded, failed, limit: 3 });
    expect(stats.lastTaskTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // A clean stop takes each process's in-flight entry out.
    for (const { cli } of pollers) expect((await cli.stop()).code).to.equal(0);
    expect(await admin.exists(`{sfn-operator:${ARN}}:reporters`)).to.equal(0);
  });

  it("takes no task while Redis holds no limit, says so, and starts when the limit is written", async () => {
    const ids = await enqueue(10, () => ({ delayMs: 100 }));
    const { cli, port } = await startPoller(0, 3);
    await cli.waitForLog(
      (r) => r.level === "warn" && String(r.message).startsWith("no concurrency limit in Redis"),
    );
    await until(
      async () => (await get(port, "/readyz").catch(() => ({ status: 0, body: "" }))).status !== 0,
      10_000,
      "the probes",
    );
    const readyz = await get(port, "/readyz");
    expect(readyz.status).to.equal(503);
    expect(readyz.body).to.contain(
      `live-limit: no concurrency limit in Redis (key {sfn-operator:${ARN}}:limit is missing`,
    );
    expect(limitGauge((await get(port, "/metrics")).body)).to.equal(0);
    // Not a single poll: a poll could bring a task that no limit allows.
    expect((await client.stats()).requests.GetActivityTask ?? 0, "polls").to.equal(0);
    expect(target.requests).to.deep.equal([]);
    expect(cli.logs().filter((r) => String(r.message).startsWith("no concurrency limit"))).to.have.length(1);

    await writeLimit(admin, ARN, 2);
    await allClosed(ids);
    expect((await client.listTasks()).every((task) => task.status === "SUCCEEDED")).to.equal(true);
    expect(target.peak).to.equal(2);
    await until(async () => (await get(port, "/readyz")).status === 200, 10_000, "ready");
    expect(limitGauge((await get(port, "/metrics")).body)).to.equal(2);
    await until(async () => (await figures()).succeeded === 10, 10_000, "the figures");
  });
});
