import { expect } from "chai";
import { Registry } from "prom-client";
import { ControllerMetrics } from "../../src/operator/controller-metrics.ts";
import {
  type Clock,
  defaultControllerRateLimiter,
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  objectKey,
  splitKey,
  TokenBucketRateLimiter,
  WorkQueue,
} from "../../src/operator/work-queue.ts";
import { Prng } from "../support/prng.ts";

/** A manual clock: time moves only when the test advances it, firing due timers in time order. */
class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers: Array<{ at: number; seq: number; callback: () => void }> = [];

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, ms: number): () => void {
    const timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, callback };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  get pendingTimers(): number {
    return this.#timers.length;
  }

  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.at;
      due.callback();
    }
    this.#now = target;
  }
}

/** Lets every promise callback queued so far run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A get() whose result is looked at later, without racing a second get() against it. */
function pendingGet(queue: WorkQueue): { readonly settled: boolean; readonly key: string | undefined } {
  const state = { settled: false, key: undefined as string | undefined };
  void queue.get().then((key) => {
    state.settled = true;
    state.key = key;
  });
  return state;
}

/** Takes every key that is ready now (and marks each done). */
async function drainReady(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.len() > 0) {
    const key = (await queue.get()) as string;
    keys.push(key);
    queue.done(key);
  }
  return keys;
}

function newQueue(clock = new FakeClock(), options: { baseDelayMs?: number; maxDelayMs?: number } = {}) {
  const queue = new WorkQueue({
    clock,
    rateLimiter: defaultControllerRateLimiter({ baseDelayMs: 5, maxDelayMs: 1000, ...options }, clock),
  });
  return { queue, clock };
}

describe("work queue", () => {
  describe("keys", () => {
    it("are namespace/name, or name alone for cluster-scoped objects", () => {
      expect(objectKey({ metadata: { namespace: "team-a", name: "sum" } })).to.equal("team-a/sum");
      expect(objectKey({ metadata: { name: "node-1" } })).to.equal("node-1");
      expect(splitKey("team-a/sum")).to.deep.equal({ namespace: "team-a", name: "sum" });
      expect(splitKey("node-1")).to.deep.equal({ namespace: undefined, name: "node-1" });
    });
  });

  describe("adding and taking", () => {
    it("hands keys out in the order they were added", async () => {
      const { queue } = newQueue();
      for (const key of ["a", "b", "c"]) queue.add(key);
      expect(await drainReady(queue)).to.deep.equal(["a", "b", "c"]);
      queue.shutDown();
    });

    it("coalesces adds of a key that is waiting: many events, one reconcile", async () => {
      const { queue } = newQueue();
      queue.add("a");
      queue.add("b");
      for (let i = 0; i < 10; i += 1) queue.add("a");
      expect(queue.len()).to.equal(2);
      expect(await drainReady(queue)).to.deep.equal(["a", "b"]);
      queue.shutDown();
    });

    it("get() waits for an add without polling (no timer), and waiting workers are served in order", async () => {
      const { queue, clock } = newQueue();
      const first = pendingGet(queue);
      const second = pendingGet(queue);
      await flush();
      expect(first.settled || second.settled).to.equal(false);
      expect(clock.pendingTimers).to.equal(0);
      queue.add("a");
      await flush();
      expect(first).to.deep.include({ settled: true, key: "a" });
      expect(second.settled).to.equal(false);
      queue.add("b");
      await flush();
      expect(second).to.deep.include({ settled: true, key: "b" });
      queue.shutDown();
    });
  });

  describe("one worker per key", () => {
    it("never hands a key that is being processed to a second worker; done() re-queues it", async () => {
      const { queue } = newQueue();
      queue.add("a");
      expect(await queue.get()).to.equal("a");
      queue.add("a"); // an event while "a" is reconciled: marked dirty, not queued
      queue.add("a");
      expect(queue.len()).to.equal(0);
      const second = pendingGet(queue);
      await flush();
      expect(second.settled).to.equal(false);
      queue.done("a");
      await flush();
      expect(second).to.deep.include({ settled: true, key: "a" });
      queue.done("a");
      // Nothing was added during the second run: no third.
      expect(queue.len()).to.equal(0);
      queue.shutDown();
    });

    it("done() without a re-add does not queue the key again", async () => {
      const { queue } = newQueue();
      queue.add("a");
      const key = (await queue.get()) as string;
      queue.done(key);
      expect(queue.len()).to.equal(0);
      queue.shutDown();
    });

    it("lets other keys through while one is processing", async () => {
      const { queue } = newQueue();
      queue.add("a");
      await queue.get();
      queue.add("a");
      queue.add("b");
      expect(await queue.get()).to.equal("b");
      queue.shutDown();
    });

    it("random adds and workers: no key runs twice at once, and no add is lost", async () => {
      const random = new Prng(20261130);
      const { queue } = newQueue();
      const keys = ["k0", "k1", "k2", "k3", "k4"];
      const version = new Map<string, number>(keys.map((k) => [k, 0]));
      const seen = new Map<string, number>();
      const running = new Set<string>();
      let overlaps = 0;
      let runs = 0;
      const worker = async (): Promise<void> => {
        for (;;) {
          const key = await queue.get();
          if (key === undefined) return;
          if (running.has(key)) overlaps += 1;
          running.add(key);
          runs += 1;
          // The state this run sees: everything added before it started.
          seen.set(key, version.get(key) ?? 0);
          for (let i = random.int(0, 3); i > 0; i -= 1) await flush();
          running.delete(key);
          queue.done(key);
        }
      };
      const workers = Array.from({ length: 4 }, worker);
      for (let step = 0; step < 400; step += 1) {
        const key = keys[random.int(0, keys.length - 1)] as string;
        version.set(key, (version.get(key) ?? 0) + 1);
        queue.add(key);
        if (random.next() < 0.5) await flush();
      }
      while (queue.len() > 0 || queue.processingCount() > 0) await flush();
      queue.shutDown();
      await Promise.all(workers);
      expect(overlaps).to.equal(0);
      // Every key was processed after its last add (level-triggered: the last state was seen)...
      for (const key of keys) expect(seen.get(key), key).to.equal(version.get(key));
      // ...with fewer runs than adds (coalescing).
      expect(runs).to.be.below(400);
    });
  });

  describe("delayed adds", () => {
    it("adds the key once the delay is over, not before", async () => {
      const { queue, clock } = newQueue();
      queue.addAfter("a", 1000);
      clock.advance(999);
      expect(queue.len()).to.equal(0);
      clock.advance(1);
      expect(queue.len()).to.equal(1);
      queue.shutDown();
    });

    it("the earliest pending delay wins: a later one neither postpones it nor adds again", async () => {
      const { queue, clock } = newQueue();
      queue.addAfter("a", 10_000);
      queue.addAfter("a", 100);
      queue.addAfter("a", 5_000);
      expect(queue.delayedCount()).to.equal(1);
      clock.advance(100);
      expect(await drainReady(queue)).to.deep.equal(["a"]);
      clock.advance(20_000);
      expect(queue.len()).to.equal(0);
      expect(clock.pendingTimers).to.equal(0);
      queue.shutDown();
    });

    it("keeps one timer however many keys wait, and adds them in time order", async () => {
      const { queue, clock } = newQueue();
      queue.addAfter("c", 300);
      queue.addAfter("a", 100);
      queue.addAfter("b", 200);
      expect(clock.pendingTimers).to.equal(1);
      clock.advance(300);
      expect(await drainReady(queue)).to.deep.equal(["a", "b", "c"]);
      queue.shutDown();
    });

    it("a zero or negative delay adds at once", () => {
      const { queue } = newQueue();
      queue.addAfter("a", 0);
      queue.addAfter("b", -5);
      expect(queue.len()).to.equal(2);
      queue.shutDown();
    });

    it("a delayed add of a key that is already waiting coalesces", async () => {
      const { queue, clock } = newQueue();
      queue.add("a");
      queue.addAfter("a", 10);
      clock.advance(10);
      expect(await drainReady(queue)).to.deep.equal(["a"]);
      queue.shutDown();
    });
  });

  describe("rate limiting", () => {
    it("per key: 5 ms doubling up to the cap, counted by numRequeues, and forget() starts over", () => {
      const limiter = new ItemExponentialRateLimiter(5, 1000);
      const delays = Array.from({ length: 10 }, () => limiter.when("a"));
      expect(delays).to.deep.equal([5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
      expect(limiter.numRequeues("a")).to.equal(10);
      expect(limiter.when("b"), "keys back off independently").to.equal(5);
      limiter.forget("a");
      expect(limiter.numRequeues("a")).to.equal(0);
      expect(limiter.when("a")).to.equal(5);
      for (let i = 0; i < 5000; i += 1) limiter.when("c");
      expect(limiter.when("c"), "no overflow for huge failure counts").to.equal(1000);
    });

    it("the default per-key cap is about 16 minutes", () => {
      const limiter = defaultControllerRateLimiter({ perSecond: 1e9, burst: 1e9 });
      let delay = 0;
      for (let i = 0; i < 40; i += 1) delay = limiter.when("a");
      expect(delay).to.equal(1_000_000);
    });

    it("overall: a token bucket lets the burst through, then spaces retries at its rate", () => {
      const clock = new FakeClock();
      const bucket = new TokenBucketRateLimiter(10, 100, clock);
      const burst = Array.from({ length: 100 }, (_, i) => bucket.when(`k${i}`));
      expect(burst.every((d) => d === 0)).to.equal(true);
      expect(bucket.when("x")).to.be.closeTo(100, 1e-6);
      expect(bucket.when("y")).to.be.closeTo(200, 1e-6);
      expect(bucket.when("z")).to.be.closeTo(300, 1e-6);
      // Tokens come back at 10/s: 1 s later the three reservations are paid and 7 tokens are free.
      clock.advance(1000);
      const after = Array.from({ length: 8 }, (_, i) => bucket.when(`later${i}`));
      expect(after.slice(0, 7).every((d) => d === 0)).to.equal(true);
      expect(after[7]).to.be.closeTo(100, 1e-6);
    });

    it("the larger of per-key backoff and the overall bucket wins", () => {
      const clock = new FakeClock();
      const limiter = new MaxOfRateLimiter(
        new ItemExponentialRateLimiter(5, 1000),
        new TokenBucketRateLimiter(10, 2, clock),
      );
      expect(limiter.when("a")).to.equal(5); // bucket 0, key 5
      expect(limiter.when("b")).to.equal(5);
      expect(limiter.when("c")).to.be.closeTo(100, 1e-6); // bucket empty: 100 > 5
      clock.advance(10_000);
      for (let i = 0; i < 6; i += 1) limiter.when("a");
      expect(limiter.when("a")).to.equal(640); // key 640 > bucket 0 (refilled)
      expect(limiter.numRequeues("a")).to.equal(8);
    });

    it("addRateLimited delays the key by its backoff; forget() through the queue resets it", async () => {
      const { queue, clock } = newQueue();
      const readyAfter = (): number => {
        queue.addRateLimited("a");
        let waited = 0;
        while (queue.len() === 0) {
          clock.advance(1);
          waited += 1;
        }
        return waited;
      };
      const waits: number[] = [];
      for (let i = 0; i < 4; i += 1) {
        waits.push(readyAfter());
        expect(await drainReady(queue)).to.deep.equal(["a"]);
      }
      expect(waits).to.deep.equal([5, 10, 20, 40]);
      expect(queue.numRequeues("a")).to.equal(4);
      queue.forget("a");
      expect(queue.numRequeues("a")).to.equal(0);
      expect(readyAfter()).to.equal(5);
      queue.shutDown();
    });

    it("a failure storm of many keys is spread by the overall limit", async () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({
        clock,
        rateLimiter: defaultControllerRateLimiter({ perSecond: 10, burst: 5 }, clock),
      });
      for (let i = 0; i < 25; i += 1) queue.addRateLimited(`k${i}`);
      clock.advance(5); // every key's own backoff (5 ms) is over; the bucket's burst is 5
      expect(queue.len()).to.equal(5);
      clock.advance(995); // 10 more per second
      expect(queue.len()).to.equal(15);
      clock.advance(1000);
      expect(queue.len()).to.equal(25);
      queue.shutDown();
    });
  });

  describe("shutting down", () => {
    it("releases waiting workers, ignores adds, drops waiting and delayed keys", async () => {
      const { queue, clock } = newQueue();
      const waiting = pendingGet(queue);
      await flush();
      queue.shutDown();
      await flush();
      expect(waiting).to.deep.include({ settled: true, key: undefined });

      const other = newQueue(clock).queue;
      other.add("a");
      other.addAfter("b", 100);
      other.shutDown();
      expect(clock.pendingTimers, "the delay timer is cancelled").to.equal(0);
      other.add("c");
      other.addRateLimited("d");
      expect(await other.get()).to.equal(undefined);
      expect(other.len()).to.equal(0);
      expect(other.delayedCount()).to.equal(0);
    });

    it("shutDownWithDrain waits for the keys in flight, and a dirty one is not re-queued", async () => {
      const { queue } = newQueue();
      queue.add("a");
      queue.add("b");
      const a = (await queue.get()) as string;
      const b = (await queue.get()) as string;
      queue.add("a");
      let drained = false;
      const draining = queue.shutDownWithDrain().then(() => {
        drained = true;
      });
      await flush();
      expect(drained).to.equal(false);
      queue.done(a);
      await flush();
      expect(drained).to.equal(false);
      queue.done(b);
      await draining;
      expect(drained).to.equal(true);
      expect(await queue.get()).to.equal(undefined);
    });

    it("shutDownWithDrain with nothing in flight resolves at once", async () => {
      const { queue } = newQueue();
      await queue.shutDownWithDrain();
      expect(queue.shuttingDown).to.equal(true);
    });
  });

  describe("metrics", () => {
    it("counts depth, adds and retries, and samples work in flight", async () => {
      const registry = new Registry();
      const metrics = new ControllerMetrics(registry);
      const clock = new FakeClock();
      const queue = new WorkQueue({ name: "sources", clock, metrics });
      const value = async (name: string): Promise<number | undefined> =>
        (await registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels.name === "sources")?.value;
      queue.add("a");
      queue.add("a");
      queue.add("b");
      expect(await value("sfn_operator_workqueue_depth")).to.equal(2);
      expect(await value("sfn_operator_workqueue_adds_total")).to.equal(2);
      const key = (await queue.get()) as string;
      expect(await value("sfn_operator_workqueue_depth")).to.equal(1);
      clock.advance(1500);
      expect(await value("sfn_operator_workqueue_longest_running_processor_seconds")).to.equal(1.5);
      expect(await value("sfn_operator_workqueue_unfinished_work_seconds")).to.equal(1.5);
      queue.addRateLimited(key);
      expect(await value("sfn_operator_workqueue_retries_total")).to.equal(1);
      queue.done(key);
      expect(await value("sfn_operator_workqueue_longest_running_processor_seconds")).to.equal(0);
      const text = await registry.metrics();
      expect(text).to.include('sfn_operator_workqueue_queue_duration_seconds_count{name="sources"} 1');
      queue.shutDown();
    });
  });
});
