import { Writable } from "node:stream";
import { ApiException } from "@kubernetes/client-node";
import { expect } from "chai";
import { Registry } from "prom-client";
import winston from "winston";
import { isConflict, type Reconcile, runWorkers } from "../../src/operator/controller.ts";
import { ControllerMetrics } from "../../src/operator/controller-metrics.ts";
import { defaultControllerRateLimiter, WorkQueue } from "../../src/operator/work-queue.ts";
import { until } from "../support/waiting.ts";

interface LogRecord {
  level: string;
  message: string;
  [field: string]: unknown;
}

/** A logger whose records (`level` and above, info by default) land in `records`. */
function capturingLogger(level = "info"): { log: winston.Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      records.push(JSON.parse(chunk.toString()) as LogRecord);
      callback();
    },
  });
  const log = winston.createLogger({
    level,
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { log, records };
}

/** A promise with its resolve function, for reconciles a test holds open. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

function setup(reconcile: Reconcile, workers = 2, level = "info") {
  const registry = new Registry();
  const metrics = new ControllerMetrics(registry);
  // Small delays: these tests wait for retries on the real clock.
  const queue = new WorkQueue({
    name: "test",
    metrics,
    rateLimiter: defaultControllerRateLimiter({ baseDelayMs: 1, maxDelayMs: 20 }),
  });
  const { log, records } = capturingLogger(level);
  const running = runWorkers({ queue, workers, reconcile, metrics, log });
  const results = async (): Promise<Record<string, number>> => {
    const metric = await registry.getSingleMetric("sfn_operator_reconcile_total")?.get();
    return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.result), v.value]));
  };
  return { queue, running, records, results };
}

const conflict = (): ApiException<unknown> =>
  new ApiException(409, "Conflict", { reason: "Conflict", message: "the object has been modified" }, {});

describe("controller workers", () => {
  it("retries a failing reconcile with growing backoff, logs each failure, and a success forgets it", async () => {
    const seenRequeues: number[] = [];
    let calls = 0;
    const { queue, running, records, results } = setup(async (key) => {
      seenRequeues.push(queue.numRequeues(key));
      calls += 1;
      if (calls <= 3) throw new Error(`boom ${calls}`);
    });
    queue.add("team-a/sum");
    await until(() => calls === 4 && queue.processingCount() === 0, 5_000, "four reconciles");
    expect(seenRequeues).to.deep.equal([0, 1, 2, 3]);
    expect(queue.numRequeues("team-a/sum"), "forgotten after the success").to.equal(0);
    const errors = records.filter((r) => r.level === "error");
    expect(errors).to.have.length(3);
    expect(errors[0]).to.include({
      message: "reconcile failed",
      namespace: "team-a",
      name: "sum",
      error: "boom 1",
      retries: 1,
    });
    expect(await results()).to.deep.equal({ error: 3, success: 1 });
    await running.stop();
  });

  it("requeues a conflict (409) at once without logging an error", async () => {
    let calls = 0;
    const { queue, running, records, results } = setup(async () => {
      calls += 1;
      if (calls === 1) throw conflict();
    });
    queue.add("team-a/sum");
    await until(() => calls === 2 && queue.processingCount() === 0, 5_000, "the retry after the conflict");
    expect(records.filter((r) => r.level === "error" || r.level === "warn")).to.deep.equal([]);
    expect(await results()).to.deep.equal({ requeue: 1, success: 1 });
    await running.stop();
  });

  it("logs every reconcile at debug level with its key, result and duration", async () => {
    let calls = 0;
    const { queue, running, records } = setup(
      async () => {
        calls += 1;
        if (calls === 1) throw conflict();
      },
      2,
      "debug",
    );
    queue.add("team-a/sum");
    await until(() => calls === 2 && queue.processingCount() === 0, 5_000, "two reconciles");
    const reconciled = records.filter((r) => r.message === "reconciled");
    expect(reconciled.map((r) => [r.level, r.namespace, r.name, r.result])).to.deep.equal([
      ["debug", "team-a", "sum", "requeue"],
      ["debug", "team-a", "sum", "success"],
    ]);
    for (const record of reconciled) expect(record.durationMs).to.be.a("number");
    await running.stop();
  });

  it("recognises a conflict wrapped as the cause of another error, and nothing else", () => {
    expect(isConflict(conflict())).to.equal(true);
    expect(isConflict(new Error("applying the Deployment", { cause: conflict() }))).to.equal(true);
    expect(isConflict(new ApiException(404, "Not Found", {}, {}))).to.equal(false);
    expect(isConflict(Object.assign(new Error("not an ApiException"), { code: 409 }))).to.equal(false);
    expect(isConflict(undefined)).to.equal(false);
  });

  it("requeues after the delay a reconcile asks for, and forgets the key's backoff", async () => {
    let calls = 0;
    const { queue, running, results } = setup(async () => {
      calls += 1;
      if (calls === 1) throw new Error("first fails");
      if (calls === 2) return { requeueAfterMs: 30 };
    });
    queue.add("team-a/sum");
    await until(() => calls === 2 && queue.processingCount() === 0, 5_000, "the second reconcile");
    expect(queue.numRequeues("team-a/sum")).to.equal(0);
    expect(queue.delayedCount()).to.equal(1);
    await until(() => calls === 3 && queue.processingCount() === 0, 5_000, "the requeue after 30 ms");
    expect(await results()).to.deep.equal({ error: 1, requeue_after: 1, success: 1 });
    await running.stop();
  });

  it("runs up to `workers` reconciles at once, never two of one key", async () => {
    const gates = new Map<string, ReturnType<typeof gate>>();
    const running = new Set<string>();
    let peak = 0;
    let overlaps = 0;
    const started: string[] = [];
    const {
      queue,
      running: workers,
      results,
    } = setup(async (key) => {
      if (running.has(key)) overlaps += 1;
      running.add(key);
      started.push(key);
      peak = Math.max(peak, running.size);
      const g = gate();
      gates.set(key, g);
      await g.promise;
      running.delete(key);
    }, 3);
    for (const key of ["ns/a", "ns/b", "ns/c", "ns/d"]) queue.add(key);
    await until(() => running.size === 3, 5_000, "three reconciles running");
    queue.add("ns/a"); // while a runs: it must wait for the first run to end
    await new Promise((r) => setImmediate(r));
    expect(started).to.deep.equal(["ns/a", "ns/b", "ns/c"]);
    gates.get("ns/a")?.open();
    await until(() => started.length === 4, 5_000, "d (queued first) to start");
    expect(started[3]).to.equal("ns/d");
    gates.get("ns/b")?.open();
    await until(() => started.length === 5, 5_000, "a again");
    expect(started[4]).to.equal("ns/a");
    for (const key of ["ns/a", "ns/c", "ns/d"]) gates.get(key)?.open();
    await until(() => running.size === 0 && queue.len() === 0, 5_000, "all done");
    expect(peak).to.equal(3);
    expect(overlaps).to.equal(0);
    expect((await results()).success).to.equal(5);
    await workers.stop();
  });

  it("stop() takes no new key, waits for the reconciles in flight, and does not abort them", async () => {
    const g = gate();
    const started: string[] = [];
    const signals: AbortSignal[] = [];
    let finished = 0;
    const { queue, running } = setup(async (key, signal) => {
      started.push(key);
      signals.push(signal);
      await g.promise;
      finished += 1;
    }, 2);
    for (const key of ["ns/a", "ns/b", "ns/c", "ns/d"]) queue.add(key);
    await until(() => started.length === 2, 5_000, "two reconciles in flight");
    let stopped = false;
    const stopping = running.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(stopped).to.equal(false);
    g.open();
    await stopping;
    expect(finished).to.equal(2);
    expect(started).to.deep.equal(["ns/a", "ns/b"]);
    expect(signals.every((s) => !s.aborted)).to.equal(true);
    queue.add("ns/e");
    expect(queue.len(), "the queue is shut down").to.equal(0);
  });

  it("stop({ abortInFlight }) aborts the reconciles' signal; an aborted reconcile is not logged as an error", async () => {
    let started = 0;
    const { queue, running, records } = setup(async (_key, signal) => {
      started += 1;
      await new Promise<void>((_resolve, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }, 1);
    queue.add("ns/a");
    await until(() => started === 1, 5_000, "the reconcile in flight");
    await running.stop({ abortInFlight: true });
    expect(records.filter((r) => r.level === "error")).to.deep.equal([]);
  });

  it("refuses a worker count that is not a positive integer", () => {
    const queue = new WorkQueue();
    expect(() => runWorkers({ queue, workers: 0, reconcile: async () => {} })).to.throw(/positive integer/);
    queue.shutDown();
  });
});
