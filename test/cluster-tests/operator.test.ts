/**
 * The operator against the real control plane: a StepFunctionSource becomes a poller Deployment,
 * follows spec changes (a limit change only scales), is repaired when edited or deleted by hand,
 * and its deletion removes the Deployment (garbage collection) and the Redis keys (finalizer). The
 * operator runs as the real CLI with the ServiceAccount token of exactly the RBAC it ships.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import { expect } from "chai";
import type { Context } from "mocha";
import { semaphoreKeys, sourceStateKeys } from "../../src/semaphore/redis/keys.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import {
  getSource,
  OperatorFixture,
  POLLER_IMAGE,
  patchSpec,
  service,
  source,
  sourceEvents,
  waitForCondition,
} from "../support/operator.ts";
import { apply, createNamespace, eventually, getJson } from "./helpers.ts";

describe("operator: StepFunctionSource -> poller Deployment", function () {
  this.timeout(180_000);
  let fixture: OperatorFixture;
  let namespace: string;

  before(async function () {
    this.timeout(120_000);
    fixture = await OperatorFixture.start(testCluster());
    await fixture.startOperator({ env: { SFN_RESYNC_PERIOD: "5m" } });
    namespace = await fixture.sourceNamespace("sfs");
  });

  afterEach(function (this: Context) {
    if (this.currentTest?.state === "failed") console.error(fixture.outputs());
  });

  after(async () => {
    await fixture?.close();
  });

  const deployment = (name: string) =>
    getJson<V1Deployment>(testCluster(), ["deployment", "-n", namespace, `${name}-poller`]);

  it("creates the Deployment with the replicas, environment, probes and grace period, and reports Ready", async () => {
    const cluster = testCluster();
    await apply(cluster, [
      service(namespace, "sum-svc"),
      source(namespace, "sum", {
        activityName: "sum",
        target: { service: "sum-svc", path: "/step/sum" },
        maxConcurrency: 5,
        concurrencyPerPoller: 2,
        requestTimeout: "30s",
      }),
    ]);
    const created = await eventually("the poller Deployment", () => deployment("sum"));
    expect(created.spec?.replicas).to.equal(3);
    const pod = created.spec?.template.spec;
    const container = pod?.containers[0];
    expect(container?.image).to.equal(POLLER_IMAGE);
    expect(container?.args).to.deep.equal(["poller"]);
    const env = Object.fromEntries((container?.env ?? []).map((v) => [v.name, v.value ?? v.valueFrom]));
    expect(env).to.include({
      SFN_SOURCE_NAME: `${namespace}/sum`,
      SFN_ACTIVITY_ARN: "arn:aws:states:us-east-1:123456789012:activity:sum",
      SFN_TARGET_URL: `http://sum-svc.${namespace}.svc:8080`,
      SFN_TARGET_PATH: "/step/sum",
      SFN_CONCURRENCY_PER_POLLER: "2",
      SFN_REQUEST_TIMEOUT: "30s",
      SFN_LIMIT_FROM_REDIS: "true",
      SFN_REDIS_URL: fixture.redis.url,
      AWS_REGION: "us-east-1",
    });
    expect(env).to.not.have.property("SFN_MAX_CONCURRENCY");
    expect(env.POD_NAME).to.deep.include({ fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } });
    expect(container?.readinessProbe?.httpGet?.path).to.equal("/readyz");
    expect(container?.livenessProbe?.httpGet?.path).to.equal("/healthz");
    expect(pod?.terminationGracePeriodSeconds).to.equal(60 + 30 + 15);
    expect(created.metadata?.ownerReferences?.[0]).to.include({
      kind: "StepFunctionSource",
      name: "sum",
      controller: true,
    });

    const ready = await waitForCondition(cluster, namespace, "sum", "Ready", "True");
    expect(ready.observedGeneration).to.equal(1);
    const status = (await getSource(cluster, namespace, "sum"))?.status;
    expect(status).to.include({
      activityArn: "arn:aws:states:us-east-1:123456789012:activity:sum",
      pollers: "3/3",
    });
    // The live limit is in Redis for the pollers.
    const redis = fixture.redis.client();
    try {
      expect(await redis.get(sourceStateKeys(status?.activityArn ?? "").limit)).to.equal("5");
    } finally {
      redis.disconnect();
    }
    const reasons = (await sourceEvents(cluster, namespace, "sum")).map((event) => event.reason);
    expect(reasons).to.include.members(["DeploymentCreated", "Ready"]);
    expect(reasons, "no news: conditions True from the start").to.not.include("Resolved");
    const { stdout } = await cluster.kubectl(["get", "sfs", "-n", namespace, "sum"]);
    expect(stdout).to.match(/sum\s+sum\s+5\s+3\/3\s+0\s+0\s+0\s+True/);
  });

  it("scales on a maxConcurrency change without changing the pod template, and writes the new limit", async () => {
    const cluster = testCluster();
    const before = await deployment("sum");
    await patchSpec(cluster, namespace, "sum", { maxConcurrency: 9 });
    const scaled = await eventually("5 replicas", async () => {
      const current = await deployment("sum");
      return current?.spec?.replicas === 5 ? current : undefined;
    });
    expect(scaled.spec?.template).to.deep.equal(before?.spec?.template);
    const redis = fixture.redis.client();
    try {
      const arn = "arn:aws:states:us-east-1:123456789012:activity:sum";
      await eventually(
        "the limit 9 in Redis",
        async () => (await redis.get(sourceStateKeys(arn).limit)) === "9",
      );
    } finally {
      redis.disconnect();
    }
    const events = await sourceEvents(cluster, namespace, "sum");
    expect(events.map((event) => event.message)).to.include.members([
      "scaled Deployment sum-poller from 3 to 5 poller(s)",
    ]);
    await waitForCondition(cluster, namespace, "sum", "Ready", "True");
    expect((await getSource(cluster, namespace, "sum"))?.status?.observedGeneration).to.equal(2);
  });

  it("updates the template and the replicas on a concurrencyPerPoller change", async () => {
    const cluster = testCluster();
    await patchSpec(cluster, namespace, "sum", { concurrencyPerPoller: 3 });
    const updated = await eventually("3 replicas with 3 loops each", async () => {
      const current = await deployment("sum");
      const loops = current?.spec?.template.spec?.containers[0]?.env?.find(
        (v) => v.name === "SFN_CONCURRENCY_PER_POLLER",
      );
      return current?.spec?.replicas === 3 && loops?.value === "3" ? current : undefined;
    });
    expect(updated.spec?.replicas).to.equal(3);
  });

  it("puts back a Deployment deleted or edited by hand", async () => {
    const cluster = testCluster();
    const first = await deployment("sum");
    await cluster.kubectl(["scale", "deployment", "-n", namespace, "sum-poller", "--replicas=7"]);
    await eventually("replicas back to 3", async () => (await deployment("sum"))?.spec?.replicas === 3);
    await cluster.kubectl([
      "set",
      "env",
      "deployment/sum-poller",
      "-n",
      namespace,
      "SFN_TARGET_PATH=/elsewhere",
    ]);
    await eventually("the path put back", async () => {
      const env = (await deployment("sum"))?.spec?.template.spec?.containers[0]?.env ?? [];
      return env.find((v) => v.name === "SFN_TARGET_PATH")?.value === "/step/sum";
    });
    await cluster.kubectl(["delete", "deployment", "-n", namespace, "sum-poller", "--wait=true"]);
    const again = await eventually("a new Deployment", async () => {
      const current = await deployment("sum");
      return current !== undefined && current.metadata?.uid !== first?.metadata?.uid ? current : undefined;
    });
    expect(again.spec?.replicas).to.equal(3);
  });

  it("deletes the Deployment (garbage collection) and the semaphore's Redis keys (finalizer) with the source", async () => {
    const cluster = testCluster();
    const arn = "arn:aws:states:us-east-1:123456789012:activity:sum";
    const redis = fixture.redis.client();
    try {
      expect(await redis.exists(sourceStateKeys(arn).limit)).to.equal(1);
      // Keys the pollers would have made: a lease of a crashed poller, task figures.
      await redis.zadd(semaphoreKeys(arn).holders, Date.now() + 60_000, "lease-1");
      await redis.hset(sourceStateKeys(arn).tasks, "succeeded", 3);
      expect((await getSource(cluster, namespace, "sum"))?.metadata.finalizers).to.include(
        "sfn-operator.dev/cleanup",
      );
      await cluster.kubectl(["delete", "sfs", "-n", namespace, "sum", "--wait=true", "--timeout=60s"]);
      expect(await getSource(cluster, namespace, "sum")).to.equal(undefined);
      const keys = await redis.keys(`{sfn-operator:${arn}}*`);
      expect(keys).to.deep.equal([]);
      // The controller-manager's garbage collector notices a new CRD's objects on its next discovery
      // (every 30 s), so this can take that long in a fresh cluster.
      await eventually("the Deployment gone", async () => (await deployment("sum")) === undefined, 90_000);
    } finally {
      redis.disconnect();
    }
  });
});

describe("operator: serving a list of namespaces (Roles in those namespaces only)", function () {
  this.timeout(180_000);
  let fixture: OperatorFixture;
  let watched: string;
  let other: string;

  before(async function () {
    this.timeout(120_000);
    const cluster = testCluster();
    watched = await createNamespace(cluster, "watched");
    other = await createNamespace(cluster, "unwatched");
    fixture = await OperatorFixture.start(cluster, { watchNamespaces: [watched] });
    await fixture.startOperator();
  });

  afterEach(function (this: Context) {
    if (this.currentTest?.state === "failed") console.error(fixture.outputs());
  });

  after(async () => {
    await fixture?.close();
  });

  it("serves the sources of its namespaces with namespaced permissions, and leaves the others alone", async () => {
    const cluster = testCluster();
    const spec = { activityName: "scoped", target: { service: "scoped-svc", path: "/run" } };
    await apply(cluster, [
      service(watched, "scoped-svc"),
      service(other, "scoped-svc"),
      source(watched, "scoped", spec),
      source(other, "scoped", { ...spec, activityName: "scoped-elsewhere" }),
    ]);
    await waitForCondition(cluster, watched, "scoped", "Ready", "True");
    expect(
      await getJson(cluster, ["deployment", "-n", watched, "scoped-poller"]),
      "the watched namespace's Deployment",
    ).to.not.equal(undefined);
    // The other namespace's source is not the operator's: no finalizer, no status, no Deployment
    // (its ServiceAccount could not even see it: the Roles are in the watched namespace only).
    const ignored = await getSource(cluster, other, "scoped");
    expect(ignored?.metadata.finalizers ?? []).to.deep.equal([]);
    expect(ignored?.status).to.equal(undefined);
    expect(await getJson(cluster, ["deployment", "-n", other, "scoped-poller"])).to.equal(undefined);
  });
});
