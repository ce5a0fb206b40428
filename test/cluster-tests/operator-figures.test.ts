/**
 * Real task figures in a StepFunctionSource's status, and the live limit, end to end: the operator
 * (the real CLI, with the RBAC it ships) keeps the poller Deployment; the test reads that Deployment
 * back from the API and runs its pod template's environment as local poller processes (kwok's pods run
 * nothing), rewriting only what a laptop is not a pod about: the target's URL (a local test server
 * instead of the Service's DNS name), the metrics port, and AWS credentials (IRSA in a cluster). The
 * pollers take tasks from the emulator; what the emulator saw must reach the status and the columns of
 * `kubectl get sfs`; a changed maxConcurrency must reach the same running processes, measured at the
 * target.
 */
import { randomBytes } from "node:crypto";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { expect } from "chai";
import type { Redis } from "ioredis";
import type { Context } from "mocha";
import type { TaskRecord } from "../../src/emulator/types.ts";
import { semaphoreKeys, sourceStateKeys } from "../../src/semaphore/redis/keys.ts";
import { awsEnvFor, CliProcess } from "../support/cli.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import {
  getSource,
  OperatorFixture,
  type OperatorProcess,
  patchSpec,
  service,
  source,
  waitForCondition,
} from "../support/operator.ts";
import { podEnvironment as kubeletEnvironment } from "../support/pod-env.ts";
import { freePort } from "../support/redis.ts";
import { type TargetInstruction, TestTarget } from "../support/target-server.ts";
import { until } from "../support/waiting.ts";
import { apply, eventually, getJson } from "./helpers.ts";

const NAME = "figures";
const ARN = `arn:aws:states:us-east-1:123456789012:activity:${NAME}`;
const SECRET = "figures-api";

interface Poller {
  pod: string;
  cli: CliProcess;
  metricsPort: number;
}

describe("operator: task figures and the live limit with the Deployment's pollers", function () {
  this.timeout(240_000);
  let fixture: OperatorFixture;
  let operator: OperatorProcess;
  let namespace: string;
  let target: TestTarget;
  let admin: Redis;
  const pollers: Poller[] = [];
  /** Every task enqueued, to compare the emulator's outcomes with the status. */
  const taskIds: string[] = [];
  /** The header value, only in the Secret: it must reach the target and never the plain env. */
  const token = `Bearer ${randomBytes(12).toString("hex")}`;

  before(async function () {
    this.timeout(180_000);
    const cluster = testCluster();
    fixture = await OperatorFixture.start(cluster);
    operator = await fixture.startOperator({ env: { SFN_RESYNC_PERIOD: "5m" } });
    namespace = await fixture.sourceNamespace("figures");
    target = await new TestTarget().start();
    admin = fixture.redis.client();
    await apply(cluster, [
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: SECRET, namespace },
        stringData: { token },
      },
      service(namespace, "figures-svc"),
      source(namespace, NAME, {
        activityName: NAME,
        target: {
          service: "figures-svc",
          path: "/step/figures",
          headers: [{ name: "Authorization", valueFrom: { secretKeyRef: { name: SECRET, key: "token" } } }],
        },
        maxConcurrency: 2,
        concurrencyPerPoller: 2,
        // Held tasks (below) stay at the target for a few seconds of status reads at most.
        requestTimeout: "2m",
      }),
    ]);
    await waitForCondition(cluster, namespace, NAME, "Ready", "True", undefined, 90_000);
  });

  afterEach(function (this: Context) {
    if (this.currentTest?.state !== "failed") return;
    console.error(fixture.outputs());
    for (const poller of pollers) console.error(`--- poller ${poller.pod}\n${poller.cli.tail(40)}`);
  });

  after(async () => {
    await Promise.all(pollers.map((poller) => poller.cli.stop()));
    await target?.close();
    admin?.disconnect();
    await fixture?.close();
  });

  const deployment = () =>
    getJson<V1Deployment>(testCluster(), ["deployment", "-n", namespace, `${NAME}-poller`]);

  /** The names of the Deployment's pods that are not being deleted (kwok runs them as fakes). */
  async function livePods(): Promise<string[]> {
    const uid = (await getSource(testCluster(), namespace, NAME))?.metadata.uid;
    const list = await getJson<{ items: V1Pod[] }>(testCluster(), [
      "pods",
      "-n",
      namespace,
      "-l",
      `sfn-operator.dev/source-uid=${uid}`,
    ]);
    return (list?.items ?? [])
      .filter((pod) => pod.metadata?.deletionTimestamp === undefined)
      .map((pod) => pod.metadata?.name ?? "")
      .sort();
  }

  /**
   * The environment of pod `pod` of the Deployment `template`, as the kubelet would give it
   * (test/support/pod-env.ts), then the few rewrites for a local process, each explained.
   */
  async function podEnvironment(template: V1Deployment, pod: string): Promise<NodeJS.ProcessEnv> {
    const env = await kubeletEnvironment(testCluster(), template, pod);
    expect(env.SFN_TARGET_URL, "the Service's URL in the template").to.equal(
      `http://figures-svc.${namespace}.svc:8080`,
    );
    // The one rewrite the issue allows: the Service's DNS name resolves only inside a cluster.
    env.SFN_TARGET_URL = target.url;
    // Every pod has its own network namespace, so each can listen on 9090; local processes share the
    // machine's, so each gets a free port.
    env.SFN_METRICS_PORT = String(await freePort());
    // Pods get AWS credentials from IRSA / Pod Identity, never from the Deployment: the emulator's fake
    // ones. Only what the template does not set (its endpoint and region stay as the operator wrote).
    for (const [name, value] of Object.entries(awsEnvFor(fixture.emulator.emulator.url))) {
      env[name] ??= value;
    }
    expect(env.AWS_ENDPOINT_URL_SFN).to.equal(fixture.emulator.emulator.url);
    return env;
  }

  /** Starts a poller process as pod `pod` of the Deployment as the API has it now. */
  async function startPoller(pod: string): Promise<Poller> {
    const current = await deployment();
    if (current === undefined) throw new Error("no poller Deployment");
    const env = await podEnvironment(current, pod);
    const poller = { pod, cli: new CliProcess(["poller"], env), metricsPort: Number(env.SFN_METRICS_PORT) };
    pollers.push(poller);
    return poller;
  }

  /** Every running poller logged that it follows `limit`. */
  async function applied(limit: number): Promise<void> {
    await Promise.all(
      pollers.map(({ cli }) =>
        cli.waitForLog(
          (r) => r.message === "concurrency limit from Redis" && r.maxConcurrency === limit,
          30_000,
        ),
      ),
    );
  }

  async function enqueue(count: number, input: (i: number) => TargetInstruction): Promise<void> {
    for (let i = 0; i < count; i++) {
      const { tasks } = await fixture.emulator.side.enqueue({ activityArn: ARN, input: input(i) });
      taskIds.push(...tasks.map((task) => task.taskId));
    }
  }

  /** Waits until every task enqueued so far is closed at the emulator; returns them. */
  async function allClosed(timeoutMs = 120_000): Promise<TaskRecord[]> {
    let closed: TaskRecord[] = [];
    await until(
      async () => {
        const tasks = await fixture.emulator.side.listTasks({ activityArn: ARN });
        closed = tasks.filter((task) => task.closedAt !== undefined);
        return taskIds.every((id) => closed.some((task) => task.taskId === id));
      },
      timeoutMs,
      `${taskIds.length} tasks closed`,
      200,
    );
    return closed;
  }

  /** The status reaches what the emulator saw: every task closed, none in flight. */
  async function figuresMatch(tasks: TaskRecord[]) {
    const succeeded = tasks.filter((task) => task.status === "SUCCEEDED").length;
    const failed = tasks.filter((task) => task.status === "FAILED").length;
    expect(succeeded + failed, "every task succeeded or failed").to.equal(tasks.length);
    const status = await eventually(
      `status with ${succeeded} succeeded, ${failed} failed, none in flight`,
      async () => {
        const current = (await getSource(testCluster(), namespace, NAME))?.status;
        return current?.tasksSucceeded === succeeded &&
          current.tasksFailed === failed &&
          current.tasksInFlight === 0
          ? current
          : undefined;
      },
      30_000,
    );
    return { succeeded, failed, status };
  }

  /** `kubectl get sfs` as printed: column title -> value. */
  async function printedColumns(): Promise<Record<string, string>> {
    const { stdout } = await testCluster().kubectl(["get", "sfs", "-n", namespace, NAME]);
    const [header, row] = stdout.trim().split("\n");
    const titles = (header ?? "").trim().split(/\s+/);
    const values = (row ?? "").trim().split(/\s+/);
    expect(values, stdout).to.have.length(titles.length);
    return Object.fromEntries(titles.map((title, i) => [title, values[i] ?? ""]));
  }

  async function patchLimit(limit: number): Promise<void> {
    await patchSpec(testCluster(), namespace, NAME, { maxConcurrency: limit });
    // The operator wrote it for the pollers.
    await eventually(
      `the limit ${limit} in Redis`,
      async () => (await admin.get(sourceStateKeys(ARN).limit)) === String(limit),
    );
  }

  async function replicas(count: number): Promise<V1Deployment> {
    return eventually(`${count} replica(s)`, async () => {
      const current = await deployment();
      return current?.spec?.replicas === count ? current : undefined;
    });
  }

  it("runs the Deployment's pod environment as poller processes; the header value comes from its Secret", async () => {
    const template = await deployment();
    expect(template?.spec?.replicas).to.equal(1);
    // The header value is nowhere in the Deployment: only a reference to the Secret.
    expect(JSON.stringify(template)).to.not.contain(token);
    const env = template?.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.find((v) => v.name === "SFN_TARGET_HEADERS")?.value).to.equal(
      "Authorization=SFN_TARGET_HEADER_0",
    );
    expect(env.find((v) => v.name === "SFN_TARGET_HEADER_0")?.valueFrom?.secretKeyRef).to.include({
      name: SECRET,
      key: "token",
    });

    const [pod] = await eventually("the poller pod", async () => {
      const pods = await livePods();
      return pods.length === 1 ? pods : undefined;
    });
    const poller = await startPoller(pod ?? "");
    await applied(2);
    // A new semaphore (this Redis has never served the activity) grants nothing for one lease TTL
    // (15 s; scripts.ts), so the first task takes that long.

    await enqueue(1, () => ({ reply: "echo", id: "first" }));
    const [task] = await allClosed();
    expect(task?.status).to.equal("SUCCEEDED");
    // The pod's name is the worker name AWS sees (POD_NAME through the downward API).
    expect(task?.workerName).to.equal(poller.pod);
    const request = target.requests.at(-1);
    expect(request?.path).to.equal("/step/figures");
    expect(request?.headers.authorization).to.equal(token);
    // ...and not in the poller's logs.
    expect(poller.cli.output).to.not.contain(token);
  });

  it("shows the tasks the emulator saw as succeeded and failed in the status and `kubectl get sfs`, with few status writes", async () => {
    const writesBefore = (await operator.writes()).status;
    const started = Date.now();
    // 60 tasks: 40 answered 200, 10 with a 500, 10 with a 422 naming the error (step-func-error).
    await enqueue(60, (i) =>
      i % 6 === 4
        ? { reply: "status", status: 500 }
        : i % 6 === 5
          ? { reply: "status", status: 422, headers: { "step-func-error": "Figures.Rejected" } }
          : { id: i },
    );
    const tasks = await allClosed();
    const errors = tasks.filter((task) => task.status === "FAILED").map((task) => task.error);
    expect(errors.filter((error) => error === "HTTP.500")).to.have.length(10);
    expect(errors.filter((error) => error === "Figures.Rejected")).to.have.length(10);

    const { succeeded, failed, status } = await figuresMatch(tasks);
    expect(succeeded).to.equal(41);
    expect(failed).to.equal(20);
    expect(status.lastTaskTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Whole seconds of Redis's clock (this machine's): during this batch.
    const last = Date.parse(status.lastTaskTime ?? "");
    expect(last).to.be.within(Math.floor(started / 1000) * 1000, Date.now());

    const columns = await printedColumns();
    expect(columns).to.include({
      NAME,
      ACTIVITY: NAME,
      MAX: "2",
      POLLERS: "1/1",
      "IN-FLIGHT": "0",
      SUCCEEDED: String(succeeded),
      FAILED: String(failed),
      READY: "True",
    });

    // Status is written when the figures read on the timer (every SFN_STATUS_INTERVAL = 1 s) changed,
    // never per task: at most one write per tick (+ the tick in progress at each end).
    const writes = (await operator.writes()).status - writesBefore;
    const ticks = Math.ceil((Date.now() - started) / 1000) + 2;
    console.log(`      60 tasks, ${writes} status write(s), at most ${ticks} ticks`);
    expect(writes).to.be.at.most(ticks);
    expect(writes).to.be.below(60);
  });

  it("shows the tasks in flight, never more than the limit, while slow tasks run", async () => {
    await enqueue(5, () => ({ hold: "slow", id: "held" }));
    // Two held at the target (the limit), three waiting at the emulator.
    await until(() => target.inFlight === 2, 60_000, "2 tasks held at the target");
    const seen: number[] = [];
    await eventually("2 tasks in flight in the status", async () => {
      const inFlight = (await getSource(testCluster(), namespace, NAME))?.status?.tasksInFlight ?? 0;
      seen.push(inFlight);
      return inFlight === 2;
    });
    expect(Math.max(...seen), "never above the limit").to.be.at.most(2);
    expect((await printedColumns())["IN-FLIGHT"]).to.equal("2");
    expect(target.peak).to.equal(2);

    target.release("slow");
    await figuresMatch(await allClosed());
    expect((await printedColumns())["IN-FLIGHT"]).to.equal("0");
  });

  it("follows a raised and a lowered maxConcurrency in the same running pollers, and scales the Deployment only", async () => {
    const before = await deployment();
    const template = before?.spec?.template;
    const first = pollers[0];
    if (first === undefined) throw new Error("no poller running");
    /** Pid by pod: a process restarted would show another pid. */
    const pids = () => new Map(pollers.map((poller) => [poller.pod, poller.cli.child.pid]));
    const holders = () => admin.zcard(semaphoreKeys(ARN).holders);
    const writesBefore = await operator.writes();
    const slow = (): TargetInstruction => ({ delayMs: 250 });

    // 2 -> 4: a second replica (2 loops each); its pod runs as a second process with the same env.
    await patchLimit(4);
    const scaledUp = await replicas(2);
    expect(scaledUp.spec?.template, "pod template unchanged").to.deep.equal(template);
    const pods = await eventually("a second pod", async () => {
      const live = await livePods();
      return live.length === 2 ? live : undefined;
    });
    const newPod = pods.find((pod) => pod !== first.pod);
    expect(newPod, `a new pod besides ${first.pod}`).to.be.a("string");
    await startPoller(newPod ?? "");
    const started = pids();
    await applied(4);
    target.resetCounters();
    await enqueue(60, slow);
    await until(() => target.peak === 4, 60_000, "4 tasks at once at the target");
    const raisedAt = target.requests.length;
    await until(() => target.requests.length >= raisedAt + 20, 60_000, "20 more requests at limit 4");
    expect(target.peak, "limit 4 never exceeded").to.equal(4);

    // 4 -> 3: still 2 replicas, so 4 loops for 3 permits: only the live limit holds them back.
    await patchLimit(3);
    expect((await deployment())?.spec?.replicas).to.equal(2);
    await applied(3);
    // Tasks taken under 4 finish; once Redis counts no more than 3 permits (polls included), every
    // new grant keeps it so.
    await until(async () => (await holders()) <= 3, 60_000, "drained to 3 permits", 50);
    target.resetCounters();
    await enqueue(60, slow);
    const loweredAt = target.requests.length;
    await until(() => target.requests.length >= loweredAt + 30, 60_000, "30 requests at limit 3");
    await until(() => target.peak === 3, 60_000, "the lowered limit reached");
    expect(target.peak, "limit 3 never exceeded").to.equal(3);

    // The same processes all along, following the limit in their metrics too.
    expect(pollers.map((poller) => poller.cli.child.exitCode)).to.deep.equal([null, null]);
    expect(pids()).to.deep.equal(started);
    for (const poller of pollers) {
      const metrics = await (await fetch(`http://127.0.0.1:${poller.metricsPort}/metrics`)).text();
      expect(metrics).to.match(/^sfn_operator_concurrency_limit\{[^}]*\} 3$/m);
    }

    // 3 -> 2: back to 1 replica. The pod the ReplicaSet removes stops (SIGTERM, as the kubelet does);
    // the other keeps running and follows the limit.
    await patchLimit(2);
    const scaledDown = await replicas(1);
    expect(scaledDown.spec?.template, "pod template unchanged").to.deep.equal(template);
    const [remaining] = await eventually("one pod left", async () => {
      const live = await livePods();
      return live.length === 1 ? live : undefined;
    });
    const removed = pollers.filter((poller) => poller.pod !== remaining);
    expect(removed).to.have.length(1);
    for (const poller of removed) {
      expect((await poller.cli.stop()).code, "a clean stop").to.equal(0);
      pollers.splice(pollers.indexOf(poller), 1);
    }
    await applied(2);
    await until(async () => (await holders()) <= 2, 60_000, "drained to 2 permits", 50);
    target.resetCounters();
    await enqueue(40, slow);
    const lowerAt = target.requests.length;
    await until(() => target.requests.length >= lowerAt + 20, 60_000, "20 requests at limit 2");
    await until(() => target.peak === 2, 60_000, "limit 2 reached");
    expect(target.peak, "limit 2 never exceeded").to.equal(2);
    const [survivor] = pollers;
    expect(survivor?.cli.child.exitCode).to.equal(null);
    expect(started.get(survivor?.pod ?? "")).to.equal(survivor?.cli.child.pid);

    const writes = await operator.writes();
    console.log(
      `      Deployment writes: ${writes.deployments - writesBefore.deployments}, status writes: ${writes.status - writesBefore.status}`,
    );
    // Nothing restarted the pods: the template is the one of the start, and the Deployment's spec
    // changed twice (the two scales; 4 -> 3 changed nothing in it). The generation counts changes of
    // the spec only, so a redundant apply of the same object (from a cache a moment behind) does not
    // count here, which keeps this exact.
    const after = await deployment();
    expect(after?.spec?.template).to.deep.equal(template);
    expect(after?.metadata?.generation).to.equal((before?.metadata?.generation ?? 0) + 2);
    const tasks = await allClosed();
    const { status } = await figuresMatch(tasks);
    expect(status.pollers).to.equal("1/1");
    const columns = await printedColumns();
    expect(columns).to.include({ MAX: "2", SUCCEEDED: String(status.tasksSucceeded) });
  });

  it("drops a crashed poller's tasks in flight from the status once its report expires", async () => {
    const [poller] = pollers;
    if (poller === undefined) throw new Error("no poller running");
    const before = (await getSource(testCluster(), namespace, NAME))?.status;
    await enqueue(2, () => ({ hold: "crash", id: "lost" }));
    await until(() => target.inFlight === 2, 60_000, "2 tasks held at the target");
    await eventually("2 tasks in flight in the status", async () => {
      return (await getSource(testCluster(), namespace, NAME))?.status?.tasksInFlight === 2;
    });
    // A pod that dies (OOM-killed, its node gone) reports nothing more: its figure lasts for the
    // report's TTL (3 x 5 s, by Redis's clock), then no longer counts.
    poller.cli.child.kill("SIGKILL");
    await poller.cli.exited;
    pollers.splice(pollers.indexOf(poller), 1);
    const after = await eventually(
      "no task in flight after the report's TTL",
      async () => {
        const current = (await getSource(testCluster(), namespace, NAME))?.status;
        return current?.tasksInFlight === 0 ? current : undefined;
      },
      60_000,
    );
    // The totals stay: the two tasks never ended as far as any poller could tell.
    expect(after).to.deep.include({
      tasksSucceeded: before?.tasksSucceeded,
      tasksFailed: before?.tasksFailed,
    });
    target.release("crash");
  });
});
