/**
 * The Redis semaphore on a real three-master Redis Cluster (test/support/redis-cluster.ts): several
 * processes (each its own `RedisConnection`, as pods would have) for activities whose keys live on
 * different masters, pub/sub wake-ups across nodes, the limit under contention, node restarts, and
 * the CLI configured with the cluster spelling.
 *
 * Why it exists: before cluster mode, the connection was a plain ioredis `Redis`, which does not
 * follow MOVED. Against this same cluster (commit 1aeb3c5) every script call for an activity whose
 * slot is not on the node in the URL failed with `MOVED <slot> <node>` for ever, while the
 * semaphore's health still said ready: those activities never got a permit.
 */
import { expect } from "chai";
import { EmulatorClient, type RunningEmulator, startEmulator } from "../../src/emulator/index.ts";
import { RedisConnection } from "../../src/semaphore/redis/connection.ts";
import { semaphoreKeys } from "../../src/semaphore/redis/keys.ts";
import { MIN_LEASE_TTL_MS } from "../../src/semaphore/redis/limits.ts";
import { RedisSemaphore } from "../../src/semaphore/redis/redis-semaphore.ts";
import type { Permit } from "../../src/semaphore/semaphore.ts";
import { awsEnvFor, CliProcess, writeTempFile } from "../support/cli.ts";
import { serverRunId } from "../support/redis.ts";
import { RedisClusterServer } from "../support/redis-cluster.ts";
import { TestTarget } from "../support/target-server.ts";
import { sleep, until } from "../support/waiting.ts";

const arnOf = (name: string) => `arn:aws:states:us-east-1:123456789012:activity:${name}`;

/** A promise's outcome, observable without awaiting it. */
function pending<T>(promise: Promise<T>): Promise<T> & { settled: boolean } {
  const tracked = promise.finally(() => {
    tracked.settled = true;
  }) as Promise<T> & { settled: boolean };
  tracked.settled = false;
  // Awaiting it still throws; a test that fails before awaiting it leaves no unhandled rejection.
  tracked.catch(() => {});
  return tracked;
}

describe("Redis Cluster (three real masters)", function () {
  this.timeout(120_000);
  let cluster: RedisClusterServer;
  /** Activity names whose semaphore keys live on three different masters, and those masters' ports. */
  const spread: Array<{ name: string; arn: string; port: number }> = [];
  const connections: RedisConnection[] = [];
  const semaphores: RedisSemaphore[] = [];
  const never = new AbortController().signal;
  let unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    cluster = await RedisClusterServer.start();
    process.on("unhandledRejection", onUnhandled);
    // Slots depend on the key only; which master serves them is the cluster's: ask it.
    for (let i = 0; spread.length < 3 && i < 100; i++) {
      const name = `cluster-${i}`;
      const port = await cluster.portOf(semaphoreKeys(arnOf(name)).holders);
      if (!spread.some((entry) => entry.port === port)) spread.push({ name, arn: arnOf(name), port });
    }
  });

  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    await cluster?.stop();
  });

  beforeEach(async () => {
    unhandled = [];
    await cluster.flushAll();
    // Semaphores already in use: a new one grants nothing for a lease TTL (its window, which
    // redis-semaphore.test.ts covers), recorded by the master serving it; here only a restart or a
    // failover opens one.
    for (const { arn, port } of spread) {
      const client = cluster.nodeClient(port);
      try {
        await client.hset(semaphoreKeys(arn).epoch, { since: 0, until: 0, run: await serverRunId(client) });
      } finally {
        client.disconnect();
      }
    }
  });

  afterEach(async function () {
    for (const semaphore of semaphores.splice(0)) await semaphore.close();
    for (const connection of connections.splice(0)) await connection.close();
    if (this.currentTest?.state === "failed") console.log(cluster.logs());
    expect(unhandled, "unhandled rejections").to.deep.equal([]);
  });

  /** A "process": its own cluster connections. */
  async function connect(name = "test", url = cluster.url): Promise<RedisConnection> {
    const connection = new RedisConnection({ url, connectionName: name });
    connections.push(connection);
    await until(() => connection.ready, 10_000, "the cluster connection");
    return connection;
  }

  function semaphoreOn(
    connection: RedisConnection,
    arn: string,
    options: Partial<ConstructorParameters<typeof RedisSemaphore>[0]> = {},
  ): RedisSemaphore {
    const semaphore = new RedisSemaphore({ connection, activityArn: arn, limit: 2, ...options });
    semaphores.push(semaphore);
    return semaphore;
  }

  /** Leases Redis holds for the activity, read from the master that serves its slot (not via redirects). */
  async function holdersOn(port: number, arn: string): Promise<number> {
    const client = cluster.nodeClient(port);
    try {
      return await client.zcard(semaphoreKeys(arn).holders);
    } finally {
      client.disconnect();
    }
  }

  /** Subscribers of `channel` on each master, by port (PUBSUB NUMSUB counts a node's own clients). */
  async function subscribers(channel: string): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    for (const port of cluster.ports) {
      const client = cluster.nodeClient(port);
      client.on("error", () => {});
      try {
        const [, count] = (await client.pubsub("NUMSUB", channel)) as [string, number];
        counts.set(port, Number(count));
      } catch {
        counts.set(port, 0); // a node that is down has no subscribers
      } finally {
        client.disconnect();
      }
    }
    return counts;
  }

  const total = (counts: Map<number, number>): number => [...counts.values()].reduce((a, b) => a + b, 0);

  /**
   * A process whose subscriber sits on another master than `port`, so that its wake-ups have to cross
   * the cluster bus. ioredis subscribes on a node picked at random among those it knows when it
   * connects, which is the seed node of the URL: seed it with another master, and check.
   */
  async function processSubscribedAwayFrom(
    port: number,
    arn: string,
    options: Partial<ConstructorParameters<typeof RedisSemaphore>[0]>,
  ): Promise<{ semaphore: RedisSemaphore; subscriberPort: number }> {
    const channel = semaphoreKeys(arn).released;
    for (let attempt = 0; attempt < 30; attempt++) {
      const before = await subscribers(channel);
      const seed = cluster.ports.find((p) => p !== port);
      const connection = await connect(`waiter-${attempt}`, `redis+cluster://127.0.0.1:${seed}`);
      const semaphore = semaphoreOn(connection, arn, options);
      let after = before;
      await until(
        async () => {
          after = await subscribers(channel);
          return total(after) > total(before);
        },
        5000,
        "the subscription",
      );
      const subscriberPort = cluster.ports.find((p) => (after.get(p) ?? 0) > (before.get(p) ?? 0));
      if (subscriberPort !== undefined && subscriberPort !== port) return { semaphore, subscriberPort };
      await semaphore.close();
      await connection.close();
      semaphores.splice(semaphores.indexOf(semaphore), 1);
      connections.splice(connections.indexOf(connection), 1);
    }
    throw new Error("no subscriber landed on another master in 30 attempts");
  }

  it("spreads the test activities over three different masters", () => {
    expect(spread.map((entry) => entry.port).toSorted()).to.deep.equal(cluster.ports.toSorted());
  });

  it("acquires up to the limit on every master, holds a further acquire, and wakes it on release through pub/sub across nodes", async () => {
    // Long re-check and lease TTL: a waiter that gets its permit within a fraction of a second was
    // woken by the release's message, not by a timer.
    const options = { limit: 2, recheckMs: 30_000, leaseTtlMs: 30_000 };
    for (const { arn, port } of spread) {
      const holder = semaphoreOn(await connect("holder"), arn, options);
      const { semaphore: waiter, subscriberPort } = await processSubscribedAwayFrom(port, arn, options);
      const permits = [await holder.acquire(never), await holder.acquire(never)];
      expect(await holdersOn(port, arn), `leases on master ${port}`).to.equal(2);
      const waiting = pending(waiter.acquire(never));
      await sleep(500);
      expect(waiting.settled, "a third acquire waits while the limit is reached").to.equal(false);
      expect(await holdersOn(port, arn)).to.equal(2);

      const released = performance.now();
      await permits[0]?.release();
      const permit = await waiting;
      const wakeMs = performance.now() - released;
      expect(wakeMs, `woken across nodes (keys on ${port}, subscriber on ${subscriberPort})`).to.be.below(
        1000,
      );
      expect(await holdersOn(port, arn)).to.equal(2);
      await permit.release();
      await permits[1]?.release();
      await until(async () => (await holdersOn(port, arn)) === 0, 5000, "the leases to go back");
    }
  });

  it("keeps every activity's limit under contention from several processes", async () => {
    const limit = 3;
    const processes = await Promise.all([connect("p1"), connect("p2"), connect("p3")]);
    const results = await Promise.all(
      spread.map(async ({ arn, port }) => {
        let inUse = 0;
        let peak = 0;
        let cycles = 0;
        let redisPeak = 0;
        const sampler = setInterval(() => {
          holdersOn(port, arn).then(
            (count) => {
              redisPeak = Math.max(redisPeak, count);
            },
            () => {}, // a sample lost to the end of the test
          );
        }, 100);
        const worker = async (semaphore: RedisSemaphore) => {
          for (let i = 0; i < 10; i++) {
            const permit: Permit = await semaphore.acquire(never);
            inUse += 1;
            peak = Math.max(peak, inUse);
            await sleep(5 + Math.random() * 15);
            inUse -= 1;
            cycles += 1;
            await permit.release();
          }
        };
        const activity = processes.map((connection) => semaphoreOn(connection, arn, { limit }));
        await Promise.all(
          activity.flatMap((semaphore) => Array.from({ length: 4 }, () => worker(semaphore))),
        );
        clearInterval(sampler);
        return { port, cycles, peak, redisPeak };
      }),
    );
    for (const { port, cycles, peak, redisPeak } of results) {
      expect(cycles, `master ${port}`).to.equal(120);
      expect(peak, `holders at once, master ${port}`).to.equal(limit);
      expect(redisPeak, `leases in Redis, master ${port}`).to.be.at.most(limit);
    }
  });

  it("re-subscribes after the subscriber's node restarts, and is woken by messages again", async () => {
    const options = { limit: 1, recheckMs: 30_000, leaseTtlMs: 30_000 };
    const { arn, port } = spread[0] as (typeof spread)[number];
    const holder = semaphoreOn(await connect("holder"), arn, options);
    const { semaphore: waiter, subscriberPort } = await processSubscribedAwayFrom(port, arn, options);
    const channel = semaphoreKeys(arn).released;
    const subscribersBefore = total(await subscribers(channel));

    // Restart the waiter's subscriber node quickly (within the cluster's node timeout), so that the
    // cluster stays up and only the subscription has to move.
    await cluster.stopNode(subscriberPort);
    await cluster.startNode(subscriberPort);
    await cluster.waitUntilOk();
    await until(
      async () => total(await subscribers(channel)) >= subscribersBefore,
      15_000,
      "the waiter to subscribe again",
    );
    // A command connection that happened to use that node (ioredis's ready check picks one at random)
    // went down and came back; let it settle so that its reconnect does not slow the wake-up below.
    await until(() => connections.every((connection) => connection.ready), 15_000, "the connections");
    await sleep(2100);

    const first = await holder.acquire(never);
    const waiting = pending(waiter.acquire(never));
    await sleep(500);
    expect(waiting.settled).to.equal(false);
    const released = performance.now();
    await first.release();
    const permit = await waiting;
    expect(performance.now() - released, "woken by the message after the restart").to.be.below(1000);
    await permit.release();
  });

  it("fails closed while a master is down and keeps the limit when it comes back empty", async () => {
    // The master that holds the leases crashes and restarts without its data (no persistence, no
    // replica). The holder re-registers its running tasks' leases on reconnect, and the master, which
    // finds the semaphore's epoch gone with its data, grants nothing new for a lease TTL meanwhile, so
    // the waiter does not take a permit the restart seemed to free.
    const options = { limit: 2, leaseTtlMs: MIN_LEASE_TTL_MS, recheckMs: 200 };
    const { arn, port } = spread[1] as (typeof spread)[number];
    const holderConnection = await connect("holder");
    const waiterConnection = await connect("waiter");
    const holder = semaphoreOn(holderConnection, arn, options);
    const waiter = semaphoreOn(waiterConnection, arn, options);
    const permits = [await holder.acquire(never), await holder.acquire(never)];
    const waiting = pending(waiter.acquire(never));
    await sleep(300);
    expect(waiting.settled).to.equal(false);

    await cluster.stopNode(port);
    await until(() => !holderConnection.ready && !waiterConnection.ready, 10_000, "both to fail closed");
    expect(holder.health().ready).to.equal(false);
    expect(holderConnection.problem).to.match(/Redis unreachable/);
    await cluster.startNode(port);
    const restarted = cluster.nodeClient(port);
    try {
      // DBSIZE answers while the node still reports the cluster down (key commands do not).
      expect(await restarted.dbsize(), "the restarted master is empty").to.equal(0);
    } finally {
      restarted.disconnect();
    }
    await cluster.waitUntilOk();
    await until(() => holderConnection.ready && waiterConnection.ready, 15_000, "both to reconnect");
    await until(async () => (await holdersOn(port, arn)) === 2, 3000, "the holder to re-register its leases");
    // Past the window the restart opened: from then on only the re-registered leases hold the waiter back.
    await sleep(MIN_LEASE_TTL_MS + 1000);
    expect(waiting.settled, "the waiter must not take a permit the restart seemed to free").to.equal(false);
    expect(await holdersOn(port, arn)).to.equal(2);

    await permits[0]?.release();
    const permit = await waiting;
    expect(await holdersOn(port, arn)).to.equal(2);
    await permit.release();
    await permits[1]?.release();
  });

  it("fails closed, saying why, while no node of the cluster can be reached", async () => {
    const connection = new RedisConnection({ url: "redis+cluster://127.0.0.1:1" });
    connections.push(connection);
    const semaphore = semaphoreOn(connection, spread[0]?.arn ?? "", { limit: 1 });
    const outcome = await semaphore.acquire(AbortSignal.timeout(1500)).then(
      () => "granted",
      (error: unknown) => String(error),
    );
    expect(outcome).to.match(/AbortError/);
    expect(connection.ready).to.equal(false);
    expect(semaphore.health()).to.deep.include({ ready: false });
    expect(connection.problem).to.match(/^Redis unreachable: ClusterAllFailedError/);
  });

  describe("the CLI in cluster mode", () => {
    let emulator: RunningEmulator;
    const targets: TestTarget[] = [];
    const clis: CliProcess[] = [];

    before(async () => {
      emulator = await startEmulator({ port: 0, longPollSeconds: 1 });
    });
    after(async () => {
      await emulator?.close();
    });
    afterEach(async function () {
      for (const [index, cli] of clis.splice(0).entries()) {
        await cli.stop();
        if (this.currentTest?.state === "failed") console.log(`--- process ${index} ---\n${cli.tail(40)}`);
      }
      for (const target of targets.splice(0)) await target.close();
    });

    it("two local-mode processes connect, report ready, and keep each activity's limit on its own master", async () => {
      const client = new EmulatorClient(emulator.url);
      const used = spread.slice(0, 2);
      for (const _ of used) targets.push(await new TestTarget().start());
      // Two loops per process, so four loops per activity compete for two permits.
      const yaml = [
        `redis: ${cluster.url}`,
        "sources:",
        ...used.flatMap(({ name }, index) => [
          `  - activityName: ${name}`,
          `    target: ${targets[index]?.url}`,
          "    path: /work",
          "    maxConcurrency: 2",
          "    concurrencyPerPoller: 1",
        ]),
      ].join("\n");
      const file = await writeTempFile("sources.yaml", `${yaml}\n`);
      for (let i = 0; i < 2; i++) {
        const cli = new CliProcess(["local", "-f", file, "--metrics-port", "0"], awsEnvFor(emulator.url));
        clis.push(cli);
        await cli.waitForLog((r) => r.message === "connected to Redis" && r.cluster === true);
        await cli.waitForLog((r) => r.message === "polling");
        const metricsLine = cli.logs().find((r) => r.message === "serving /metrics, /healthz and /readyz");
        const readyz = await fetch(`http://127.0.0.1:${String(metricsLine?.port)}/readyz`);
        expect(readyz.status, await readyz.text()).to.equal(200);
        expect(cli.output).not.to.match(/MOVED/);
      }
      const ids = await Promise.all(
        used.map(async ({ name }) => {
          const result = await client.enqueue({
            activityName: name,
            input: { reply: "json", delayMs: 150 },
            count: 16,
          });
          return result.tasks.map((task) => task.taskId);
        }),
      );
      for (const id of ids.flat()) {
        await until(async () => (await client.getTask(id)).closedAt !== undefined, 30_000, `task ${id}`);
        expect((await client.getTask(id)).status).to.equal("SUCCEEDED");
      }
      for (const [index, target] of targets.entries()) {
        expect(target.peak, `peak concurrency at ${used[index]?.name}'s target`).to.equal(2);
      }
    });

    it("the poller with SFN_REDIS_CLUSTER=true and a redis:// URL connects, reports ready and serves tasks", async () => {
      const client = new EmulatorClient(emulator.url);
      const { name } = spread[2] as (typeof spread)[number];
      const target = await new TestTarget().start();
      targets.push(target);
      const cli = new CliProcess(["poller"], {
        ...awsEnvFor(emulator.url),
        SFN_ACTIVITY_NAME: name,
        SFN_TARGET_URL: target.url,
        SFN_TARGET_PATH: "/work",
        SFN_MAX_CONCURRENCY: "2",
        SFN_CONCURRENCY_PER_POLLER: "2",
        SFN_REDIS_URL: cluster.nodeUrl,
        SFN_REDIS_CLUSTER: "true",
        SFN_METRICS_PORT: "0",
      });
      clis.push(cli);
      await cli.waitForLog((r) => r.message === "connected to Redis" && r.cluster === true);
      await cli.waitForLog((r) => r.message === "polling");
      const metricsLine = cli.logs().find((r) => r.message === "serving /metrics, /healthz and /readyz");
      const readyz = await fetch(`http://127.0.0.1:${String(metricsLine?.port)}/readyz`);
      expect(readyz.status, await readyz.text()).to.equal(200);
      const { tasks } = await client.enqueue({ activityName: name, input: { reply: "json" }, count: 4 });
      for (const { taskId } of tasks) {
        await until(
          async () => (await client.getTask(taskId)).closedAt !== undefined,
          30_000,
          `task ${taskId}`,
        );
        expect((await client.getTask(taskId)).status).to.equal("SUCCEEDED");
      }
      expect(cli.output).not.to.match(/MOVED/);
    });

    it("refuses a cluster URL combined with Sentinels, listing every problem, exit 2", async () => {
      const file = await writeTempFile(
        "sources.yaml",
        `redis: ${cluster.url}/3\nsources:\n  - activityName: x\n    target: http://127.0.0.1:1\n    path: /x\n`,
      );
      const cli = new CliProcess(["local", "-f", file], {
        ...awsEnvFor(emulator.url),
        SFN_REDIS_SENTINELS: "127.0.0.1:26379",
        SFN_REDIS_LEASE_TTL: "1s",
      });
      clis.push(cli);
      const { code } = await cli.exited;
      expect(code).to.equal(2);
      expect(cli.output).to.contain("invalid configuration");
      expect(cli.output).to.contain(
        `${file}: redis: must not select a database with Redis Cluster (a cluster has only database 0), got "3"`,
      );
      expect(cli.output).to.contain("SFN_REDIS_SENTINELS: cannot be used with Redis Cluster");
    });
  });
});

describe("Redis Cluster over TLS, with a password (rediss+cluster://)", function () {
  this.timeout(120_000);
  const PASSWORD = "cluster-s3cret";
  let cluster: RedisClusterServer;
  let emulator: RunningEmulator;
  let target: TestTarget;
  let cli: CliProcess | undefined;

  before(async () => {
    cluster = await RedisClusterServer.start({ tls: true, password: PASSWORD });
    emulator = await startEmulator({ port: 0, longPollSeconds: 1 });
    target = await new TestTarget().start();
  });
  after(async () => {
    await cli?.stop();
    await target?.close();
    await emulator?.close();
    await cluster?.stop();
  });

  it("local mode connects through the seed's host name, reaches the other masters with TLS and the password, and never logs it", async () => {
    // An activity whose keys are not on the seed node: its scripts run on a discovered node.
    const seedPort = cluster.ports[0] as number;
    let name = "";
    for (let i = 0; i < 100 && name === ""; i++) {
      const candidate = `tls-${i}`;
      if ((await cluster.portOf(semaphoreKeys(arnOf(candidate)).holders)) !== seedPort) name = candidate;
    }
    // The seed by host name: with TLS the name is kept (dnsLookup), and the certificate names it.
    const file = await writeTempFile(
      "sources.yaml",
      [
        `redis: rediss+cluster://localhost:${seedPort}`,
        "sources:",
        `  - activityName: ${name}`,
        `    target: ${target.url}`,
        "    path: /work",
        "    maxConcurrency: 2",
        "    concurrencyPerPoller: 2",
        "",
      ].join("\n"),
    );
    cli = new CliProcess(["local", "-f", file, "--metrics-port", "0"], {
      ...awsEnvFor(emulator.url),
      SFN_REDIS_PASSWORD: PASSWORD,
      NODE_EXTRA_CA_CERTS: cluster.caFile,
    });
    await cli.waitForLog((r) => r.message === "connected to Redis" && r.cluster === true, 30_000);
    await cli.waitForLog((r) => r.message === "polling");
    const metricsLine = cli.logs().find((r) => r.message === "serving /metrics, /healthz and /readyz");
    const readyz = await fetch(`http://127.0.0.1:${String(metricsLine?.port)}/readyz`);
    expect(readyz.status, await readyz.text()).to.equal(200);
    // The subscriber connection (ioredis opens it apart from the node connections) also got TLS and
    // the password: the release channel has a subscriber on some node.
    const channel = semaphoreKeys(arnOf(name)).released;
    await until(
      async () => {
        for (const port of cluster.ports) {
          const node = cluster.nodeClient(port);
          try {
            const [, count] = (await node.pubsub("NUMSUB", channel)) as [string, number];
            if (Number(count) > 0) return true;
          } finally {
            node.disconnect();
          }
        }
        return false;
      },
      10_000,
      "the subscription over TLS",
    );

    const client = new EmulatorClient(emulator.url);
    const { tasks } = await client.enqueue({ activityName: name, input: { reply: "json" }, count: 4 });
    for (const { taskId } of tasks) {
      await until(
        async () => (await client.getTask(taskId)).closedAt !== undefined,
        30_000,
        `task ${taskId}`,
      );
      expect((await client.getTask(taskId)).status).to.equal("SUCCEEDED");
    }
    expect(cli.output).not.to.contain(PASSWORD);
  });
});

describe("Redis Cluster with replicas: a master fails over", function () {
  this.timeout(120_000);
  let cluster: RedisClusterServer;
  const connections: RedisConnection[] = [];
  const semaphores: RedisSemaphore[] = [];
  const never = new AbortController().signal;

  before(async () => {
    cluster = await RedisClusterServer.start({ replicas: 1 });
  });
  after(async () => {
    for (const semaphore of semaphores.splice(0)) await semaphore.close();
    for (const connection of connections.splice(0)) await connection.close();
    await cluster?.stop();
  });

  it("fails closed while the master is lost, then follows the promoted replica and keeps the limit", async () => {
    const arn = arnOf("failover");
    const keys = semaphoreKeys(arn);
    const master = await cluster.portOf(keys.holders);
    // Seeded with another node, so that the lost master is not the only address the clients know.
    const seed = cluster.ports.find((port) => port !== master);
    const options = { limit: 2, leaseTtlMs: MIN_LEASE_TTL_MS, recheckMs: 200 };
    const open = async (name: string) => {
      const connection = new RedisConnection({
        url: `redis+cluster://127.0.0.1:${seed}`,
        connectionName: name,
      });
      connections.push(connection);
      await until(() => connection.ready, 10_000, `${name} to connect`);
      const semaphore = new RedisSemaphore({ connection, activityArn: arn, ...options });
      semaphores.push(semaphore);
      return { connection, semaphore };
    };
    const holder = await open("holder");
    const waiter = await open("waiter");
    const permits = [await holder.semaphore.acquire(never), await holder.semaphore.acquire(never)];
    const waiting = pending(waiter.semaphore.acquire(never));
    await sleep(300);
    expect(waiting.settled).to.equal(false);
    const epochOn = async (port: number) => {
      const client = cluster.nodeClient(port);
      try {
        return { epoch: await client.hgetall(keys.epoch), runId: await serverRunId(client) };
      } finally {
        client.disconnect();
      }
    };
    const before = await epochOn(master);
    expect(before.epoch.run, "the epoch records the master").to.equal(before.runId);

    await cluster.stopNode(master);
    await until(() => !holder.connection.ready && !waiter.connection.ready, 10_000, "both to fail closed");
    await until(
      async () => (await cluster.portOf(keys.holders)) !== master,
      30_000,
      "the replica to be promoted",
    );
    const promoted = await cluster.portOf(keys.holders);
    await until(
      () => holder.connection.ready && waiter.connection.ready,
      30_000,
      "both to follow the failover",
    );
    const countOnPromoted = async () => {
      const client = cluster.nodeClient(promoted);
      try {
        return await client.zcard(keys.holders);
      } finally {
        client.disconnect();
      }
    };
    await until(async () => (await countOnPromoted()) === 2, 5000, "the holder's leases on the new master");
    // The replica had the epoch, written by the old master: the first script that runs on it (the
    // holder's re-registration or the waiter's re-check, each within seconds; the replicated leases
    // above may be counted before either) opens a window of its own, since it cannot know which
    // leases it missed (replication lag) or which expired during the failover.
    let after = await epochOn(promoted);
    await until(
      async () => {
        after = await epochOn(promoted);
        return after.epoch.run === after.runId;
      },
      5000,
      "a script on the promoted replica to record it in the epoch",
    );
    expect(after.epoch.run, "the epoch records the promoted replica").to.equal(after.runId);
    expect(Number(after.epoch.since), "a window opened after the failover").to.be.above(
      Number(before.epoch.until),
    );
    expect(Number(after.epoch.until) - Number(after.epoch.since)).to.equal(MIN_LEASE_TTL_MS);
    // Past the window the restart opened: from then on only the re-registered leases hold the waiter back.
    await sleep(MIN_LEASE_TTL_MS + 1000);
    expect(waiting.settled, "no permit beyond the limit after the failover").to.equal(false);

    const released = performance.now();
    await permits[0]?.release();
    const permit = await waiting;
    expect(performance.now() - released, "woken on the new master").to.be.below(1000);
    expect(await countOnPromoted()).to.equal(2);
    await permit.release();
    await permits[1]?.release();
  });
});
