/**
 * The Redis semaphore against a real redis-server. Each `RedisConnection` stands for one process
 * (its own connections, its own semaphore object), as pods would be.
 */
import { createHash } from "node:crypto";
import { expect } from "chai";
import { Redis } from "ioredis";
import { RedisConnection } from "../../src/semaphore/redis/connection.ts";
import { semaphoreKeys } from "../../src/semaphore/redis/keys.ts";
import { COMMAND_TIMEOUT_MS, MIN_LEASE_TTL_MS } from "../../src/semaphore/redis/limits.ts";
import { RedisSemaphore } from "../../src/semaphore/redis/redis-semaphore.ts";
import { ACQUIRE, REFRESH, RELEASE, TRANSFER } from "../../src/semaphore/redis/scripts.ts";
import type { Permit } from "../../src/semaphore/semaphore.ts";
import { withLogs } from "../support/logs.ts";
import { RedisServer, serverRunId } from "../support/redis.ts";
import { sleep, until } from "../support/waiting.ts";

const ARN = "arn:aws:states:us-east-1:123456789012:activity:semaphore-test";

/** Script calls Redis has served so far (EVALSHA and EVAL). */
async function scriptCalls(client: ReturnType<RedisServer["client"]>): Promise<number> {
  const stats = await client.info("commandstats");
  let calls = 0;
  for (const match of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

describe("RedisSemaphore (real redis-server)", function () {
  this.timeout(60_000);
  let redis: RedisServer;
  const connections: RedisConnection[] = [];
  const semaphores: RedisSemaphore[] = [];
  const never = new AbortController().signal;
  let unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    redis = await RedisServer.start();
    process.on("unhandledRejection", onUnhandled);
  });

  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    await redis.stop();
  });

  beforeEach(async () => {
    unhandled = [];
    const client = redis.client();
    await client.flushall();
    // The semaphore already exists, its first window long over, recorded by this Redis process (a
    // new one grants nothing for one lease TTL: the data-loss tests below delete this to see that).
    await client.hset(semaphoreKeys(ARN).epoch, { since: 0, until: 0, run: await serverRunId(client) });
    client.disconnect();
  });

  afterEach(async () => {
    for (const semaphore of semaphores.splice(0)) await semaphore.close();
    for (const connection of connections.splice(0)) await connection.close();
    expect(unhandled, "unhandled rejections").to.deep.equal([]);
  });

  async function process_(
    options: Partial<ConstructorParameters<typeof RedisSemaphore>[0]> = {},
    url = redis.url,
  ) {
    const connection = new RedisConnection({ url });
    connections.push(connection);
    await until(() => connection.ready, 5000, "Redis connection");
    const semaphore = new RedisSemaphore({
      connection,
      activityArn: ARN,
      limit: 3,
      leaseTtlMs: MIN_LEASE_TTL_MS,
      ...options,
    });
    semaphores.push(semaphore);
    return semaphore;
  }

  /** Acquires, or resolves undefined once `signal` aborts. */
  async function semaphore_(semaphore: RedisSemaphore, signal: AbortSignal): Promise<Permit | undefined> {
    try {
      return await semaphore.acquire(signal);
    } catch (error) {
      if (signal.aborted) return undefined;
      throw error;
    }
  }

  async function holders(): Promise<number> {
    const client = redis.client();
    try {
      return await client.zcard(semaphores[0]?.keys.holders ?? "");
    } finally {
      client.disconnect();
    }
  }

  it("keeps the limit across processes under contention, and reaches it", async () => {
    const processes = await Promise.all([
      process_({ limit: 5 }),
      process_({ limit: 5 }),
      process_({ limit: 5 }),
    ]);
    let inUse = 0;
    let peak = 0;
    let cycles = 0;
    const worker = async (semaphore: RedisSemaphore) => {
      for (let i = 0; i < 15; i++) {
        const permit = await semaphore.acquire(never);
        inUse += 1;
        peak = Math.max(peak, inUse);
        await sleep(2 + Math.random() * 8);
        inUse -= 1;
        cycles += 1;
        await permit.release();
      }
    };
    await Promise.all(processes.flatMap((semaphore) => Array.from({ length: 6 }, () => worker(semaphore))));
    expect(cycles).to.equal(270);
    expect(peak).to.equal(5);
    expect(await holders()).to.equal(0);
  });

  it("wakes a waiter in another process on release, without waiting for the re-check timer", async () => {
    const a = await process_({ limit: 1, recheckMs: 10_000 });
    const b = await process_({ limit: 1, recheckMs: 10_000 });
    const held = await a.acquire(never);
    const waitingTimed = timedAcquire(b);
    const waiting = waitingTimed.permit;
    await sleep(200);
    expect(waitingTimed.acquiredAt).to.equal(0);
    const releasedAt = performance.now();
    await held.release();
    await (await waiting).release();
    expect(waitingTimed.acquiredAt - releasedAt).to.be.below(500);
  });

  it("hands a released permit to a waiter of the same process in one step, within the limit", async () => {
    const a = await process_({ limit: 1, recheckMs: 10_000 });
    const b = await process_({ limit: 1, recheckMs: 10_000 });
    const held = await a.acquire(never);
    const winners: string[] = [];
    const record = (name: string) => (permit: Permit) => {
      winners.push(name);
      return permit;
    };
    const fromB = b.acquire(never).then(record("b"));
    const fromA = a.acquire(never).then(record("a"));
    await sleep(100);
    await held.release();
    await (await fromA).release(); // no local waiter left: released to the pool, B is woken
    await (await fromB).release();
    expect(winners).to.deep.equal(["a", "b"]);
    expect(await holders()).to.equal(0);
  });

  it("passes a released permit to a local waiter with its lease, without a Redis round trip", async () => {
    const semaphore = await process_({ limit: 1, leaseTtlMs: 15_000, recheckMs: 10_000 });
    const held = await semaphore.acquire(never);
    const waiting = semaphore.acquire(never);
    await sleep(100); // the waiter's own (refused) acquire attempt is done
    const client = redis.client();
    try {
      const leasesBefore = await client.zrange(semaphore.keys.holders, "0", "-1");
      const scriptCallsBefore = await scriptCalls(client);
      await held.release();
      const next = await waiting;
      expect(await scriptCalls(client)).to.equal(scriptCallsBefore);
      expect(await client.zrange(semaphore.keys.holders, "0", "-1")).to.deep.equal(leasesBefore);
      await next.release();
      await until(async () => (await client.zcard(semaphore.keys.holders)) === 0, 1000, "the release");
    } finally {
      client.disconnect();
    }
  });

  it("keeps a released lease for a loop that asks again at once, and releases it if none does", async () => {
    const semaphore = await process_({ limit: 1, leaseTtlMs: 15_000, recheckMs: 10_000 });
    const client = redis.client();
    try {
      const first = await semaphore.acquire(never);
      const lease = await client.zrange(semaphore.keys.holders, "0", "-1");
      const scriptCallsBefore = await scriptCalls(client);
      await first.release();
      const again = await semaphore.acquire(never); // as a poller loop does after reporting
      expect(await scriptCalls(client)).to.equal(scriptCallsBefore);
      expect(await client.zrange(semaphore.keys.holders, "0", "-1")).to.deep.equal(lease);
      expect(semaphore.held()).to.equal(1);
      await again.release();
      expect(semaphore.held(), "an idle lease is not counted as held").to.equal(0);
      await until(async () => (await client.zcard(semaphore.keys.holders)) === 0, 1000, "the release");
    } finally {
      client.disconnect();
    }
  });

  it("gives a permit passed among one process's loops to a waiting process within localHandOverMs", async () => {
    const busy = await process_({ limit: 2, localHandOverMs: 300, recheckMs: 10_000 });
    const other = await process_({ limit: 2, localHandOverMs: 300, recheckMs: 10_000 });
    const stop = new AbortController();
    // Four loops for two permits: the busy process always has a waiter of its own.
    const loop = async (): Promise<void> => {
      while (!stop.signal.aborted) {
        const permit = await semaphore_(busy, stop.signal);
        if (!permit) return;
        await sleep(5);
        await permit.release();
      }
    };
    const loops = Array.from({ length: 4 }, () => loop());
    await until(() => busy.held() === 2, 2000, "the busy process to hold both permits");
    const started = performance.now();
    const permit = await other.acquire(never);
    const waited = performance.now() - started;
    stop.abort();
    await permit.release();
    await Promise.all(loops);
    expect(waited).to.be.within(0, 300 + 200);
    expect(await holders()).to.equal(0);
  });

  it("keeps leases past localHandOverMs, without Redis round trips, while no other process waits", async () => {
    const alone = await process_({ limit: 1, localHandOverMs: 20, yieldMs: 1000, recheckMs: 10_000 });
    const client = redis.client();
    try {
      const scriptCallsBefore = await scriptCalls(client);
      let cycles = 0;
      const loop = async (): Promise<void> => {
        const until_ = performance.now() + 300;
        while (performance.now() < until_) {
          const permit = await alone.acquire(never);
          cycles += 1;
          await sleep(1);
          await permit.release();
        }
      };
      await Promise.all([loop(), loop()]);
      // About 150 cycles of 2 ms; a permit going back to Redis every 20 ms (and idling `yieldMs`)
      // would allow about 10, and cost two script calls each time.
      expect(cycles).to.be.above(80);
      expect((await scriptCalls(client)) - scriptCallsBefore).to.be.at.most(2);
    } finally {
      client.disconnect();
    }
  });

  /**
   * A pending acquisition, its rejection marked handled: should the test fail before it settles, the
   * semaphore is closed after the test and rejects it, which would also fail the next tests.
   */
  function pending<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => undefined);
    return promise;
  }

  /** `wait(name, semaphore)` acquires, and appends `name` to `order` once granted. */
  function inOrder(order: string[]): (name: string, semaphore: RedisSemaphore) => Promise<Permit> {
    return async (name, semaphore) => {
      const permit = await semaphore.acquire(never);
      order.push(name);
      return permit;
    };
  }

  /** An acquisition (see `pending`) that notes when it was granted (0 until then). */
  function timedAcquire(semaphore: RedisSemaphore): {
    readonly permit: Promise<Permit>;
    readonly acquiredAt: number;
  } {
    let acquiredAt = 0;
    const permit = pending(
      semaphore.acquire(never).then((granted) => {
        acquiredAt = performance.now();
        return granted;
      }),
    );
    return {
      permit,
      get acquiredAt() {
        return acquiredAt;
      },
    };
  }

  /** Members of a sorted set, first to last. */
  async function members(key: string): Promise<string[]> {
    const client = redis.client();
    try {
      return await client.zrange(key, "0", "-1");
    } finally {
      client.disconnect();
    }
  }

  it("gives permits that go back to Redis to waiting processes in the order they started waiting", async () => {
    // No re-check timer and no lease expiry within the test: only releases wake anyone.
    const options = { limit: 2, leaseTtlMs: 15_000, recheckMs: 10_000 };
    // The first to wait is neither the first nor the last of the waiting processes to subscribe:
    // woken all at once (as before turns), the one at either end of Redis's delivery order would run
    // its acquire script first.
    const holder = await process_(options);
    const third = await process_(options);
    const first = await process_(options);
    const second = await process_(options);
    const held = [await holder.acquire(never), await holder.acquire(never)];
    const order: string[] = [];
    const wait = inOrder(order);
    const fromFirst = pending(wait("first", first));
    await sleep(50);
    const fromSecond = pending(wait("second", second));
    await sleep(50);
    const fromThird = pending(wait("third", third));
    await sleep(50);
    expect(await members(holder.keys.waiting)).to.have.length(3);

    await held[0]?.release();
    await until(() => order.length === 1, 2000, "the first turn");
    await held[1]?.release();
    await until(() => order.length === 2, 2000, "the second turn");
    await sleep(200);
    expect(order, "the third waits for the next release").to.deep.equal(["first", "second"]);
    await (await fromFirst).release();
    await until(() => order.length === 3, 2000, "the third turn");
    expect(order).to.deep.equal(["first", "second", "third"]);
    await (await fromSecond).release();
    await (await fromThird).release();
    // Served processes are no longer listed.
    expect(await members(holder.keys.waiting)).to.deep.equal([]);
    expect(await members(holder.keys.queue)).to.deep.equal([]);
    await until(async () => (await holders()) === 0, 1000, "the releases");
  });

  it("spreads permits freed together over the processes in line, one per turn, however fast each answers", async () => {
    const options = { limit: 2, leaseTtlMs: 15_000, recheckMs: 10_000 };
    const holder = await process_(options);
    const a = await process_(options);
    const b = await process_(options);
    const bSubscriber = (connections[2] as RedisConnection).subscriber;
    if (!(bSubscriber instanceof Redis)) throw new Error("expected a plain Redis subscriber");
    const held = [await holder.acquire(never), await holder.acquire(never)];
    // A waits first, with two loops: it would take both permits if it took all it wants.
    const fromA = [pending(a.acquire(never)), pending(a.acquire(never))];
    await sleep(50);
    const fromB = pending(b.acquire(never));
    await sleep(50);
    bSubscriber.stream.pause(); // B is slow to hear its turn
    // Released in the same event-loop turn: both leases go back to Redis in one call, two turns.
    await Promise.all(held.map((permit) => permit.release()));
    const aPermit = await fromA[0];
    await sleep(200);
    expect(a.held(), "A took one permit, its turn; the other is B's").to.equal(1);
    bSubscriber.stream.resume();
    const bPermit = await fromB;
    await bPermit.release(); // the next turn is A's again
    await aPermit?.release();
    await (await fromA[1])?.release();
  });

  it("keeps a process at the head of the line when the permit of its turn was taken before it came", async () => {
    const options = { limit: 1, leaseTtlMs: 15_000, recheckMs: 10_000 };
    const holder = await process_(options);
    const a = await process_(options);
    const b = await process_(options);
    const held = await holder.acquire(never);
    const order: string[] = [];
    const wait = inOrder(order);
    const fromA = pending(wait("a", a));
    await sleep(50);
    const fromB = pending(wait("b", b));
    await sleep(50);
    const [aId, bId] = await members(holder.keys.queue);
    expect(bId, "both listed").to.be.a("string");
    // What a release does when another process's re-check takes the permit before A answers: A is
    // sent to the back and given the turn, and finds nothing free.
    const client = redis.client();
    try {
      const [seconds, micros] = await client.time();
      await client.zadd(
        holder.keys.queue,
        "XX",
        Number(seconds) * 1000 + Math.floor(Number(micros) / 1000),
        aId as string,
      );
      expect(await members(holder.keys.queue)).to.deep.equal([bId, aId]);
      await client.publish(holder.keys.released, `turn ${aId}`);
    } finally {
      client.disconnect();
    }
    await sleep(100);
    expect(order, "nothing was free").to.deep.equal([]);
    await held.release(); // the next turn is A's again
    await until(() => order.length === 1, 2000, "the next turn");
    expect(order).to.deep.equal(["a"]);
    await (await fromA).release();
    await (await fromB).release();
  });

  it("does not stall behind a waiting process that crashed: the next one gets the permit by its re-check", async () => {
    // Its waiting entry would stay for 3 x recheckMs = 30 s.
    const crashed = await process_({ limit: 1, recheckMs: 10_000 });
    const holder = await process_({ limit: 1, recheckMs: 10_000 });
    const held = await holder.acquire(never);
    void pending(crashed.acquire(never)); // rejected when it is closed after the test
    await sleep(50);
    await connections[0]?.close(); // the "process" dies without cleaning up
    const next = await process_({ limit: 1, recheckMs: 400 });
    const waiting = pending(next.acquire(never));
    await sleep(50);
    const [crashedEntry, nextEntry] = await members(next.keys.queue);
    expect(nextEntry, "both listed, the crashed one first").to.be.a("string");
    expect(await members(next.keys.waiting)).to.include(crashedEntry);
    const releasedAt = performance.now();
    await held.release(); // its turn goes to the crashed process, which never answers
    const permit = await waiting;
    expect(performance.now() - releasedAt).to.be.below(400 + 300);
    await permit.release();
  });

  it("gives a stale entry that does not expire one turn, not every turn", async () => {
    const holder = await process_({ limit: 2, recheckMs: 10_000 });
    const held = [await holder.acquire(never), await holder.acquire(never)];
    // An entry left behind (or written by hand) that outlives the test, at the head of the line.
    const client = redis.client();
    try {
      const [seconds] = await client.time();
      await client.zadd(holder.keys.waiting, Number(seconds) * 1000 + 60_000, "ghost");
      await client.zadd(holder.keys.queue, 1, "ghost");
    } finally {
      client.disconnect();
    }
    const next = await process_({ limit: 2, recheckMs: 10_000 });
    const waitingTimed = timedAcquire(next);
    const waiting = waitingTimed.permit;
    await sleep(50);
    expect(await members(holder.keys.queue)).to.have.length(2);
    await held[0]?.release(); // the ghost's turn: nobody takes it (no re-check within the test)
    await sleep(200);
    expect(waitingTimed.acquiredAt, "the first turn went to the ghost").to.equal(0);
    const releasedAt = performance.now();
    await held[1]?.release(); // the ghost went to the back: this turn is the waiting process's
    const permit = await waiting;
    expect(waitingTimed.acquiredAt - releasedAt).to.be.below(300);
    await permit.release();
  });

  it("a process whose waiters were served by a local hand-over leaves the line", async () => {
    const options = { limit: 2, leaseTtlMs: 15_000, recheckMs: 10_000 };
    const holder = await process_(options);
    const a = await process_(options);
    const held = await holder.acquire(never);
    const aHeld = await a.acquire(never);
    const fromA = pending(a.acquire(never)); // refused: A is listed first
    await sleep(50);
    const b = await process_(options);
    const fromBTimed = timedAcquire(b);
    const fromB = fromBTimed.permit;
    await sleep(50);
    expect(await members(a.keys.queue)).to.have.length(2);
    await aHeld.release(); // to A's own waiter, without Redis
    const aPermit = await fromA;
    await until(async () => (await members(a.keys.queue)).length === 1, 1000, "A to leave the line");
    const releasedAt = performance.now();
    await held.release();
    const bPermit = await fromB;
    expect(fromBTimed.acquiredAt - releasedAt, "B had the turn at once").to.be.below(300);
    await aPermit.release();
    await bPermit.release();
  });

  it("a process given a turn it cannot use passes it on", async () => {
    const options = { limit: 1, leaseTtlMs: 15_000, recheckMs: 10_000 };
    const holder = await process_(options);
    const a = await process_(options);
    const held = await holder.acquire(never);
    const giveUp = new AbortController();
    const fromA = semaphore_(a, giveUp.signal); // refused: A is listed first
    await sleep(50);
    const b = await process_(options);
    const fromBTimed = timedAcquire(b);
    const fromB = fromBTimed.permit;
    await sleep(50);
    giveUp.abort(); // A no longer waits, but is still first in line
    expect(await fromA).to.equal(undefined);
    expect(await members(a.keys.queue)).to.have.length(2);
    const releasedAt = performance.now();
    await held.release();
    const bPermit = await fromB;
    expect(fromBTimed.acquiredAt - releasedAt, "B had the turn at once").to.be.below(300);
    expect(await members(a.keys.queue)).to.have.length(0);
    await bPermit.release();
  });

  /** Remaining ms of the holders key's TTL (-2: gone). */
  async function holdersPttl(semaphore: RedisSemaphore): Promise<number> {
    const client = redis.client();
    try {
      return await client.pttl(semaphore.keys.holders);
    } finally {
      client.disconnect();
    }
  }

  it("a process with a short lease TTL never shortens the leases of one with a long TTL", async () => {
    const longTtl = 60_000;
    const a = await process_({ limit: 3, leaseTtlMs: longTtl });
    const b = await process_({ limit: 4, leaseTtlMs: MIN_LEASE_TTL_MS, recheckMs: 10_000 });
    const c = await process_({ limit: 3, leaseTtlMs: longTtl });
    // What the callers hold (tasks running), not Redis's bookkeeping.
    let running = 0;
    let peak = 0;
    const take = async (semaphore: RedisSemaphore, signal: AbortSignal): Promise<Permit | undefined> => {
      const permit = await semaphore_(semaphore, signal);
      if (permit) {
        running += 1;
        peak = Math.max(peak, running);
      }
      return permit;
    };
    const give = async (permit: Permit | undefined): Promise<void> => {
      if (!permit) return;
      running -= 1;
      await permit.release();
    };
    const aPermits = [await take(a, never), await take(a, never)];
    const outlivesA = longTtl - 10_000; // A's leases still have about longTtl to go
    // ACQUIRE with the short TTL.
    const b1 = await take(b, never);
    expect(await holdersPttl(a), "after B's acquire").to.be.above(outlivesA);
    // TRANSFER with the short TTL: a lowered limit makes B hand its permit over through Redis.
    b.setLimit(3);
    const b2Pending = pending(take(b, never)); // refused: 3 held
    await sleep(100);
    await give(b1);
    const b2 = await b2Pending;
    expect(await holdersPttl(a), "after B's transfer").to.be.above(outlivesA);
    // REFRESH with the short TTL (every third of it).
    await sleep(MIN_LEASE_TTL_MS / 3 + 500);
    expect(await holdersPttl(a), "after B's refresh").to.be.above(outlivesA);
    await give(b2);
    // Past every lease B's TTL could have set: A's two leases are still counted.
    await sleep(MIN_LEASE_TTL_MS + 500);
    expect(await holders(), "A's leases").to.equal(2);
    const giveUp = new AbortController();
    const fromC = [take(c, giveUp.signal), take(c, giveUp.signal), take(c, giveUp.signal)];
    await until(() => c.held() === 1, 5000, "C to take the one free permit");
    await sleep(500);
    giveUp.abort();
    const cPermits = await Promise.all(fromC);
    expect(cPermits.filter(Boolean), "C's permits").to.have.length(1);
    expect(peak, "tasks running at once").to.equal(3);
    for (const permit of [...aPermits, ...cPermits]) await give(permit);
  });

  it("gives a crashed holder's permits back within the lease TTL", async () => {
    const crashed = await process_({ limit: 2, leaseTtlMs: MIN_LEASE_TTL_MS });
    await crashed.acquire(never);
    await crashed.acquire(never);
    // The "process" dies: connections cut, no release, no more refreshes.
    await connections[0]?.close();
    const survivor = await process_({ limit: 2, leaseTtlMs: MIN_LEASE_TTL_MS });
    const started = performance.now();
    await survivor.acquire(never);
    await survivor.acquire(never);
    expect(performance.now() - started).to.be.within(100, MIN_LEASE_TTL_MS + 1000);
  });

  it("applies a lowered limit at the next acquisition: holders finish, nobody enters until under it", async () => {
    const semaphore = await process_({ limit: 4 });
    const permits = await Promise.all(Array.from({ length: 4 }, () => semaphore.acquire(never)));
    semaphore.setLimit(2);
    let admitted = 0;
    const waiter = semaphore.acquire(never).then((permit) => {
      admitted += 1;
      return permit;
    });
    await permits[0]?.release();
    await permits[1]?.release();
    await sleep(300);
    expect(admitted).to.equal(0);
    await permits[2]?.release();
    await (await waiter).release();
    expect(admitted).to.equal(1);
  });

  it("an aborted wait leaves no lease behind", async () => {
    const semaphore = await process_({ limit: 1 });
    const held = await semaphore.acquire(never);
    const controller = new AbortController();
    const waiting = semaphore.acquire(controller.signal);
    controller.abort();
    const error = await waiting.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.have.property("name", "AbortError");
    await held.release();
    expect(await holders()).to.equal(0);
    expect(semaphore.waiting()).to.equal(0);
  });

  it("fails closed while Redis is down, re-registers running leases when it is back, and resumes", async function () {
    if (!redis.restartable) this.skip();
    const a = await process_({ limit: 2, leaseTtlMs: MIN_LEASE_TTL_MS });
    const running = await a.acquire(never);
    await redis.stopProcess();
    await until(() => !a.health().ready, 5000, "the semaphore to notice Redis is down");
    expect(a.health().reason).to.match(/Redis unreachable/);
    let acquired = false;
    const waiting = a.acquire(never).then((permit) => {
      acquired = true;
      return permit;
    });
    await sleep(1500);
    expect(acquired, "no permit while Redis is down").to.equal(false);
    await redis.startProcess(); // without persistence: every lease is gone
    // After the window in which running tasks re-register (one lease TTL).
    await until(() => acquired, MIN_LEASE_TTL_MS + 5000, "a permit after Redis came back");
    // The task that was running when Redis died is counted again, next to the new permit.
    expect(await holders()).to.equal(2);
    await (await waiting).release();
    await running.release();
    expect(await holders()).to.equal(0);
    expect(a.health().ready).to.equal(true);
  });

  /** Tasks running at once, as the semaphores' callers count them (not Redis's bookkeeping). */
  function taskCounter() {
    let running = 0;
    let peak = 0;
    return {
      /** Acquires (undefined once `signal` aborts) and counts the task as running. */
      async take(semaphore: RedisSemaphore, signal: AbortSignal): Promise<Permit | undefined> {
        const permit = await semaphore_(semaphore, signal);
        if (permit) {
          running += 1;
          peak = Math.max(peak, running);
        }
        return permit;
      },
      async give(permit: Permit | undefined): Promise<void> {
        if (!permit) return;
        running -= 1;
        await permit.release();
      },
      get peak() {
        return peak;
      },
    };
  }

  /** The epoch hash as numbers, and the Redis server's time (ms). */
  async function epochAndNow(): Promise<{ since: number; until: number; now: number }> {
    const client = redis.client();
    try {
      const epoch = await client.hgetall(semaphoreKeys(ARN).epoch);
      const [seconds, micros] = await client.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      return { since: Number(epoch.since), until: Number(epoch.until), now };
    } finally {
      client.disconnect();
    }
  }

  it("a new semaphore grants nothing for one lease TTL, says so once, and grants when it ends without polling", async () => {
    const client = redis.client();
    try {
      await client.del(semaphoreKeys(ARN).epoch); // as Redis sees a new semaphore, or lost data
      await withLogs(async (records) => {
        // A re-check every 100 ms would ask about 60 times during the window.
        const a = await process_({ limit: 2, recheckMs: 100 });
        const callsBefore = await scriptCalls(client);
        const permits = [pending(a.acquire(never)), pending(a.acquire(never))];
        await sleep(500);
        expect(a.held(), "permits granted at once").to.equal(0);
        await until(() => a.held() === 2, MIN_LEASE_TTL_MS + 5000, "the grants after the window");
        const calls = (await scriptCalls(client)) - callsBefore;
        const { since, until: end } = await epochAndNow();
        expect(end - since, "the window: one lease TTL").to.equal(MIN_LEASE_TTL_MS);
        // Granted no earlier than the window's end: a lease's score is its grant time + TTL.
        const scores = await client.zrange(a.keys.holders, "0", "-1", "WITHSCORES");
        for (const score of scores.filter((_, i) => i % 2 === 1)) {
          expect(Number(score) - MIN_LEASE_TTL_MS).to.be.at.least(end);
        }
        expect(calls, "acquire calls: refused once, then granted at the window's end").to.be.at.most(3);
        const windowLogs = records.filter((r) => String(r.message).startsWith("Redis has no record"));
        expect(windowLogs.map((r) => [r.level, r.message])).to.deep.equal([
          [
            "info",
            "Redis has no record of this semaphore from its current process (new, or Redis restarted, failed over or lost its data): granting no new permits for 6s while running tasks re-register",
          ],
        ]);
        for (const permit of permits) await (await permit).release();
      });
    } finally {
      client.disconnect();
    }
  });

  it("keeps the limit when Redis restarts empty: a process connecting as it comes back waits for running tasks to re-register", async function () {
    if (!redis.restartable) this.skip();
    const tasks = taskCounter();
    const a = await process_({ limit: 3 });
    const aPermits = [await tasks.take(a, never), await tasks.take(a, never), await tasks.take(a, never)];
    await redis.stopProcess(); // SIGKILL, no persistence: every lease and the epoch are gone
    await until(() => !a.health().ready, 5000, "A to notice Redis is down");
    await redis.startProcess();
    // A new pod starting now (a rollout, a replaced node): it has never seen this Redis before.
    const b = await process_({ limit: 3, recheckMs: 200 });
    const giveUp = new AbortController();
    const fromB = [tasks.take(b, giveUp.signal), tasks.take(b, giveUp.signal), tasks.take(b, giveUp.signal)];
    await until(async () => (await holders()) === 3, 5000, "A's running tasks to be counted again");
    expect(b.held(), "B's permits while A's three tasks run").to.equal(0);
    // Past the window (B asks again at its end): still no room while A's tasks run.
    const { until: end } = await epochAndNow();
    await until(async () => (await epochAndNow()).now > end + 500, MIN_LEASE_TTL_MS + 5000, "the window");
    expect(b.held(), "B's permits while A's three tasks run").to.equal(0);
    expect(a.health().ready, "A lost no lease").to.equal(true);
    for (const permit of aPermits) await tasks.give(permit);
    await until(() => b.held() === 3, 5000, "B to take the permits A's finished tasks freed");
    giveUp.abort();
    for (const permit of await Promise.all(fromB)) await tasks.give(permit);
    expect(tasks.peak, "tasks running at once").to.equal(3);
  });

  it("re-registers every running lease in a data-loss window, even while a lowered limit drains", async function () {
    if (!redis.restartable) this.skip();
    const tasks = taskCounter();
    const a = await process_({ limit: 3 });
    const aPermits = [await tasks.take(a, never), await tasks.take(a, never), await tasks.take(a, never)];
    a.setLimit(1); // A's three tasks drain: nobody may start until they are under one
    await redis.stopProcess(); // SIGKILL, no persistence: every lease and the epoch are gone
    await until(() => !a.health().ready, 5000, "A to notice Redis is down");
    await redis.startProcess();
    const b = await process_({ limit: 1, recheckMs: 200 });
    const giveUp = new AbortController();
    const fromB = tasks.take(b, giveUp.signal);
    await until(
      async () => (await holders()) === 3,
      5000,
      "all three of A's running tasks to be counted again",
    );
    expect(a.health().ready, "A lost no lease").to.equal(true);
    // Past the window: A's tasks still run, so B may start only once all three are done.
    const { until: end } = await epochAndNow();
    await until(async () => (await epochAndNow()).now > end + 500, MIN_LEASE_TTL_MS + 5000, "the window");
    for (const permit of aPermits.slice(0, 2)) {
      await tasks.give(permit);
      await sleep(500); // B re-checks every 200 ms
      expect(b.held(), "B's permits while A's tasks drain above the limit").to.equal(0);
    }
    await tasks.give(aPermits[2]);
    await until(() => b.held() === 1, 5000, "B to take the permit once A's last task ended");
    giveUp.abort();
    await tasks.give(await fromB);
    expect(tasks.peak, "tasks running at once").to.equal(3); // A's three, never B's beside them
  });

  it("extends the data-loss window to the longest lease TTL a holder re-registers with, for its peers", async function () {
    if (!redis.restartable) this.skip();
    const tasks = taskCounter();
    const longTtl = 2 * MIN_LEASE_TTL_MS;
    const l1 = await process_({ limit: 3, leaseTtlMs: longTtl });
    const l2 = await process_({ limit: 3, leaseTtlMs: longTtl });
    const [l1Connection, l2Connection] = connections as [RedisConnection, RedisConnection];
    const held = [await tasks.take(l1, never), await tasks.take(l2, never)];
    await redis.stopProcess();
    await until(() => !l1.health().ready && !l2.health().ready, 5000, "both to notice Redis is down");
    // Their connections come back when the test says: L1 within the short window, L2 after it.
    l1Connection.client.disconnect();
    l2Connection.client.disconnect();
    await redis.startProcess();
    const s = await process_({ limit: 3, leaseTtlMs: MIN_LEASE_TTL_MS, recheckMs: 200 });
    const giveUp = new AbortController();
    const fromS = [tasks.take(s, giveUp.signal), tasks.take(s, giveUp.signal), tasks.take(s, giveUp.signal)];
    await until(async () => s.held() > 0 || (await epochAndNow()).until > 0, 5000, "S's first acquisition");
    expect(s.held(), "S's permits while the holders cannot re-register yet").to.equal(0);
    const opened = await epochAndNow();
    expect(opened.until - opened.since, "S opened a window of its own TTL").to.equal(MIN_LEASE_TTL_MS);
    await l1Connection.client.connect();
    await until(async () => (await holders()) === 1, 5000, "L1 to re-register");
    const extended = await epochAndNow();
    expect(extended.until - extended.since, "L1 extended it to its TTL").to.equal(longTtl);
    // Past S's own window: S takes nothing, so L2's task still finds its permit when it re-registers.
    await until(async () => (await epochAndNow()).now > opened.until + 500, 10_000, "S's own window");
    expect(s.held(), "S's permits within L1's window").to.equal(0);
    await l2Connection.client.connect();
    await until(async () => (await holders()) === 2, 5000, "L2 to re-register");
    expect(l2.health().ready, "L2 lost no lease").to.equal(true);
    await until(() => s.held() === 1, longTtl + 5000, "S to take the free permit after the window");
    await sleep(300);
    giveUp.abort();
    const sPermits = await Promise.all(fromS);
    expect(sPermits.filter(Boolean), "S's permits").to.have.length(1);
    expect(tasks.peak, "tasks running at once").to.equal(3);
    for (const permit of [...held, ...sPermits]) await tasks.give(permit);
  });

  it("announces a data-loss window: holders re-register at once, not at their next refresh", async () => {
    const tasks = taskCounter();
    const longTtl = 4 * MIN_LEASE_TTL_MS; // refreshed every 8 s: after a window of the short TTL
    const l = await process_({ limit: 3, leaseTtlMs: longTtl });
    const held = [await tasks.take(l, never), await tasks.take(l, never)];
    // Redis loses the semaphore's data without dropping a connection (as FLUSHALL would).
    const client = redis.client();
    try {
      const { holders: h, waiting, queue, epoch } = l.keys;
      await client.del(h, waiting, queue, epoch);
    } finally {
      client.disconnect();
    }
    const s = await process_({ limit: 3, leaseTtlMs: MIN_LEASE_TTL_MS, recheckMs: 200 });
    const giveUp = new AbortController();
    const fromS = [tasks.take(s, giveUp.signal), tasks.take(s, giveUp.signal), tasks.take(s, giveUp.signal)];
    await until(async () => s.held() > 0 || (await epochAndNow()).until > 0, 5000, "S's first acquisition");
    const opened = await epochAndNow();
    // Past the window S opened, and before L's next refresh: L's tasks are counted, S took nothing.
    await until(
      async () => (await epochAndNow()).now > opened.since + MIN_LEASE_TTL_MS + 500,
      10_000,
      "S's window",
    );
    expect(s.held(), "S's permits while L's two tasks run").to.equal(0);
    expect(await holders(), "L's leases").to.equal(2);
    const extended = await epochAndNow();
    expect(extended.until - extended.since, "the window, extended by L").to.equal(longTtl);
    giveUp.abort();
    for (const permit of [...held, ...(await Promise.all(fromS))]) await tasks.give(permit);
    expect(tasks.peak, "tasks running at once").to.equal(2);
  });

  /**
   * Makes Redis hold every client's commands for `ms`, longer than the client's command timeout: the
   * client gives up on a script call that Redis then runs (the reply is lost, the effect is not).
   */
  async function pauseRedis(ms: number): Promise<void> {
    const client = redis.client();
    try {
      // Loaded, as in a Redis that has served the semaphore for a while: a script called by its SHA
      // for the first time would fail with NOSCRIPT when the pause ends instead of running.
      for (const script of [ACQUIRE, REFRESH, RELEASE, TRANSFER]) await client.script("LOAD", script);
      await client.call("CLIENT", "PAUSE", String(ms));
    } finally {
      client.disconnect();
    }
  }

  it("gives back the permits of an acquisition that timed out but ran, long before their TTL", async () => {
    const longTtl = 60_000; // an orphaned lease would keep its permit this long
    const a = await process_({ limit: 2, leaseTtlMs: longTtl });
    const b = await process_({ limit: 2, leaseTtlMs: longTtl });
    await pauseRedis(COMMAND_TIMEOUT_MS + 1000);
    const fromA = a.acquire(never); // its first call times out; Redis runs it when the pause ends
    const aPermit = await fromA; // granted by a retry
    // The other permit is free: the timed-out call's lease was given back.
    const giveUp = new AbortController();
    const timer = setTimeout(() => giveUp.abort(), 10_000);
    const bPermit = await semaphore_(b, giveUp.signal);
    clearTimeout(timer);
    expect(bPermit, "B's permit (the timed-out call's lease would hold it for 60 s)").to.not.equal(undefined);
    expect(await holders()).to.equal(2);
    await aPermit.release();
    await bPermit?.release();
  });

  it("gives back the new lease of a hand-over that timed out but ran", async () => {
    const longTtl = 60_000; // an orphaned lease would keep its permit this long
    const a = await process_({ limit: 3, leaseTtlMs: longTtl });
    const held = [await a.acquire(never), await a.acquire(never)];
    a.setLimit(2); // lowered: a hand-over goes through Redis (TRANSFER) until a grant confirms it
    const giveUp = new AbortController();
    const waiter = semaphore_(a, giveUp.signal); // a's own leases reach the limit: it waits here
    await sleep(50);
    await pauseRedis(COMMAND_TIMEOUT_MS + 1000);
    // To the waiter through TRANSFER, whose call times out; Redis runs it when the pause ends.
    await held[0]?.release();
    const timer = setTimeout(() => giveUp.abort(), 10_000);
    const permit = await waiter;
    clearTimeout(timer);
    expect(permit, "the waiter's permit (the lost hand-over's lease would hold it for 60 s)").to.not.equal(
      undefined,
    );
    expect(await holders()).to.equal(2);
    await permit?.release();
    await held[1]?.release();
  });

  it("a lease lost to others stops new permits until its task finishes", async () => {
    const a = await process_({ limit: 1 });
    const b = await process_({ limit: 1 });
    const orphan = await a.acquire(never);
    // Simulate a long partition of A: its lease vanishes and B takes the only permit.
    const client = redis.client();
    await client.del(a.keys.holders);
    client.disconnect();
    const bPermit = await b.acquire(never);
    await until(() => !a.health().ready, MIN_LEASE_TTL_MS, "A to find its lease lost (next refresh)");
    expect(a.health().reason).to.match(/lost/);
    await bPermit.release();
    let acquired: Permit | undefined;
    void a.acquire(never).then((permit) => {
      acquired = permit;
    });
    await sleep(500);
    expect(acquired, "A takes nothing while its orphaned task runs").to.equal(undefined);
    await orphan.release();
    await until(() => acquired !== undefined, 3000, "A to take a permit again");
    await acquired?.release();
  });

  it("wakes a waiter whose hand-over a lowered limit refused once a crashed holder's lease expires", async () => {
    const a = await process_({ limit: 2 });
    const b = await process_({ limit: 2 });
    const aPermit = await a.acquire(never);
    await b.acquire(never); // never released: B crashes below
    a.setLimit(1);
    b.setLimit(1);
    // A's own lease reaches the new limit: this waiter waits here without asking Redis.
    const waiter = timedAcquire(a);
    await sleep(100);
    // Through Redis (TRANSFER), which finds B's lease at the limit: it only releases.
    await aPermit.release();
    expect(await holders(), "B's lease").to.equal(1);
    await connections[1]?.close(); // B dies: its lease expires, and nobody publishes anything
    await until(() => waiter.acquiredAt > 0, MIN_LEASE_TTL_MS + 5000, "A's waiter to get the freed permit");
    expect(await holders()).to.equal(1);
    await (await waiter.permit).release();
  });

  it("refreshes its leases first after a reconnect, then resends the releases that failed meanwhile", async () => {
    const a = await process_({ limit: 2 });
    const aConnection = connections.at(-1) as RedisConnection;
    const running = await a.acquire(never);
    const done = await a.acquire(never);
    aConnection.client.disconnect();
    await until(() => !aConnection.ready, 5000, "A to notice");
    await done.release(); // fails at once (Redis unreachable): kept pending, resent later
    const sha = (source: string) => createHash("sha1").update(source).digest("hex");
    const names = new Map([
      [sha(REFRESH), "refresh"],
      [sha(RELEASE), "release"],
    ]);
    const monitor = await redis.client().monitor();
    try {
      const sent: string[] = [];
      monitor.on("monitor", (_time: string, args: string[]) => {
        const name = String(args[0]).toLowerCase() === "evalsha" ? names.get(String(args[1])) : undefined;
        // A release with lease ids (not a waiting-list update).
        if (name === "refresh" || (name === "release" && args.length > 3 + 4 + 4)) sent.push(name);
      });
      await aConnection.client.connect();
      await until(() => sent.length >= 2, 5000, "the refresh and the resent release");
      // The refresh does not wait for the release's answer (up to the command timeout when Redis is
      // slow, which is when releases are pending): limits.ts's bound on the TTL counts on it.
      expect(sent.slice(0, 2)).to.deep.equal(["refresh", "release"]);
      await until(async () => (await holders()) === 1, 5000, "the release");
      expect(a.health().ready).to.equal(true);
    } finally {
      monitor.disconnect();
    }
    await running.release();
  });

  it("an epoch without a Redis run id (an older version's) opens the window once, and records the run id", async () => {
    const client = redis.client();
    try {
      await client.hdel(semaphoreKeys(ARN).epoch, "run");
      const a = await process_({ limit: 2 });
      const first = timedAcquire(a);
      await until(
        async () => (await client.hget(semaphoreKeys(ARN).epoch, "run")) !== null,
        5000,
        "the epoch",
      );
      expect(await client.hget(semaphoreKeys(ARN).epoch, "run")).to.equal(await serverRunId(client));
      expect(first.acquiredAt, "granted at once").to.equal(0);
      const { since, until: end } = await epochAndNow();
      expect(end - since, "the window: one lease TTL").to.equal(MIN_LEASE_TTL_MS);
      const permit = await first.permit;
      // Once recorded, it opens no other window: the next acquisition is granted by one ACQUIRE
      // (counted by script on this process's own client: a REFRESH of the first lease may run meanwhile).
      const acquireSha = createHash("sha1").update(ACQUIRE).digest("hex");
      const commands = connections[connections.length - 1]?.client;
      if (commands === undefined) throw new Error("no connection");
      const acquires: string[] = [];
      const evalsha = commands.evalsha.bind(commands);
      commands.evalsha = ((sha: string, ...rest: unknown[]) => {
        if (sha === acquireSha) acquires.push("acquire");
        return (evalsha as (...args: unknown[]) => unknown)(sha, ...rest);
      }) as typeof commands.evalsha;
      let second: Permit;
      try {
        second = await a.acquire(never);
      } finally {
        commands.evalsha = evalsha;
      }
      expect(acquires).to.have.length(1);
      expect((await epochAndNow()).since, "no new window").to.equal(since);
      await second.release();
      await permit.release();
    } finally {
      client.disconnect();
    }
  });

  it("warns at connect when Redis may evict the semaphore's keys (maxmemory-policy other than noeviction)", async function () {
    if (!redis.restartable) this.skip();
    const evicting = await RedisServer.start({
      args: ["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"],
    });
    try {
      await withLogs(async (records) => {
        const warnings = () => records.filter((r) => /maxmemory-policy/.test(String(r.message)));
        await process_({}, evicting.url);
        await until(() => warnings().length > 0, 3000, "the warning");
        expect(warnings().map((r) => [r.level, r.maxmemoryPolicy])).to.deep.equal([["warn", "volatile-lru"]]);
        // Redis's default (noeviction, no maxmemory): nothing to say.
        records.length = 0;
        await process_({}, redis.url);
        await sleep(300);
        expect(warnings()).to.deep.equal([]);
      });
    } finally {
      for (const semaphore of semaphores.splice(0)) await semaphore.close();
      for (const connection of connections.splice(0)) await connection.close();
      await evicting.stop();
    }
  });

  describe("with persistence (AOF, fsynced on every write)", () => {
    let persisted: RedisServer;

    before(async () => {
      persisted = await RedisServer.start({ persistence: true });
    });
    after(async () => {
      await persisted.stop();
    });

    beforeEach(async () => {
      const client = persisted.client();
      try {
        await client.flushall();
        await client.hset(semaphoreKeys(ARN).epoch, { since: 0, until: 0, run: await serverRunId(client) });
      } finally {
        client.disconnect();
      }
    });

    /** Runs `use` with a plain client of the persisted Redis. */
    async function onPersisted<T>(use: (client: Redis) => Promise<T>): Promise<T> {
      const client = persisted.client();
      try {
        return await use(client);
      } finally {
        client.disconnect();
      }
    }

    const persistedHolders = () => onPersisted((client) => client.zcard(semaphoreKeys(ARN).holders));
    /** The epoch (since, until, run) and the server's time, ms. */
    const persistedEpoch = () =>
      onPersisted(async (client) => {
        const epoch = await client.hgetall(semaphoreKeys(ARN).epoch);
        const [seconds, micros] = await client.time();
        const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
        return { since: Number(epoch.since), until: Number(epoch.until), run: epoch.run, now };
      });

    it("keeps the limit when Redis comes back with its data after an outage longer than the lease TTL", async function () {
      if (!persisted.restartable) this.skip();
      const tasks = taskCounter();
      const a = await process_({ limit: 2 }, persisted.url);
      const aConnection = connections.at(-1) as RedisConnection;
      const aPermits = [await tasks.take(a, never), await tasks.take(a, never)];
      await persisted.stopProcess(); // SIGKILL: with appendfsync always, nothing is lost
      await until(() => !a.health().ready, 5000, "A to notice Redis is down");
      aConnection.client.disconnect(); // A comes back when the test says, after B asked
      // Longer than the lease TTL: by Redis's clock, which goes on, A's leases have expired.
      await sleep(MIN_LEASE_TTL_MS + 2000);
      await persisted.startProcess();
      const runId = await onPersisted(serverRunId);
      expect(
        await onPersisted((client) => client.exists(semaphoreKeys(ARN).epoch)),
        "the epoch, kept",
      ).to.equal(1);
      // A pod that starts now (a rollout, a replaced node), or any process that reconnects first.
      const b = await process_({ limit: 2, recheckMs: 200 }, persisted.url);
      const giveUp = new AbortController();
      const fromB = [tasks.take(b, giveUp.signal), tasks.take(b, giveUp.signal)];
      await until(
        async () => b.held() > 0 || (await persistedEpoch()).run === runId,
        5000,
        "B's first acquisition",
      );
      expect(b.held(), "B's permits while A's two tasks run").to.equal(0);
      const opened = await persistedEpoch();
      expect(opened.until - opened.since, "a window of one lease TTL").to.equal(MIN_LEASE_TTL_MS);
      await aConnection.client.connect();
      await until(
        async () => (await persistedHolders()) === 2,
        5000,
        "A's running tasks to be counted again",
      );
      await until(
        async () => (await persistedEpoch()).now > opened.until + 500,
        MIN_LEASE_TTL_MS + 5000,
        "the window",
      );
      expect(b.held(), "B's permits while A's two tasks run").to.equal(0);
      expect(a.health().ready, "A lost no lease").to.equal(true);
      for (const permit of aPermits) await tasks.give(permit);
      await until(() => b.held() === 2, 5000, "B to take the permits A's finished tasks freed");
      giveUp.abort();
      for (const permit of await Promise.all(fromB)) await tasks.give(permit);
      expect(tasks.peak, "tasks running at once").to.equal(2);
    });

    it("opens the window on a quick restart with persistence too (its last grants may not have been saved)", async function () {
      if (!persisted.restartable) this.skip();
      // With appendfsync everysec (Redis's default with AOF), a crash loses up to the last second of
      // writes: grants whose tasks run. The restarted server cannot tell what it lost, so any restart
      // holds new grants back for one lease TTL while running tasks re-register.
      const tasks = taskCounter();
      const a = await process_({ limit: 2 }, persisted.url);
      const aPermit = await tasks.take(a, never);
      const before = await persistedEpoch();
      await persisted.stopProcess();
      await persisted.startProcess(); // well within the lease TTL: A's lease is still there
      const runId = await onPersisted(serverRunId);
      expect(runId, "another Redis process").to.not.equal(before.run);
      expect(await persistedHolders(), "A's lease, kept").to.equal(1);
      const b = await process_({ limit: 2, recheckMs: 200 }, persisted.url);
      const giveUp = new AbortController();
      const fromB = tasks.take(b, giveUp.signal);
      await until(
        async () => b.held() > 0 || (await persistedEpoch()).run === runId,
        5000,
        "B's first acquisition",
      );
      expect(b.held(), "B's permit, during the window").to.equal(0);
      const opened = await persistedEpoch();
      expect(opened.until - opened.since, "a window of one lease TTL").to.equal(MIN_LEASE_TTL_MS);
      await until(() => b.held() === 1, MIN_LEASE_TTL_MS + 5000, "B's permit after the window");
      expect((await persistedEpoch()).now, "granted after the window").to.be.at.least(opened.until);
      expect(await persistedHolders()).to.equal(2);
      expect(a.health().ready, "A lost no lease").to.equal(true);
      giveUp.abort();
      await tasks.give(await fromB);
      await tasks.give(aPermit);
      expect(tasks.peak, "tasks running at once").to.equal(2);
    });
  });
});
