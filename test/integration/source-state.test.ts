/**
 * The live limit and the task figures in Redis (src/semaphore/redis/source-state.ts) against a real
 * redis-server, and against a real three-master Redis Cluster. Each `RedisConnection` stands for one
 * process, as pods would be.
 */
import { expect } from "chai";
import type { Cluster, Redis } from "ioredis";
import type { TaskOutcomeLabel } from "../../src/observability/metrics.ts";
import { LimitGate } from "../../src/semaphore/limit-gate.ts";
import { RedisConnection } from "../../src/semaphore/redis/connection.ts";
import { allActivityKeys, semaphoreKeys, sourceStateKeys } from "../../src/semaphore/redis/keys.ts";
import { MIN_LEASE_TTL_MS } from "../../src/semaphore/redis/limits.ts";
import { RedisSemaphore } from "../../src/semaphore/redis/redis-semaphore.ts";
import {
  clusterKeySlot,
  deleteSourceState,
  LimitFollower,
  readSourceStats,
  STATS_COMMANDS_PER_ACTIVITY,
  TaskFiguresRecorder,
  writeLimit,
} from "../../src/semaphore/redis/source-state.ts";
import type { Permit } from "../../src/semaphore/semaphore.ts";
import { withLogs } from "../support/logs.ts";
import { RedisServer, serverRunId } from "../support/redis.ts";
import { RedisClusterServer } from "../support/redis-cluster.ts";
import { until } from "../support/waiting.ts";

const arnOf = (name: string): string => `arn:aws:states:us-east-1:123456789012:activity:${name}`;
const ARN = arnOf("source-state-test");
/** Long enough never to fire during a test: only messages and reconnects make the follower read. */
const NEVER_MS = 3_600_000;

/** Calls of each command Redis served (INFO commandstats), e.g. `{ get: 3, evalsha: 1 }`. */
async function commandCalls(client: Pick<Redis, "info">): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const match of (await client.info("commandstats")).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[match[1] as string] = Number(match[2]);
  }
  return calls;
}

/** Every key of the server (SCAN), sorted. */
async function allKeys(client: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await client.scan(cursor, "COUNT", 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return keys.sort();
}

/** What a follower told its poller: limits as numbers, "no limit" as the reason. */
type FollowerEvent = number | string;

describe("source state in Redis: live limit and task figures (real redis-server)", function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let admin: Redis;
  const connections: RedisConnection[] = [];
  const followers: LimitFollower[] = [];
  const recorders: TaskFiguresRecorder[] = [];
  const closers: Array<() => Promise<void>> = [];
  let unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    redis = await RedisServer.start();
    admin = redis.client();
    process.on("unhandledRejection", onUnhandled);
  });

  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    admin.disconnect();
    await redis.stop();
  });

  beforeEach(async () => {
    unhandled = [];
    await admin.flushall();
  });

  afterEach(async () => {
    for (const follower of followers.splice(0)) follower.close();
    for (const recorder of recorders.splice(0)) await recorder.close();
    for (const close of closers.splice(0)) await close();
    for (const connection of connections.splice(0)) await connection.close();
    expect(unhandled, "unhandled rejections").to.deep.equal([]);
  });

  async function connect(name = "test"): Promise<RedisConnection> {
    const connection = new RedisConnection({ url: redis.url, connectionName: name });
    connections.push(connection);
    await until(() => connection.ready, 5000, "Redis connection");
    return connection;
  }

  function follow(
    connection: RedisConnection,
    refreshMs = NEVER_MS,
    arn = ARN,
  ): { follower: LimitFollower; events: FollowerEvent[] } {
    const events: FollowerEvent[] = [];
    const follower = new LimitFollower({
      connection,
      activityArn: arn,
      refreshMs,
      onLimit: (limit) => events.push(limit),
      onNoLimit: (reason) => events.push(reason),
    });
    followers.push(follower);
    follower.start();
    return { follower, events };
  }

  function record(
    connection: RedisConnection,
    inFlight: () => number,
    options: { reportIntervalMs?: number; reportTtlMs?: number; arn?: string } = {},
  ): TaskFiguresRecorder {
    const recorder = new TaskFiguresRecorder({
      connection,
      activityArn: options.arn ?? ARN,
      reporterName: "pod",
      inFlight,
      reportIntervalMs: options.reportIntervalMs ?? NEVER_MS,
      ...(options.reportTtlMs ? { reportTtlMs: options.reportTtlMs } : {}),
    });
    recorders.push(recorder);
    recorder.start();
    return recorder;
  }

  async function statsOf(arn = ARN) {
    const stats = (await readSourceStats(admin, [arn])).get(arn);
    if (!stats) throw new Error(`no stats for ${arn}`);
    return stats;
  }

  describe("the limit", () => {
    it("writeLimit sets the key without a TTL and announces each change once", async () => {
      const keys = sourceStateKeys(ARN);
      const listener = redis.client();
      const messages: string[] = [];
      listener.on("message", (_channel: string, message: string) => messages.push(message));
      await listener.subscribe(keys.limitChanged);
      try {
        expect(await writeLimit(admin, ARN, 3)).to.equal(true);
        expect(await writeLimit(admin, ARN, 3), "unchanged").to.equal(false);
        expect(await writeLimit(admin, ARN, 5)).to.equal(true);
        await until(() => messages.length === 2, 5000, "two messages");
        expect(messages).to.deep.equal(["3", "5"]);
        expect(await admin.get(keys.limit)).to.equal("5");
        expect(await admin.pttl(keys.limit), "no TTL").to.equal(-1);
      } finally {
        listener.disconnect();
      }
      for (const bad of [0, -1, 1.5, Number.NaN]) {
        let error: unknown;
        try {
          await writeLimit(admin, ARN, bad);
        } catch (caught) {
          error = caught;
        }
        expect(error, String(bad)).to.be.instanceOf(RangeError);
      }
      expect(await admin.get(keys.limit)).to.equal("5");
    });

    it("a follower learns a changed limit through pub/sub at once", async () => {
      await writeLimit(admin, ARN, 4);
      const { follower, events } = follow(await connect());
      await until(() => follower.limit === 4, 5000, "the first read");
      // No periodic read runs during this test: only the message can bring the change.
      await writeLimit(admin, ARN, 2);
      await until(() => follower.limit === 2, 5000, "the lowered limit");
      await writeLimit(admin, ARN, 9);
      await until(() => follower.limit === 9, 5000, "the raised limit");
      expect(events).to.deep.equal([4, 2, 9]);
    });

    it("a follower learns a change whose message it missed from its periodic read", async () => {
      await writeLimit(admin, ARN, 4);
      const { follower, events } = follow(await connect(), 200);
      await until(() => follower.limit === 4, 5000, "the first read");
      // Written without the announcement: as if the message had been lost.
      await admin.set(sourceStateKeys(ARN).limit, "7");
      await until(() => follower.limit === 7, 5000, "the periodic read");
      expect(events).to.deep.equal([4, 7]);
    });

    it("a follower holds no limit while disconnected, and reads the key again when it is back", async () => {
      await writeLimit(admin, ARN, 4);
      const connection = await connect("follower-process");
      const { follower, events } = follow(connection);
      await until(() => follower.limit === 4, 5000, "the first read");
      // Changed while the follower cannot hear it (no message): only the read after the reconnect
      // can bring it, since the periodic read never runs here.
      await admin.set(sourceStateKeys(ARN).limit, "6");
      const clients = (await admin.client("LIST")) as string;
      const ids = [...clients.matchAll(/^id=(\d+) .*name=follower-process /gm)].map((m) => m[1] as string);
      expect(ids, "the follower's connections").to.have.length(2);
      for (const id of ids) await admin.client("KILL", "ID", id);
      await until(() => follower.limit === 6, 10_000, "the read after the reconnect");
      expect(events[0]).to.equal(4);
      expect(events[1], "no limit while disconnected")
        .to.be.a("string")
        .that.matches(/Redis unreachable/);
      expect(events.at(-1)).to.equal(6);
      expect(events.filter((event) => typeof event === "number")).to.deep.equal([4, 6]);
    });

    it("takes no permit while the key is missing, says so once, and resumes when it appears", async () => {
      // The semaphore already exists, recorded by this Redis process (a new one waits one TTL).
      await admin.hset(semaphoreKeys(ARN).epoch, { since: 0, until: 0, run: await serverRunId(admin) });
      await withLogs(async (records) => {
        const connection = await connect();
        const created: number[] = [];
        const gate = new LimitGate((limit) => {
          created.push(limit);
          return new RedisSemaphore({ connection, activityArn: ARN, limit, leaseTtlMs: MIN_LEASE_TTL_MS });
        }, "reading the limit");
        closers.push(() => gate.close());
        const follower = new LimitFollower({
          connection,
          activityArn: ARN,
          refreshMs: 100, // many reads while the key is missing: still one warning
          onLimit: (limit) => gate.setLimit(limit),
          onNoLimit: (reason) => gate.withhold(reason),
        });
        followers.push(follower);
        follower.start();
        const stop = new AbortController();
        const permits: Permit[] = [];
        const acquiring = [gate.acquire(stop.signal), gate.acquire(stop.signal)].map((p) =>
          p.then((permit) => permits.push(permit)),
        );
        await until(() => (follower.problem ?? "").startsWith("no concurrency limit"), 5000, "the read");
        expect(gate.health()).to.deep.include({ ready: false });
        expect(gate.health().reason).to.match(/no concurrency limit in Redis .*missing/);
        expect(gate.limit).to.equal(0);
        // Several more reads find it missing; nothing is granted, nothing is created.
        const reads = (await commandCalls(admin)).get ?? 0;
        await until(async () => ((await commandCalls(admin)).get ?? 0) >= reads + 5, 5000, "five more reads");
        expect(permits, "permits while no limit is known").to.deep.equal([]);
        expect(created, "no semaphore without a limit").to.deep.equal([]);
        expect(await admin.zcard(semaphoreKeys(ARN).holders)).to.equal(0);
        const warnings = records.filter(
          (r) => r.level === "warn" && String(r.message).includes("no concurrency"),
        );
        expect(warnings, "warned once").to.have.length(1);

        await writeLimit(admin, ARN, 1);
        await until(() => permits.length === 1, 5000, "a permit under the limit");
        expect(created).to.deep.equal([1]);
        expect(gate.health()).to.deep.equal({ ready: true });
        expect(gate.waiting(), "the other loop waits under the limit").to.equal(1);
        await writeLimit(admin, ARN, 2);
        await Promise.all(acquiring);
        expect(created, "one semaphore, whose limit follows").to.deep.equal([1]);

        // The key goes again (Redis lost it, or the source was deleted): no new permit.
        for (const permit of permits.splice(0)) await permit.release();
        await admin.del(sourceStateKeys(ARN).limit);
        await until(() => gate.limit === 0, 5000, "the key's loss noticed");
        const next = gate.acquire(stop.signal).then((permit) => permits.push(permit));
        const readsNow = (await commandCalls(admin)).get ?? 0;
        await until(async () => ((await commandCalls(admin)).get ?? 0) >= readsNow + 5, 5000, "more reads");
        expect(permits).to.deep.equal([]);
        await writeLimit(admin, ARN, 2);
        await next;
        expect(permits).to.have.length(1);
        expect(
          records.filter((r) => r.message === "concurrency limit from Redis").map((r) => r.maxConcurrency),
        ).to.deep.equal([1, 2, 2]);
        for (const permit of permits.splice(0)) await permit.release();
        stop.abort();
      });
    });

    it("an invalid value counts as no limit", async () => {
      await admin.set(sourceStateKeys(ARN).limit, "ten");
      const { follower, events } = follow(await connect(), 100);
      await until(() => events.length > 0, 5000, "the first read");
      expect(follower.limit).to.equal(undefined);
      expect(follower.problem).to.match(/invalid concurrency limit in Redis .*"ten"/);
      await admin.set(sourceStateKeys(ARN).limit, "0");
      await until(() => (follower.problem ?? "").includes('"0"'), 5000, "the next read");
      await writeLimit(admin, ARN, 3);
      await until(() => follower.limit === 3, 5000, "a valid limit");
    });
  });

  describe("task figures", () => {
    function end(recorder: TaskFiguresRecorder, outcome: TaskOutcomeLabel, times: number): void {
      for (let i = 0; i < times; i++) recorder.taskEnded(outcome);
    }

    it("totals and tasks in flight add up across processes, with the time of the last task", async () => {
      const a = record(await connect("a"), () => 2);
      const b = record(await connect("b"), () => 3);
      await until(async () => (await statsOf()).inFlight === 5, 5000, "both reports");
      expect(await statsOf()).to.deep.equal({ inFlight: 5, succeeded: 0, failed: 0 });
      const before = Date.now();
      end(a, "succeeded", 5);
      end(a, "failed", 2);
      end(b, "succeeded", 3);
      end(b, "gone", 1);
      end(b, "unreported", 1);
      await until(() => a.pending() + b.pending() === 0, 5000, "the figures sent");
      const stats = await statsOf();
      expect(stats).to.deep.include({ inFlight: 5, succeeded: 8, failed: 4 });
      const last = Date.parse(stats.lastTaskTime ?? "");
      expect(stats.lastTaskTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(last).to.be.within(Math.floor(before / 1000) * 1000, Date.now());
      expect(await admin.hgetall(sourceStateKeys(ARN).tasks)).to.deep.include({
        succeeded: "8",
        failed: "2",
        gone: "1",
        unreported: "1",
      });
    });

    it("sends at most one command per task, fewer when tasks end together", async () => {
      let inFlight = 0;
      const recorder = record(await connect(), () => inFlight);
      await until(() => recorder.pending() === 0, 5000, "the first report");
      const scripts = async () => {
        const calls = await commandCalls(admin);
        return (calls.evalsha ?? 0) + (calls.eval ?? 0);
      };
      let calls = await scripts();
      for (let i = 0; i < 10; i++) {
        inFlight = i;
        recorder.taskEnded("succeeded");
        await until(() => recorder.pending() === 0, 5000, "the task sent");
      }
      // NOSCRIPT falls back to EVAL once per server: at most one more than the tasks.
      expect((await scripts()) - calls).to.be.within(10, 11);
      calls = await scripts();
      end(recorder, "succeeded", 50);
      await until(() => recorder.pending() === 0, 5000, "the batch sent");
      expect((await scripts()) - calls, "50 tasks ended in one turn").to.equal(1);
      expect(await statsOf()).to.deep.include({ succeeded: 60, inFlight: 9 });
    });

    it("keeps what Redis did not take and sends it when Redis is back", async function () {
      if (!redis.restartable) this.skip();
      const recorder = record(await connect(), () => 1);
      end(recorder, "succeeded", 2);
      await until(() => recorder.pending() === 0, 5000, "the first tasks");
      await redis.stopProcess();
      try {
        end(recorder, "failed", 3);
        expect(recorder.pending()).to.equal(3);
      } finally {
        await redis.startProcess();
      }
      // The restarted Redis is empty: only what was pending arrives.
      await until(() => recorder.pending() === 0, 10_000, "the pending figures sent");
      expect(await statsOf()).to.deep.include({ succeeded: 0, failed: 3, inFlight: 1 });
    });

    it("a crashed process's tasks in flight disappear within its report TTL; a clean stop at once", async () => {
      const crashing = await connect("crashing");
      record(crashing, () => 2, { reportIntervalMs: 300, reportTtlMs: 3000 });
      const survivor = record(await connect("survivor"), () => 3, {
        reportIntervalMs: 300,
        reportTtlMs: 3000,
      });
      await until(async () => (await statsOf()).inFlight === 5, 5000, "both reports");
      // A crash: its connection goes, it never takes its entry out.
      await crashing.close();
      expect(await admin.zcard(sourceStateKeys(ARN).reporters), "its entry is still there").to.equal(2);
      expect(await statsOf(), "and counted until it expires").to.deep.include({ inFlight: 5 });
      await until(async () => (await statsOf()).inFlight === 3, 10_000, "the crashed report's expiry");
      // The survivor's next report drops the expired entry.
      await until(
        async () => (await admin.zcard(sourceStateKeys(ARN).reporters)) === 1,
        5000,
        "the expired entry dropped",
      );
      await survivor.close();
      expect(await statsOf()).to.deep.include({ inFlight: 0 });
      expect(await admin.exists(sourceStateKeys(ARN).reporters, sourceStateKeys(ARN).inFlight)).to.equal(0);
    });

    it("readSourceStats reads many activities in one round trip", async () => {
      const arns = Array.from({ length: 60 }, (_, i) => arnOf(`many-${i}`));
      const connection = await connect();
      for (const [i, arn] of arns.entries()) {
        if (i % 3 === 0) await writeLimit(admin, arn, i + 1);
        if (i % 2 === 0) {
          const recorder = record(connection, () => i, { arn });
          end(recorder, "succeeded", i);
          end(recorder, "failed", 1);
          await until(() => recorder.pending() === 0, 5000, "figures sent");
        }
      }
      await admin.config("RESETSTAT");
      const stats = await readSourceStats(admin, [...arns, arns[0] as string]);
      const calls = await commandCalls(admin);
      // One pipeline: one TIME, then the same reads for each activity (and INFO is not counted yet).
      expect(calls.time, "TIME: one pipeline").to.equal(1);
      for (const command of ["hmget", "zrange", "hgetall", "get"])
        expect(calls[command], command).to.equal(60);
      const total = Object.entries(calls)
        .filter(([command]) => !command.startsWith("info") && !command.startsWith("config"))
        .reduce((sum, [, n]) => sum + n, 0);
      expect(total, "nothing else").to.equal(1 + 60 * STATS_COMMANDS_PER_ACTIVITY);
      expect([...stats.keys()]).to.deep.equal(arns);
      for (const [i, arn] of arns.entries()) {
        const expected =
          i % 2 === 0 ? { inFlight: i, succeeded: i, failed: 1 } : { inFlight: 0, succeeded: 0, failed: 0 };
        expect(stats.get(arn), arn).to.deep.include(expected);
        expect(stats.get(arn)?.limit, `${arn} limit`).to.equal(i % 3 === 0 ? i + 1 : undefined);
        expect(stats.get(arn)?.lastTaskTime === undefined, `${arn} lastTaskTime`).to.equal(i % 2 === 1);
      }
      expect(await readSourceStats(admin, [])).to.deep.equal(new Map());
    });

    it("readSourceStats rejects, naming the problem, when Redis cannot answer", async function () {
      if (!redis.restartable) this.skip();
      const connection = await connect();
      await redis.stopProcess();
      try {
        let error: unknown;
        try {
          await readSourceStats(connection, [ARN]);
        } catch (caught) {
          error = caught;
        }
        expect(String(error)).to.match(/cannot read task figures from Redis/);
      } finally {
        await redis.startProcess();
      }
    });
  });

  it("deleteSourceState removes every key of the activity, and only its, and its pollers stop at once", async () => {
    const other = arnOf("other");
    for (const arn of [ARN, other]) {
      await admin.hset(semaphoreKeys(arn).epoch, { since: 0, until: 0, run: await serverRunId(admin) });
    }
    // Every kind of key: a lease, a process waiting for a turn, the limit, totals, a report.
    const holderConnection = await connect("h");
    const waiterConnection = await connect("w");
    const holder = new RedisSemaphore({ connection: holderConnection, activityArn: ARN, limit: 1 });
    // Listed as waiting for 3 x recheckMs: long enough to outlast the test.
    const waiter = new RedisSemaphore({
      connection: waiterConnection,
      activityArn: ARN,
      limit: 1,
      recheckMs: 20_000,
    });
    closers.push(
      () => holder.close(),
      () => waiter.close(),
    );
    const stop = new AbortController();
    await holder.acquire(stop.signal);
    const waiting = waiter.acquire(stop.signal).catch(() => undefined);
    await until(
      async () => (await admin.exists(semaphoreKeys(ARN).queue)) === 1,
      5000,
      "the waiting process",
    );
    for (const arn of [ARN, other]) {
      await writeLimit(admin, arn, 1);
      const recorder = record(await connect(), () => 1, { arn });
      recorder.taskEnded("succeeded");
      await until(() => recorder.pending() === 0, 5000, "figures sent");
    }
    const { follower } = follow(await connect());
    await until(() => follower.limit === 1, 5000, "the limit read");
    // Both semaphore processes crash: nothing of theirs changes the keys from now on.
    await holderConnection.close();
    await waiterConnection.close();

    const tag = (arn: string) => `{sfn-operator:${arn}}`;
    const keysOf = async (arn: string) => (await allKeys(admin)).filter((key) => key.startsWith(tag(arn)));
    expect(await keysOf(ARN), "the list of keys is complete").to.deep.equal(allActivityKeys(ARN).sort());
    const others = await keysOf(other);

    expect(await deleteSourceState(admin, ARN)).to.equal(8);
    expect(await keysOf(ARN)).to.deep.equal([]);
    expect(await keysOf(other), "another activity's keys").to.deep.equal(others);
    // The announcement: no periodic read runs here.
    await until(() => follower.limit === undefined, 5000, "the follower told");
    expect(follower.problem).to.match(/no concurrency limit/);
    expect(await deleteSourceState(admin, ARN), "again: nothing left").to.equal(0);
    stop.abort();
    await waiting;
  });
});

describe("source state in a Redis Cluster (three real masters)", function () {
  this.timeout(120_000);
  let cluster: RedisClusterServer;
  let admin: Cluster;
  /** Activities whose keys live on each of the three masters, several per master. */
  const spread: Array<{ arn: string; port: number }> = [];
  const connections: RedisConnection[] = [];

  before(async () => {
    cluster = await RedisClusterServer.start();
    admin = cluster.client();
    for (let i = 0; spread.length < 30 && i < 300; i++) {
      const arn = arnOf(`cluster-state-${i}`);
      spread.push({ arn, port: await cluster.portOf(sourceStateKeys(arn).limit) });
    }
  });

  after(async () => {
    admin?.disconnect();
    for (const connection of connections.splice(0)) await connection.close();
    await cluster?.stop();
  });

  async function connect(): Promise<RedisConnection> {
    const connection = new RedisConnection({ url: cluster.url });
    connections.push(connection);
    await until(() => connection.ready, 10_000, "Redis Cluster connection");
    return connection;
  }

  it("computes the slot Redis Cluster does", async () => {
    const node = cluster.nodeClient(cluster.ports[0] as number);
    try {
      const keys = [
        ...allActivityKeys(ARN),
        "plain",
        "{}:empty-tag",
        "a{b}c{d}",
        "{{x}}",
        "ünïcödé{ä}",
        ...spread.map(({ arn }) => sourceStateKeys(arn).inFlight),
      ];
      for (const key of keys) {
        expect(clusterKeySlot(key), key).to.equal(Number(await node.call("CLUSTER", "KEYSLOT", key)));
      }
    } finally {
      node.disconnect();
    }
  });

  it("follows the limit, records figures, reads them per master in one pipeline each, and deletes", async () => {
    const ports = new Set(spread.map(({ port }) => port));
    expect(ports.size, "activities on every master").to.equal(3);
    const connection = await connect();
    // Activities with figures (the first has none).
    const [, first, second] = spread as [unknown, { arn: string }, { arn: string }];
    const limits: number[] = [];
    const follower = new LimitFollower({
      connection,
      activityArn: first.arn,
      refreshMs: NEVER_MS,
      onLimit: (limit) => limits.push(limit),
      onNoLimit: () => {},
    });
    follower.start();
    try {
      await writeLimit(connection, first.arn, 2);
      await until(() => follower.limit === 2, 10_000, "the first limit");
      await writeLimit(connection, first.arn, 5);
      await until(() => follower.limit === 5, 10_000, "the change, through pub/sub");

      const recorders = spread.map(({ arn }, i) => {
        const recorder = new TaskFiguresRecorder({
          connection,
          activityArn: arn,
          reporterName: "pod",
          inFlight: () => i % 4,
          reportIntervalMs: NEVER_MS,
        });
        recorder.start();
        for (let n = 0; n < i; n++) recorder.taskEnded("succeeded");
        return recorder;
      });
      await until(() => recorders.every((r) => r.pending() === 0), 10_000, "figures sent");

      const time = async () => {
        let calls = 0;
        for (const port of cluster.ports) {
          const node = cluster.nodeClient(port);
          try {
            calls += (await commandCalls(node)).time ?? 0;
          } finally {
            node.disconnect();
          }
        }
        return calls;
      };
      const timeBefore = await time();
      const stats = await readSourceStats(
        connection,
        spread.map(({ arn }) => arn),
      );
      expect((await time()) - timeBefore, "one pipeline per master").to.equal(3);
      for (const [i, { arn }] of spread.entries()) {
        expect(stats.get(arn), arn).to.deep.include({ inFlight: i % 4, succeeded: i, failed: 0 });
      }
      expect(stats.get(first.arn)?.limit).to.equal(5);
      // A plain ioredis Cluster client works too.
      expect((await readSourceStats(admin, [second.arn])).get(second.arn)).to.deep.include({ succeeded: 2 });

      for (const recorder of recorders) await recorder.close();
      expect(await deleteSourceState(connection, first.arn)).to.equal(2); // the limit and the totals
      await until(() => follower.limit === undefined, 10_000, "the deletion announced");
      expect((await readSourceStats(connection, [first.arn])).get(first.arn)).to.deep.equal({
        inFlight: 0,
        succeeded: 0,
        failed: 0,
      });
    } finally {
      follower.close();
    }
  });
});
