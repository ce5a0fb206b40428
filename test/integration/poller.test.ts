/**
 * The poller in-process against the real emulator and a real HTTP target: behaviours that are
 * hard to provoke from outside a process.
 */
import { expect } from "chai";
import type { PollerSettings } from "../../src/api/types.ts";
import { StepFunctions } from "../../src/aws/step-functions.ts";
import { EmulatorClient, type RunningEmulator, startEmulator } from "../../src/emulator/index.ts";
import { PollerMetrics } from "../../src/observability/metrics.ts";
import { Poller } from "../../src/poller/poller.ts";
import { InProcessSemaphore } from "../../src/semaphore/in-process.ts";
import { HttpTarget, type TargetRequest } from "../../src/target/http-target.ts";
import type { TargetResult } from "../../src/target/outcome.ts";
import { awsEnvFor } from "../support/cli.ts";
import { TestTarget } from "../support/target-server.ts";

/** A target whose call throws for inputs that ask for it: stands in for a bug anywhere in a task's path. */
class ExplodingTarget extends HttpTarget {
  override async post(request: TargetRequest): Promise<TargetResult> {
    if (request.body.includes("explode"))
      throw new TypeError("cannot read properties of undefined (reading 'x')");
    return super.post(request);
  }
}

describe("poller (in-process, real emulator and target)", function () {
  this.timeout(30_000);
  let emulator: RunningEmulator;
  let client: EmulatorClient;
  let target: TestTarget;
  let stepFunctions: StepFunctions;
  const savedEnv = { ...process.env };

  async function setUp(longPollSeconds: number): Promise<void> {
    emulator = await startEmulator({ port: 0, longPollSeconds });
    client = new EmulatorClient(emulator.url);
    target = await new TestTarget().start();
    Object.assign(process.env, awsEnvFor(emulator.url));
    stepFunctions = new StepFunctions({ workerName: "test-worker", maxConcurrentPolls: 4 });
  }

  afterEach(async () => {
    stepFunctions.destroy();
    await target.close();
    await emulator.close();
    process.env = { ...savedEnv };
  });

  function settings(activityName: string): PollerSettings {
    return {
      sourceName: activityName,
      activityName,
      targetUrl: `${target.url}/work`,
      maxConcurrency: 2,
      concurrencyPerPoller: 2,
      requestTimeoutMs: 5000,
      heartbeatIntervalMs: 10_000,
    };
  }

  it("a task whose processing throws is failed at AWS as Poller.InternalError, and polling goes on", async () => {
    await setUp(1);
    const metrics = new PollerMetrics({ defaultMetrics: false });
    const s = settings("crashy");
    const poller = new Poller(s, {
      stepFunctions,
      semaphoreFor: () => new InProcessSemaphore(2),
      target: new ExplodingTarget(s.targetUrl, 2),
      metrics,
    });
    const running = poller.start(2);
    const { tasks } = await client.enqueue({ activityName: "crashy", input: { explode: true } });
    const { tasks: after } = await client.enqueue({
      activityName: "crashy",
      input: { reply: "json" },
      count: 3,
    });
    await client.waitForTasks({ closedCount: 4 }, 10_000);
    const crashed = await client.getTask(tasks[0]?.taskId as string);
    expect(crashed).to.include({ status: "FAILED", error: "Poller.InternalError" });
    expect(crashed.cause).to.contain("cannot read properties of undefined");
    for (const { taskId } of after) expect((await client.getTask(taskId)).status).to.equal("SUCCEEDED");
    poller.stop();
    await running;
    const counted = await metrics.tasks.get();
    const byOutcome = Object.fromEntries(counted.values.map((v) => [v.labels.outcome, v.value]));
    expect(byOutcome).to.deep.equal({ failed: 1, succeeded: 3 });
  });

  it("does not busy-loop when GetActivityTask comes back empty at once", async () => {
    await setUp(0.005); // an endpoint that answers "no task" immediately
    const s = settings("idle");
    const poller = new Poller(s, {
      stepFunctions,
      semaphoreFor: () => new InProcessSemaphore(2),
      target: new HttpTarget(s.targetUrl, 2),
      metrics: new PollerMetrics({ defaultMetrics: false }),
    });
    const running = poller.start(2);
    await new Promise((r) => setTimeout(r, 3000));
    poller.stop();
    await running;
    const polls = (await client.stats()).requests.GetActivityTask ?? 0;
    // Two loops without backoff would make thousands of calls in 3 s; with backoff (100 ms doubling
    // to 5 s, full jitter) each loop makes a few dozen at most.
    expect(polls).to.be.within(2, 80);
  });

  it("stop() lets an outstanding poll finish and runs the task it brings", async () => {
    await setUp(2);
    const s = settings("late");
    const poller = new Poller(s, {
      stepFunctions,
      semaphoreFor: () => new InProcessSemaphore(1),
      target: new HttpTarget(s.targetUrl, 1),
      metrics: new PollerMetrics({ defaultMetrics: false }),
    });
    const running = poller.start(1);
    while (
      ((await client.stats()).waitingPollers[(await stepFunctions.resolveActivityArn("late")) ?? ""] ?? 0) < 1
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    poller.stop();
    const { tasks } = await client.enqueue({ activityName: "late", input: { reply: "json" } });
    await running;
    expect((await client.getTask(tasks[0]?.taskId as string)).status).to.equal("SUCCEEDED");
    expect((await client.stats()).tasksLostToDisconnectedPollers).to.equal(0);
  });
});
