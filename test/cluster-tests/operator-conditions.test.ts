/**
 * The operator's conditions and events against the real control plane: each failure a user can meet
 * (a missing Service or port, AWS refusing CreateActivity, Redis down, a spec the API server accepts
 * but the operator refuses, two sources of one activity, a Deployment name already taken) shows as a
 * False condition with a reason and a message saying what to do, and a Warning event; fixing it
 * heals the source (condition True, Ready True, a Normal event) without restarting the operator.
 *
 * One operator process serves the whole file; each test has its own namespace. Relists are set far
 * apart (5 minutes) so that a heal can only come from what the operator is meant to react to (a
 * watch event, the work queue's retries, the figures timer), never from a periodic relist.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import { expect } from "chai";
import type { Context } from "mocha";
import { sourceStateKeys } from "../../src/semaphore/redis/keys.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import {
  getSource,
  OperatorFixture,
  patchSpec,
  type SourceEvent,
  service,
  source,
  sourceEvents,
  waitForCondition,
} from "../support/operator.ts";
import { apply, eventually, getJson } from "./helpers.ts";

/** An event of a source as the API has it (count: repeats of the same event bump it). */
const ARN_PREFIX = "arn:aws:states:us-east-1:123456789012:activity:";

describe("operator: conditions and events", function () {
  this.timeout(90_000);
  let fixture: OperatorFixture;
  /** Whether a test stopped Redis (and has not started it again). */
  let redisStopped = false;

  before(async function () {
    this.timeout(120_000);
    fixture = await OperatorFixture.start(testCluster());
    await fixture.startOperator({ env: { SFN_RESYNC_PERIOD: "5m" } });
  });

  afterEach(async function (this: Context) {
    if (this.currentTest?.state === "failed") console.error(fixture.outputs(120));
    // A failed test must not leave faults or a stopped Redis to the next one.
    await fixture.emulator.side.clearFaults();
    if (redisStopped) {
      await fixture.redis.startProcess();
      redisStopped = false;
    }
  });

  after(async () => {
    await fixture?.close();
  });

  const deployment = (namespace: string, name: string) =>
    getJson<V1Deployment>(testCluster(), ["deployment", "-n", namespace, `${name}-poller`]);

  const events = (namespace: string, name: string): Promise<SourceEvent[]> =>
    sourceEvents(testCluster(), namespace, name);

  /** How many times the source had the event (type, reason): a repeat bumps the count. */
  const eventCount = async (namespace: string, name: string, type: string, reason: string) =>
    (await events(namespace, name))
      .filter((event) => event.type === type && event.reason === reason)
      .reduce((sum, event) => sum + (event.count ?? 1), 0);

  /** Waits for the event (type, reason) to have been recorded more than `before` times; returns it. */
  const waitForEvent = (namespace: string, name: string, type: string, reason: string, before = 0) =>
    eventually(`${type} event ${reason} of ${namespace}/${name} (more than ${before})`, async () => {
      const all = await events(namespace, name);
      const matching = all.filter((event) => event.type === type && event.reason === reason);
      const count = matching.reduce((sum, event) => sum + (event.count ?? 1), 0);
      return count > before ? matching[matching.length - 1] : undefined;
    });

  const condition = async (namespace: string, name: string, type: string) =>
    (await getSource(testCluster(), namespace, name))?.status?.conditions?.find((c) => c.type === type);

  const patchSource = (namespace: string, name: string, spec: Record<string, unknown>) =>
    patchSpec(testCluster(), namespace, name, spec);

  /** Ready True with pollers, the Normal Ready event recorded more than `readyEventsBefore` times. */
  const waitForHealthy = async (namespace: string, name: string, readyEventsBefore = 0) => {
    const cluster = testCluster();
    await waitForCondition(cluster, namespace, name, "Ready", "True");
    await waitForEvent(namespace, name, "Normal", "Ready", readyEventsBefore);
    expect(await deployment(namespace, name)).to.not.equal(undefined);
  };

  it("a missing Service: TargetFound=False ServiceNotFound, no Deployment; creating the Service heals it", async () => {
    const cluster = testCluster();
    const namespace = await fixture.sourceNamespace("svc");
    await apply(cluster, [
      source(namespace, "nosvc", {
        activityName: "conds-nosvc",
        target: { service: "nosvc-svc", path: "/step" },
      }),
    ]);
    const missing = await waitForCondition(
      cluster,
      namespace,
      "nosvc",
      "TargetFound",
      "False",
      "ServiceNotFound",
    );
    expect(missing.message).to.include("Service nosvc-svc not found").and.include("create it");
    const ready = await condition(namespace, "nosvc", "Ready");
    expect(ready).to.include({ status: "False", reason: "ServiceNotFound" });
    // The activity is resolved (its ARN is known) but no pollers are made without a target.
    expect(await condition(namespace, "nosvc", "ActivityResolved")).to.include({ status: "True" });
    expect(await deployment(namespace, "nosvc")).to.equal(undefined);
    const warning = await waitForEvent(namespace, "nosvc", "Warning", "ServiceNotFound");
    expect(warning.message).to.equal(missing.message);

    // The fix: nothing retries a missing Service; the Services informer queues the source.
    await apply(cluster, [service(namespace, "nosvc-svc")]);
    const created = await eventually("the poller Deployment", () => deployment(namespace, "nosvc"));
    expect(created.spec?.template.spec?.containers[0]?.env).to.deep.include({
      name: "SFN_TARGET_URL",
      value: `http://nosvc-svc.${namespace}.svc:8080`,
    });
    const found = await waitForCondition(cluster, namespace, "nosvc", "TargetFound", "True", "ServiceFound");
    expect(found.message).to.include("nosvc-svc port 8080");
    await waitForHealthy(namespace, "nosvc");
    await waitForEvent(namespace, "nosvc", "Normal", "ServiceFound");
  });

  it("a Service without the named port: PortNotFound; adding the port heals it", async () => {
    const cluster = testCluster();
    const namespace = await fixture.sourceNamespace("port");
    await apply(cluster, [
      service(namespace, "port-svc", [{ name: "http", port: 8080 }]),
      source(namespace, "port", {
        activityName: "conds-port",
        target: { service: "port-svc", port: "metrics", path: "/step" },
      }),
    ]);
    const missing = await waitForCondition(
      cluster,
      namespace,
      "port",
      "TargetFound",
      "False",
      "PortNotFound",
    );
    expect(missing.message)
      .to.include('no port "metrics"')
      .and.include("http (8080)")
      .and.include("fix spec.target.port or the Service");
    expect(await condition(namespace, "port", "Ready")).to.include({
      status: "False",
      reason: "PortNotFound",
    });
    expect(await deployment(namespace, "port")).to.equal(undefined);
    await waitForEvent(namespace, "port", "Warning", "PortNotFound");

    await apply(cluster, [
      service(namespace, "port-svc", [
        { name: "http", port: 8080 },
        { name: "metrics", port: 9100 },
      ]),
    ]);
    const created = await eventually("the poller Deployment", () => deployment(namespace, "port"));
    expect(created.spec?.template.spec?.containers[0]?.env).to.deep.include({
      name: "SFN_TARGET_URL",
      value: `http://port-svc.${namespace}.svc:9100`,
    });
    await waitForCondition(cluster, namespace, "port", "TargetFound", "True", "ServiceFound");
    await waitForHealthy(namespace, "port");
    await waitForEvent(namespace, "port", "Normal", "ServiceFound");
  });

  it("AWS denying CreateActivity: ActivityResolved=False AccessDenied; recovers once allowed", async () => {
    const cluster = testCluster();
    const namespace = await fixture.sourceNamespace("denied");
    const side = fixture.emulator.side;
    const before = (await side.stats()).requests.CreateActivity ?? 0;
    // Before the source exists: its activity name is new, so no ARN is cached for it.
    await side.setFaults([{ actions: ["CreateActivity"], accessDeniedRate: 1 }]);
    await apply(cluster, [
      service(namespace, "denied-svc"),
      source(namespace, "denied", {
        activityName: "conds-denied",
        target: { service: "denied-svc", path: "/step" },
      }),
    ]);
    const denied = await waitForCondition(
      cluster,
      namespace,
      "denied",
      "ActivityResolved",
      "False",
      "AccessDenied",
    );
    expect(denied.message)
      .to.include('CreateActivity for activity "conds-denied" in us-east-1 failed')
      .and.include("AccessDeniedException")
      .and.include("allow states:CreateActivity");
    expect(await condition(namespace, "denied", "Ready")).to.include({
      status: "False",
      reason: "AccessDenied",
    });
    expect((await getSource(cluster, namespace, "denied"))?.status?.activityArn).to.equal(undefined);
    expect(await deployment(namespace, "denied")).to.equal(undefined);
    const warning = await waitForEvent(namespace, "denied", "Warning", "AccessDenied");
    expect(warning.message).to.equal(denied.message);
    // It is retried (the work queue's backoff), never given up on.
    await eventually(
      "CreateActivity retried",
      async () => ((await side.stats()).requests.CreateActivity ?? 0) - before >= 2,
    );

    // The fix (IAM allows it now): nothing in the cluster changes, the retries find it.
    await side.clearFaults();
    const resolved = await waitForCondition(
      cluster,
      namespace,
      "denied",
      "ActivityResolved",
      "True",
      "Resolved",
    );
    expect(resolved.message).to.equal(`activity ${ARN_PREFIX}conds-denied`);
    await waitForHealthy(namespace, "denied");
    await waitForEvent(namespace, "denied", "Normal", "Resolved");
    expect((await getSource(cluster, namespace, "denied"))?.status?.activityArn).to.equal(
      `${ARN_PREFIX}conds-denied`,
    );
  });

  it("AWS throttling CreateActivity: ActivityResolved=False Throttled; recovers once it stops", async () => {
    const cluster = testCluster();
    const namespace = await fixture.sourceNamespace("throttled");
    const side = fixture.emulator.side;
    const before = (await side.stats()).requests.CreateActivity ?? 0;
    await side.setFaults([{ actions: ["CreateActivity"], throttleRate: 1 }]);
    await apply(cluster, [
      service(namespace, "throttled-svc"),
      source(namespace, "throttled", {
        activityName: "conds-throttled",
        target: { service: "throttled-svc", path: "/step" },
      }),
    ]);
    const throttled = await waitForCondition(
      cluster,
      namespace,
      "throttled",
      "ActivityResolved",
      "False",
      "Throttled",
    );
    expect(throttled.message).to.include("ThrottlingException").and.include("retrying with backoff");
    // The SDK made its attempts (3) before the operator gave up this round.
    expect(((await side.stats()).requests.CreateActivity ?? 0) - before).to.be.at.least(3);
    expect(await condition(namespace, "throttled", "Ready")).to.include({
      status: "False",
      reason: "Throttled",
    });
    await waitForEvent(namespace, "throttled", "Warning", "Throttled");
    expect(await deployment(namespace, "throttled")).to.equal(undefined);

    await side.clearFaults();
    await waitForCondition(cluster, namespace, "throttled", "ActivityResolved", "True", "Resolved");
    await waitForHealthy(namespace, "throttled");
    await waitForEvent(namespace, "throttled", "Normal", "Resolved");
  });

  it("Redis down: SemaphoreHealthy=False RedisUnreachable; back (empty): healthy again and the limit written again", async function () {
    if (!fixture.redis.restartable) this.skip();
    const cluster = testCluster();
    const namespace = await fixture.sourceNamespace("redis");
    await apply(cluster, [
      service(namespace, "redis-svc"),
      source(namespace, "redis", {
        activityName: "conds-redis",
        target: { service: "redis-svc", path: "/step" },
        maxConcurrency: 4,
      }),
    ]);
    await waitForHealthy(namespace, "redis");
    await waitForCondition(cluster, namespace, "redis", "SemaphoreHealthy", "True", "RedisReachable");
    const limitKey = sourceStateKeys(`${ARN_PREFIX}conds-redis`).limit;
    const client = fixture.redis.client();
    try {
      expect(await client.get(limitKey)).to.equal("4");
    } finally {
      client.disconnect();
    }
    const reachableBefore = await eventCount(namespace, "redis", "Normal", "RedisReachable");
    const readyBefore = await eventCount(namespace, "redis", "Normal", "Ready");

    // Nothing in the cluster changes: the operator must notice by itself.
    await fixture.redis.stopProcess();
    redisStopped = true;
    const down = await waitForCondition(
      cluster,
      namespace,
      "redis",
      "SemaphoreHealthy",
      "False",
      "RedisUnreachable",
    );
    expect(down.message)
      .to.include("pollers take no new tasks until Redis is back")
      .and.include(fixture.redis.url);
    expect(await condition(namespace, "redis", "Ready")).to.include({
      status: "False",
      reason: "RedisUnreachable",
    });
    await waitForEvent(namespace, "redis", "Warning", "RedisUnreachable");
    // The pollers are left as they are: only the semaphore is down.
    expect(await deployment(namespace, "redis")).to.not.equal(undefined);

    // Back, without its data (no persistence): healthy again, and the lost limit written again.
    await fixture.redis.startProcess();
    redisStopped = false;
    await waitForCondition(cluster, namespace, "redis", "SemaphoreHealthy", "True", "RedisReachable");
    await waitForEvent(namespace, "redis", "Normal", "RedisReachable", reachableBefore);
    await waitForHealthy(namespace, "redis", readyBefore);
    const again = fixture.redis.client();
    try {
      await eventually("the limit written again", async () => (await again.get(limitKey)) === "4", 30_000);
    } finally {
      again.disconnect();
    }
  });

  it("a spec the API server accepts but the operator refuses: ActivityResolved=False InvalidSpec; fixing it heals", async () => {
    const cluster = testCluster();
    const namespace = await fixture.sourceNamespace("invalid");
    await apply(cluster, [
      service(namespace, "invalid-svc"),
      source(namespace, "invalid", {
        activityName: "conds-invalid",
        target: { service: "invalid-svc", path: "/step" },
        // The CRD's pattern accepts any duration; the range (at least 100ms) is checked on read.
        requestTimeout: "50ms",
      }),
    ]);
    const invalid = await waitForCondition(
      cluster,
      namespace,
      "invalid",
      "ActivityResolved",
      "False",
      "InvalidSpec",
    );
    expect(invalid.message).to.include("spec.requestTimeout").and.include("50ms").and.include("fix the spec");
    expect(invalid.observedGeneration).to.equal(1);
    expect(await condition(namespace, "invalid", "Ready")).to.include({
      status: "False",
      reason: "InvalidSpec",
    });
    expect(await deployment(namespace, "invalid")).to.equal(undefined);
    const warning = await waitForEvent(namespace, "invalid", "Warning", "InvalidSpec");
    expect(warning.message).to.include("spec.requestTimeout");

    await patchSource(namespace, "invalid", { requestTimeout: "30s" });
    const resolved = await waitForCondition(
      cluster,
      namespace,
      "invalid",
      "ActivityResolved",
      "True",
      "Resolved",
    );
    expect(resolved.observedGeneration).to.equal(2);
    await waitForHealthy(namespace, "invalid");
    await waitForEvent(namespace, "invalid", "Normal", "Resolved");
  });

  it("two sources of one activity in one Redis: the younger waits (ActivityInUse) and takes over when the older goes", async () => {
    const cluster = testCluster();
    const namespace = await fixture.sourceNamespace("shared");
    const spec = (svc: string) => ({ activityName: "conds-shared", target: { service: svc, path: "/step" } });
    // Names in age order: creation times have whole seconds, and a tie is decided by namespace/name.
    await apply(cluster, [service(namespace, "older-svc"), source(namespace, "a-older", spec("older-svc"))]);
    await waitForHealthy(namespace, "a-older");
    await apply(cluster, [
      service(namespace, "younger-svc"),
      source(namespace, "b-younger", spec("younger-svc")),
    ]);
    const inUse = await waitForCondition(
      cluster,
      namespace,
      "b-younger",
      "ActivityResolved",
      "False",
      "ActivityInUse",
    );
    expect(inUse.message)
      .to.include(`StepFunctionSource ${namespace}/a-older`)
      .and.include("delete one of them, or give this one another activity");
    expect(await condition(namespace, "b-younger", "Ready")).to.include({
      status: "False",
      reason: "ActivityInUse",
    });
    expect(await deployment(namespace, "b-younger")).to.equal(undefined);
    await waitForEvent(namespace, "b-younger", "Warning", "ActivityInUse");
    // The older is untouched by it.
    expect(await condition(namespace, "a-older", "Ready")).to.include({ status: "True" });

    // Nothing queues the younger by itself (ActivityInUse is not retried): the older's going must.
    await cluster.kubectl(["delete", "sfs", "-n", namespace, "a-older", "--wait=true", "--timeout=60s"]);
    await waitForCondition(cluster, namespace, "b-younger", "ActivityResolved", "True", "Resolved");
    await waitForHealthy(namespace, "b-younger");
    await waitForEvent(namespace, "b-younger", "Normal", "Resolved");
    expect((await getSource(cluster, namespace, "b-younger"))?.status?.activityArn).to.equal(
      `${ARN_PREFIX}conds-shared`,
    );
    // The semaphore's limit is there for the new owner's pollers (the older's finalizer may have
    // deleted it just before: the operator writes a lost limit again).
    const client = fixture.redis.client();
    try {
      await eventually(
        "the limit in Redis",
        async () => (await client.get(sourceStateKeys(`${ARN_PREFIX}conds-shared`).limit)) === "1",
        30_000,
      );
    } finally {
      client.disconnect();
    }
  });

  it("a Deployment of the poller's name that the source does not own: PollersAvailable=False DeploymentNameTaken, left untouched", async () => {
    const cluster = testCluster();
    const namespace = await fixture.sourceNamespace("taken");
    const foreign = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "taken-poller", namespace, labels: { app: "someone-else" } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "someone-else" } },
        template: {
          metadata: { labels: { app: "someone-else" } },
          spec: { containers: [{ name: "app", image: "registry.example/someone-else:1" }] },
        },
      },
    };
    await apply(cluster, [foreign]);
    const original = await eventually("the foreign Deployment", () => deployment(namespace, "taken"));
    await apply(cluster, [
      service(namespace, "taken-svc"),
      source(namespace, "taken", {
        activityName: "conds-taken",
        target: { service: "taken-svc", path: "/step" },
      }),
    ]);
    const taken = await waitForCondition(
      cluster,
      namespace,
      "taken",
      "PollersAvailable",
      "False",
      "DeploymentNameTaken",
    );
    expect(taken.message).to.include("taken-poller").and.include("delete or rename it");
    expect(await condition(namespace, "taken", "Ready")).to.include({
      status: "False",
      reason: "DeploymentNameTaken",
    });
    await waitForEvent(namespace, "taken", "Warning", "DeploymentNameTaken");
    const after = await getJson<V1Deployment>(cluster, [
      "deployment",
      "-n",
      namespace,
      "taken-poller",
      "--show-managed-fields",
    ]);
    expect(after?.metadata?.uid).to.equal(original.metadata?.uid);
    expect(after?.metadata?.generation).to.equal(original.metadata?.generation);
    expect(after?.metadata?.labels).to.deep.equal(original.metadata?.labels);
    expect(after?.metadata?.ownerReferences).to.equal(undefined);
    expect(after?.spec?.template).to.deep.equal(original.spec?.template);
    const managers = after?.metadata?.managedFields?.map((entry) => entry.manager);
    expect(managers).to.include("kubectl-client-side-apply").and.not.include("sfn-operator");

    // The fix the message asks for: the operator does not watch Deployments without its label, so
    // it looks again now and then (FOREIGN_DEPLOYMENT_RECHECK_MS) and then makes its own.
    await cluster.kubectl(["delete", "deployment", "-n", namespace, "taken-poller", "--wait=true"]);
    const own = await eventually(
      "the source's own Deployment",
      async () => {
        const current = await deployment(namespace, "taken");
        return current?.metadata?.ownerReferences?.some((owner) => owner.name === "taken" && owner.controller)
          ? current
          : undefined;
      },
      45_000,
    );
    expect(own.metadata?.uid).to.not.equal(original.metadata?.uid);
    await waitForHealthy(namespace, "taken");
    await waitForEvent(namespace, "taken", "Normal", "DeploymentCreated");
  });
});
